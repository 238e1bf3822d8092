"""A model version on its own test window: PR and ROC curves, and what other thresholds would have done
there (the threshold simulator). Training stores the test scores; older versions are scored once on demand."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from . import features, registry, training
from .curves import precision_recall_curve, roc_curve
from .store import Store, backtests


def scores(store: Store, models_dir: Path, version: str, label_delay_days: int = 7) -> pd.DataFrame:
    """The version's test-window scores (day, customer_id, amount, fraud, p), scoring them first if needed."""
    frame = backtests.load(store, version)
    if len(frame):
        return frame
    row = registry.models.get_version(store, version)
    if row is None:
        raise registry.ModelError(f"no model version {version!r}")
    params = row["params"] or {}
    if "test_start" not in params:
        return frame
    _, detector = registry.load(store, models_dir, version)
    table = features.batch_features(store, dt.date.fromisoformat(params["test_start"]),
                                    dt.date.fromisoformat(params["test_end"]), label_delay_days=label_delay_days)
    if table.num_rows:
        columns = [features.FEATURE_NAMES.index(f) for f in detector.features]
        p = detector.predict_proba(features.feature_matrix(table)[:, columns])
        backtests.save(store, version, table.column("transaction_id"), p)
    return backtests.load(store, version)


def curves(frame: pd.DataFrame, points: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(precision-recall, ROC) as small frames, thinned to about `points` rows for plotting."""
    y, p = frame["fraud"].to_numpy(bool), frame["p"].to_numpy()
    if len(np.unique(y)) < 2:
        return pd.DataFrame(columns=["recall", "precision"]), pd.DataFrame(columns=["fpr", "tpr"])
    precision, recall, _ = precision_recall_curve(y, p)
    fpr, tpr, _ = roc_curve(y, p)
    pr = pd.DataFrame({"recall": recall, "precision": precision})
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr})
    return _thin(pr, points), _thin(roc, points)


def _thin(frame: pd.DataFrame, points: int) -> pd.DataFrame:
    keep = np.unique(np.linspace(0, len(frame) - 1, min(points, len(frame))).astype(int))
    return frame.iloc[keep].reset_index(drop=True)


def outcomes(frame: pd.DataFrame, budgets, review_cost: float) -> pd.DataFrame:
    """For each alert budget (alerts a day): the review threshold it implies on the test window, and the
    alerts, fraud caught (count, amount), precision, recall and cost (missed fraud + reviews) there."""
    p = frame["p"].to_numpy()
    order = np.argsort(-p, kind="stable")
    ranked, fraud = p[order], frame["fraud"].to_numpy(bool)[order]
    fraud_amount = np.where(fraud, frame["amount"].to_numpy()[order], 0.0)
    days = max(frame["day"].nunique(), 1)
    budgets = np.atleast_1d(np.asarray(budgets, dtype=float))
    if not len(p):
        return pd.DataFrame({"budget": budgets, "threshold": 1.0, "alerts_per_day": 0.0, "caught": 0,
                             "caught_amount": 0.0, "missed_amount": 0.0, "precision": np.nan, "recall": np.nan,
                             "cost": 0.0})
    k = np.clip((budgets * days).astype(int), 1, len(p))
    threshold = ranked[k - 1]
    alerts = np.searchsorted(-ranked, -threshold, side="right")  # ties at the threshold are alerts too
    caught, caught_amount = np.cumsum(fraud)[alerts - 1], np.cumsum(fraud_amount)[alerts - 1]
    total, total_amount = fraud.sum(), fraud_amount.sum()
    return pd.DataFrame({
        "budget": budgets, "threshold": threshold, "alerts_per_day": alerts / days, "caught": caught,
        "caught_amount": caught_amount, "missed_amount": total_amount - caught_amount,
        "precision": caught / alerts, "recall": caught / total if total else np.nan,
        "cost": total_amount - caught_amount + review_cost * alerts})


def figures_at(frame: pd.DataFrame, review: float, decline: float, review_cost: float) -> dict[str, float]:
    """A version's figures at these thresholds on its test window (docs/metrics.md): what its stored metrics
    hold for the thresholds beside them. Empty without both fraud and genuine payments."""
    y = frame["fraud"].to_numpy(bool)
    if len(np.unique(y)) < 2:
        return {}
    return training.at_thresholds(y, frame["p"].to_numpy(), frame["day"].to_numpy(), frame["amount"].to_numpy(),
                                  {"review": review, "decline": decline}, review_cost)
