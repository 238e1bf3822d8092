"""Drift (PSI) against training, REST latency percentiles, and the Monitoring view, on real databases."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import panel as pn
import pytest

from conftest import cli_env, copy_of, free_port, run_cli
from fraud_app import monitoring
from fraud_app.application import FraudApp
from fraud_app.config import load_settings
from fraud_app.features import FEATURE_NAMES, FEATURE_WORDS
from fraud_app.store import Store
from fraud_app.ui.datastore import DataStore
from fraud_app.ui.monitor import MonitoringView

rng = np.random.default_rng(7)


@pytest.fixture(scope="module")
def scored(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("monitoring")
    db = copy_of(trained, tmp)
    assert run_cli(tmp, "--db", str(db), "score").returncode == 0
    return tmp, db


def settings_for(home: Path, db: Path):
    return load_settings({"home": home, "db": db}, environ={}, dotenv_file=home / "none.env")


def test_psi_is_zero_for_the_same_sample_and_grows_with_the_shift():
    reference = rng.normal(size=20_000)
    assert monitoring.psi(reference, reference) == 0
    assert monitoring.psi(reference, rng.normal(size=20_000)) < 0.01
    small, large = (monitoring.psi(reference, rng.normal(loc=shift, size=20_000)) for shift in (0.2, 1.0))
    assert 0.01 < small < monitoring.WATCH < monitoring.SHIFT < large
    assert [monitoring.status(v) for v in (0.05, 0.1, 0.2, 0.25, 0.3, float("nan"))] == \
        ["stable", "watch", "watch", "watch", "shift", "n/a"]


def test_psi_handles_missing_values_ties_and_constant_columns():
    some_missing = np.r_[rng.normal(size=9_000), np.full(1_000, np.nan)]
    assert monitoring.psi(some_missing, some_missing) == 0
    more_missing = np.r_[rng.normal(size=5_000), np.full(5_000, np.nan)]
    assert 0.25 < monitoring.psi(some_missing, more_missing) < np.inf
    constant = np.full(5_000, 3.0)
    assert monitoring.psi(constant, constant) == 0
    assert monitoring.shares(constant, monitoring.edges(constant)).tolist() == [1.0, 0.0, 0.0]
    assert monitoring.SHIFT < monitoring.psi(constant, np.full(5_000, 4.0)) < np.inf
    flags = (rng.random(10_000) < 0.15).astype(float)  # a 0/1 feature: deciles mostly tie at 0
    assert monitoring.edges(flags).tolist() == [0.0, 1.0]
    assert monitoring.psi(flags, flags[::-1]) == 0
    assert 0 < monitoring.psi(flags, (rng.random(10_000) < 0.3).astype(float)) < np.inf
    all_missing = np.full(1_000, np.nan)
    assert np.isfinite(monitoring.psi(all_missing, rng.normal(size=1_000)))
    assert np.isnan(monitoring.psi([], [1.0])) and np.isnan(monitoring.psi([1.0], []))


def test_drift_on_the_trained_database(scored):
    _, db = scored
    with Store(db) as store:
        result = monitoring.drift(store, "v1")
        drift = monitoring.DriftJobs(store)
        job = drift.job("v1")
        assert drift.job("v1") is job  # a second session shares the computation
        shared = job.future.result(timeout=120)
    frame = result.features
    assert sorted(frame.feature) == sorted(FEATURE_NAMES) and len(frame) == len(FEATURE_NAMES)
    assert np.isfinite(frame.psi).all() and (frame.psi >= 0).all() and frame.psi.is_monotonic_decreasing
    assert set(frame.status) <= {"stable", "watch", "shift"}
    assert np.isfinite(result.score_psi) and result.now_rows > 0 and result.reference.rows > 0
    assert (result.now[1] - result.now[0]).days == 6 and result.reference.score_rows >= result.reference.rows
    for name in ("score", *FEATURE_NAMES):
        hist = result.histograms[name]
        assert hist.training.sum() == pytest.approx(1) and hist.now.sum() == pytest.approx(1)
    assert shared.features.equals(frame) and shared.score_psi == result.score_psi


def test_payments_outside_what_drift_reads_do_not_start_it_again(scored, tmp_path):
    import shutil

    db = tmp_path / "d.duckdb"
    shutil.copy(scored[1], db)
    with Store(db) as store:
        drift = monitoring.DriftJobs(store)
        job = drift.job("v1")
        job.future.result(timeout=120)
        store.cursor().execute("INSERT INTO transactions SELECT * REPLACE ('late-1' AS transaction_id, "
                               "TIMESTAMP '2031-01-01' AS timestamp) FROM transactions LIMIT 1")  # as the API adds
        assert drift.job("v1") is job  # the same days and history: the same result, not a new computation


def test_payments_arriving_for_the_days_shown_reuse_a_fresh_drift_for_a_while(scored, tmp_path):
    import shutil

    db = tmp_path / "d.duckdb"
    shutil.copy(scored[1], db)
    add = ("INSERT INTO transactions SELECT * REPLACE ('{}' AS transaction_id, timestamp + INTERVAL 1 MINUTE AS "
           "timestamp) FROM transactions ORDER BY timestamp DESC LIMIT 1")  # on the last day shown, as the API adds
    with Store(db) as store:
        drift = monitoring.DriftJobs(store)
        job = drift.job("v1")
        job.future.result(timeout=120)
        store.cursor().execute(add.format("live-1"))
        assert drift.job("v1") is job  # fresh: not computed again for one more payment
        stale = monitoring.DriftJobs(store, fresh_for=0)
        first = stale.job("v1")
        first.future.result(timeout=120)
        store.cursor().execute(add.format("live-2"))
        again = stale.job("v1")
        assert again is not first  # no longer fresh: the new payment is in the new result
        assert again.future.result(timeout=120).now_rows == first.future.result().now_rows + 1


def _drift_shown(app: FraudApp) -> tuple[MonitoringView, object]:
    """The view as a session first sees it, then once the drift it started has been computed."""
    view = MonitoringView(data_store=DataStore(app=app))
    pn.panel(view.__panel__()).get_root()
    assert view.computing and view._computing.visible and not view._drift.visible
    view._job.future.result(timeout=120)
    view._poll()  # what the session's periodic callback does
    return view, pn.panel(view.__panel__()).get_root()


def test_the_view_builds_then_shows_drift(scored):
    home, db = scored
    app = FraudApp(settings_for(home, db))
    with app.store:
        view, root = _drift_shown(app)
        assert not view.computing and not view.error and len(view.result.features) == len(FEATURE_NAMES)
    assert root is not None and view._feature.value == view.result.features.feature.iloc[0]
    assert view._drift.visible and not view._computing.visible and view._volumes.visible
    # Each feature's status is coloured, and only that cell of its row.
    styles = view._table.widget._get_style_data()["data"]
    assert sorted(styles) == list(range(len(view._table.value)))
    assert all(len(cells) == 1 and "background-color" in str(cells) for cells in styles.values())
    # this app object has served no API request
    assert view._latency_notice.visible and "No API requests" in view._latency_notice.object
    assert not view._latency.visible


def _figure(root, title: str):
    from bokeh.models import Plot

    found = [p for p in root.select({"type": Plot}) if p.title is not None and p.title.text.startswith(title)]
    assert len(found) == 1, [p.title.text for p in root.select({"type": Plot}) if p.title is not None]
    return found[0]


def test_the_largest_psis_are_bars_named_in_words_with_a_line_each(scored, tmp_path):
    from bokeh.models import FactorRange, HBar, Span

    app = FraudApp(settings_for(tmp_path, copy_of((scored[0], scored[1], None), tmp_path)))
    with app.store:
        view, root = _drift_shown(app)
        top = view.result.features.head(15)
    chart = _figure(root, "Largest PSIs")
    # One bar per feature, the largest on top, named in words on the vertical axis.
    assert isinstance(chart.y_range, FactorRange)
    assert list(chart.y_range.factors) == [FEATURE_WORDS[f] for f in top.feature][::-1]
    bars = [r.glyph for r in chart.renderers if isinstance(getattr(r, "glyph", None), HBar)]
    assert len(bars) == 1 and chart.xaxis[0].axis_label == "PSI"
    # Each name gets a line of its own: at least 24 px per bar once the title and axis have theirs.
    assert (chart.height - 90) / len(chart.y_range.factors) >= 24
    spans = {s.location: s for s in chart.center if isinstance(s, Span)}
    assert set(spans) == {monitoring.WATCH, monitoring.SHIFT} and all(s.line_dash == [6] for s in spans.values())
    assert chart.x_range.end > max(top.psi.max(), monitoring.WATCH)


def test_monitoring_names_features_in_words(scored, tmp_path):
    import csv
    import io

    app = FraudApp(settings_for(tmp_path, copy_of((scored[0], scored[1], None), tmp_path)))
    with app.store:
        view, root = _drift_shown(app)
        order = view.result.features.feature.tolist()
        options = view._feature.options
        assert list(options) == [FEATURE_WORDS[f] for f in order] and list(options.values()) == order
        shown = view._table.value
        assert shown["Feature"].tolist() == [FEATURE_WORDS[f] for f in order]
        downloads = [w for w in view.__panel__().select(pn.widgets.FileDownload) if w.filename == "feature_drift.csv"]
        assert len(downloads) == 1
        rows = list(csv.reader(io.StringIO(downloads[0].callback().getvalue().decode())))
        view._feature.value = order[-1]
        feature_chart = _figure(root, FEATURE_WORDS[order[-1]])
    assert rows[0] == ["Feature", "PSI", "Status"]
    assert [r[0] for r in rows[1:]] == [FEATURE_WORDS[f] for f in order]
    assert feature_chart.title.text.startswith(f"{FEATURE_WORDS[order[-1]]}\n(PSI ")  # the PSI on a line of its own
    assert list(feature_chart.x_range.factors) == [str(b) for b in view.result.histograms[order[-1]].bin]


def test_the_view_on_an_empty_database_says_what_is_missing(tmp_path):
    app = FraudApp(settings_for(tmp_path, tmp_path / "empty.duckdb"))
    with app.store:
        view = MonitoringView(data_store=DataStore(app=app))
        pn.panel(view).get_root()
    assert view._volumes_notice.visible and "No scores yet" in view._volumes_notice.object
    assert view._drift_notice.visible and "No model in use yet" in view._drift_notice.object
    assert view._latency_notice.visible
    assert not (view._volumes.visible or view._drift.visible or view._computing.visible or view._latency.visible)
    assert view.result is None and not view.computing and not view.error


# The API's latency window lives in the serving process: this script serves the app and API on a free port,
# calls it over HTTP, and prints what the app's metrics and the view report before and after.
SERVED = """
import json, sys, time
from pathlib import Path
import panel as pn, requests
from fraud_app import api
from fraud_app.application import FraudApp
from fraud_app.config import load_settings
from fraud_app.ui.datastore import DataStore
from fraud_app.ui.monitor import MonitoringView

home, db, port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
app = FraudApp(load_settings({"home": home, "db": db}, environ={}, dotenv_file=home / "none.env"))
out = {"unconfigured": app.metrics.percentiles()}
app.start()
view = MonitoringView(data_store=DataStore(app=app))


def latency():  # what the view's worker thread reads, then what it puts on screen
    view._show({"daily": None, "latency": view._latency_part(), "drift": {"job": None}})


latency()
out["before"], out["note"] = app.metrics.percentiles(), view._latency_notice.object
server = pn.serve({"/": lambda: pn.pane.Markdown("fraud_app")}, port=port, threaded=True, show=False,
                  extra_patterns=api.routes(app))
url = f"http://127.0.0.1:{port}/api/v1/"
for _ in range(100):
    try:
        requests.get(url + "health", timeout=5)
        break
    except requests.ConnectionError:
        time.sleep(0.1)
for i in range(40):
    tx = {"transaction_id": f"lat-{i}", "timestamp": "2018-06-20T12:00:00Z", "customer_id": "C00011",
          "terminal_id": "T00100", "amount": 20.0 + i}
    assert requests.post(url + "score", json=tx, timeout=30).status_code == 200
for _ in range(50):  # a request is recorded in on_finish, just after its reply reaches the client
    out["after"] = app.metrics.percentiles()
    if out["after"].get("/api/v1/score", {}).get("count") == 40:
        break
    time.sleep(0.1)
latency()
out["shown"] = view._latency.visible and not view._latency_notice.visible
out["table"] = view._latency_table.value.to_dict("records")
server.stop()
print(json.dumps(out))
"""


def test_latency_percentiles_after_real_requests(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    done = subprocess.run([sys.executable, "-c", SERVED, str(tmp_path), str(db), str(free_port())],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path, env=cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["unconfigured"] == {} and out["before"] == {} and "No API requests" in out["note"]
    score = out["after"]["/api/v1/score"]
    assert score["count"] == 40 and 0 < score["p50"] <= score["p95"] <= score["p99"] < 30_000
    assert out["after"]["/api/v1/health"]["count"] >= 1
    assert out["shown"] and [row["Route"] for row in out["table"]] == sorted(out["after"])
    assert {row["Route"]: row["Requests"] for row in out["table"]}["/api/v1/score"] == 40
