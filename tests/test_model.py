"""Model versions for the Model view: stored backtests, curves, the threshold simulator, promote, rollback
and background jobs."""
import threading

import numpy as np
import pandas as pd
import panel as pn
import pytest
from sklearn.metrics import average_precision_score

from conftest import app_of
from fraud_app import backtest, registry
from fraud_app.jobs import BusyError, Jobs
from fraud_app.store import analytics, backtests
from fraud_app.ui.datastore import DataStore
from fraud_app.ui.model import ModelView


@pytest.fixture
def app(trained, tmp_path):
    app = app_of(trained, tmp_path)
    yield app
    app.close()


def test_training_stores_its_test_scores(trained, app):
    store = app.store
    result = trained[2]
    frame = backtests.load(store, "v1")
    assert len(frame) == result["transactions"] and frame["fraud"].sum() == result["frauds"]
    assert frame["day"].min() == pd.Timestamp(result["test_start"])
    assert frame["day"].max() <= pd.Timestamp(result["test_end"])
    assert average_precision_score(frame["fraud"], frame["p"]) == pytest.approx(result["average_precision"], abs=1e-9)


def test_a_version_without_stored_backtest_is_scored_on_demand_alike(app):
    stored = backtests.load(app.store, "v1")
    app.store.cursor().execute("DELETE FROM backtests")
    again = app.backtest_scores("v1")
    assert list(again["transaction_id"]) == list(stored["transaction_id"])
    np.testing.assert_allclose(again["p"], stored["p"], rtol=0, atol=1e-12)


def test_outcomes_match_counting_by_hand(app):
    frame = app.backtest_scores("v1")
    days = frame["day"].nunique()
    out = backtest.outcomes(frame, [10, 40, 100], review_cost=2.5)
    for _, row in out.iterrows():
        alerts = frame[frame["p"] >= row.threshold]
        assert len(alerts) >= row.budget * days  # at least the budget: ties at the threshold are alerts too
        assert row.alerts_per_day == pytest.approx(len(alerts) / days)
        assert row.caught == alerts["fraud"].sum()
        assert row.caught_amount == pytest.approx(alerts.loc[alerts["fraud"], "amount"].sum())
        assert row.precision == pytest.approx(alerts["fraud"].mean())
        missed = frame.loc[frame["fraud"] & (frame["p"] < row.threshold), "amount"].sum()
        assert row.cost == pytest.approx(missed + 2.5 * len(alerts))
    assert out["caught"].is_monotonic_increasing and out["threshold"].is_monotonic_decreasing


def test_curves_are_thinned_and_bounded(app):
    pr, roc = backtest.curves(app.backtest_scores("v1"), points=50)
    assert 2 <= len(pr) <= 50 and 2 <= len(roc) <= 50
    assert pr["precision"].between(0, 1).all() and roc["tpr"].is_monotonic_increasing


def test_saved_thresholds_move_stored_decisions_live_scoring_and_the_audit(app):
    store = app.store
    assert analytics.has_scores(store, "v1") is False
    app.score_stored()
    app.start()
    changed = app.set_thresholds("v1", 0.2, 0.6, "ana")
    assert app.live.detector.thresholds == {"review": 0.2, "decline": 0.6}
    counts = dict(store.cursor().execute(
        "SELECT decision, count(*) FROM scores WHERE model_version = 'v1' GROUP BY ALL").fetchall())
    expected = store.cursor().execute(
        "SELECT count(*) FILTER (fraud_probability >= 0.6), count(*) FILTER (fraud_probability >= 0.2 AND "
        "fraud_probability < 0.6) FROM scores WHERE model_version = 'v1'").fetchone()
    assert (counts.get("decline", 0), counts.get("review", 0)) == expected and changed > 0
    assert registry.load(store, app.models_dir, "v1")[1].thresholds == {"review": 0.2, "decline": 0.6}
    audit = store.cursor().execute("SELECT actor, new_value FROM audit_log WHERE action = 'thresholds'").fetchall()
    assert audit == [("ana", '{"review": 0.2, "decline": 0.6}')]
    with pytest.raises(registry.ModelError, match="review <= decline"):
        app.set_thresholds("v1", 0.7, 0.6, "ana")
    with pytest.raises(registry.ModelError, match="no model version 'v9'"):
        app.set_thresholds("v9", 0.1, 0.6, "ana")


def test_training_does_not_promote_but_promote_and_rollback_switch_live_scoring(app):
    app.start()
    assert app.train(seed=2, actor="ana")["promoted"] is False and app.model_version == "v1"
    assert app.promote("v2", "ana") == "v1" and app.model_version == "v2"
    assert app.rollback("ana") == "v1" and app.model_version == "v1"
    statuses = dict(app.store.cursor().execute("SELECT version, status FROM model_versions").fetchall())
    assert statuses == {"v1": "active", "v2": "rolled_back"}


def test_one_job_at_a_time_with_progress_and_errors():
    release = threading.Event()

    def slow(progress):
        progress(0.5, "half way")
        release.wait(10)
        return 42

    jobs = Jobs()
    job = jobs.start("slow work", "ana", slow)
    with pytest.raises(BusyError, match="slow work"):
        jobs.start("another", "bo", lambda progress: None)
    release.set()
    assert jobs.wait(10) is job and job.result == 42 and job.fraction == 1.0 and job.error is None
    failed = jobs.start("bad work", "ana", lambda progress: 1 / 0)
    assert jobs.wait(10) is failed and "division by zero" in failed.error and not failed.running


def test_model_view_lists_versions_and_compares_two(app):
    store = app.store
    app.train(seed=3, actor="ana")
    view = ModelView(data_store=DataStore(app=app))
    pn.panel(view).get_root()
    assert list(view._versions.value["version"]) == ["v2", "v1"] and view.version == "v1"
    view.compare = "v2"
    frame = view._metrics.value
    assert list(frame.columns) == ["metric", "v1", "v2", "v1 − v2"]
    ap = frame.set_index("metric").loc["Average precision"]
    assert float(ap["v1 − v2"]) == pytest.approx(float(ap["v1"]) - float(ap["v2"]), abs=1e-9)
    assert set(view._curves.sources["pr"][0].data["version"]) == {"v1"}
    assert set(view._curves.sources["roc"][1].data["version"]) == {"v2"}
    assert min(view._curves.sources["roc"][0].data["x"]) > 0  # drawn on a log axis
    view.version = "v2"
    view._promote()  # v2 has no scores yet: a background job scores everything with it
    assert registry.models.active_version(store)["version"] == "v2"
    assert app.jobs.wait(120).error is None and analytics.has_scores(store, "v2")
    assert isinstance(view._versions.value, pd.DataFrame)
