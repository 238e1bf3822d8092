"""The desktop bundle, as an analyst meets it (targets on the 2-core reference machine in brackets):

1. build time of `make bundle` from a clean work folder;
2. size of dist/fraud-app/ unpacked (<= 350 MB) and of its archive;
3. first launch on an empty profile (default demo size) to the Overview drawn in Chromium (<= 90 s);
4. warm start, with that demo database present, to the Overview drawn (<= 6 s; median of 3).

Times run from starting the executable to Chromium showing the Overview's heading, so they include the
frozen app's start-up, the browser's page load and the first render.
Usage: python bench/bundle.py [--no-build] [--source] [--home DIR]
(--source times `python -m fraud_app` instead of the bundle, for comparison; --home reuses a profile.)
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "dist" / "fraud-app"
EXE = FOLDER / ("fraud-app.exe" if sys.platform == "win32" else "fraud-app")
LINK = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+")


def megabytes(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files) / 1e6


def build() -> float:
    shutil.rmtree(ROOT / "build" / "pyinstaller", ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(["make", "bundle"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def to_overview(page, command: list[str], home: Path, log: Path) -> float:
    """Start the app on `home`, open its link, and return the seconds until the Overview is drawn."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUD_APP_", "XDG_"))}
    env.update(HOME=str(home), BROWSER="true", FRAUD_APP_ENV_FILE=str(home / "none.env"),
               # where the frozen app keeps its data on Linux; a source checkout would use its own folder
               FRAUD_APP_HOME=str(home / ".local" / "share" / "fraud_app"))
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen([*command, "desktop", "--no-browser"], env=env, stdout=out, stderr=subprocess.STDOUT)
    while not (found := LINK.search(log.read_text())):
        if proc.poll() is not None:
            raise SystemExit(f"the app exited: {log.read_text()}")
        time.sleep(0.02)
    page.goto(found.group(0))
    page.get_by_role("heading", name="Overview").wait_for(timeout=900_000)
    took = time.perf_counter() - started
    page.get_by_role("button", name="Quit fraud_app").click()
    if proc.wait(timeout=300) != 0:
        raise SystemExit(f"Quit ended with {proc.returncode}: {log.read_text()}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="measure the bundle already in dist/")
    parser.add_argument("--source", action="store_true", help="time python -m fraud_app instead of the bundle")
    parser.add_argument("--home", type=Path, help="a profile to reuse (skips the first launch if it is set up)")
    args = parser.parse_args()
    command = [sys.executable, "-m", "fraud_app"] if args.source else [str(EXE)]
    if not (args.no_build or args.source):
        print(f"build (make bundle, clean work folder): {build():.0f} s")
    if not args.source:
        archive = next(FOLDER.parent.glob("fraud-app-*.tar.gz"), None) or next(FOLDER.parent.glob("fraud-app-*.zip"))
        print(f"size: {megabytes(FOLDER):.0f} MB unpacked (target <= 350 MB); archive {archive.name} "
              f"{megabytes(archive):.0f} MB")

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        home = args.home or Path(tmp) / "home"
        if not (home / ".local" / "share" / "fraud_app" / "data" / "fraud.duckdb").exists():
            first = to_overview(page, command, home, Path(tmp) / "first.log")
            print(f"first launch, empty profile, default demo (1.75M payments) to Overview: {first:.1f} s "
                  "(target <= 90 s)")
        warm = [to_overview(page, command, home, Path(tmp) / f"warm-{i}.log") for i in range(3)]
        print(f"warm start to Overview: median {statistics.median(warm):.2f} s of "
              f"{', '.join(f'{w:.2f}' for w in warm)} (target <= 6 s)")
        browser.close()


if __name__ == "__main__":
    main()
