"""Opening the DuckDB file: locking, migrations and one cursor per thread."""
from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from .schema import LATEST_VERSION, MIGRATIONS

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


class StoreLockedError(StoreError):
    def __init__(self, path: Path, pid: int | None):
        self.path, self.pid = path, pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"the database {path} is in use by {holder} (likely `fraud-app serve`); "
            "stop that process, or do this through the running app's UI or REST API")


class SchemaTooNewError(StoreError):
    pass


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path))
    except duckdb.IOException as exc:
        text = str(exc)
        if "Conflicting lock" in text or "Could not set lock" in text:
            pid = re.search(r"PID (\d+)", text)
            raise StoreLockedError(path, int(pid.group(1)) if pid else None) from None
        raise StoreError(f"cannot open the database {path}: {text.splitlines()[0]}") from None
    except duckdb.Error as exc:
        raise StoreError(f"{path} is not a usable DuckDB database: {str(exc).splitlines()[0]}") from None


def _when_free(call, patience: float = 10.0):
    """call() on the shared connection, again while another thread is making a cursor from it: DuckDB refuses
    a call on a busy connection instead of waiting, and a page or job still working as the app stops makes
    cursors until it sees the store closed."""
    until = time.monotonic() + patience
    while True:
        try:
            return call()
        except duckdb.ResourceInUseException:
            if time.monotonic() > until:
                raise
            time.sleep(0.001)


class Store:
    """One per process. Threads share the database instance, each with its own cursor."""

    def __init__(self, path: Path | str, *, migrate_to: int = LATEST_VERSION):
        self.path = Path(path)
        self._con = _connect(self.path)
        self._local = threading.local()
        self._closed = False
        try:
            self._migrate(migrate_to)
        except BaseException:
            self._con.close()
            raise

    # -- connections -------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor. DuckDB connections are not safe to share across threads."""
        if self._closed:
            raise StoreError(f"the database {self.path} is closed")
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self.new_cursor()
            self._local.cur = cur
        return cur

    def new_cursor(self) -> duckdb.DuckDBPyConnection:
        """A private cursor, e.g. for work that creates temporary tables."""
        if self._closed:
            raise StoreError(f"the database {self.path} is closed")
        cur = self._con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    @contextmanager
    def transaction(self, cur: duckdb.DuckDBPyConnection | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """All statements inside commit together or not at all."""
        cur = cur or self.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def close(self) -> None:
        """Checkpoint (fold the write-ahead log into the file, so the next open replays nothing), then close."""
        if not self._closed:
            self._closed = True
            try:
                _when_free(lambda: self._con.execute("CHECKPOINT"))
            except duckdb.Error as exc:  # e.g. another thread's open transaction; the log is replayed next time
                log.warning("no checkpoint on closing %s: %s", self.path, str(exc).splitlines()[0])
            _when_free(self._con.close)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def database_id(self) -> str:
        """A random id made when the database was created; it names the folder of its model files."""
        return self.cursor().execute("SELECT value FROM meta WHERE key = 'database_id'").fetchone()[0]

    # -- schema ------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        row = self.cursor().execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self, target: int) -> None:
        cur = self.new_cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                    "version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP))")
        current = cur.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        if current > LATEST_VERSION:
            raise SchemaTooNewError(
                f"the database {self.path} has schema version {current}, but this fraud_app knows only "
                f"up to {LATEST_VERSION}; upgrade fraud_app, or open a different database")
        for version, sql in MIGRATIONS:
            if current < version <= target:
                with self.transaction(cur):
                    cur.execute(sql)
                    cur.execute("INSERT INTO schema_version (version) VALUES (?)", [version])
                log.info("migrated %s to schema version %d", self.path, version)
        cur.close()
