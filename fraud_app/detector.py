"""The detector: a fitted LightGBM booster, a calibration, thresholds, and exact explanations.

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


def lightgbm_params(seed: int = 0, max_depth: int = 3) -> dict:
    """Shallow boosted trees: as accurate here as deep ones, and TreeSHAP's cost grows with depth squared.
    The names are LightGBM's own; the values include what its scikit-learn wrapper used to add by default."""
    return {"objective": "binary", "metric": "binary_logloss", "boosting": "gbdt", "learning_rate": 0.15,
            "num_leaves": 2 ** max_depth, "max_depth": max_depth, "min_data_in_leaf": 40,
            "min_sum_hessian_in_leaf": 1e-3, "min_gain_to_split": 0.0, "bagging_fraction": 0.8, "bagging_freq": 1,
            "feature_fraction": 0.7, "lambda_l1": 0.0, "lambda_l2": 1.0, "bin_construct_sample_cnt": 200000,
            "seed": seed, "num_threads": 2, "deterministic": True, "force_row_wise": True, "verbose": -1}


def fit_lightgbm(X: np.ndarray, y: np.ndarray, *, seed: int = 0, max_depth: int = 3, rounds: int = 1000,
                 valid: tuple[np.ndarray, np.ndarray] | None = None):
    """A fitted lightgbm.Booster. With `valid` (X, y), boosting stops once 50 rounds in a row have improved
    neither average precision nor log loss there, and the booster predicts with its best round
    (`best_iteration`)."""
    import lightgbm

    params = lightgbm_params(seed, max_depth)
    train_set = lightgbm.Dataset(X, label=np.asarray(y, dtype=np.int8), params=params)
    if valid is None:
        return lightgbm.train(params, train_set, num_boost_round=rounds)
    params["metric"] = ["average_precision", "binary_logloss"]
    valid_set = lightgbm.Dataset(valid[0], label=np.asarray(valid[1], dtype=np.int8), reference=train_set)
    return lightgbm.train(params, train_set, num_boost_round=rounds, valid_sets=[valid_set],
                          callbacks=[lightgbm.early_stopping(50, verbose=False)])


def _threads(X: np.ndarray) -> int:
    return 1 if len(X) < 256 else 0  # starting threads costs more than a few rows take (0: LightGBM's default)


def raw_score(model, X: np.ndarray) -> np.ndarray:
    """Log-odds before calibration, from the lightgbm.Booster."""
    return model.predict(X, raw_score=True, num_threads=_threads(X))


def contributions(model, X: np.ndarray) -> np.ndarray:
    """Per-feature additive contributions to the log-odds (exact TreeSHAP), shape (n, features)."""
    return model.predict(X, pred_contrib=True, num_threads=_threads(X))[:, :-1]


def fit_calibration(raw: np.ndarray, y: np.ndarray, C: float = 1e6) -> tuple[float, float]:
    """Platt scaling: p = sigmoid(a * raw + b), fitted on held-out scores by maximum likelihood with the
    slope's ridge penalty a² / 2C, as a logistic regression with that C does. Newton's method on (a, b),
    halving a step until the loss falls; it ends at the optimum to rounding."""
    r = np.asarray(raw, dtype=np.float64).ravel()
    t = np.asarray(y, dtype=np.float64).ravel()
    if len(r) != len(t) or not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("calibration needs one 0/1 label per score")
    if t.min() == t.max():
        raise ValueError("calibration needs both classes among the labels")

    def loss(a: float, b: float) -> float:
        z = a * r + b
        return float(np.sum(np.logaddexp(0.0, z) - t * z) + a * a / (2 * C))

    # Sums of products, not np.dot: on a busy machine BLAS threads cost far more than these few passes.
    a, b = 0.0, float(np.log(t.mean() / (1 - t.mean())))
    current = loss(a, b)
    for _ in range(100):
        p = _sigmoid(a * r + b)
        h = p * (1 - p)
        ga, gb = float(np.sum((p - t) * r)) + a / C, float(np.sum(p - t))
        haa, hab, hbb = float(np.sum(h * r * r)) + 1 / C, float(np.sum(h * r)), float(np.sum(h))
        det = haa * hbb - hab * hab
        if not det > 0:
            break
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        size, value = 1.0, loss(a - da, b - db)
        while value > current and size > 1e-10:
            size /= 2
            value = loss(a - size * da, b - size * db)
        if value > current:
            break  # no step lowers the loss: the optimum, to rounding
        a, b = a - size * da, b - size * db
        previous, current = current, value
        if max(abs(size * da), abs(size * db)) <= 1e-12 * (1 + abs(a) + abs(b)) or previous - current <= 0:
            break
    return a, b


@dataclass
class Detector:
    model: object  # a lightgbm.Booster
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
        return _top(contributions(self.model, X), top)

    def predict_and_explain(self, X: np.ndarray, top: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """predict_proba and explain from one walk of the trees: the contributions and the bias add up to the
        log-odds. Half the calls into LightGBM for a payment scored live."""
        full = self.model.predict(X, pred_contrib=True, num_threads=_threads(X))
        a, b = self.calibration
        return (_sigmoid(a * full.sum(axis=1) + b), *_top(full[:, :-1], top))

    def state(self) -> dict:
        """What the registry persists (all plain types besides the model)."""
        return {"model": self.model, "features": list(self.features), "calibration": list(self.calibration),
                "thresholds": dict(self.thresholds)}

    @classmethod
    def from_state(cls, state: dict) -> "Detector":
        return cls(state["model"], list(state["features"]), tuple(state["calibration"]), dict(state["thresholds"]))


def _top(contrib: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the `top` largest contributions, largest first: (feature indices, contributions)."""
    k = min(top, contrib.shape[1])
    idx = np.argpartition(-contrib, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(contrib, idx, axis=1)
    order = np.argsort(-vals, axis=1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)
