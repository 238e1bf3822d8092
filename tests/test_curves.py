"""The app's own ROC and precision-recall curves and Platt scaling, checked against scikit-learn's (a test
dependency only: the app itself runs without it)."""
import warnings

import numpy as np
import pytest
from sklearn import metrics
from sklearn.linear_model import LogisticRegression

from fraud_app import curves
from fraud_app.detector import fit_calibration


def _sklearn(name, *args, **kwargs):
    with warnings.catch_warnings():  # one-class cases warn there; the values are what is compared
        warnings.simplefilter("ignore")
        return getattr(metrics, name)(*args, **kwargs)


def _same(ours, theirs):
    ours, theirs = np.atleast_1d(ours), np.atleast_1d(theirs)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)  # NaN matches NaN, inf matches inf


def _check(y, p):
    for drop in (True, False):
        for ours, theirs in zip(curves.roc_curve(y, p, drop_intermediate=drop),
                                _sklearn("roc_curve", y, p, drop_intermediate=drop)):
            _same(ours, theirs)
    for ours, theirs in zip(curves.precision_recall_curve(y, p), _sklearn("precision_recall_curve", y, p)):
        _same(ours, theirs)
    _same(curves.average_precision_score(y, p), _sklearn("average_precision_score", y, p))
    if len(np.unique(y)) == 2:
        _same(curves.roc_auc_score(y, p), _sklearn("roc_auc_score", y, p))
    else:
        assert np.isnan(curves.roc_auc_score(y, p))


@pytest.mark.parametrize("seed", range(8))
def test_curves_match_scikit_learn_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 5000))
    y = rng.random(n) < rng.uniform(0.01, 0.5)
    # Rounded scores tie often, and ties mix both classes; a slice of exact duplicates on top.
    p = np.round(rng.random(n) * 0.5 + 0.5 * y * rng.random(n), int(rng.integers(1, 4)))
    p[: n // 10] = p[n // 10]
    _check(y, p)
    _check(y.astype(int), p.astype(np.float32))
    _check(np.where(y, 1, -1), -p)


@pytest.mark.parametrize("y, p", [
    ([0, 1], [0.2, 0.8]),  # two points
    ([1, 0], [0.2, 0.8]),  # ranked the wrong way round
    ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]),  # one threshold for everything
    ([0, 0, 1, 1, 1], [0.1, 0.2, 0.7, 0.8, 0.9]),  # perfectly separated
    ([0, 0, 0, 0], [0.1, 0.4, 0.4, 0.9]),  # no positive
    ([1, 1, 1], [0.1, 0.4, 0.9]),  # no negative
    ([1], [0.3]),  # one row
    ([True, False, True, False, False], [3.0, -1.0, 3.0, 3.0, -1.0]),  # bool labels, tied raw scores
])
def test_curves_match_scikit_learn_on_edge_cases(y, p):
    _check(np.asarray(y), np.asarray(p))


def test_curves_refuse_what_is_not_binary_scoring():
    with pytest.raises(ValueError, match="differ in length"):
        curves.roc_curve([0, 1], [0.5])
    with pytest.raises(ValueError, match="labels must be"):
        curves.precision_recall_curve([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        curves.roc_auc_score([0, 1], [0.1, np.nan])


def _penalised_loss(a, b, raw, y, C=1e6):
    z = a * raw + b
    return np.sum(np.logaddexp(0, z) - y * z) + a * a / (2 * C)


@pytest.mark.parametrize("n, slope, intercept, spread", [
    (20000, 1.3, -2.0, 1.0), (50000, 0.7, -4.0, 3.0), (500, 2.0, 0.0, 1.0), (3000, 1.0, -5.0, 2.0)])
def test_platt_scaling_matches_a_scikit_learn_logistic_regression(n, slope, intercept, spread):
    rng = np.random.default_rng(n)
    raw = rng.normal(size=n) * spread
    y = rng.random(n) < 1 / (1 + np.exp(-(slope * raw + intercept)))
    a, b = fit_calibration(raw, y)
    exact = LogisticRegression(C=1e6, tol=1e-12, max_iter=100000).fit(raw.reshape(-1, 1), y)
    assert a == pytest.approx(exact.coef_[0, 0], abs=1e-6) and b == pytest.approx(exact.intercept_[0], abs=1e-6)
    # scikit-learn's default tolerance stops a little short of that optimum: close probabilities, never a lower loss.
    default = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
    ours = 1 / (1 + np.exp(-(a * raw + b)))
    np.testing.assert_allclose(ours, default.predict_proba(raw.reshape(-1, 1))[:, 1], rtol=0, atol=5e-3)
    assert _penalised_loss(a, b, raw, y) <= _penalised_loss(default.coef_[0, 0], default.intercept_[0], raw, y)


def test_platt_scaling_on_separable_scores_and_bad_labels():
    raw = np.random.default_rng(9).normal(size=2000)
    y = raw > 0.3  # separable: only the tiny penalty keeps the slope finite
    a, b = fit_calibration(raw, y)
    exact = LogisticRegression(C=1e6, tol=1e-12, max_iter=100000).fit(raw.reshape(-1, 1), y)
    assert a == pytest.approx(exact.coef_[0, 0], rel=1e-6) and b == pytest.approx(exact.intercept_[0], rel=1e-6)
    with pytest.raises(ValueError, match="both classes"):
        fit_calibration(raw, np.zeros(2000))
    with pytest.raises(ValueError, match="one 0/1 label per score"):
        fit_calibration(raw, np.zeros(10))
