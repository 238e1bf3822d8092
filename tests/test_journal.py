"""Live scoring answers once a payment is in its journal; the database gets it a moment later. A crash in between
loses nothing: whoever opens the database next (the application object, or a command) stores what the journal
holds."""
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import Server, copy_of, count
from fraud_app.application import FraudApp
from fraud_app.config import Settings
from fraud_app.store import Store, StoreError, journal

# A process that scores nothing itself: it journals three requests through the live writer, whose database
# commits wait an hour, says so once they are answered, and is then killed before any commit.
CRASHING = """
import datetime as dt, sys, time
from fraud_app.live import _GroupWriter
from fraud_app.store import Store
store = Store(sys.argv[1])
writer = _GroupWriter(store, every=3600)
acks = []
for i in range(3):
    paid = dt.datetime(2018, 6, 1, 12, i)
    acks.append(writer.submit([(f"j-{i}", paid, "C1", "T1", 10.5 + i, "EUR", None, "pos", None)],
                              [(f"j-{i}", "v1", 0.25, 25, "low", "approve", "[]", paid)]))
for ack in acks:
    ack.result(timeout=60)
print("answered", flush=True)
time.sleep(3600)
"""


def opened(db_path):
    """The database as the application object opens it."""
    return FraudApp(Settings(home=db_path.parent, db=db_path))


def rows(line_count: int, start: int = 0) -> list[bytes]:
    lines = []
    for i in range(start, start + line_count):
        paid = dt.datetime(2018, 6, 2, 9, i)
        lines.append(journal.encode([(f"r-{i}", paid, "C2", "T2", 20.0, "EUR", "grocery", "online", "FR")],
                                    [(f"r-{i}", "v1", 0.5, 50, "medium", "review", "[]", paid)]))
    return lines


def test_payments_answered_before_a_crash_are_stored_at_the_next_open(db_path):
    Store(db_path).close()
    proc = subprocess.Popen([sys.executable, "-c", CRASHING, str(db_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "answered"
        assert journal.path_of(db_path).stat().st_size > 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    app = opened(db_path)
    stored = app.store.cursor().execute(
        "SELECT t.transaction_id, t.amount, s.fraud_probability, s.scored_at FROM transactions t "
        "JOIN scores s USING (transaction_id) ORDER BY 1").fetchall()
    app.close()
    assert stored == [(f"j-{i}", 10.5 + i, 0.25, dt.datetime(2018, 6, 1, 12, i)) for i in range(3)]
    assert journal.path_of(db_path).stat().st_size == 0
    app = opened(db_path)  # stored once, not again
    assert count(app.store) == 3 and count(app.store, "scores") == 3
    app.close()


def test_a_line_cut_short_by_the_crash_was_never_answered_and_is_left_out(db_path):
    Store(db_path).close()
    whole = rows(2)
    journal.path_of(db_path).write_bytes(b"".join(whole) + rows(1, 2)[0][:-9])
    with Store(db_path) as store:
        assert journal.replay(store) == 2
        ids = [r[0] for r in store.cursor().execute("SELECT transaction_id FROM transactions ORDER BY 1").fetchall()]
    assert ids == ["r-0", "r-1"]


def test_rows_the_database_already_holds_are_not_stored_twice(db_path):
    with Store(db_path) as store:
        from fraud_app.store import scores

        scores.insert_scored(store, *journal.decode(rows(1)[0]))  # committed, then the crash before emptying
    journal.path_of(db_path).write_bytes(b"".join(rows(2)))
    with Store(db_path) as store:
        assert journal.replay(store) == 1
        assert count(store) == 2 and count(store, "scores") == 2


def test_the_journal_keeps_its_size_while_lines_come_and_go(tmp_path):
    path = tmp_path / "x.duckdb.journal"
    kept = journal.Journal(path)
    try:
        blocks = path.stat().st_blocks
        assert path.stat().st_size == journal.SIZE and path.read_bytes() == bytes(journal.SIZE)
        first, second = rows(2)
        kept.append([first, second])
        kept.done(1)  # the database holds one of two lines: both stay
        assert path.read_bytes().startswith(first + second + b"\0")
        kept.done(1)
        assert path.read_bytes() == bytes(journal.SIZE)  # emptied: zeros, in the same blocks
        third = rows(1, 2)[0]
        kept.append([third])
        assert path.read_bytes().startswith(third + b"\0")
        assert path.stat().st_size == journal.SIZE and path.stat().st_blocks == blocks
        kept.done(1)
    finally:
        kept.close()
    assert not path.exists()  # the database held every line


def test_lines_already_in_the_file_when_it_opens_are_never_emptied_away(tmp_path):
    path = tmp_path / "x.duckdb.journal"
    old, new = rows(1)[0], rows(1, 1)[0]
    path.write_bytes(old)  # no replay ran
    kept = journal.Journal(path)
    kept.append([new])
    kept.done(1)  # the database holds the new line, not the old one
    kept.close()
    assert path.read_bytes().startswith(old + new + b"\0")  # kept, for the next open to replay


def test_a_crash_leaves_lines_then_zeros_and_the_next_open_stores_the_lines(db_path):
    Store(db_path).close()
    path = journal.path_of(db_path)
    path.write_bytes(b"".join(rows(2)) + rows(1, 2)[0][:-30] + bytes(journal.SIZE))  # the third cut short
    with Store(db_path) as store:
        assert journal.replay(store) == 2
        assert count(store) == 2
    assert path.stat().st_size == 0
    path.write_bytes(bytes(journal.SIZE))  # a crash after the journal was emptied
    with Store(db_path) as store:
        assert journal.replay(store) == 0
        assert count(store) == 2
    assert path.stat().st_size == 0


def test_a_damaged_journal_stops_the_open_and_names_the_line(db_path):
    Store(db_path).close()
    path = journal.path_of(db_path)
    path.write_bytes(rows(1)[0] + b'{"not": "a journal line"}\n' + rows(1, 1)[0])
    with pytest.raises(StoreError, match=r"journal, line 2: not a journal entry"):
        opened(db_path)
    assert path.stat().st_size > 0  # kept for a person to look at
    with pytest.raises(StoreError):  # and still refused (the database was let go): nothing in it was dropped
        opened(db_path)


@pytest.mark.slow
def test_a_server_killed_under_load_keeps_every_answered_payment(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    srv = Server(tmp_path, db, FRAUD_APP_RATE_LIMIT="0")
    answered, stop = [], threading.Event()

    def post(k: int) -> None:
        with requests.Session() as http:
            for i in range(100_000):
                if stop.is_set():
                    return
                body = {"transaction_id": f"k-{k}-{i}", "timestamp": "2018-06-20T12:00:00Z", "customer_id": f"C{i % 97}",
                        "terminal_id": "T00100", "amount": 40.0 + i % 50}
                try:
                    response = http.post(srv.url + "api/v1/score", json=body, timeout=60)
                except requests.RequestException:  # the kill
                    return
                if response.status_code == 200:
                    answered.append(body["transaction_id"])

    srv.wait("api/v1/health")
    with ThreadPoolExecutor(8) as pool:
        for k in range(8):
            pool.submit(post, k)
        while len(answered) < 1500:
            stop.wait(0.05)
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        stop.set()
    app = opened(db)
    stored = {r[0] for r in app.store.cursor().execute(
        "SELECT transaction_id FROM transactions WHERE transaction_id LIKE 'k-%'").fetchall()}
    scored = app.store.cursor().execute("SELECT count(*) FROM scores WHERE transaction_id LIKE 'k-%'").fetchone()[0]
    app.close()
    assert set(answered) <= stored
    assert scored == len(stored)
