"""ROC and precision-recall curves and their areas, for binary labels (0/1 or bool) and real scores.

They follow scikit-learn's definitions (docs/metrics.md), point for point: one point per distinct score,
tied scores moving together; the ROC curve starts at (0, 0) under an infinite threshold and drops the
points collinear with their neighbours; the precision-recall curve ends at recall 0, precision 1, with
no threshold. Average precision is the step sum Σ (Rₙ − Rₙ₋₁) · Pₙ, without interpolation.
"""
from __future__ import annotations

import numpy as np


def _counts(y_true, y_score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positives, true positives, threshold) at each distinct score, highest score first."""
    y = np.asarray(y_true).ravel()
    score = np.asarray(y_score).ravel()
    if len(y) != len(score):
        raise ValueError(f"labels and scores differ in length: {len(y)} and {len(score)}")
    if not len(y):
        raise ValueError("no labels and scores to compare")
    if not np.isfinite(score).all():
        raise ValueError("scores must be finite numbers")
    labels = np.unique(y)
    if not (np.isin(labels, [0, 1]).all() or np.isin(labels, [-1, 1]).all()):
        raise ValueError(f"labels must be 0/1, -1/1 or bool, not {labels[:5].tolist()}")
    order = np.argsort(score, kind="stable")[::-1]
    score, positive = score[order], (y[order] == 1).astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]  # the last row of each run of equal scores
    tps = np.cumsum(positive)[last]
    fps = 1 + last - tps
    return fps, tps, score[last]


def roc_curve(y_true, y_score, drop_intermediate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds), rising rates and falling thresholds. With one
    class only, the rate of the missing class is NaN."""
    fps, tps, thresholds = _counts(y_true, y_score)
    if drop_intermediate and len(fps) > 2:
        corner = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps, thresholds = fps[corner], tps[corner], thresholds[corner]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    thresholds = np.r_[np.inf, thresholds.astype(np.float64)]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, thresholds


def precision_recall_curve(y_true, y_score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) with rising thresholds; precision and recall have one point more,
    (recall 0, precision 1). Without any positive, recall is 1 at every threshold."""
    fps, tps, thresholds = _counts(y_true, y_score)
    flagged = tps + fps
    precision = np.divide(tps, flagged, out=np.zeros_like(tps), where=flagged != 0)
    recall = tps / tps[-1] if tps[-1] > 0 else np.ones_like(tps)
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def average_precision_score(y_true, y_score) -> float:
    precision, recall, _ = precision_recall_curve(y_true, y_score)
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))  # max: the sum can round to -0.0


def roc_auc_score(y_true, y_score) -> float:
    """Area under the ROC curve (trapezoids); NaN when the labels hold one class only."""
    if len(np.unique(np.asarray(y_true) == 1)) != 2:
        return float("nan")
    fpr, tpr, _ = roc_curve(y_true, y_score)
    return float((np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0).sum())
