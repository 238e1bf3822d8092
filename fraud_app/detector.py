"""The detector: a fitted scikit-learn-compatible model, a calibration, thresholds, and exact explanations.

Scores are calibrated with a logistic map of the model's log-odds (Platt scaling). It is strictly
increasing, so the ranking (AUC, AP, card precision) is the model's own, while the probabilities match
observed fraud rates on held-out data. Reasons are exact additive contributions in log-odds: TreeSHAP
(LightGBM's pred_contrib).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .store.schema import DECISIONS, RISK_LEVELS


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def lightgbm_model(seed: int = 0, max_depth: int = 3, n_estimators: int = 1000):
    """Shallow boosted trees: as accurate here as deep ones, and TreeSHAP's cost grows with depth squared."""
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=n_estimators, learning_rate=0.15, num_leaves=2 ** max_depth, max_depth=max_depth,
        min_child_samples=40, subsample=0.8, subsample_freq=1, colsample_bytree=0.7, reg_lambda=1.0,
        random_state=seed, n_jobs=2, deterministic=True, force_row_wise=True, verbose=-1)


def _threads(X: np.ndarray) -> int:
    return 1 if len(X) < 256 else 0  # starting threads costs more than a few rows take (0: LightGBM's default)


def raw_score(model, X: np.ndarray) -> np.ndarray:
    """Log-odds before calibration. LightGBM's booster directly: the sklearn wrapper's checks cost
    milliseconds per call, which single REST requests feel."""
    return model.booster_.predict(X, raw_score=True, num_threads=_threads(X))


def contributions(model, X: np.ndarray) -> np.ndarray:
    """Per-feature additive contributions to the log-odds (exact TreeSHAP), shape (n, features)."""
    return model.booster_.predict(X, pred_contrib=True, num_threads=_threads(X))[:, :-1]


def fit_calibration(raw: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: p = sigmoid(a * raw + b), fitted on held-out scores."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


@dataclass
class Detector:
    model: object
    features: list[str]
    calibration: tuple[float, float] = (1.0, 0.0)
    thresholds: dict[str, float] = field(default_factory=lambda: {"review": 0.5, "decline": 0.9})

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated fraud probability per row."""
        a, b = self.calibration
        return _sigmoid(a * raw_score(self.model, X) + b)

    def decide(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(risk_score 0-99, risk_level, decision) for calibrated probabilities."""
        level = np.zeros(len(p), np.int8)
        for name in DECISIONS[1:]:  # thresholds rise with the decisions
            level += p >= self.thresholds[name]
        risk_score = np.minimum(np.floor(p * 100), 99).astype(np.int16)
        return risk_score, np.asarray(RISK_LEVELS)[level], np.asarray(DECISIONS)[level]

    def explain(self, X: np.ndarray, top: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """The top features pushing each score up: (feature indices, contributions), each (n, top).
        The calibration's slope is positive, so a larger log-odds contribution means a larger probability."""
        contrib = contributions(self.model, X)
        k = min(top, contrib.shape[1])
        idx = np.argpartition(-contrib, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(contrib, idx, axis=1)
        order = np.argsort(-vals, axis=1)
        return np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)

    def state(self) -> dict:
        """What the registry persists (all plain types besides the model)."""
        return {"model": self.model, "features": list(self.features), "calibration": list(self.calibration),
                "thresholds": dict(self.thresholds)}

    @classmethod
    def from_state(cls, state: dict) -> "Detector":
        return cls(state["model"], list(state["features"]), tuple(state["calibration"]), dict(state["thresholds"]))
