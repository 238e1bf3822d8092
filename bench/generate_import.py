"""Throughput of `fraud-app generate` and `fraud-app import` at the default size, through the real CLI.

Wall time includes interpreter start-up, as a user sees it. Prints one line per step and exits 1 if
a step misses its target (10 s each on the 2-core reference machine).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAUD_APP = Path(sys.executable).parent / "fraud-app"
TARGET_SECONDS = 10.0


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run([str(FRAUD_APP), *args], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"fraud-app {' '.join(args)} failed:\n{result.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--terminals", type=int, default=10000)
    parser.add_argument("--days", type=int, default=183)
    parser.add_argument("--repeat", type=int, default=3, help="runs per step; the median is reported")
    opts = parser.parse_args()
    size = ["--customers", str(opts.customers), "--terminals", str(opts.terminals), "--days", str(opts.days)]

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUD_APP_")}
        env.update(FRAUD_APP_HOME=tmp, FRAUD_APP_ENV_FILE=os.path.join(tmp, "none.env"))
        csv = Path(tmp) / "x.csv"
        steps: dict[str, list[float]] = {"generate --out x.csv": [], "import x.csv": [], "generate (into DB)": []}
        for run in range(opts.repeat):
            steps["generate --out x.csv"].append(timed(["generate", *size, "--out", str(csv)], env))
            db = Path(tmp) / f"import{run}.duckdb"
            steps["import x.csv"].append(timed(["--db", str(db), "import", str(csv)], env))
            db = Path(tmp) / f"generate{run}.duckdb"
            steps["generate (into DB)"].append(timed(["--db", str(db), "generate", *size], env))
        rows = sum(1 for _ in csv.open()) - 1

    print(f"{rows:,} transactions; median of {opts.repeat} runs; {os.cpu_count()} cores")
    missed = False
    for name, seconds in steps.items():
        median = statistics.median(seconds)
        target = TARGET_SECONDS if name != "generate (into DB)" else None
        verdict = "" if target is None else (f"target <= {target:.0f} s: " + ("ok" if median <= target else "MISSED"))
        missed |= target is not None and median > target
        print(f"{name:<22} {median:6.2f} s  {rows / median:>12,.0f} tx/s  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
