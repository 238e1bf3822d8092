"""The one scoring path: features, model, decision and reasons, for stored ranges (bulk) and, in the REST
issue, for single new transactions. Faces (CLI, API, UI) call this; none of them scores on its own."""
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
from .store import Store, scores, write_table_file

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]


def score_matrix(detector: Detector, version: str, ids: pa.Array, X: np.ndarray,
                 scored_at: dt.datetime | None = None, explain_all: bool = True) -> pa.Table:
    """Probability, risk, decision and top reasons for each row of X, as an Arrow table.

    Exact TreeSHAP costs ~60 us a row, too slow for millions, so with explain_all=False only flagged rows
    (review, decline) get reasons here; the others are explained when someone opens them (`explain_rows`)."""
    p = detector.predict_proba(X)
    risk_score, level, decision = detector.decide(p)
    explained = np.ones(len(p), bool) if explain_all else decision != "approve"
    idx = np.zeros((len(p), scores.REASONS), np.int64)
    contrib = np.full((len(p), scores.REASONS), np.nan)
    if explained.any():
        idx[explained], contrib[explained] = detector.explain(X[explained], top=scores.REASONS)
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


def reasons_text(table: pa.Table) -> list[str]:
    """'text (+contribution); …' per row, for CSV files people read."""
    parts = [zip(table.column(f"reason{i}_feature").to_pylist(), table.column(f"reason{i}_value").to_pylist(),
                 table.column(f"reason{i}_contribution").to_pylist()) for i in range(1, scores.REASONS + 1)]
    return ["; ".join(f"{features.reason_text(f, v if v is not None else float('nan'))} ({c:+.2f})"
                      for f, v, c in row if f) for row in zip(*parts)]


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
    flagged = int(np.isin(result.column("decision").to_numpy(zero_copy_only=False), ["review", "decline"]).sum())
    step(1.0, f"{result.num_rows:,} scored, {flagged:,} flagged")
    return {"model_version": version, "scored": result.num_rows, "flagged": flagged,
            "seconds": round(time.perf_counter() - started, 2), "out": str(out) if out else None}
