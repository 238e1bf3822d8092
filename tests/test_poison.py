"""A bad request never fails another client's: it is refused alone, before any answer. Concurrent requests share
a commit; one the database refuses after its answer is set aside, never dropped, and the rest are stored."""
import datetime as dt
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
import requests

from conftest import Server, app_of, copy_of, count
from fraud_app.live import _GroupWriter
from fraud_app.store import journal


def test_a_refused_group_commit_is_retried_request_by_request_and_a_refused_request_is_kept(trained, tmp_path):
    app = app_of(trained, tmp_path)
    writer = _GroupWriter(app.store)
    try:
        stored = app.store.cursor().execute("SELECT transaction_id FROM transactions LIMIT 1").fetchone()[0]
        before = count(app.store)
        batch = []
        for i in range(6):
            tid = stored if i == 3 else f"group-{i}"  # a stored id breaks the primary key, as a poison would
            paid = dt.datetime(2018, 6, 1, 12, i)
            transaction = (tid, paid, "C1", "T1", 10.0 + i, "EUR", None, None, None)
            score = (tid, "v1", 0.1, 10, "low", "approve", "[]", paid)
            batch.append(([transaction], [score], Future()))
        writer.commit(batch)
        assert count(app.store) == before + 5
        kept = journal.path_of(app.store.path).with_suffix(".journal.refused")
        lines = kept.read_bytes().splitlines(keepends=True)
        assert [journal.decode(line) for line in lines] == [(batch[3][0], batch[3][1])]  # as acknowledged
    finally:
        writer.close()
        app.close()


@pytest.mark.slow
def test_poisoned_requests_at_5_percent_fail_alone_under_concurrency(trained, tmp_path):
    srv = Server(tmp_path, copy_of(trained, tmp_path), FRAUD_APP_RATE_LIMIT="0")
    srv.wait("api/v1/health")
    try:
        before = requests.get(srv.url + "api/v1/health", timeout=30).json()["transactions"]
        poisoned = set(range(0, 2000, 20))  # 5%

        def body(i: int) -> str:
            tid = f"p-{i}\ud800" if i in poisoned else f"p-{i}"
            return json.dumps({"transaction_id": tid, "timestamp": "2018-06-20T12:00:00", "customer_id":
                               f"C{i % 300:05d}", "terminal_id": f"T{i % 700:05d}", "amount": 5.0 + i % 90})

        local = threading.local()

        def post(i: int) -> tuple[int, int, dict]:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            r = local.session.post(srv.url + "api/v1/score", data=body(i), timeout=120,
                                   headers={"Content-Type": "application/json"})
            return i, r.status_code, r.json()

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(post, range(2000)))
        after = requests.get(srv.url + "api/v1/health", timeout=30).json()["transactions"]
    finally:
        log = srv.stop()
    failed_valid = [(i, status) for i, status, _ in answers if i not in poisoned and status != 200]
    assert failed_valid == [], log[-3000:]
    assert all(status == 422 and body["error"]["field"] == "transaction_id"
               for i, status, body in answers if i in poisoned)
    assert after - before == 2000 - len(poisoned)
    assert "Traceback" not in log
