"""Live scoring: new transactions as they arrive (the REST API), featurised from in-memory history, scored
with the model in use, and written durably (the journal) before the caller replies; the database has them a
moment later."""
from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import features, registry
from .detector import Detector
from .priority import JOURNAL_THREAD
from .scoring import score_records
from .store import Store, journal, labels, queries, scores

log = logging.getLogger(__name__)


class NoModelError(RuntimeError):
    """No model is in use yet: the API answers 503."""


class ConflictError(ValueError):
    """A transaction_id that is already stored (or being stored) arrived with other content, or twice in one
    batch. `index` is its place in the request; `stored` the result stored for it, if it has one."""

    def __init__(self, index: int, transaction_id: str, message: str, stored: dict | None = None):
        super().__init__(message)
        self.index, self.transaction_id, self.message, self.stored = index, transaction_id, message, stored


class _GroupWriter:
    """Two threads. The first appends each request's rows to the journal (store/journal.py), flushed to disk, and
    then acknowledges the request: an answer waits for that (well under a millisecond), not for a database commit,
    whose time grows several-fold on a busy machine. The second commits what was acknowledged to DuckDB, the
    requests of up to `every` seconds together, and passes their ids to `stored`. A group the database refuses
    is committed request by request; a request refused alone is set aside in a file beside the journal and
    logged, so nothing acknowledged is lost. The journal is emptied whenever the database holds all of it."""

    def __init__(self, store: Store, stored: Callable[[list[str]], None] = lambda ids: None,
                 every: float = 0.2, most: int = 512):
        self.store, self.stored, self.every, self.most = store, stored, every, most
        self.journal = journal.Journal(journal.path_of(store.path))
        self._incoming: queue.Queue = queue.Queue()  # (transactions, scored, acknowledgement), or None: close
        self._acked: queue.Queue = queue.Queue()  # acknowledged requests, flush() events, or None: close
        self._threads = [threading.Thread(target=run, name=name, daemon=True)
                         for name, run in ((JOURNAL_THREAD, self._journal_loop), ("fraud-app-writer", self._store_loop))]
        for thread in self._threads:
            thread.start()

    def submit(self, transactions: list[tuple], scored: list[tuple], done: Future | None = None) -> Future:
        """The future (`done`, or a new one) is done once the rows are durable (in the journal)."""
        done = done or Future()
        self._incoming.put((transactions, scored, done))
        return done

    def flush(self, timeout: float | None = None) -> bool:
        """Return once the database holds every request acknowledged before this call; False if that took
        longer than `timeout`."""
        done = threading.Event()
        self._acked.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Journal and store every request already submitted, then stop the threads."""
        self._incoming.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self.journal.close()

    def _journal_loop(self) -> None:
        while True:
            batch = [self._incoming.get()]
            while len(batch) < self.most and batch[-1] is not None:
                try:
                    batch.append(self._incoming.get_nowait())
                except queue.Empty:
                    break
            closing = batch[-1] is None
            if closing:
                batch.pop()
            lines = []
            for request in list(batch):
                try:
                    lines.append(journal.encode(request[0], request[1]))
                except (TypeError, ValueError) as exc:  # a value JSON cannot hold: this request fails alone
                    request[2].set_exception(exc)
                    batch.remove(request)
            if batch:
                try:
                    self.journal.append(lines)
                except OSError as exc:
                    log.error("the journal %s refused %d scored requests: %s", self.journal.path, len(batch), exc)
                    for *_, done in batch:
                        done.set_exception(exc)
                else:
                    self._acked.put(batch)  # first: a flush() asked after an acknowledgement waits for its rows
                    for *_, done in batch:
                        done.set_result(None)
            if closing:
                self._acked.put(None)
                return

    def _store_loop(self) -> None:
        while True:
            items = [self._acked.get()]
            until, count = time.monotonic() + self.every, len(items[0]) if isinstance(items[0], list) else 0
            while isinstance(items[-1], list) and count < self.most:
                try:
                    items.append(self._acked.get(timeout=max(0.0, until - time.monotonic())))
                except queue.Empty:
                    break
                count += len(items[-1]) if isinstance(items[-1], list) else 0
            batch = [request for item in items if isinstance(item, list) for request in item]
            if batch:
                self.commit(batch)
                self.journal.done(len(batch))
                self.stored([row[0] for request in batch for row in request[0]])
            for item in items:
                if isinstance(item, threading.Event):
                    item.set()
            if items[-1] is None:
                return

    def commit(self, batch: list[tuple[list[tuple], list[tuple], Future]]) -> None:
        """Commit the batch's requests together; if that fails, each alone, so only a bad one is set aside."""
        try:
            scores.insert_scored(self.store, [row for b in batch for row in b[0]], [row for b in batch for row in b[1]])
        except Exception as exc:
            if len(batch) > 1:
                log.warning("writing %d scored requests together failed (%s); writing each alone", len(batch), exc)
                for request in batch:
                    self.commit([request])
                return
            line = journal.encode(batch[0][0], batch[0][1])
            try:
                kept = journal.set_aside(self.journal.path, line)
            except OSError as failed:  # the disk too: the log keeps it
                log.error("the database refused an acknowledged scored request (%s), and it could not be set "
                          "aside (%s): %s", exc, failed, line.decode())
                return
            log.error("the database refused an acknowledged scored request (%s); it is kept in %s", exc, kept)


_U64 = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15


class _SeenIds:
    """A Bloom filter of stored transaction ids. Its "no" is certain, so a new id (the usual case) skips the
    database lookup; a "maybe" (a repeat, or 1 in ~10,000 by chance) asks the database."""

    def __init__(self, ids: list[str], bits: int = 1 << 25):
        self.mask = bits - 1
        self.bits = np.zeros(bits // 8, np.uint8)
        if ids:
            h = np.fromiter((hash(i) & _U64 for i in ids), np.uint64, count=len(ids))
            for pos in (h & np.uint64(self.mask), (h >> np.uint64(25)) & np.uint64(self.mask),
                        (h * np.uint64(_MIX) >> np.uint64(39)) & np.uint64(self.mask)):
                np.bitwise_or.at(self.bits, (pos >> np.uint64(3)).astype(np.int64),
                                 (np.uint8(1) << (pos & np.uint64(7)).astype(np.uint8)))

    def _positions(self, transaction_id: str) -> tuple[int, int, int]:
        h = hash(transaction_id) & _U64
        return h & self.mask, (h >> 25) & self.mask, (((h * _MIX) & _U64) >> 39) & self.mask

    def add(self, transaction_id: str) -> None:
        for pos in self._positions(transaction_id):
            self.bits[pos >> 3] |= 1 << (pos & 7)

    def __contains__(self, transaction_id: str) -> bool:
        return all(self.bits[pos >> 3] >> (pos & 7) & 1 for pos in self._positions(transaction_id))


@dataclass
class _Job:
    ids: list[str]
    answers: dict[str, dict]
    fresh: list[dict]
    ticket: Future | None
    writes: list[Future]

    def wait(self) -> None:
        """Block until every write this job waits for is done; LiveScorer.finish reports a failed one."""
        for write in self.writes:
            try:
                write.result()
            except BaseException:
                pass


def _content(record: dict) -> tuple:
    return tuple(record[k] for k in scores.TX_COLUMNS)


def _differs(stored: tuple, posted: tuple) -> bool:
    """A repeat that contradicts the stored payment: a value that differs where both have one. (A retry may
    leave out optional fields the stored copy has, e.g. one imported from a fuller file.)"""
    return any(a != b for a, b in zip(stored, posted) if a is not None and b is not None)


class LiveScorer:
    """Scores new transactions as they arrive.

    One lock serialises the scoring itself, so each payment's features see every payment accepted before
    it; the writes of concurrent requests are committed together. Posting a stored (or being-stored)
    transaction again, unchanged, returns its result and stores nothing; changed, it is a ConflictError."""

    def __init__(self, store: Store, models_dir: Path, label_delay_days: int = 7):
        self.store, self.models_dir, self.label_delay_days = store, Path(models_dir), label_delay_days
        self._lock = threading.Lock()
        self.engine = features.load_online(store, label_delay_days)
        self.version: str | None = None
        self.detector: Detector | None = None
        self._pending: dict[str, tuple[tuple, dict, Future]] = {}
        self._seen = _SeenIds(queries.transaction_ids(store))
        self._writer = _GroupWriter(store, self._stored)
        self.reload_model()

    def close(self, timeout: float | None = None) -> None:
        """Stop taking payments and wait until every accepted one is written."""
        self._writer.close(timeout)

    def flush(self, timeout: float | None = None) -> None:
        """Return once the database holds every payment acknowledged so far (they reach it within a fraction of
        a second anyway): for reading them back at once, as a backup or an export does."""
        if self._pending and not self._writer.flush(timeout):  # else the database holds them all already
            log.warning("answered payments are not all in the database after %s s; they stay in the journal",
                        timeout)

    def _stored(self, ids: list[str]) -> None:
        # From the writer's thread, without the lock, which begin() may hold while it waits for this thread:
        # one pop each is atomic, and begin() reads with get().
        for transaction_id in ids:
            self._pending.pop(transaction_id, None)

    def reload_model(self) -> str | None:
        """Pick up the version in use (after a promote or rollback). None if there is none."""
        try:
            version, detector = registry.load(self.store, self.models_dir)
        except registry.ModelError as exc:
            log.warning("live scoring has no model: %s", exc)
            version, detector = None, None
        with self._lock:
            self.version, self.detector = version, detector
        return version

    def reload_history(self) -> None:
        """Rebuild the in-memory history from the database, after rows arrived another way (an import).
        New requests wait (about 2 s on 1.75M rows) so none is scored against a half-built history."""
        with self._lock:
            for *_, write in list(self._pending.values()):
                try:
                    write.result()  # accepted payments must be in the database before it is read
                except BaseException:
                    pass  # finish() reports it, and its payment was never stored
            self._writer.flush()
            self.engine = features.load_online(self.store, self.label_delay_days)
            self._seen = _SeenIds(queries.transaction_ids(self.store))

    def score(self, records: list[dict]) -> list[dict]:
        """Validated records (importer.parse_record) -> one result per record, in order, once stored."""
        job = self.begin(records)
        job.wait()
        return self.finish(job)

    def begin(self, records: list[dict]) -> _Job:
        """Score now and queue the write. The caller waits for job.writes (blocking, or awaited on an event
        loop), then calls finish(). Quick: features and model only, no I/O wait."""
        ids = [r["transaction_id"] for r in records]
        first: dict[str, int] = {}
        for i, transaction_id in enumerate(ids):
            if transaction_id in first:
                raise ConflictError(i, transaction_id, f"transaction_id {transaction_id!r} appears twice in the "
                                    f"batch (items {first[transaction_id]} and {i})")
            first[transaction_id] = i
        with self._lock:
            if self.detector is None:
                raise NoModelError("no model in use yet: train one first")
            # Pending until the database holds it, which may be after its answer (see _GroupWriter).
            waiting = {i: w for i in ids if (w := self._pending.get(i)) is not None}
            known, stored = scores.stored_results(self.store, [i for i in ids if i not in waiting and i in self._seen])
            for i, record in enumerate(records):
                tid = record["transaction_id"]
                was = waiting[tid][0] if tid in waiting else known.get(tid)
                if was is not None and _differs(was, _content(record)):
                    result = waiting[tid][1] if tid in waiting else stored.get(tid) and _stored_result(stored[tid])
                    raise ConflictError(i, tid, f"transaction_id {tid!r} is already stored with other content; "
                                        "a retry must send the same transaction", result)
            fresh = [r for r in records if r["transaction_id"] not in known and r["transaction_id"] not in waiting]
            results, ticket = {}, None
            if fresh:
                rows = []
                for record in fresh:
                    rows.append(self.engine.compute(record))
                    self.engine.add(record)  # the next one, in this batch or the next request, sees it
                try:
                    results = {r["transaction_id"]: r for r in score_records(
                        self.detector, self.version, [r["transaction_id"] for r in fresh], np.asarray(rows))}
                except BaseException:
                    self._forget(fresh)
                    raise
                # Pending before it is submitted: the writer drops an id from it once the database holds it.
                ticket = Future()
                self._pending.update({r["transaction_id"]: (_content(r), results[r["transaction_id"]], ticket)
                                      for r in fresh})
                self._writer.submit([_content(r) for r in fresh],
                                    [_score_row(results[r["transaction_id"]]) for r in fresh], ticket)
                for i in results:
                    self._seen.add(i)
            answers = {i: _stored_result(row) for i, row in stored.items()}
            # Stored but never scored (imported earlier): score it as posted, store nothing new.
            missing = [r for r in records if r["transaction_id"] in known and r["transaction_id"] not in stored]
            if missing:
                X = np.asarray([self.engine.compute(r) for r in missing], dtype=np.float64)
                answers |= {r["transaction_id"]: r for r in score_records(
                    self.detector, self.version, [r["transaction_id"] for r in missing], X)}
        answers |= {i: result for i, (_, result, _) in waiting.items()} | results
        writes = ([ticket] if ticket else []) + [w for *_, w in waiting.values()]
        return _Job(ids, answers, fresh, ticket, writes)

    def finish(self, job: _Job) -> list[dict]:
        """After job.writes are done: the results, or the write's error (and the history is put right)."""
        if job.ticket is not None and job.ticket.exception() is not None:
            with self._lock:  # never stored: out of the pending ones and the history
                for record in job.fresh:
                    self._pending.pop(record["transaction_id"], None)
                self._forget(job.fresh)
        for write in job.writes:
            if write.exception() is not None:
                raise write.exception()
        return [job.answers[i] for i in job.ids]

    def _forget(self, fresh: list[dict]) -> None:
        """Take payments whose write failed back out of the history (caller holds the lock)."""
        for record in fresh:
            self.engine.remove(record)

    def add_label(self, transaction_id: str, is_fraud: bool, source: str, actor: str | None) -> bool:
        """Record a label now; a fraud label becomes history for features from this moment. False if the
        transaction is unknown."""
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        if transaction_id in self._pending:  # answered a moment ago: the label needs its row
            self._writer.flush()
        with self._lock:
            found = labels.record_label(self.store, transaction_id, is_fraud, source, actor, now)
            if found is None:
                return False
            customer, terminal, paid = found
            if is_fraud:
                self.engine.add_label(customer, terminal, max(now, paid), paid)
        return True

    def fraud_known(self, keys: list[tuple[str, str, dt.datetime]], now: dt.datetime) -> None:
        """Fraud labels already stored (by a review decision) on payments (customer, terminal, paid)."""
        with self._lock:
            for customer, terminal, paid in keys:
                self.engine.add_label(customer, terminal, max(now, paid), paid)


def _score_row(result: dict) -> tuple:
    reasons = json.dumps([{k: r[k] for k in ("feature", "value", "contribution")} for r in result["reasons"]])
    return (result["transaction_id"], result["model_version"], result["fraud_probability"], result["risk_score"],
            result["risk_level"], result["decision"], reasons, dt.datetime.fromisoformat(result["scored_at"].rstrip("Z")))


def _stored_result(row: dict) -> dict:
    """An API result from a stored score row (reasons as JSON text, without their words)."""
    reasons = json.loads(row["reasons"] or "[]")
    for reason in reasons:
        reason["text"] = features.reason_text(reason["feature"], _num(reason["value"]))
    return {"transaction_id": row["transaction_id"], "fraud_probability": float(row["fraud_probability"]),
            "risk_score": int(row["risk_score"]), "risk_level": row["risk_level"], "decision": row["decision"],
            "reasons": reasons, "model_version": row["model_version"],
            "scored_at": row["scored_at"].isoformat() + "Z" if isinstance(row["scored_at"], dt.datetime)
            else row["scored_at"]}


def _num(value) -> float:
    return float("nan") if value is None else value
