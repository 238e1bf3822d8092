"""Backups: a folder with the database's tables, its model files and a manifest of what it is.

    <backup dir>/<database name>-<UTC time>/
        manifest.json      written last: a folder without one is not a backup
        database/          one Parquet file per table (DuckDB's EXPORT DATABASE) and schema.sql
        models/            the model files the database's versions name

A backup is built in a hidden folder beside its final place and renamed when complete, so a crash midway never
leaves something that looks like a backup. The manifest holds the sha256 of every file; a restore checks every
one before it writes anything.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import duckdb

from . import __version__
from .store import LATEST_VERSION, Store, StoreError
from .store import backup as snapshots
from .store import journal

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]

FORMAT = 1  # of manifest.json; a restore refuses any other
MANIFEST = "manifest.json"
KIND = "fraud_app backup"
PARTIAL = ".partial-"  # a backup being written: .partial-<database id>-<name>
SOON = 600.0  # seconds: the first scheduled check after a start, and the retry after a failure (or less)


class BackupError(StoreError):
    """A backup cannot be made or restored; the message names the file or setting at fault."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _quiet(fraction: float, message: str) -> None:
    pass


def _hash(path: Path, sync: bool = False) -> dict:
    """sha256 and size of a file; with `sync`, also flushed to disk (a backup must survive a power cut)."""
    digest = hashlib.sha256()
    with open(path, "r+b" if sync else "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
        if sync:
            os.fsync(f.fileno())
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def _sync_dir(folder: Path) -> None:
    if os.name == "posix":  # a rename is durable once its folder is flushed; Windows has no such call
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _model_file(models_dir: Path, name: str) -> Path | None:
    """Where a version's file is: the database's own folder, or the shared one of older releases."""
    for folder in (models_dir, models_dir.parent):
        if (folder / name).is_file():
            return folder / name
    return None


def take(store: Store, models_dir: Path, dest: Path, *, actor: str | None = None,
         progress: Progress | None = None, written: Callable[[], None] | None = None) -> tuple[Path, dict]:
    """Back up the database and its model files into a new folder under `dest`. Returns the folder and its
    manifest. Every transaction committed before this is called is in it; so is every one `written()` commits,
    called once the start time (the manifest's created_at) is taken: live scoring's answered payments."""
    step = progress or _quiet
    dest = Path(dest)
    database_id = store.database_id
    started = _now()
    if written is not None:
        written()
    name = f"{store.path.stem}-{started:%Y%m%dT%H%M%S}Z"
    partial = dest / f"{PARTIAL}{database_id}-{name}"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for stale in dest.glob(f"{PARTIAL}{database_id}-*"):  # left by a crash: this process holds the database
            shutil.rmtree(stale, ignore_errors=True)
        partial.mkdir(mode=0o700)  # a backup holds every payment: on a shared host, its owner's alone
        step(0.05, "copying the database")
        clock = time.perf_counter()
        snapshot = snapshots.export_snapshot(store, partial / "database")
        (partial / "database" / "load.sql").unlink(missing_ok=True)  # names the folder it was written in
        seconds = time.perf_counter() - clock
        step(0.7, "copying the model files")
        (partial / "models").mkdir()
        missing = []
        for row in snapshot["models"]:
            found = _model_file(models_dir, row["path"])
            if found is None:
                missing.append(row["path"])
                log.warning("backup: model %s has no file %s; the backup goes on without it", row["version"],
                            row["path"])
                continue
            shutil.copyfile(found, partial / "models" / row["path"])
        step(0.85, "writing the manifest")
        files = {p.relative_to(partial).as_posix(): _hash(p, sync=True)
                 for p in sorted(partial.rglob("*")) if p.is_file()}
        manifest = {
            "format": FORMAT, "kind": KIND, "created_at": started.isoformat() + "Z",
            "finished_at": _now().isoformat() + "Z", "snapshot_seconds": round(seconds, 3),
            "app_version": __version__, "duckdb_version": duckdb.__version__,
            "schema_version": snapshot["schema_version"], "database_id": snapshot["database_id"],
            "database": str(store.path), "actor": actor, "rows": snapshot["rows"],
            "models": [row["version"] for row in snapshot["models"] if row["path"] not in missing],
            "missing_models": missing, "files": files}
        with open(partial / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        for folder in (partial / "database", partial / "models", partial):
            _sync_dir(folder)
        final = dest / name
        suffix = 1
        while final.exists():  # two backups within a second
            final, suffix = dest / f"{name}-{suffix}", suffix + 1
        partial.rename(final)
        _sync_dir(dest)
    except BaseException as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, OSError):  # a full disk, a folder it may not write: say where
            raise BackupError(f"cannot write the backup into {dest}: {exc}") from None
        raise
    snapshots.record_backup(store, actor, final.name, final, f"{snapshot['rows'].get('transactions', 0):,} "
                            f"transactions, {len(manifest['models'])} model files")
    step(1.0, f"saved to {final}")
    log.info("backed up %s to %s in %.1f s", store.path, final, (_now() - started).total_seconds())
    return final, manifest


def read_manifest(folder: Path) -> dict | None:
    """A folder's manifest if it is a complete backup, else None."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("kind") == KIND else None


def _created(manifest: dict) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(manifest["created_at"]).rstrip("Z"))
    except (KeyError, ValueError):
        return None


def backups(dest: Path, database_id: str) -> list[tuple[dt.datetime, Path]]:
    """This database's complete backups in `dest`, oldest first."""
    found = []
    for folder in Path(dest).glob("*/") if Path(dest).is_dir() else []:
        manifest = read_manifest(folder)
        if manifest and manifest.get("database_id") == database_id and (when := _created(manifest)):
            found.append((when, folder))
    return sorted(found)


def prune(dest: Path, database_id: str, keep_days: float) -> list[Path]:
    """Delete this database's backups in `dest` older than keep_days, never the newest. Returns those deleted."""
    found = backups(dest, database_id)
    cutoff = _now() - dt.timedelta(days=keep_days)
    deleted = []
    for when, folder in found[:-1]:
        if when < cutoff:
            (folder / MANIFEST).unlink()  # first, so a deletion cut short never leaves a backup with holes
            shutil.rmtree(folder, ignore_errors=True)
            deleted.append(folder)
            log.info("deleted the backup %s (older than %g days)", folder, keep_days)
    return deleted


def verify(folder: Path) -> dict:
    """The manifest of a complete, undamaged backup; otherwise BackupError naming what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BackupError(f"{folder} is not a folder (give the backup's folder, which holds {MANIFEST})")
    if not (folder / MANIFEST).is_file():
        raise BackupError(f"{folder} is not a complete backup: it has no {MANIFEST} (a backup that stopped "
                          "midway has none)")
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"{folder / MANIFEST} is not a fraud_app backup manifest of format {FORMAT}")
    if not isinstance(manifest.get("rows"), dict) or not isinstance(manifest.get("schema_version"), int):
        raise BackupError(f"{folder / MANIFEST} lacks the row counts or the schema version")
    for table in manifest["rows"]:
        if f"database/{table}.parquet" not in manifest["files"]:
            raise BackupError(f"{folder / MANIFEST} lists table {table} without its file database/{table}.parquet")
    for relative, expected in manifest["files"].items():
        path = folder / relative
        if not isinstance(expected, dict):
            raise BackupError(f"{folder / MANIFEST} gives no sha256 for {relative}")
        if ".." in Path(relative).parts or Path(relative).is_absolute():
            raise BackupError(f"{folder / MANIFEST} names a file outside the backup: {relative}")
        if not path.is_file():
            raise BackupError(f"the backup {folder} is damaged: {relative} is missing")
        try:
            actual = _hash(path)
        except OSError as exc:
            raise BackupError(f"the backup {folder}: cannot read {relative}: {exc.strerror}") from None
        if actual["sha256"] != expected.get("sha256"):
            raise BackupError(f"the backup {folder} is damaged: {relative} does not match its sha256 in {MANIFEST} "
                              f"({actual['sha256'][:12]}... instead of {str(expected.get('sha256'))[:12]}...)")
    if manifest["schema_version"] > LATEST_VERSION:
        raise BackupError(f"the backup {folder} has schema version {manifest['schema_version']}, but this fraud_app "
                          f"knows only up to {LATEST_VERSION}; restore it with a newer fraud_app")
    return manifest


def restore(folder: Path, target: Path, models_root: Path, *, force: bool = False, actor: str | None = None,
            progress: Progress | None = None) -> dict:
    """Check every file of the backup, then build the database at `target` and put its model files under
    models_root/<new database id>/. Refuses an existing target unless `force` (then the old file is kept
    beside it as <name>.replaced-<time>). Returns what was done, for the caller to report."""
    step = progress or _quiet
    folder, target = Path(folder), Path(target)
    step(0.0, "checking the backup")
    manifest = verify(folder)
    if target.exists() and not force:
        raise BackupError(f"the database {target} already exists; restore does not overwrite it (pass --force to "
                          "replace it, or choose another --db)")
    if target.exists():
        snapshots.check_free(target)  # never replace the file under a running server
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(target.name + ".restoring")
    for leftover in (building, building.with_name(building.name + ".wal")):
        leftover.unlink(missing_ok=True)
    database_id = uuid.uuid4().hex  # the original may still run beside this copy: they must not share model files
    models_dir = Path(models_root) / database_id
    replaced, moved = None, []
    try:
        step(0.2, "loading the tables")
        snapshots.load_snapshot(building, folder / "database", manifest["schema_version"], manifest["rows"],
                                database_id=database_id, actor=actor, source=folder.name,
                                old_id=str(manifest.get("database_id")))
        step(0.8, "copying the model files")
        models = [r for r in manifest["files"] if r.startswith("models/")]
        if models:
            models_dir.mkdir(parents=True)
        for relative in models:
            shutil.copyfile(folder / relative, models_dir / Path(relative).name)
        wal, answered = target.with_name(target.name + ".wal"), journal.path_of(target)
        if target.exists() or wal.exists() or answered.exists():
            replaced = target.with_name(f"{target.name}.replaced-{_now():%Y%m%dT%H%M%S}Z")
            # The old write-ahead log and journal go with their file: replayed onto the new one, the log would
            # corrupt it, and the journal would add payments the backup does not hold.
            for old in (target, wal, answered):
                if old.exists():
                    aside = replaced.with_name(replaced.name + old.name[len(target.name):])
                    old.rename(aside)
                    moved.append((aside, old))
        if (log_file := building.with_name(building.name + ".wal")).exists():  # its last checkpoint failed
            log_file.rename(wal)
        building.rename(target)
    except BaseException as exc:
        building.unlink(missing_ok=True)
        shutil.rmtree(models_dir, ignore_errors=True)
        for aside, old in moved:  # put the old database back as it was
            aside.rename(old)
        if isinstance(exc, OSError):
            raise BackupError(f"cannot restore into {target}: {exc}") from None
        raise
    step(1.0, f"restored into {target}")
    return {"database": target, "models_dir": models_dir, "replaced": replaced, "manifest": manifest,
            "database_id": database_id}


class Schedule:
    """A timer thread of the application object: takes a backup whenever the newest is `every_hours` old, and
    then deletes the ones older than the keep days. The first check comes a while after start (SOON, or one
    interval if shorter), so a start is never slowed by it; a failure is logged and retried as soon."""

    def __init__(self, every_hours: float, newest: Callable[[], dt.datetime | None], run: Callable[[], object]):
        self.every = every_hours * 3600
        self.newest, self.run = newest, run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fraud-app-backups", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Stop the timer; a backup under way finishes first (up to `timeout`)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        soon = min(self.every, SOON)
        wait = soon
        while not self._stop.wait(wait):
            try:
                newest = self.newest()
                due = 0.0 if newest is None else (newest - _now()).total_seconds() + self.every
                if due > 0:
                    wait = due
                    continue
                self.run()
                wait = self.every
            except Exception:  # logged with its traceback; the server goes on, and tries again soon
                log.exception("the scheduled backup failed")
                wait = soon
