"""The SQL of backups: a consistent copy of the database taken while it is written, and loading one back.

A backup is DuckDB's EXPORT DATABASE (one Parquet file per table) run inside one read transaction, so every
table comes from the same committed state. DuckDB's MVCC lets the writers commit meanwhile: they never wait
for a lock of the backup's. It was chosen over `COPY FROM DATABASE` into an attached file, which rebuilds every
index (slower, and REST latencies rose tenfold more), and over pausing the writes to checkpoint and copy the
file, which holds every write for the whole copy (docs/backup.md has the figures).
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb

from .db import Store, StoreError, StoreLockedError, _connect

_NEXTVAL = re.compile(r"nextval\('([A-Za-z_][A-Za-z0-9_]*)'\)")


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _tables(cur) -> list[str]:
    return [r[0] for r in cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT temporary "
        "ORDER BY table_name").fetchall()]


def export_snapshot(store: Store, folder: Path) -> dict:
    """Write every table to folder/<table>.parquet from one read snapshot. Returns what the snapshot holds:
    row counts per table, the model versions (version, path, sha256), the schema version and the database id.
    Everything committed before this is called is in it; commits made meanwhile are not."""
    cur = store.new_cursor()
    try:
        with store.transaction(cur):
            try:
                cur.execute(f"EXPORT DATABASE {_literal(folder)} (FORMAT parquet, COMPRESSION zstd)")
            except duckdb.Error as exc:  # a full disk, a folder it may not write
                raise StoreError(f"cannot write the backup into {folder}: {str(exc).splitlines()[0]}") from None
            tables = _tables(cur)
            rows = {t: cur.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
            versions = cur.execute("SELECT version, path, sha256 FROM model_versions ORDER BY created_at, version"
                                   ).fetchall()
            schema_version = cur.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            database_id = cur.execute("SELECT value FROM meta WHERE key = 'database_id'").fetchone()[0]
    finally:
        cur.close()
    return {"rows": rows, "models": [dict(zip(("version", "path", "sha256"), v)) for v in versions],
            "schema_version": int(schema_version), "database_id": database_id}


def record_backup(store: Store, actor: str | None, name: str, where: Path, note: str) -> None:
    store.cursor().execute("INSERT INTO audit_log (actor, action, entity, entity_id, new_value, note) "
                           "VALUES (?, 'backup', 'database', ?, ?, ?)", [actor, name, str(where), note])


def check_free(path: Path) -> None:
    """Raise StoreLockedError if another process holds the database at `path`. A file DuckDB cannot read is
    not an error here: replacing it is what a restore is for."""
    try:
        con = _connect(path)
    except StoreLockedError:
        raise
    except StoreError:
        return
    con.close()


def load_snapshot(path: Path, folder: Path, schema_version: int, rows: dict[str, int], *, database_id: str,
                  actor: str | None, source: str, old_id: str) -> None:
    """Build a new database at `path` from a backup's Parquet files: the schema from this app's own migrations
    (up to the backup's schema version; no SQL from the backup is run), then each table's rows, the sequences
    moved past the ids in use, the counts checked against the manifest, any later migration, and a new
    database id with an audit entry saying where it came from."""
    try:
        _load(path, folder, schema_version, rows)
    except duckdb.Error as exc:  # a Parquet file that does not fit its table
        raise StoreError(f"cannot load the backup's tables from {folder}: {str(exc).splitlines()[0]}") from None
    with Store(path) as store:  # later migrations, if the backup is older than this app
        with store.transaction() as cur:
            cur.execute("UPDATE meta SET value = ? WHERE key = 'database_id'", [database_id])
            cur.execute("INSERT INTO audit_log (actor, action, entity, entity_id, old_value, new_value, note) "
                        "VALUES (?, 'restore', 'database', ?, ?, ?, ?)",
                        [actor, source, old_id, database_id, f"restored at {_now():%Y-%m-%d %H:%M:%S} UTC"])


def _load(path: Path, folder: Path, schema_version: int, rows: dict[str, int]) -> None:
    with Store(path, migrate_to=schema_version) as store:
        cur = store.cursor()
        with store.transaction(cur):
            tables = _tables(cur)
            if set(tables) != set(rows):
                raise StoreError(f"the backup's tables ({', '.join(sorted(rows))}) are not those of schema version "
                                 f"{schema_version} ({', '.join(tables)})")
            for table in tables:
                cur.execute(f'DELETE FROM "{table}"')  # the migrations' own rows (database id, versions applied)
                cur.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM read_parquet(?)',
                            [str(folder / f"{table}.parquet")])
                found = cur.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                if found != rows[table]:
                    raise StoreError(f"table {table}: {found:,} rows loaded, the manifest says {rows[table]:,}")
            for table, column, default in cur.execute(
                    "SELECT table_name, column_name, column_default FROM duckdb_columns() "
                    "WHERE database_name = current_database() AND column_default LIKE 'nextval(%'").fetchall():
                sequence = _NEXTVAL.search(default)
                top = cur.execute(f'SELECT max("{column}") FROM "{table}"').fetchone()[0]
                if sequence and top:  # a new sequence starts at 1: draw past the highest id in use
                    cur.execute(f"SELECT max(nextval('{sequence.group(1)}')) FROM range(?)", [int(top)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
