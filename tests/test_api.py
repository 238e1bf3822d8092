"""The REST API over real HTTP, against `fraud-app serve` and `panel serve --plugins fraud_app.api`."""
import json
import re
import time

import pytest
import requests

from conftest import nullable_as_type, BIN, Server, copy_of
from fraud_app.api import HANDLERS

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def tx(i, **over):
    return {"transaction_id": f"api-{i}", "timestamp": "2018-06-20T12:00:00Z", "customer_id": "C00011",
            "terminal_id": "T00100", "amount": 40.0 + i, **over}


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    srv = Server(tmp, copy_of(trained, tmp), FRAUD_APP_API_TOKEN=TOKEN, FRAUD_APP_RATE_LIMIT="0",
                 FRAUD_APP_MAX_BODY_BYTES="200000")
    srv.wait("api/v1/health")
    yield srv
    srv.stop()


def call(server, method, route, body=None, headers=AUTH, raw=None):
    return requests.request(method, server.url + route.lstrip("/"), timeout=30,
                            headers={"Content-Type": "application/json", **headers},
                            data=raw if raw is not None else None if body is None else json.dumps(body))


def error_of(response, status):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]
    return error


POSTED = ("/api/v1/score", "/api/v1/labels")
# A body every job route refuses (422, or 403 for the import route, which no token may call): no job starts.
NO_JOB = {"train_start": "April", "start": "April", "path": 5, "out": 5}


@pytest.mark.parametrize("route, method", [(h.route, h.SUPPORTED_METHODS[0]) for h in HANDLERS])
def test_every_route_needs_the_token(server, route, method):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        error_of(call(server, method, route, {}, headers=headers), 401)
    assert call(server, method, route, tx(0) if route in POSTED else NO_JOB).status_code != 401


def test_score_one_then_again_is_idempotent(server):
    first = call(server, "POST", "/api/v1/score", tx(1))
    assert first.status_code == 200, first.text
    result = first.json()
    assert result["transaction_id"] == "api-1" and 0 <= result["fraud_probability"] <= 1
    assert result["risk_level"] in ("low", "medium", "high") and result["decision"] in ("approve", "review", "decline")
    assert len(result["reasons"]) == 3 and all(r["text"] for r in result["reasons"])
    assert call(server, "POST", "/api/v1/score", tx(1)).json() == result  # a retry gets the stored result
    conflict = error_of(call(server, "POST", "/api/v1/score", tx(1, amount=5000)), 409)
    assert conflict["field"] == "transaction_id" and conflict["stored"] == result
    again = error_of(call(server, "POST", "/api/v1/score", {"transactions": [tx(2), tx(1, amount=5000)]}), 409)
    assert again["field"] == "transactions[1].transaction_id" and again["stored"] == result
    assert call(server, "POST", "/api/v1/score", tx(2)).status_code == 200  # the refused batch stored nothing


def test_score_batch(server):
    response = call(server, "POST", "/api/v1/score", {"transactions": [tx(10), tx(11)]})
    results = response.json()["results"]
    assert [r["transaction_id"] for r in results] == ["api-10", "api-11"]
    assert call(server, "POST", "/api/v1/score", {"transactions": [tx(11), tx(10)]}).json()["results"] == results[::-1]
    repeated = error_of(call(server, "POST", "/api/v1/score", {"transactions": [tx(12), tx(13), tx(12)]}), 409)
    assert repeated["field"] == "transactions[2].transaction_id"
    assert call(server, "POST", "/api/v1/score", tx(12)).status_code == 200  # the refused batch stored nothing


@pytest.mark.parametrize("body, field", [
    (tx(20, amount=-3), "amount"), (tx(21, timestamp="not a time"), "timestamp"), ({"amount": 1}, "transaction_id"),
    ({"transactions": [tx(22), tx(23, channel="fax")]}, "transactions[1].channel"),
    ({"transactions": [tx(24), 7]}, "transactions[1]"), ({"transactions": []}, "transactions"),
    ({"transactions": [tx(i) for i in range(1001)]}, "transactions"), ([1, 2], "transaction"),
])
def test_invalid_fields_are_named(server, body, field):
    assert error_of(call(server, "POST", "/api/v1/score", body), 422)["field"] == field


def test_malformed_and_oversized_bodies(server):
    error_of(call(server, "POST", "/api/v1/score", raw=b"{not json"), 400)
    error_of(call(server, "POST", "/api/v1/score", raw=b"\xff\xfe"), 400)
    error_of(call(server, "POST", "/api/v1/score", raw=b"x" * 300_000), 413)


@pytest.mark.parametrize("handler", HANDLERS)
def test_a_method_a_route_does_not_have_is_405_with_allow(server, handler):
    allowed = handler.SUPPORTED_METHODS[0]
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "PROPFIND"):
        if method == allowed:
            continue
        for headers in (AUTH, {}):  # refused for its method whether or not the token is right
            response = call(server, method, handler.route, headers=headers)
            assert response.status_code == 405, (method, response.status_code)
            assert response.headers["Allow"] == allowed, method
            if method != "HEAD":
                assert error_of(response, 405)["code"] == "method_not_allowed"


def test_unknown_fields_are_ignored(server):
    one = call(server, "POST", "/api/v1/score", tx(80, note="x", Amount=5))
    assert one.status_code == 200 and one.json()["transaction_id"] == "api-80"
    assert call(server, "POST", "/api/v1/score", tx(80)).json() == one.json()  # stored as if sent without them
    batch = call(server, "POST", "/api/v1/score", {"transactions": [tx(81), tx(82, extra=[1])], "dry_run": True})
    assert [r["transaction_id"] for r in batch.json()["results"]] == ["api-81", "api-82"]
    label = call(server, "POST", "/api/v1/labels", {"transaction_id": "api-80", "is_fraud": False, "reason": "x"})
    assert label.status_code == 200, label.text


def test_labels_of_a_scored_transaction_are_ignored_when_scoring(server):
    response = call(server, "POST", "/api/v1/score", tx(84, is_fraud=True, label_time="2018-06-21T00:00:00"))
    assert response.status_code == 200, response.text


def test_labels(server):
    call(server, "POST", "/api/v1/score", tx(30))
    ok = call(server, "POST", "/api/v1/labels", {"transaction_id": "api-30", "is_fraud": True, "source": "chargeback"})
    assert ok.status_code == 200 and ok.json()["recorded"] is True
    assert error_of(call(server, "POST", "/api/v1/labels", {"transaction_id": "nope", "is_fraud": True}),
                    404)["field"] == "transaction_id"
    assert error_of(call(server, "POST", "/api/v1/labels", {"transaction_id": "api-30", "is_fraud": "yes"}),
                    422)["field"] == "is_fraud"


def test_a_path_under_api_that_is_no_route_gets_the_json_error(server):
    for method, path in (("GET", "/api/v1/nothing"), ("POST", "/api/v2/score"), ("DELETE", "/api/")):
        response = call(server, method, path, {"transaction_id": "x"} if method == "POST" else None)
        assert response.status_code == 404, (method, path)
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == "not_found"


def test_health_model_openapi_metrics(server):
    health = call(server, "GET", "/api/v1/health").json()
    assert health["status"] == "ok" and health["model_version"] == "v1" and health["transactions"] > 10_000
    model = call(server, "GET", "/api/v1/model").json()
    assert model["version"] == "v1" and model["thresholds"]["review"] > 0 and "average_precision" in model["metrics"]
    spec = call(server, "GET", "/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.") and set(spec["paths"]) == {h.route for h in HANDLERS}
    call(server, "POST", "/api/v1/score", tx(40))
    metrics = call(server, "GET", "/metrics").text
    for name in ("fraud_app_scores_total", "fraud_app_flagged_total", "fraud_app_score_latency_seconds_bucket",
                 'fraud_app_http_requests_total{route="/api/v1/score",status="200"}'):
        assert name in metrics
    lag = re.search(r"^fraud_app_event_loop_lag_seconds_count (\S+)$", metrics, re.M)
    assert lag and float(lag.group(1)) > 0  # the server watches its event loop while it serves


@pytest.mark.slow
def test_an_api_label_feeds_training_and_terminal_risk(trained, tmp_path):
    import datetime as dt

    from fraud_app import features
    from fraud_app.store import Store

    db = copy_of(trained, tmp_path)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    srv = Server(tmp_path, db)
    try:
        srv.wait("api/v1/health")
        first = {**tx(60, timestamp=(now - dt.timedelta(minutes=5)).isoformat()), "terminal_id": "T-new"}
        assert requests.post(srv.url + "api/v1/score", json=first, timeout=30).status_code == 200
        label = {"transaction_id": "api-60", "is_fraud": True, "source": "chargeback"}
        assert requests.post(srv.url + "api/v1/labels", json=label, timeout=30).status_code == 200
        later = {**tx(61, timestamp=(now + dt.timedelta(minutes=5)).isoformat()), "terminal_id": "T-new",
                 "customer_id": "C-other"}
        assert requests.post(srv.url + "api/v1/score", json=later, timeout=30).status_code == 200
    finally:
        srv.stop()
    with Store(db) as store:
        table = features.batch_features(store, now.date(), now.date() + dt.timedelta(days=1)).to_pandas()
        audit = store.cursor().execute("SELECT note FROM audit_log WHERE action = 'label'").fetchall()
    rows = table.set_index("transaction_id")
    assert bool(rows.loc["api-60", "is_fraud"]) is True and audit == [("chargeback",)]
    assert rows.loc["api-60", "term_known_frauds_1d"] == 0 and rows.loc["api-61", "term_known_frauds_1d"] == 1


def test_rate_limit(trained, tmp_path):
    srv = Server(tmp_path, copy_of(trained, tmp_path), FRAUD_APP_RATE_LIMIT="2")
    try:
        srv.wait("api/v1/health")
        statuses = [requests.get(srv.url + "api/v1/health", timeout=10).status_code for _ in range(12)]
    finally:
        srv.stop()
    assert 429 in statuses and 200 in statuses


@pytest.mark.slow
def test_same_routes_under_panel_serve_with_the_plugin(trained, tmp_path):
    from pathlib import Path

    app = Path(__file__).resolve().parent.parent / "fraud_app" / "ui" / "app.py"
    srv = Server(tmp_path, copy_of(trained, tmp_path), argv=[
        str(BIN / "panel"), "serve", str(app), "--plugins", "fraud_app.api", "--port", "{port}",
        "--address", "127.0.0.1", "--allow-websocket-origin", "127.0.0.1:{port}"])
    try:
        deadline = time.monotonic() + 180
        while "Bokeh app running at" not in srv.log.read_text() and time.monotonic() < deadline:
            assert srv.proc.poll() is None, srv.log.read_text()
            time.sleep(0.1)
        started = srv.log.read_text()
        # The application object is built when the plugin loads, before the server reports ready, so the
        # first request finds live scoring running instead of building it on the event loop.
        assert started.index("live scoring ready (model v1)") < started.index("Bokeh app running at")
        health = srv.wait("api/v1/health")
        assert health.status_code == 200 and health.json()["model_version"] == "v1"
        scored = requests.post(srv.url + "api/v1/score", json=tx(50), timeout=30)
        assert scored.status_code == 200 and scored.json()["transaction_id"] == "api-50"
        label = requests.post(srv.url + "api/v1/labels", json={"transaction_id": "api-50", "is_fraud": False},
                              timeout=30)
        assert label.status_code == 200 and label.json()["recorded"] is True
        assert requests.get(srv.url + "api/v1/model", timeout=30).json()["version"] == "v1"
        assert "/api/v1/score" in requests.get(srv.url + "api/v1/openapi.json", timeout=30).json()["paths"]
        assert "fraud_app_scores_total 1.0" in requests.get(srv.url + "metrics", timeout=30).text
        assert requests.get(srv.url + "app", timeout=30).status_code == 200
    finally:
        srv.stop()


# -- generated bad and odd requests: never a 5xx ------------------------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                     st.text(max_size=80))
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                     max_leaves=12)
_fields = ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount", "currency", "channel", "country",
           "merchant_category", "is_fraud", "source", "transactions"]
_odd_tx = st.fixed_dictionaries({}, optional={f: _json for f in _fields}) | st.builds(
    lambda base, junk: {**base, **junk},
    st.builds(tx, st.integers(1000, 10**6)), st.dictionaries(st.sampled_from(_fields), _json, max_size=3))
_bodies = st.one_of(_json.map(json.dumps), _odd_tx.map(json.dumps),
                    st.lists(_odd_tx, max_size=5).map(lambda items: json.dumps({"transactions": items})),
                    st.binary(max_size=200).map(lambda b: b.decode("latin-1")))


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(["/api/v1/score", "/api/v1/labels"]), body=_bodies)
@pytest.mark.slow
def test_generated_requests_never_get_a_5xx(server, route, body):
    response = call(server, "POST", route, raw=body.encode("utf-8", "surrogatepass"))
    assert response.status_code < 500, (response.status_code, response.text, body)
    if response.status_code >= 400:
        error_of(response, response.status_code)


@pytest.mark.slow
def test_concurrent_posts_are_each_stored_exactly_once(trained, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from fraud_app.store import Store

    db = copy_of(trained, tmp_path)
    srv = Server(tmp_path, db)
    threads, per_thread = 16, 500

    def worker(k: int) -> list[str]:
        acknowledged = []
        with requests.Session() as http:
            for i in range(per_thread):
                # Every tenth time, also post the id the next thread is sending at about the same moment.
                mine = [k * per_thread + i] + ([(k + 1) % threads * per_thread + i] if i % 10 == 0 else [])
                for n in mine:
                    body = {**tx(n), "transaction_id": f"c-{n}", "customer_id": f"C{n % 97}"}
                    response = http.post(srv.url + "api/v1/score", json=body, timeout=60)
                    assert response.status_code == 200, response.text
                    acknowledged.append(response.json()["transaction_id"])
        return acknowledged

    try:
        srv.wait("api/v1/health")
        with ThreadPoolExecutor(threads) as pool:
            acknowledged = {i for ids in pool.map(worker, range(threads)) for i in ids}
    finally:
        srv.stop()
    with Store(db) as store:
        stored = store.cursor().execute(
            "SELECT count(*), count(DISTINCT transaction_id) FROM transactions WHERE transaction_id LIKE 'c-%'"
        ).fetchall()[0]
        scored = store.cursor().execute(
            "SELECT count(*) FROM scores WHERE transaction_id LIKE 'c-%'").fetchall()[0][0]
    assert len(acknowledged) == threads * per_thread
    assert stored == (len(acknowledged), len(acknowledged)) and scored == len(acknowledged)


def test_openapi_document_is_valid_and_describes_what_the_routes_do(server):
    import jsonschema
    from openapi_spec_validator import validate

    spec = call(server, "GET", "/api/v1/openapi.json").json()
    validate(spec)
    # The job routes' examples ask for days without data: each job, if it starts, ends at once.
    examples = {"/api/v1/score": tx(70), "/api/v1/labels": {"transaction_id": "api-70", "is_fraud": False},
                "/api/v1/jobs/train": {"train_start": "2030-01-01", "train_end": "2030-01-31"},
                "/api/v1/jobs/score": {"start": "2030-01-01", "end": "2030-01-02", "file": "csv"},
                "/api/v1/jobs/export": {"start": "2030-01-01", "end": "2030-01-02"},
                "/api/v1/jobs/import": {"path": "/nowhere/x.csv"}, "/api/v1/jobs/backup": {"out": "/nowhere"}}
    exercised = 0
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            refused = {"transaction_id": []} if path in POSTED else NO_JOB
            for body in ([examples[path], refused] if method == "post" else [None]):
                response = call(server, method.upper(), path, body)
                documented = operation["responses"]
                assert str(response.status_code) in documented, (path, response.status_code)
                schema = documented[str(response.status_code)].get("content", {}).get("application/json", {})
                if "schema" in schema:
                    # OpenAPI 3.0 schemas are JSON Schema draft 4 in their details (exclusiveMaximum: true),
                    # with `nullable` for null.
                    jsonschema.Draft4Validator(nullable_as_type({**schema["schema"], "components": spec["components"]})
                                               ).validate(response.json())
                exercised += 1
    assert exercised == 21
