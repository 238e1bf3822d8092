"""The Model view's objects outside a browser: the comparison, promoting, saving a threshold, training."""
import threading

import pytest

from conftest import app_of
from fraud_app import backtest, registry
from fraud_app.store import models
from fraud_app.ui.datastore import DataStore
from fraud_app.ui.jobs import JobStatus
from fraud_app.ui.model import ModelView
from fraud_app.ui.thresholds import ThresholdPanel


@pytest.fixture
def app(trained, tmp_path):
    app = app_of(trained, tmp_path)
    yield app
    app.close()


def audit_count(app, action: str) -> int:
    return app.store.cursor().execute("SELECT count(*) FROM audit_log WHERE action = ?", [action]).fetchone()[0]


def test_the_comparison_says_which_version_minus_which_and_adds_up_as_shown(app):
    app.train(seed=3, actor="ana")
    view = ModelView(data_store=DataStore(app=app))
    view.version, view.compare = "v2", "v1"  # a candidate against the version in use
    frame = view._metrics.value.set_index("metric")
    assert list(frame.columns) == ["v2", "v1", "v2 − v1"]
    stored = {row["version"]: row["metrics"] for row in registry.versions(app.store)}
    ap = frame.loc["Average precision"]
    assert ap["v2"] == f"{stored['v2']['average_precision']:.3f}"
    # The change is the difference of the numbers beside it, signed as the header says: a weaker candidate
    # shows a minus.
    for label, row in frame.iterrows():
        if row["v2"] and row["v1"]:
            shown = float(row["v2"].replace(",", "")) - float(row["v1"].replace(",", ""))
            assert float(row["v2 − v1"]) == pytest.approx(shown, abs=1e-9), label
            assert row["v2 − v1"].startswith("-") == (shown < 0), label
    view.version, view.compare = "v1", "v2"
    assert list(view._metrics.value.columns) == ["metric", "v1", "v2", "v1 − v2"]
    view.compare = "(none)"
    assert list(view._metrics.value.columns) == ["metric", "v1"]


def test_promoting_the_version_in_use_changes_nothing_and_says_so(app):
    view = ModelView(data_store=DataStore(app=app))
    before = models.active_version(app.store)
    promotions = audit_count(app, "promote")
    assert view.version == "v1" and before["version"] == "v1"
    view._promote()
    assert view.message == "v1 is already in use; nothing changed."
    assert app.jobs.current is None  # no scoring job
    after = models.active_version(app.store)
    assert after["promoted_at"] == before["promoted_at"] and audit_count(app, "promote") == promotions
    assert app.promote("v1", "ana") == "v1" and audit_count(app, "promote") == promotions


def test_a_saved_threshold_has_its_alerts_a_day_beside_it(app):
    data = DataStore(app=app)
    view = ModelView(data_store=data)
    panel = view.thresholds
    assert panel.version == "v1"
    panel.budget = 40
    shown = panel._numbers["alerts_per_day"].value
    panel._save_thresholds()
    assert panel.message.startswith("Saved: v1 now sends scores")
    row = view._versions.value.set_index("version").loc["v1"]
    frame = app.backtest_scores("v1")
    review = row["review at"]
    at_review = (frame["p"] >= review).sum() / frame["day"].nunique()
    assert row["alerts a day"] == pytest.approx(at_review) == pytest.approx(shown)
    stored = models.get_version(app.store, "v1")["metrics"]
    caught = frame.loc[frame["fraud"] & (frame["p"] >= review), "amount"].sum()
    assert stored["caught_fraud_amount"] == pytest.approx(caught)
    assert stored["precision_at_review"] == pytest.approx(frame.loc[frame["p"] >= review, "fraud"].mean())
    assert stored["cost"] == pytest.approx(frame.loc[frame["fraud"], "amount"].sum() - caught
                                           + app.settings.review_cost * (frame["p"] >= review).sum())


def test_the_simulator_follows_the_sliders(app):
    panel = ThresholdPanel(data_store=DataStore(app=app))
    panel.version = "v1"
    frame = app.backtest_scores("v1")
    for budget, cost in ((100, 5.0), (20, 5.0), (20, 12.5)):
        panel.budget, panel.review_cost = budget, cost
        expected = backtest.outcomes(frame, [budget], cost).iloc[0]
        assert panel._numbers["threshold"].value == pytest.approx(expected.threshold)
        assert panel._numbers["cost"].value == pytest.approx(expected.cost)
        assert panel._chart.span.location == budget
        sweep = panel._chart.source.data
        assert sweep["cost"][list(sweep["budget"]).index(budget)] == pytest.approx(expected.cost)
    assert panel._readout.visible and not panel._no_window.visible


def test_training_ends_with_the_bar_gone_and_the_new_version_chosen(app):
    data = DataStore(app=app)
    view = ModelView(data_store=data)
    view.training._train()
    assert app.jobs.wait(300).error is None
    view.status.update()  # what the session's poll does next
    assert not view.status._bar.visible and "finished" in view.status.message
    assert view.version == "v2" and view.thresholds.version == "v2"
    assert list(view._versions.value["version"]) == ["v2", "v1"]


def test_the_bar_is_gone_when_the_job_ends_while_the_bar_is_being_set(app):
    """The job may end between reading it and drawing it; the poll then stops, so what it drew last stays."""
    status = JobStatus(data_store=DataStore(app=app))
    release, started = threading.Event(), threading.Event()

    def work(progress):
        progress(0.5, "half way")
        started.set()
        release.wait(30)
        progress(1.0, "done")

    job = app.jobs.start("slow work", "ana", work)
    started.wait(30)

    def end_the_job(event):  # the bar is being set: the job ends now
        release.set()
        app.jobs.wait(30)

    watcher = status._bar.param.watch(end_the_job, "value")
    status.update()
    status._bar.param.unwatch(watcher)
    assert not job.running
    # Either the status still follows the job (and hides the bar next time), or it said the job ended and the
    # bar is gone.
    if "finished" in status.message:
        assert not status._bar.visible
    else:
        status.update()
        assert not status._bar.visible and "finished" in status.message


def test_a_session_opened_during_a_job_hears_that_it_ended(app):
    release = threading.Event()
    app.jobs.start("slow work", "ana", lambda progress: release.wait(30))
    data = DataStore(app=app)
    status = JobStatus(data_store=data)
    seen = data.version
    release.set()
    app.jobs.wait(30)
    status.update()
    assert "slow work finished in" in status.message and data.version > seen


def test_a_version_without_a_test_window_says_so_and_the_same_charts_come_back(app):
    from conftest import add_skops_version

    old = add_skops_version(app.store, app.models_dir)  # saved before versions kept their test window
    view = ModelView(data_store=DataStore(app=app))
    figures = (view._curves.pr, view._curves.roc, view.thresholds._chart.figure)
    assert view._plots.visible and not view._no_curves.visible
    view.version = old
    assert view._no_curves.visible and not view._plots.visible
    assert view._no_curves.object == "No test window with both fraud and genuine payments to draw curves on."
    assert view.thresholds._no_window.visible and not view.thresholds._readout.visible
    view.version = "v1"
    assert view._plots.visible and not view._no_curves.visible and view.thresholds._readout.visible
    assert (view._curves.pr, view._curves.roc, view.thresholds._chart.figure) == figures
    legend = [item.label.value for item in view._curves.pr.legend[0].items if item.visible]
    assert legend == ["v1"]
