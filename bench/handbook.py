"""The external quality check, end to end: data in the layout of the "Reproducible Machine Learning for
Credit Card Fraud Detection" handbook, then its published protocol through the real CLI.

The data follow the handbook's simulator (5,000 customers, 10,000 terminals, 183 days from 2018-04-01;
frauds: amounts over 220, 2 terminals a day compromised for 28 days, 3 cards a day with a third of their
payments x5 for 14 days). Labels carry no label_time, so each counts as known 7 days after its payment.

    import --map ...; train --train-start 2018-05-01 --train-end 2018-07-31;
    score --start 2018-08-08 --end 2018-08-14 --out scores.csv

Then AUC, AP and CP@100 on the scored week, with cards caught on earlier test days left out (docs/metrics.md),
beside the handbook's published best (AP 0.687, CP@100 0.305, AUC 0.879) and our targets.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FRAUD_APP = Path(sys.executable).parent / "fraud-app"
PUBLISHED = {"auc_roc": 0.879, "average_precision": 0.687, "card_precision_at_100": 0.305}
TARGET = {"auc_roc": 0.88, "average_precision": 0.75, "card_precision_at_100": 0.32}
MAP = ["TX_DATETIME=timestamp", "TRANSACTION_ID=transaction_id", "CUSTOMER_ID=customer_id",
       "TERMINAL_ID=terminal_id", "TX_AMOUNT=amount", "TX_FRAUD=is_fraud"]


def handbook_data(seed: int, customers: int = 5000, terminals: int = 10000, days: int = 183) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    c_xy = rng.uniform(0, 100, (customers, 2))
    mean = rng.uniform(5, 100, customers)
    rate = rng.uniform(0, 4, customers)
    t_xy = rng.uniform(0, 100, (terminals, 2))
    near = [np.flatnonzero(((t_xy - c_xy[c]) ** 2).sum(1) < 25) for c in range(customers)]
    counts = rng.poisson(np.repeat(rate, days))
    cd = np.repeat(np.arange(counts.size), counts)
    cust, day = cd // days, cd % days
    secs = rng.normal(43200, 20000, cust.size).astype(np.int64)
    keep = (secs > 0) & (secs < 86400) & np.array([near[c].size > 0 for c in cust])
    cust, day, secs = cust[keep], day[keep], secs[keep]
    amount = rng.normal(mean[cust], mean[cust] / 2)
    neg = amount < 0
    amount[neg] = rng.uniform(0, 2 * mean[cust[neg]])
    amount = np.round(amount, 2)
    term = np.array([near[c][rng.integers(near[c].size)] for c in cust])
    frame = pd.DataFrame({"TX_TIME_SECONDS": day * 86400 + secs, "TX_TIME_DAYS": day, "CUSTOMER_ID": cust,
                          "TERMINAL_ID": term, "TX_AMOUNT": amount})
    frame = frame.sort_values("TX_TIME_SECONDS", kind="stable").reset_index(drop=True)
    fraud = np.zeros(len(frame), np.int8)
    scenario = np.zeros(len(frame), np.int8)
    fraud[frame.TX_AMOUNT > 220], scenario[frame.TX_AMOUNT > 220] = 1, 1
    d, t, c = frame.TX_TIME_DAYS.to_numpy(), frame.TERMINAL_ID.to_numpy(), frame.CUSTOMER_ID.to_numpy()
    for start in range(days):
        hit = np.isin(t, rng.choice(terminals, 2, replace=False)) & (d >= start) & (d < start + 28)
        fraud[hit], scenario[hit] = 1, 2
        cards = rng.choice(customers, 3, replace=False)
        idx = np.flatnonzero(np.isin(c, cards) & (d >= start) & (d < start + 14))
        pick = rng.choice(idx, len(idx) // 3, replace=False) if len(idx) else idx
        frame.loc[pick, "TX_AMOUNT"] = frame.TX_AMOUNT.to_numpy()[pick] * 5
        fraud[pick], scenario[pick] = 1, 3
    frame["TX_DATETIME"] = pd.Timestamp("2018-04-01") + pd.to_timedelta(frame.TX_TIME_SECONDS, unit="s")
    frame["TX_FRAUD"], frame["TX_FRAUD_SCENARIO"] = fraud, scenario
    frame.insert(0, "TRANSACTION_ID", np.arange(len(frame)))
    return frame[["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_TIME_SECONDS",
                  "TX_TIME_DAYS", "TX_FRAUD", "TX_FRAUD_SCENARIO"]]


def run(args: list[str], env: dict) -> str:
    result = subprocess.run([str(FRAUD_APP), *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"fraud-app {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def evaluate(data: pd.DataFrame, scores: pd.DataFrame) -> dict[str, float]:
    from fraud_app.training import card_precision_at_k
    from sklearn.metrics import average_precision_score, roc_auc_score

    merged = scores.merge(data, left_on="transaction_id", right_on="TRANSACTION_ID")
    y, p = merged.TX_FRAUD.to_numpy(), merged.fraud_probability.to_numpy()
    return {"auc_roc": roc_auc_score(y, p), "average_precision": average_precision_score(y, p),
            "card_precision_at_100": card_precision_at_k(merged.TX_TIME_DAYS.to_numpy(),
                                                         merged.CUSTOMER_ID.to_numpy(), y, p, 100),
            "transactions": len(merged), "frauds": int(y.sum())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    opts = parser.parse_args()
    rows = []
    for seed in opts.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUD_APP_")}
            env.update(FRAUD_APP_HOME=tmp, FRAUD_APP_ENV_FILE=os.path.join(tmp, "none.env"))
            data = handbook_data(seed)
            csv = Path(tmp) / "handbook.csv"
            data.to_csv(csv, index=False)
            db = ["--db", str(Path(tmp) / "hb.duckdb")]
            started = time.perf_counter()
            run([*db, "import", str(csv), "--map", *MAP], env)
            train = json.loads(run([*db, "train", "--train-start", "2018-05-01", "--train-end", "2018-07-31"], env))
            run([*db, "score", "--start", "2018-08-08", "--end", "2018-08-14", "--out", str(Path(tmp) / "s.csv")],
                env)
            metrics = evaluate(data, pd.read_csv(Path(tmp) / "s.csv"))
            rows.append(metrics)
            print(f"seed {seed}: {len(data):,} transactions, {data.TX_FRAUD.mean():.2%} fraud; "
                  f"AUC {metrics['auc_roc']:.3f}  AP {metrics['average_precision']:.3f}  "
                  f"CP@100 {metrics['card_precision_at_100']:.3f}  (train says AP "
                  f"{train['average_precision']:.3f}; {time.perf_counter() - started:.0f} s)", flush=True)
    print(f"\n{'metric':<24}{'ours (mean)':>12}{'published':>11}{'target':>8}")
    ok = True
    for name in PUBLISHED:
        value = float(np.mean([r[name] for r in rows]))
        ok &= value >= TARGET[name]
        print(f"{name:<24}{value:>12.3f}{PUBLISHED[name]:>11.3f}{TARGET[name]:>8.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
