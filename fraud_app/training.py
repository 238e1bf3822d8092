"""Time-aware training and backtest, as `fraud-app train` does it (docs/cli.md), with the metrics of
docs/metrics.md.

Train on [train_start, train_end]; labels count only if known by the test start. Test on the `test_days`
days starting `delay_days` after train_end. Inside the training window, the last weeks are held out to
choose the model by average precision, to calibrate it and to set thresholds; the chosen model is then
refitted on the whole window.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from . import features, registry
from .curves import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve
from .detector import Detector, fit_calibration, fit_lightgbm, raw_score
from .store import Store, backtests, queries

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
DECLINE_PRECISION = 0.9
GENUINE_SHARE = 0.25  # share of genuine payments kept for fitting; calibration on held-out data undoes it


class TrainingError(ValueError):
    """The requested training cannot run on this data; the message says why."""


# -- metrics (docs/metrics.md) ------------------------------------------------------------------------------

def card_precision_at_k(day: np.ndarray, card: np.ndarray, y: np.ndarray, p: np.ndarray, k: int = 100) -> float:
    """Per test day: each card's max score and max label; precision of the k top cards. Cards caught
    (fraudulent and in the top k) on an earlier day are left out of later days. Mean over the days."""
    frame = pd.DataFrame({"day": day, "card": card, "y": y, "p": p})
    caught: set = set()
    precisions = []
    for _, today in frame.groupby("day", sort=True):
        cards = today.groupby("card").agg(p=("p", "max"), y=("y", "max"))
        cards = cards[~cards.index.isin(caught)]
        top = cards.nlargest(k, "p")
        precisions.append(top.y.sum() / k)
        caught |= set(top.index[top.y == 1])
    return float(np.mean(precisions)) if precisions else float("nan")


def recall_at_fpr(y: np.ndarray, p: np.ndarray, fpr_limit: float = 0.01) -> float:
    fpr, tpr, _ = roc_curve(y, p)
    return float(tpr[fpr <= fpr_limit].max())


def contract_metrics(y, p, day, card) -> dict[str, float | None]:
    """As docs/metrics.md defines them; None when the test data hold only one class."""
    y = np.asarray(y, dtype=np.int8)
    if len(np.unique(y)) < 2:
        return {"auc_roc": None, "average_precision": None, "card_precision_at_100": None,
                "recall_at_1pct_fpr": None}
    return {"auc_roc": float(roc_auc_score(y, p)), "average_precision": float(average_precision_score(y, p)),
            "card_precision_at_100": card_precision_at_k(day, card, y, p, 100),
            "recall_at_1pct_fpr": recall_at_fpr(y, p)}


def evaluate(y, p, day, card, amount, thresholds: dict[str, float], review_cost: float) -> dict[str, float]:
    """The §4 metrics, plus precision, recall and cost at the detector's thresholds."""
    y = np.asarray(y, dtype=np.int8)
    out: dict[str, float] = {"transactions": int(len(y)), "frauds": int(y.sum())}
    out |= contract_metrics(y, p, day, card)
    if out["auc_roc"] is None:
        return out
    return out | at_thresholds(y, p, day, amount, thresholds, review_cost)


def at_thresholds(y, p, day, amount, thresholds: dict[str, float], review_cost: float) -> dict[str, float]:
    """Precision, recall and alerts a day at each threshold, and the fraud amount caught and missed and the cost
    at the review threshold (data with both classes)."""
    y = np.asarray(y, dtype=np.int8)
    days = max(len(np.unique(day)), 1)
    out: dict[str, float] = {}
    for name in ("review", "decline"):
        flagged = p >= thresholds[name]
        hits = int((flagged & (y == 1)).sum())
        out[f"precision_at_{name}"] = hits / flagged.sum() if flagged.any() else None
        out[f"recall_at_{name}"] = hits / y.sum()
        out[f"alerts_per_day_at_{name}"] = float(flagged.sum() / days)
    alerts = p >= thresholds["review"]
    missed = float(amount[(y == 1) & ~alerts].sum())
    return out | {"missed_fraud_amount": missed, "caught_fraud_amount": float(amount[(y == 1) & alerts].sum()),
                  "cost": missed + review_cost * float(alerts.sum())}


# -- windows ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Windows:
    train_start: dt.date
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date

    @property
    def label_cutoff(self) -> dt.datetime:
        """Training labels count only if known before the test starts."""
        return dt.datetime.combine(self.test_start, dt.time())


def plan(store: Store, train_start: dt.date | None, train_end: dt.date | None, delay_days: int,
         test_days: int) -> Windows:
    """Fill in defaults from the stored data: the test window ends on the last day of the data, and training
    covers the three months before the delay gap."""
    first, last = queries.usual_span(store)  # where the data is: a stray far-off payment moves no default
    if first is None:
        raise TrainingError("the database holds no transactions: import or generate some first")
    if train_end is None:
        train_end = last - dt.timedelta(days=delay_days + test_days)
    if train_start is None:
        train_start = max(first, train_end - dt.timedelta(days=91))
    if train_start > train_end:
        raise TrainingError(f"train-start {train_start} is after train-end {train_end}")
    if delay_days < 0 or test_days < 1:
        raise TrainingError("delay-days must be >= 0 and test-days >= 1")
    test_start = train_end + dt.timedelta(days=delay_days + 1)
    return Windows(train_start, train_end, test_start, test_start + dt.timedelta(days=test_days - 1))


# -- training --------------------------------------------------------------------------------------------

def _days(ts: pa.Array) -> np.ndarray:
    return ts.to_numpy(zero_copy_only=False).astype("datetime64[D]")


def _thresholds(p: np.ndarray, y: np.ndarray, days: int, budget: int) -> dict[str, float]:
    """Review: the score at which the held-out days would have produced `budget` alerts a day.
    Decline: the lowest score above which held-out precision reaches DECLINE_PRECISION."""
    ranked = np.sort(p)[::-1]
    review = float(ranked[min(budget * days, len(ranked)) - 1]) if len(ranked) else 0.5
    precision, _, cuts = precision_recall_curve(y, p)
    good = np.flatnonzero(precision[:-1] >= DECLINE_PRECISION)
    decline = float(cuts[good[0]]) if good.size else 1.0
    return {"review": review, "decline": max(decline, review)}


def train(store: Store, *, models_dir, train_start: dt.date | None = None, train_end: dt.date | None = None,
          delay_days: int = 7, test_days: int = 7, label_delay_days: int = 7, alert_budget: int = 100,
          review_cost: float = 5.0, seed: int = 0, actor: str | None = None,
          progress: Progress | None = None) -> dict:
    """Train, backtest and register a model version; putting it in use is the caller's choice.
    Returns the `train` command's JSON object (and more)."""
    step = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    w = plan(store, train_start, train_end, delay_days, test_days)
    step(0.02, f"features for {w.train_start} to {w.test_end}")
    table = features.batch_features(store, w.train_start, w.test_end, label_delay_days=label_delay_days)
    table = table.sort_by([("timestamp", "ascending"), ("transaction_id", "ascending")])  # same seed, same model
    X = features.feature_matrix(table)
    day = _days(table.column("timestamp"))
    fraud = table.column("is_fraud").to_numpy(zero_copy_only=False)
    fraud = np.where(pd.isna(fraud), False, fraud).astype(bool)
    known_at = table.column("known_at").to_numpy(zero_copy_only=False)
    train_rows = (day >= np.datetime64(w.train_start)) & (day <= np.datetime64(w.train_end))
    test_rows = (day >= np.datetime64(w.test_start)) & (day <= np.datetime64(w.test_end))
    # A label is usable for training only once known; unknown frauds look genuine, as they would in reality.
    y_train = fraud & (known_at < np.datetime64(w.label_cutoff))
    if train_rows.sum() < 1000 or y_train[train_rows].sum() < 10:
        raise TrainingError(f"too little labelled data from {w.train_start} to {w.train_end}: "
                            f"{int(train_rows.sum())} transactions, {int(y_train[train_rows].sum())} known frauds")

    # Hold out the last quarter of the training window (at least a week) for selection and calibration.
    span = (w.train_end - w.train_start).days + 1
    val_days = max(7, span // 4)
    val_start = np.datetime64(w.train_end - dt.timedelta(days=val_days - 1))
    fit_rows = train_rows & (day < val_start - np.timedelta64(delay_days, "D"))
    val_rows = train_rows & (day >= val_start)
    y_fit = fraud & (known_at < val_start.astype("datetime64[us]"))
    if fit_rows.sum() < 500 or y_fit[fit_rows].sum() < 5 or y_train[val_rows].sum() < 5:
        fit_rows, val_rows, y_fit = train_rows, train_rows, y_train  # too short to hold out: use it all
    log.info("training %s..%s: fit %d rows, validate %d rows", w.train_start, w.train_end, fit_rows.sum(),
             val_rows.sum())

    # Class imbalance: fit on every fraud and a seeded quarter of genuine payments. Faster, and no worse
    # on average precision; the probabilities are recalibrated on untouched held-out data below.
    sample = np.random.default_rng(seed).random(len(day)) < GENUINE_SHARE
    fit_rows &= y_fit | sample
    results = {}
    for i, depth in enumerate((3, 4)):
        name = f"lightgbm_depth{depth}"
        step(0.25 + 0.25 * i, f"fitting candidate {name}")
        model = fit_lightgbm(X[fit_rows], y_fit[fit_rows], seed=seed, max_depth=depth,
                             valid=(X[val_rows], y_train[val_rows]))
        raw = raw_score(model, X[val_rows])
        results[name] = (float(average_precision_score(y_train[val_rows], raw)), model, raw, depth)
        log.info("candidate %s: validation AP %.4f after %d trees", name, results[name][0], model.best_iteration)
    # Within 0.5% of the best average precision, the model with the fewest leaves wins: it scores faster.
    top = max(r[0] for r in results.values())
    best = min((n for n in results if results[n][0] >= 0.995 * top),
               key=lambda n: results[n][1].best_iteration * 2 ** results[n][3])
    val_ap, model, val_raw, depth = results[best]
    calibration = fit_calibration(val_raw, y_train[val_rows])

    step(0.7, f"refitting {best} on the whole training window")
    # A little more data than the held-out fit saw: a few more trees, not proportionally more (speed).
    trees = int(max((model.best_iteration or model.current_iteration()) * 1.1, 20))
    params: dict = {"model": best, "max_depth": depth, "n_estimators": trees, "seed": seed,
                    "genuine_share": GENUINE_SHARE, "validation_days": val_days,
                    "validation_ap": {n: r[0] for n, r in results.items()}}
    refit_rows = train_rows & (y_train | sample)
    final = fit_lightgbm(X[refit_rows], y_train[refit_rows], seed=seed, max_depth=depth, rounds=trees)
    detector = Detector(final, list(features.FEATURE_NAMES), calibration)
    val_p = detector.predict_proba(X[val_rows])
    detector.thresholds = _thresholds(val_p, y_train[val_rows], val_days, alert_budget)

    step(0.85, f"backtest on {w.test_start} to {w.test_end}")
    amount = table.column("amount").to_numpy()
    card = table.column("customer_id").to_numpy(zero_copy_only=False)
    p_test = detector.predict_proba(X[test_rows])
    metrics = evaluate(fraud[test_rows], p_test, day[test_rows], card[test_rows], amount[test_rows],
                       detector.thresholds, review_cost)
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)

    step(0.95, "saving the model")
    version = registry.save(store, models_dir, detector, train_start=w.train_start, train_end=w.train_end,
                            params=params | {"delay_days": delay_days, "test_days": test_days,
                                             "test_start": str(w.test_start), "test_end": str(w.test_end)},
                            metrics=metrics, actor=actor)
    backtests.save(store, version, table.column("transaction_id").filter(pa.array(test_rows)), p_test)
    step(1.0, f"model {version}: test AP {metrics.get('average_precision') or 0:.3f}")
    return {"model_version": version, "model": best,
            "train_start": str(w.train_start), "train_end": str(w.train_end),
            "test_start": str(w.test_start), "test_end": str(w.test_end),
            "train_transactions": int(train_rows.sum()), "train_known_frauds": int(y_train[train_rows].sum()),
            **metrics, "thresholds": detector.thresholds}
