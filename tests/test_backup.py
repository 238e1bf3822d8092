"""Backups while the app serves, and restores: real DuckDB files, real HTTP, the real command line."""
import datetime as dt
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import Server, app_of, copy_of, models_of, one_line_error, run_cli
from fraud_app.access import Actor, Forbidden
from fraud_app.backup import MANIFEST, backups, read_manifest
from fraud_app.store import Store


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def when(stamp: str) -> float:
    """A manifest's UTC time as seconds since the epoch (the clock the clients read)."""
    return dt.datetime.fromisoformat(stamp.rstrip("Z")).replace(tzinfo=dt.timezone.utc).timestamp()


def age(folder: Path, days: float) -> None:
    """Make a backup look `days` old."""
    manifest = manifest_of(folder)
    manifest["created_at"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).replace(
        tzinfo=None).isoformat() + "Z"
    (folder / MANIFEST).write_text(json.dumps(manifest))


def ids_in(db: Path, table: str, prefix: str) -> set[str]:
    with Store(db) as store:
        return {r[0] for r in store.cursor().execute(
            f"SELECT transaction_id FROM {table} WHERE transaction_id LIKE ?", [prefix + "%"]).fetchall()}


class Load:
    """Threads posting new transactions to /api/v1/score as fast as the server answers; each acknowledged
    transaction is kept with the time its answer arrived."""

    def __init__(self, url: str, threads: int = 8):
        self.url, self.stop, self.acked, self.failed = url + "api/v1/score", threading.Event(), [], []
        self.threads = [threading.Thread(target=self.post, args=(k,)) for k in range(threads)]
        self.started = time.time()
        for t in self.threads:
            t.start()

    def post(self, k: int) -> None:
        session, i = requests.Session(), 0
        while not self.stop.is_set():
            tid = f"load-{k}-{i}"
            body = {"transaction_id": tid, "timestamp": "2018-06-20T12:00:00Z", "customer_id": f"C{i % 300:05d}",
                    "terminal_id": f"T{(i * 7) % 900:05d}", "amount": 5.0 + i % 200}
            try:
                response = session.post(self.url, json=body, timeout=30)
            except requests.RequestException as exc:
                self.failed.append(repr(exc))
                continue
            if response.status_code == 200:
                self.acked.append((time.time(), tid))
            else:
                self.failed.append(f"{response.status_code} {response.text[:200]}")
            i += 1

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


@pytest.mark.slow
def test_a_backup_under_rest_load_restores_every_acknowledged_transaction(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    with Store(db) as store:
        database_id = store.database_id
    # The schedule is the way in while serving: a backup every 7.2 s, the first 7.2 s after start.
    srv = Server(tmp_path, db, FRAUD_APP_BACKUP_EVERY_HOURS="0.002")
    folder = tmp_path / "backups"
    try:
        srv.wait("api/v1/health")
        load = Load(srv.url)
        try:
            deadline, taken = time.monotonic() + 180, None
            while time.monotonic() < deadline and taken is None:
                for _, path in backups(folder, database_id):
                    if when(manifest_of(path)["created_at"]) > load.started + 2:  # well into the load
                        taken = path
                        break
                time.sleep(0.2)
            assert taken is not None, f"no backup under load: {srv.log.read_text()[-2000:]}"
            finished = when(manifest_of(taken)["finished_at"])
            while time.time() < finished + 1:  # the load goes on after the backup
                time.sleep(0.1)
            # While the server holds the database, the command line's backup goes through it, into its folder.
            through = run_cli(tmp_path, "--db", str(db), "backup")
            assert through.returncode == 0 and f" to {folder}/e-" in through.stdout, through.stderr
        finally:
            load.finish()
    finally:
        srv.stop()
    assert load.failed == []
    manifest = manifest_of(taken)
    start, end = when(manifest["created_at"]), when(manifest["finished_at"])
    window = [t for t, _ in load.acked if start - 0.5 <= t <= end + 0.5]
    assert len(window) / (end - start + 1.0) >= 200, "the load was below 200 requests a second"
    assert any(start < t < end for t, _ in load.acked), "no write was answered while the backup ran"

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    restored = fresh / "restored.duckdb"
    result = run_cli(fresh, "restore", str(taken), "--db", str(restored), timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"into {restored}" in result.stdout
    kept, scored = ids_in(restored, "transactions", "load-"), ids_in(restored, "scores", "load-")
    before = {tid for t, tid in load.acked if t < start}
    assert before and before <= kept  # everything acknowledged before the backup began
    assert kept <= {tid for _, tid in load.acked}  # nothing that was never answered
    assert kept == scored  # a transaction and its score were committed together: both or neither
    assert len(kept) < len(load.acked)  # one moment: what was answered after it is not in it
    assert manifest["rows"]["transactions"] == len(ids_in(restored, "transactions", ""))

    from fraud_app import registry
    app = app_of_restored(fresh, restored)
    try:
        assert registry.load(app.store, app.models_dir)[0] == "v1"  # its model file came with it
        assert app.store.database_id != manifest["database_id"]
    finally:
        app.close()


def app_of_restored(home: Path, db: Path):
    from fraud_app.application import FraudApp
    from fraud_app.config import Settings

    return FraudApp(Settings(home=home, db=db))


@pytest.fixture
def taken(trained, tmp_path):
    """A backup made by `fraud-app backup --out`, with its database."""
    db = copy_of(trained, tmp_path)
    result = run_cli(tmp_path, "--db", str(db), "backup", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip().rpartition(" to ")[2])
    assert folder.parent == tmp_path / "out" and (folder / MANIFEST).is_file()
    assert folder.stat().st_mode & 0o777 == 0o700  # it holds every payment: its owner's alone
    return db, folder


@pytest.mark.parametrize("damaged", ["database/transactions.parquet", "models/v1.lgbm.json"])
def test_restore_refuses_a_backup_with_one_changed_byte(taken, tmp_path, damaged):
    _, folder = taken
    path = folder / damaged
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    target = tmp_path / "new" / "r.duckdb"
    error = one_line_error(run_cli(tmp_path, "--db", str(target), "restore", str(folder)))
    assert damaged in error and "does not match its sha256" in error
    assert not target.exists() and not (tmp_path / "new" / "r.duckdb.restoring").exists()


def test_restore_commands_and_their_errors(taken, tmp_path):
    db, folder = taken
    with Store(db) as store:
        original = store.database_id
        audit = store.cursor().execute("SELECT actor, entity_id FROM audit_log WHERE action = 'backup'").fetchall()
    assert len(audit) == 1 and audit[0][1] == folder.name

    error = one_line_error(run_cli(tmp_path, "--db", str(db), "restore", str(folder)))
    assert "already exists" in error and "--force" in error
    error = one_line_error(run_cli(tmp_path, "restore", str(tmp_path / "nowhere")))
    assert "nowhere is not a folder" in error
    half = tmp_path / "out" / "half"
    shutil.copytree(folder, half)
    (half / MANIFEST).unlink()
    error = one_line_error(run_cli(tmp_path, "restore", str(half), "--db", str(tmp_path / "h.duckdb")))
    assert "not a complete backup" in error and MANIFEST in error
    assert not (tmp_path / "h.duckdb").exists()

    with Store(db) as store:  # a change after the backup, which --force must undo
        store.cursor().execute("DELETE FROM scores")
    result = run_cli(tmp_path, "restore", str(folder), "--db", str(db), "--force")
    assert result.returncode == 0, result.stderr
    replaced = next(tmp_path.glob("e.duckdb.replaced-*"))
    assert str(replaced) in result.stdout
    with Store(replaced) as store:
        assert store.cursor().execute("SELECT count(*) FROM scores").fetchone()[0] == 0  # the old one, kept
    with Store(db) as store:
        assert store.cursor().execute("SELECT count(*) FROM scores").fetchone()[0] == manifest_of(folder)["rows"]["scores"]
        assert store.database_id != original
        restore = store.cursor().execute("SELECT entity_id, old_value FROM audit_log WHERE action = 'restore'").fetchall()
        assert restore == [(folder.name, original)]
    assert (models_of(tmp_path, db) / "v1.lgbm.json").is_file()


def test_a_backup_that_cannot_be_written_says_where(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    (tmp_path / "taken").write_text("a file where the folder should be")
    error = one_line_error(run_cli(tmp_path, "--db", str(db), "backup", "--out", str(tmp_path / "taken")))
    assert f"cannot write the backup into {tmp_path / 'taken'}" in error


def test_backup_settings_are_checked(tmp_path):
    for name, value in (("FRAUD_APP_BACKUP_EVERY_HOURS", "-1"), ("FRAUD_APP_BACKUP_KEEP_DAYS", "soon")):
        error = one_line_error(run_cli(tmp_path, "backup", **{name: value}))
        assert name.removeprefix("FRAUD_APP_").lower() in error.lower()


def test_retention_deletes_only_this_databases_old_backups(trained, tmp_path):
    app = app_of(trained, tmp_path)
    home = tmp_path / "backups"
    try:
        old = app.backup("tester")
        recent = app.backup("tester")
        age(old, 8)
        other = home / "other-db"
        shutil.copytree(old, other)
        manifest = manifest_of(other)
        manifest["database_id"] = "someone-else"
        (other / MANIFEST).write_text(json.dumps(manifest))
        (home / "notes").mkdir()
        elsewhere = tmp_path / "usb"
        shutil.copytree(old, elsewhere / old.name)
        app.backup("tester", dest=elsewhere)  # a copy put elsewhere never prunes
        assert (elsewhere / old.name).is_dir()
        stale = home / f".partial-{app.store.database_id}-crashed"  # left by a crash midway
        stale.mkdir()
        (stale / "transactions.parquet").write_bytes(b"half")
        newest = app.backup("tester")
        assert not old.exists()
        assert recent.is_dir() and newest.is_dir() and other.is_dir() and (home / "notes").is_dir()
        assert not stale.exists()
        assert [p for _, p in backups(home, app.store.database_id)] == [recent, newest]
        with pytest.raises(Forbidden):
            app.backup(Actor("vic", "viewer"))
        assert app.backup(Actor("lee", "lead")).is_dir()
    finally:
        app.close()
    # Keep 0 days: a new backup leaves only itself, never less.
    app = app_of_reopened(tmp_path, backup_keep_days=0)
    try:
        for _, path in backups(home, app.store.database_id):
            age(path, 1)
        newest = app.backup("tester")
        assert [p for _, p in backups(home, app.store.database_id)] == [newest]
    finally:
        app.close()


def app_of_reopened(tmp_path: Path, **settings):
    from fraud_app.application import FraudApp
    from fraud_app.config import Settings

    return FraudApp(Settings(home=tmp_path, db=tmp_path / "e.duckdb", **settings))


def test_the_schedule_is_owned_by_the_application_object(trained, tmp_path):
    app = app_of(trained, tmp_path, backup_every_hours=0.0005)  # 1.8 s
    try:
        app.start()
        deadline = time.monotonic() + 120
        while app.newest_backup() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert app.newest_backup() is not None
    finally:
        app.close()
    assert "fraud-app-backups" not in {t.name for t in threading.enumerate()}
    off = app_of_reopened(tmp_path, backup_every_hours=0)
    try:
        off.start()
        assert "fraud-app-backups" not in {t.name for t in threading.enumerate()}
    finally:
        off.close()


@pytest.mark.browser
@pytest.mark.slow
def test_back_up_now_in_the_data_view(trained, tmp_path, watched):
    page, errors = watched
    srv = Server(tmp_path, copy_of(trained, tmp_path))
    try:
        srv.wait()
        page.goto(srv.url)
        page.get_by_role("button", name="Data").click()
        page.get_by_text("There is none yet").wait_for(timeout=30_000)
        page.get_by_role("button", name="Back up now").click()
        page.get_by_text("saved to").wait_for(timeout=60_000)
        page.get_by_text("The newest was taken").wait_for(timeout=10_000)
    finally:
        srv.stop()
    found = list((tmp_path / "backups").glob("*/"))
    assert len(found) == 1 and read_manifest(found[0])["actor"]
    assert errors == []
