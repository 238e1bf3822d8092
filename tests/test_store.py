import os
import subprocess
import sys
import threading
import time

import pytest

from fraud_app.store import LATEST_VERSION, SchemaTooNewError, Store, StoreLockedError
from fraud_app.store.schema import MIGRATIONS

from conftest import count


def tables(store: Store) -> set[str]:
    return {r[0] for r in store.cursor().execute("SHOW TABLES").fetchall()}


def test_new_database_has_latest_schema(store):
    assert store.schema_version == LATEST_VERSION == MIGRATIONS[-1][0]
    assert {"transactions", "scores", "labels", "model_versions", "audit_log", "imports"} <= tables(store)


def test_older_database_is_migrated_and_keeps_its_rows(db_path):
    with Store(db_path, migrate_to=1) as old:
        assert old.schema_version == 1
        assert "imports" not in tables(old)
        old.cursor().execute("INSERT INTO transactions VALUES ('t1', '2018-04-01', 'c', 'x', 5, 'EUR', "
                             "NULL, NULL, NULL, NULL, NULL)")
    with Store(db_path) as new:
        assert new.schema_version == LATEST_VERSION
        assert "imports" in tables(new)
        assert count(new) == 1
        versions = [r[0] for r in new.cursor().execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
        assert versions == list(range(1, LATEST_VERSION + 1))


def test_newer_database_is_refused_clearly(db_path):
    with Store(db_path) as s:
        s.cursor().execute("INSERT INTO schema_version (version) VALUES (?)", [LATEST_VERSION + 5])
    with pytest.raises(SchemaTooNewError, match=rf"schema version {LATEST_VERSION + 5}.*upgrade fraud_app"):
        Store(db_path)


def test_reopening_does_not_migrate_twice(db_path):
    Store(db_path).close()
    with Store(db_path) as s:
        assert s.cursor().execute("SELECT count(*) FROM schema_version").fetchone()[0] == LATEST_VERSION


def test_each_thread_gets_its_own_cursor_and_writes_all_land(store):
    seen, errors = set(), []

    def work(k: int) -> None:
        try:
            cur = store.cursor()
            seen.add(id(cur))
            assert store.cursor() is cur
            for i in range(50):
                with store.transaction() as c:
                    c.execute("INSERT INTO audit_log (action, entity_id) VALUES ('test', ?)", [f"{k}-{i}"])
        except Exception as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(seen) == 8
    assert count(store, "audit_log") == 400


def test_closing_waits_for_threads_still_making_cursors(db_path):
    # As the app stops, a page or a job may still be asking for cursors: DuckDB refuses to close a connection
    # busy with another call rather than waiting, and the desktop app's Quit once exited with an error.
    with Store(db_path) as store:
        store.cursor().execute("CREATE TABLE kept AS SELECT 42 AS answer")
    for _ in range(10):
        store = Store(db_path)
        made, ended = [0], []

        def ask() -> None:
            while True:
                try:
                    store.new_cursor().close()
                except Exception as error:  # noqa: BLE001  (what a thread sees once the store is closed)
                    ended.append(error)
                    return
                made[0] += 1

        threads = [threading.Thread(target=ask) for _ in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while made[0] < 200 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert made[0] >= 200
        store.close()  # raises if the connection was busy
        for thread in threads:
            thread.join(timeout=120)
        assert len(ended) == 2
    with Store(db_path) as again:
        assert again.cursor().execute("SELECT answer FROM kept").fetchall() == [(42,)]


def test_failed_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as cur:
            cur.execute("INSERT INTO audit_log (action) VALUES ('a')")
            raise RuntimeError("boom")
    assert count(store, "audit_log") == 0


def test_second_process_gets_a_clear_lock_error(db_path, store):
    code = ("import sys\nfrom fraud_app.store import Store, StoreLockedError\n"
            "try:\n    Store(sys.argv[1])\nexcept StoreLockedError as e:\n    print(e.pid); print(e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True, text=True, timeout=60)
    pid_line, message = out.stdout.splitlines()
    assert int(pid_line) == os.getpid()
    assert f"process {os.getpid()}" in message and "REST API" in message


def test_lock_error_type_is_raised_in_process_for_other_files(tmp_path):
    # A path that is a directory is not a lock problem and must say something else.
    (tmp_path / "dir.duckdb").mkdir()
    with pytest.raises(Exception) as info:
        Store(tmp_path / "dir.duckdb")
    assert not isinstance(info.value, StoreLockedError)


def test_loads_recorded_before_refused_ones_were_kept_are_imported(db_path):
    with Store(db_path, migrate_to=6) as old:
        old.cursor().execute("INSERT INTO imports (started_at, finished_at, source, actor, rows_imported, "
                             "rows_rejected) VALUES ('2024-01-01', '2024-01-01', 'old.csv', 'ana', 5, 0)")
    with Store(db_path) as new:
        assert new.cursor().execute("SELECT source, status, error FROM imports").fetchall() == \
            [("old.csv", "imported", None)]
