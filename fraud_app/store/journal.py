"""The journal of scored payments: what live scoring acknowledged and the database may not have yet.

A REST answer waits for a line written here and flushed to disk (a fraction of a millisecond), not for a DuckDB
commit (a few milliseconds on a quiet machine, several times that on a busy one). The rows reach the database in
larger commits a moment later, and the journal is emptied (zeroed) once the database holds all it holds. Whoever
opens the database next replays what a crash left here, so an acknowledged payment is never lost. The lines end
at the first zero byte."""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import threading
from pathlib import Path

from .db import Store, StoreError
from .scores import SCORE_COLUMNS, TX_COLUMNS, insert_scored

log = logging.getLogger(__name__)

# Where each row keeps its time: JSON has no timestamps, so these go as ISO text and come back as datetimes.
_TX_TIME, _SCORE_TIME = TX_COLUMNS.index("timestamp"), SCORE_COLUMNS.index("scored_at")


def path_of(db_path: Path) -> Path:
    return Path(f"{db_path}.journal")


def encode(transactions: list[tuple], scored: list[tuple]) -> bytes:
    """One request's rows as one line."""
    def plain(row: tuple, at: int) -> list:
        return [value.isoformat() if i == at and value is not None else value for i, value in enumerate(row)]

    return (json.dumps([[plain(r, _TX_TIME) for r in transactions], [plain(r, _SCORE_TIME) for r in scored]],
                       allow_nan=False, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> tuple[list[tuple], list[tuple]]:
    def typed(row: list, at: int) -> tuple:
        return tuple(dt.datetime.fromisoformat(v) if i == at and v is not None else v for i, v in enumerate(row))

    transactions, scored = json.loads(line)
    return [typed(r, _TX_TIME) for r in transactions], [typed(r, _SCORE_TIME) for r in scored]


# The journal's file is this long from the start, zeros where no line is yet. A line then overwrites blocks the
# file already has, so its flush writes the line and nothing else. Appended to (and emptied by truncating), the
# file grew at every line, so each flush also committed the filesystem's own journal, and with it whatever the
# other files had written meanwhile (the database, the logs). Under a team's load (bench/team.py) flushes took
# p99 6.1 ms and up to 118 ms that way; now p99 5.4 ms and at most 17 ms. Past this size (the database far
# behind) the file grows as before.
SIZE = 4 << 20


def _used(data: bytes) -> bytes:
    """The lines of a journal's content: up to the first zero byte (JSON lines never hold one)."""
    end = data.find(b"\0")
    return data if end < 0 else data[:end]


class Journal:
    """Writes lines (one thread) and empties the file once the database holds every line (another thread)."""

    def __init__(self, path: Path):
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:  # held while this writes: replay() leaves a journal in use alone
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise StoreError(f"the journal {path} is in use by another writer") from None
        size = os.fstat(self._fd).st_size
        lines = _used(os.pread(self._fd, size, 0))
        if size < SIZE:
            os.pwrite(self._fd, bytes(SIZE - size), size)
            os.fsync(self._fd)
        self._lock = threading.Lock()
        # Opened after a replay, the file holds no line. Lines it holds all the same (no replay ran) count as
        # not yet stored: they are never emptied away, and the next open replays them.
        self._end, self.written, self.stored = len(lines), lines.count(b"\n"), 0

    def append(self, lines: list[bytes]) -> None:
        """Durable when this returns. A failed write is zeroed again, so no half line stays before whole ones."""
        with self._lock:
            data, wrote = b"".join(lines), 0
            try:
                wrote = os.pwrite(self._fd, data, self._end)
                if wrote != len(data):  # short only on a full disk, past SIZE
                    raise OSError(f"no room for {len(data)} bytes in {self.path}")
                os.fdatasync(self._fd)
            except OSError:
                try:
                    os.pwrite(self._fd, bytes(wrote or len(data)), self._end)
                except OSError:
                    pass
                raise
            self._end += len(data)
            self.written += len(lines)

    def done(self, lines: int) -> None:
        """The database now holds `lines` more of the lines; with all of them, the file is emptied: zeros over
        its lines, flushed with the next line (a crash before then leaves lines the database already holds,
        which a replay skips)."""
        with self._lock:
            self.stored += lines
            if self.stored == self.written and self._end:
                try:
                    os.pwrite(self._fd, bytes(self._end), 0)
                    self._end = 0
                except OSError as exc:  # it stays as it is: the next open skips what the database holds
                    log.warning("the journal %s could not be emptied: %s", self.path, exc)

    def close(self) -> None:
        """Removed if the database holds every line; else kept for the next open to replay."""
        os.close(self._fd)
        if self.stored == self.written:
            self.path.unlink(missing_ok=True)


def set_aside(journal: Path, line: bytes) -> Path:
    """A request the database refused after it was acknowledged: kept for a person to look at, never dropped."""
    kept = journal.with_name(journal.name + ".refused")
    with open(kept, "ab") as file:
        file.write(line)
        file.flush()
        os.fsync(file.fileno())
    return kept


def replay(store: Store) -> int:
    """Store what a stopped process acknowledged but had not written yet; then empty the journal. Rows the
    database already has (a crash between its commit and the emptying) are skipped. Returns the rows stored."""
    path = path_of(store.path)
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with open(path, "r+b") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # live scoring in this process writes it: it is not a crash's
            return 0
        lines = _used(file.read()).split(b"\n")
        if len(lines) == 1:  # no whole line: nothing was answered since the database last held everything
            file.truncate(0)
            return 0
        # The last piece has no newline: a write the crash cut short, never acknowledged.
        transactions, scored = [], []
        for number, line in enumerate(lines[:-1], start=1):
            try:
                t, s = decode(line)
            except (ValueError, TypeError) as exc:
                raise StoreError(f"{path}, line {number}: not a journal entry ({exc}); move the file aside to "
                                 "open the database without it") from None
            transactions += t
            scored += s
        ids = [row[0] for row in transactions]
        known = {r[0] for r in store.cursor().execute(
            "SELECT transaction_id FROM transactions WHERE transaction_id IN (SELECT unnest(?))", [ids]).fetchall()}
        transactions = [row for row in transactions if row[0] not in known]
        scored = [row for row in scored if row[0] not in known]
        if transactions:
            insert_scored(store, transactions, scored)
        log.warning("journal %s: %d payments acknowledged before a stop were stored now (%d were already)",
                    path, len(transactions), len(known))
        file.truncate(0)
        os.fsync(file.fileno())
    return len(transactions)
