"""Detection quality on the simulator's default data set (1.75M payments), in one run:
our detector beside the handbook's two baselines, logistic regression and a random forest on its 15
baseline features, all trained on 2018-05-01..2018-07-31 and tested on 2018-08-08..2018-08-14 with the
metrics of docs/metrics.md. Training labels count only if known by the test start, for every model.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fraud_app import features, simulate, training
from fraud_app.store import Store, insert_table

TRAIN = (dt.date(2018, 5, 1), dt.date(2018, 7, 31))
TEST = (dt.date(2018, 8, 8), dt.date(2018, 8, 14))


def baselines(store: Store, seed: int) -> dict[str, dict]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    table = features.handbook_features(store, TRAIN[0], TEST[1])
    X = np.column_stack([table.column(n).to_numpy(zero_copy_only=False).astype(float)
                         for n in features.HANDBOOK_FEATURES])
    day = table.column("timestamp").to_numpy().astype("datetime64[D]")
    y = np.nan_to_num(table.column("is_fraud").to_numpy(zero_copy_only=False).astype(float)).astype(int)
    labels = {r[0]: r[1] for r in store.cursor().execute(
        "SELECT transaction_id, coalesce(label_time, timestamp + INTERVAL 7 DAY) FROM transactions "
        "WHERE is_fraud").fetchall()}
    ids = table.column("transaction_id").to_pylist()
    cutoff = dt.datetime.combine(TEST[0], dt.time())
    known = np.array([labels.get(i, cutoff) < cutoff for i in ids])
    train = (day >= np.datetime64(TRAIN[0])) & (day <= np.datetime64(TRAIN[1]))
    test = (day >= np.datetime64(TEST[0])) & (day <= np.datetime64(TEST[1]))
    card = table.column("customer_id").to_numpy(zero_copy_only=False)
    models = {
        "logistic regression (15 handbook features)": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "random forest (15 handbook features)": RandomForestClassifier(
            n_estimators=100, max_depth=20, min_samples_leaf=5, n_jobs=-1, random_state=seed),
    }
    out = {}
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(X[train], (y & known)[train])
        p = model.predict_proba(X[test])[:, 1]
        out[name] = training.contract_metrics(y[test], p, day[test], card[test]) | {
            "seconds": time.perf_counter() - started}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "q.duckdb") as store:
        data = simulate.generate(seed=opts.seed)
        insert_table(store, data, "bench")
        print(f"{data.num_rows:,} simulated payments, seed {opts.seed}; train {TRAIN[0]}..{TRAIN[1]}, "
              f"test {TEST[0]}..{TEST[1]}", flush=True)
        started = time.perf_counter()
        ours = training.train(store, models_dir=Path(tmp) / "models", train_start=TRAIN[0], train_end=TRAIN[1],
                              seed=opts.seed)
        results = {f"fraud_app ({ours['model']}, {len(features.FEATURE_NAMES)} features)":
                   ours | {"seconds": time.perf_counter() - started}}
        results |= baselines(store, opts.seed)
    print("\n| model | AUC | AP | CP@100 | recall@1% FPR | train s |\n|---|---|---|---|---|---|")
    for name, m in results.items():
        print(f"| {name} | {m['auc_roc']:.3f} | {m['average_precision']:.3f} | {m['card_precision_at_100']:.3f} "
              f"| {m['recall_at_1pct_fpr']:.3f} | {m['seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
