"""The one scoring path: features, model, decision and reasons, for stored ranges (bulk) and for new
transactions as they arrive (live.py builds on score_records). The application object calls these."""
from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from . import features, registry
from .detector import Detector
from .store import ALERT_DECISIONS, Store, scores, write_table_file

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]


def model_columns(detector: Detector) -> list[int]:
    """Where the model's features sit among today's FEATURE_NAMES; a model needing one that no longer
    exists must be retrained."""
    missing = [f for f in detector.features if f not in features.FEATURE_NAMES]
    if missing:
        raise registry.ModelError(f"the model in use needs features this version no longer computes "
                                  f"({', '.join(missing[:3])}); train a new version")
    return [features.FEATURE_NAMES.index(f) for f in detector.features]


def _score(detector: Detector, X: np.ndarray, explain_all: bool):
    columns = model_columns(detector)
    if columns != list(range(X.shape[1])):  # a copy of millions of rows costs a second; skip it if we can
        X = X[:, columns]
    if explain_all:
        p, idx, contrib = detector.predict_and_explain(X, top=scores.REASONS)
        explained = np.ones(len(p), bool)
    else:
        p = detector.predict_proba(X)
        explained = np.isin(detector.decide(p)[2], ALERT_DECISIONS)
        idx = np.zeros((len(p), scores.REASONS), np.int64)
        contrib = np.full((len(p), scores.REASONS), np.nan)
        if explained.any():
            idx[explained], contrib[explained] = detector.explain(X[explained], top=scores.REASONS)
    risk_score, level, decision = detector.decide(p)
    return X, p, risk_score, level, decision, explained, idx, contrib


def score_matrix(detector: Detector, version: str, ids: pa.Array, X: np.ndarray,
                 scored_at: dt.datetime | None = None, explain_all: bool = True) -> pa.Table:
    """Probability, risk, decision and top reasons for each row of X, as an Arrow table (bulk scoring).

    Exact TreeSHAP costs ~60 us a row, too slow for millions, so with explain_all=False only flagged rows
    (review, decline) get reasons; approved ones are stored without."""
    X, p, risk_score, level, decision, explained, idx, contrib = _score(detector, X, explain_all)
    scored_at = scored_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    names = np.asarray(detector.features, dtype=object)
    columns = {
        "transaction_id": ids, "model_version": pa.array([version] * len(p), pa.string()),
        "fraud_probability": pa.array(p), "risk_score": pa.array(risk_score, pa.int16()),
        "risk_level": pa.array(level, pa.string()), "decision": pa.array(decision, pa.string()),
        "scored_at": pa.array([scored_at] * len(p), pa.timestamp("us")),
    }
    for i in range(idx.shape[1]):
        value = X[np.arange(len(p)), idx[:, i]]
        columns[f"reason{i + 1}_feature"] = pa.array(names[idx[:, i]], pa.string(), mask=~explained)
        columns[f"reason{i + 1}_value"] = pa.array(value, mask=np.isnan(value) | ~explained)
        columns[f"reason{i + 1}_contribution"] = pa.array(contrib[:, i], mask=~explained)
    return pa.table(columns)


def score_records(detector: Detector, version: str, ids: list[str], X: np.ndarray) -> list[dict]:
    """The same as score_matrix, as API results, without Arrow's per-call cost (live scoring)."""
    X, p, risk_score, level, decision, _, idx, contrib = _score(detector, X, True)
    scored_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    out = []
    for row, transaction_id in enumerate(ids):
        reasons = []
        for j, c in zip(idx[row], contrib[row]):
            name, value = detector.features[j], float(X[row, j])
            reasons.append({"feature": name, "value": None if value != value else value, "contribution": float(c),
                            "text": features.reason_text(name, value)})
        out.append({"transaction_id": transaction_id, "fraud_probability": float(p[row]),
                    "risk_score": int(risk_score[row]), "risk_level": str(level[row]), "decision": str(decision[row]),
                    "reasons": reasons, "model_version": version, "scored_at": scored_at.isoformat() + "Z"})
    return out


def reason_line(reasons: list[dict]) -> str:
    """'text (+contribution); …' for CSV files people read."""
    return "; ".join(f"{features.reason_text(r['feature'], _num(r['value']))} ({r['contribution']:+.2f})"
                     for r in reasons if r["feature"])


def reasons_text(table: pa.Table) -> list[str]:
    """reason_line for each row of a score table."""
    columns = [(table.column(f"reason{i}_feature").to_pylist(), table.column(f"reason{i}_value").to_pylist(),
                table.column(f"reason{i}_contribution").to_pylist()) for i in range(1, scores.REASONS + 1)]
    return [reason_line([{"feature": f[row], "value": v[row], "contribution": c[row]} for f, v, c in columns])
            for row in range(table.num_rows)]


def score_stored(store: Store, *, models_dir: Path, start: dt.date | None = None, end: dt.date | None = None,
                 out: Path | None = None, label_delay_days: int = 7, actor: str | None = None,
                 progress: Progress | None = None) -> dict:
    """Score the stored transactions in [start, end] with the model in use. With `out`, write a CSV
    instead of storing the scores."""
    step = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    version, detector = registry.load(store, models_dir)
    step(0.05, "computing features")
    table = features.batch_features(store, start, end, label_delay_days=label_delay_days)
    step(0.5, f"scoring {table.num_rows:,} transactions with {version}")
    result = score_matrix(detector, version, table.column("transaction_id"), features.feature_matrix(table),
                          explain_all=out is not None)
    step(0.8, "writing")
    if out is not None:
        result = result.append_column("reasons", pa.array(reasons_text(result), pa.string()))
        keep = ["transaction_id", "fraud_probability", "risk_score", "risk_level", "decision", "model_version",
                "reasons"]
        extra = table.select(["timestamp", "customer_id", "terminal_id"])
        combined = result.select(keep)
        for name in extra.column_names:
            combined = combined.append_column(name, extra.column(name))
        order = np.lexsort((combined.column("transaction_id").to_numpy(zero_copy_only=False),
                            combined.column("timestamp").to_numpy()))
        write_table_file(combined.take(pa.array(order)), Path(out))
    else:
        scores.save_scores(store, result, actor)
    flagged = int(np.isin(result.column("decision").to_numpy(zero_copy_only=False), ALERT_DECISIONS).sum())
    step(1.0, f"{result.num_rows:,} scored, {flagged:,} flagged")
    return {"model_version": version, "scored": result.num_rows, "flagged": flagged,
            "seconds": round(time.perf_counter() - started, 2), "out": str(out) if out else None}


def _num(value) -> float:
    return float("nan") if value is None else value


def explain(store: Store, row: dict, version: str, detector: Detector, label_delay_days: int = 7) -> list[dict]:
    """The top reasons for one stored transaction (`row`, from store.investigate.transaction), computed now:
    bulk scoring keeps them for flagged rows only. Features as the bulk path computes them, over the
    transaction's day, from a copy holding only its card's and terminal's history.
    [{"feature", "value", "contribution", "text"}]"""
    from .store import investigate

    day = row["timestamp"].date()
    copy = investigate.history_copy(store, row["customer_id"], row["terminal_id"],
                                    dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))
    try:
        table = features.batch_features(copy, day, day, label_delay_days=label_delay_days)
    finally:
        copy.close()
    at = table.column("transaction_id").to_pylist().index(row["transaction_id"])
    X = features.feature_matrix(table.slice(at, 1))
    return score_records(detector, version, [row["transaction_id"]], X)[0]["reasons"]
