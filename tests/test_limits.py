"""One set of limits for every way in, and no single extreme-but-valid payment that disturbs the others."""
import datetime as dt
import json
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from conftest import HEADER, Server, copy_of, write

# Each timestamp, and whether it is accepted: the date as written from 1970-01-01 to 2099-12-31, and on those two
# days in UTC, so that every accepted one lies in 1970-01-01T00:00:00 to 2099-12-31T23:59:59.999999 UTC.
EDGES = {
    "1969-12-31T23:59:59": False,
    "1969-12-31T23:59:59.999999": False,
    "1970-01-01T00:00:00": True,
    "1970-01-01T00:30:00+01:00": False,  # 1969-12-31T23:30Z
    "1970-01-01T05:00:00+01:00": False,  # in range in UTC, but an offset on the first day
    "1970-01-01T05:00:00+00:00": True,
    "1970-01-02T00:30:00+01:00": True,  # 1970-01-01T23:30Z
    "1969-12-31T23:30:00-01:00": False,  # 1970-01-01T00:30Z, but written in 1969
    "2099-12-31T23:59:59": True,
    "2099-12-31T23:59:59.999999": True,
    "2099-12-31T23:59:59.999999Z": True,
    "2100-01-01T00:00:00": False,
    "2100-01-01T00:30:00+01:00": False,  # 2099-12-31T23:30Z, but written in 2100
    "2099-12-31T23:30:00-01:00": False,  # 2100-01-01T00:30Z
    "2099-12-30T23:30:00-01:00": True,  # 2099-12-31T00:30Z
}
OUTLIERS = ("1970-01-01T00:00:00", "2099-12-31T23:59:59")


def post(server, route: str, body) -> requests.Response:
    return requests.post(server.url + route.lstrip("/"), data=json.dumps(body), timeout=30,
                         headers={"Content-Type": "application/json"})


def field_error(response: requests.Response) -> str:
    assert response.status_code == 422, (response.status_code, response.text)
    return response.json()["error"]["field"]


def busiest(db) -> tuple[list[tuple[str, str]], dt.datetime]:
    """The 40 cards with the most payments in the last 30 days, each with its latest terminal, and the last
    stored payment's time."""
    from fraud_app.store import Store

    with Store(db) as store:
        cur = store.cursor()
        last = cur.execute("SELECT max(timestamp) FROM transactions").fetchone()[0]
        cards = cur.execute(
            "SELECT customer_id, arg_max(terminal_id, timestamp) FROM transactions WHERE timestamp >= ? "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 40", [last - dt.timedelta(days=30)]).fetchall()
    return cards, last


def payment(tid: str, card: str, terminal: str, when, amount: float = 42.5) -> dict:
    return {"transaction_id": tid, "timestamp": when, "customer_id": card, "terminal_id": terminal,
            "amount": amount, "channel": "pos", "country": "PT"}


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    srv = Server(tmp, copy_of(trained, tmp), FRAUD_APP_RATE_LIMIT="0")
    srv.wait("api/v1/health")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pair(trained, tmp_path_factory):
    """Two copies of the trained database. On the second, the two extreme payments are posted on the busiest
    card at its usual terminal, and the server restarted. Then the same new payment is scored on each."""
    plain_home, extreme_home = tmp_path_factory.mktemp("plain"), tmp_path_factory.mktemp("extreme")
    plain, extreme = copy_of(trained, plain_home), copy_of(trained, extreme_home)
    cards, last = busiest(plain)
    card, terminal = cards[0]
    probe = payment("probe", card, terminal, (last + dt.timedelta(hours=1)).isoformat())
    srv = Server(extreme_home, extreme)
    try:
        srv.wait("api/v1/health")
        for i, when in enumerate(OUTLIERS):
            assert post(srv, "/api/v1/score", payment(f"far-{i}", card, terminal, when, 950.0)).status_code == 200
    finally:
        srv.stop()
    results = {}
    for name, home, db in (("plain", plain_home, plain), ("extreme", extreme_home, extreme)):
        srv = Server(home, db)  # a fresh start: its history is loaded from the database
        try:
            srv.wait("api/v1/health")
            response = post(srv, "/api/v1/score", probe)
            assert response.status_code == 200, response.text
            results[name] = response.json()
        finally:
            srv.stop()
    return {"plain": plain, "extreme": extreme, "results": results, "cards": cards, "last": last,
            "probe_time": last + dt.timedelta(hours=1)}


@pytest.mark.slow
def test_a_restart_after_extreme_payments_scores_a_busy_card_as_before(pair):
    plain, extreme = pair["results"]["plain"], pair["results"]["extreme"]
    assert extreme["fraud_probability"] == plain["fraud_probability"]
    assert extreme["reasons"] == plain["reasons"]


def test_extreme_payments_leave_every_busy_cards_history_as_it_was(pair):
    """The history the live scorer starts with gives the same features, on the card that holds the extreme
    payments and on the other busy cards."""
    from fraud_app import features
    from fraud_app.store import Store

    values = {}
    for name in ("plain", "extreme"):
        with Store(pair[name]) as store:
            engine = features.load_online(store)
        values[name] = np.array([engine.compute(payment("new", card, terminal, pair["probe_time"]))
                                 for card, terminal in pair["cards"]])
    count = features.FEATURE_NAMES.index("cust_count_30d")
    assert (values["plain"][:, count] > 50).all()  # busy cards: the comparison below is not of empty histories
    assert np.array_equal(values["plain"], values["extreme"], equal_nan=True)


def test_the_default_period_ignores_extreme_payments(pair):
    from fraud_app.application import FraudApp
    from fraud_app.config import Settings
    from fraud_app.ui.datastore import DataStore

    periods = {}
    for name in ("plain", "extreme"):
        app = FraudApp(Settings(home=pair[name].parent, db=pair[name]))
        with app.store:
            periods[name] = DataStore(app=app).period
    last = pair["last"].date()
    assert periods["plain"] == (last - dt.timedelta(days=29), last)
    assert periods["extreme"] == periods["plain"]


def test_the_api_and_the_importer_accept_the_same_timestamps(served, store, tmp_path):
    from fraud_app.importer import import_file

    api = {}
    for i, when in enumerate(EDGES):
        response = post(served, "/api/v1/score", payment(f"edge-{i}", "C-edges", "T-edges", when))
        api[when] = response.status_code == 200
        if not api[when]:
            assert field_error(response) == "timestamp"
    rows = "".join(f"edge-{i},{when},C-edges,T-edges,42.5\n" for i, when in enumerate(EDGES))
    report = import_file(store, write(tmp_path / "edges.csv", HEADER + "\n" + rows), skip_invalid=True)
    stored = {r[0] for r in store.cursor().execute("SELECT transaction_id FROM transactions").fetchall()}
    imported = {when: f"edge-{i}" in stored for i, when in enumerate(EDGES)}
    assert {r.field for r in report.sample} == {"timestamp"}
    assert api == imported == EDGES


def test_strings_the_database_cannot_hold_are_refused_by_field(served):
    good = payment("text-ok", "C-text", "T-text", "2018-06-20T12:00:00")
    for change, field in (({"customer_id": "C\ud800"}, "customer_id"), ({"transaction_id": "\udfff"}, "transaction_id"),
                          ({"terminal_id": "T\u0000"}, "terminal_id"), ({"merchant_category": "food\ud83d"},
                                                                        "merchant_category")):
        assert field_error(post(served, "/api/v1/score", {**good, **change})) == field
    batch = {"transactions": [good | {"transaction_id": "text-b0"},
                              good | {"transaction_id": "text-b1", "customer_id": "\ud800"}]}
    assert field_error(post(served, "/api/v1/score", batch)) == "transactions[1].customer_id"
    assert field_error(post(served, "/api/v1/labels", {"transaction_id": "x\ud800", "is_fraud": True})) \
        == "transaction_id"
    assert field_error(post(served, "/api/v1/labels", {"transaction_id": "text-ok", "is_fraud": True,
                                                        "source": "\u0000"})) == "source"
    # Nothing of the refused batch was stored, and a valid emoji (a surrogate pair in JSON) is fine.
    assert post(served, "/api/v1/score", good | {"customer_id": "C-\U0001f600"}).status_code == 200
    again = post(served, "/api/v1/score", batch["transactions"][0])
    assert again.status_code == 200


def test_a_refused_string_never_fails_another_request(served):
    def send(i: int) -> tuple[bool, requests.Response]:
        bad = i % 4 == 0
        body = payment(f"mix-{i}", "\ud800" if bad else f"C-mix-{i % 3}", "T-mix", "2018-06-20T12:00:00")
        return bad, post(served, "/api/v1/score", body)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, range(64)))
    for bad, response in answers:
        if bad:
            assert field_error(response) == "customer_id"
        else:
            assert response.status_code == 200, response.text
    health = requests.get(served.url + "api/v1/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_the_importer_refuses_a_nul_by_field_and_line(store, tmp_path):
    from fraud_app.importer import import_file

    f = write(tmp_path / "nul.csv", HEADER + ",merchant_category\n" + "n1,2018-04-01,C\x001,T1,5,\n"
              + "n2,2018-04-01,C2,T1,5,shop\x00\n" + "n3,2018-04-01,C3,T1,5,shop\n")
    report = import_file(store, f)
    assert [(r.line, r.field) for r in report.sample] == [(2, "customer_id"), (3, "merchant_category")]
    assert all("NUL" in r.reason for r in report.sample) and report.imported == 0


def test_the_openapi_document_states_the_limits_the_api_enforces(served):
    from fraud_app.store import limits

    spec = requests.get(served.url + "api/v1/openapi.json", timeout=30).json()
    fields = spec["components"]["schemas"]["Transaction"]["properties"]
    assert "1970-01-01T00:00:00" in fields["timestamp"]["description"]
    assert "2099-12-31T23:59:59" in fields["timestamp"]["description"]
    assert fields["amount"]["maximum"] == limits.MAX_AMOUNT
    channel = re.compile(fields["channel"]["pattern"])
    assert all(channel.fullmatch(c) and channel.fullmatch(c.upper()) for c in limits.CHANNELS)
    assert not channel.fullmatch("fax")
    longest = fields["customer_id"]["oneOf"][0]["maxLength"]
    assert longest == limits.MAX_ID_LENGTH
    base = payment("doc-0", "C" * longest, "T-doc", "2018-06-20T12:00:00")
    assert post(served, "/api/v1/score", base).status_code == 200
    assert field_error(post(served, "/api/v1/score", base | {"transaction_id": "doc-1",
                                                             "customer_id": "C" * (longest + 1)})) == "customer_id"
    assert field_error(post(served, "/api/v1/score", base | {"transaction_id": "doc-2",
                                                             "amount": fields["amount"]["maximum"]})) == "amount"


def test_the_default_training_window_and_drift_end_ignore_extreme_payments(pair):
    from fraud_app import training
    from fraud_app.store import Store

    windows = {}
    for name in ("plain", "extreme"):
        with Store(pair[name]) as store:
            windows[name] = training.plan(store, None, None, 7, 7)
    assert windows["extreme"] == windows["plain"]
    assert windows["plain"].test_end == pair["last"].date()
