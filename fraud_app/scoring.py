"""The one scoring path: features, model, decision and reasons, for stored ranges (bulk: CLI, bootstrap)
and for new transactions as they arrive (live: the REST API). Faces call this; none scores on its own."""
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
import pandas as pd
import pyarrow as pa

from . import features, importer, registry
from .detector import Detector
from .importer import ImportReport
from .store import Store, analytics, cases, labels, queries, scores, write_table_file

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]


def model_columns(detector: Detector) -> list[int]:
    """Where the model's features sit among today's FEATURE_NAMES; a model needing one that no longer
    exists must be retrained."""
    missing = [f for f in detector.features if f not in features.FEATURE_NAMES]
    if missing:
        raise registry.ModelError(f"the model in use needs features this version no longer computes "
                                  f"({', '.join(missing[:3])}); train a new version")
    return [features.FEATURE_NAMES.index(f) for f in detector.features]


def _score(detector: Detector, X: np.ndarray, explain_all: bool):
    columns = model_columns(detector)
    if columns != list(range(X.shape[1])):  # a copy of millions of rows costs a second; skip it if we can
        X = X[:, columns]
    p = detector.predict_proba(X)
    risk_score, level, decision = detector.decide(p)
    explained = np.ones(len(p), bool) if explain_all else decision != "approve"
    idx = np.zeros((len(p), scores.REASONS), np.int64)
    contrib = np.full((len(p), scores.REASONS), np.nan)
    if explained.any():
        idx[explained], contrib[explained] = detector.explain(X[explained], top=scores.REASONS)
    return X, p, risk_score, level, decision, explained, idx, contrib


def score_matrix(detector: Detector, version: str, ids: pa.Array, X: np.ndarray,
                 scored_at: dt.datetime | None = None, explain_all: bool = True) -> pa.Table:
    """Probability, risk, decision and top reasons for each row of X, as an Arrow table (bulk scoring).

    Exact TreeSHAP costs ~60 us a row, too slow for millions, so with explain_all=False only flagged rows
    (review, decline) get reasons; approved ones are stored without."""
    X, p, risk_score, level, decision, explained, idx, contrib = _score(detector, X, explain_all)
    scored_at = scored_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    names = np.asarray(detector.features, dtype=object)
    columns = {
        "transaction_id": ids, "model_version": pa.array([version] * len(p), pa.string()),
        "fraud_probability": pa.array(p), "risk_score": pa.array(risk_score, pa.int16()),
        "risk_level": pa.array(level, pa.string()), "decision": pa.array(decision, pa.string()),
        "scored_at": pa.array([scored_at] * len(p), pa.timestamp("us")),
    }
    for i in range(idx.shape[1]):
        value = X[np.arange(len(p)), idx[:, i]]
        columns[f"reason{i + 1}_feature"] = pa.array(names[idx[:, i]], pa.string(), mask=~explained)
        columns[f"reason{i + 1}_value"] = pa.array(value, mask=np.isnan(value) | ~explained)
        columns[f"reason{i + 1}_contribution"] = pa.array(contrib[:, i], mask=~explained)
    return pa.table(columns)


def score_records(detector: Detector, version: str, ids: list[str], X: np.ndarray) -> list[dict]:
    """The same as score_matrix, as API results, without Arrow's per-call cost (live scoring)."""
    X, p, risk_score, level, decision, _, idx, contrib = _score(detector, X, True)
    scored_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    out = []
    for row, transaction_id in enumerate(ids):
        reasons = []
        for j, c in zip(idx[row], contrib[row]):
            name, value = detector.features[j], float(X[row, j])
            reasons.append({"feature": name, "value": None if value != value else value, "contribution": float(c),
                            "text": features.reason_text(name, value)})
        out.append({"transaction_id": transaction_id, "fraud_probability": float(p[row]),
                    "risk_score": int(risk_score[row]), "risk_level": str(level[row]), "decision": str(decision[row]),
                    "reasons": reasons, "model_version": version, "scored_at": scored_at.isoformat() + "Z"})
    return out


def reason_line(reasons: list[dict]) -> str:
    """'text (+contribution); …' for CSV files people read."""
    return "; ".join(f"{features.reason_text(r['feature'], _num(r['value']))} ({r['contribution']:+.2f})"
                     for r in reasons if r["feature"])


def reasons_text(table: pa.Table) -> list[str]:
    """reason_line for each row of a score table."""
    columns = [(table.column(f"reason{i}_feature").to_pylist(), table.column(f"reason{i}_value").to_pylist(),
                table.column(f"reason{i}_contribution").to_pylist()) for i in range(1, scores.REASONS + 1)]
    return [reason_line([{"feature": f[row], "value": v[row], "contribution": c[row]} for f, v, c in columns])
            for row in range(table.num_rows)]


def score_stored(store: Store, *, models_dir: Path, start: dt.date | None = None, end: dt.date | None = None,
                 out: Path | None = None, label_delay_days: int = 7, actor: str | None = None,
                 progress: Progress | None = None) -> dict:
    """Score the stored transactions in [start, end] with the model in use. With `out`, write a CSV
    instead of storing the scores."""
    step = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    version, detector = registry.load(store, models_dir)
    step(0.05, "computing features")
    table = features.batch_features(store, start, end, label_delay_days=label_delay_days)
    step(0.5, f"scoring {table.num_rows:,} transactions with {version}")
    result = score_matrix(detector, version, table.column("transaction_id"), features.feature_matrix(table),
                          explain_all=out is not None)
    step(0.8, "writing")
    if out is not None:
        result = result.append_column("reasons", pa.array(reasons_text(result), pa.string()))
        keep = ["transaction_id", "fraud_probability", "risk_score", "risk_level", "decision", "model_version",
                "reasons"]
        extra = table.select(["timestamp", "customer_id", "terminal_id"])
        combined = result.select(keep)
        for name in extra.column_names:
            combined = combined.append_column(name, extra.column(name))
        order = np.lexsort((combined.column("transaction_id").to_numpy(zero_copy_only=False),
                            combined.column("timestamp").to_numpy()))
        write_table_file(combined.take(pa.array(order)), Path(out))
    else:
        scores.save_scores(store, result, actor)
    flagged = int(np.isin(result.column("decision").to_numpy(zero_copy_only=False), ["review", "decline"]).sum())
    step(1.0, f"{result.num_rows:,} scored, {flagged:,} flagged")
    return {"model_version": version, "scored": result.num_rows, "flagged": flagged,
            "seconds": round(time.perf_counter() - started, 2), "out": str(out) if out else None}


class NoModelError(RuntimeError):
    """No model is in use yet: the API answers 503."""


class _GroupWriter:
    """One thread that commits whatever requests are waiting in a single DuckDB transaction: under load a
    commit carries many requests, idle it carries one. A request is answered only after its commit."""

    def __init__(self, store: Store, most: int = 512):
        self.store, self.most = store, most
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, name="fraud-app-writer", daemon=True).start()

    def submit(self, transactions: list[tuple], scored: list[tuple]) -> Future:
        done: Future = Future()
        self._queue.put((transactions, scored, done))
        return done

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.most:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                scores.insert_scored(self.store, [row for b in batch for row in b[0]],
                                     [row for b in batch for row in b[1]])
            except BaseException as exc:  # every waiting request learns its write failed
                log.error("writing %d scored requests failed: %s", len(batch), exc)
                for *_, done in batch:
                    done.set_exception(exc)
            else:
                for *_, done in batch:
                    done.set_result(None)


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


class LiveScorer:
    """Scores new transactions as they arrive: online features from in-memory history, the model in use,
    and the transaction with its score committed before the caller replies.

    One lock serialises the scoring itself, so each payment's features see every payment accepted before
    it, including earlier ones in the same batch; the writes of concurrent requests are committed together.
    Posting a stored (or being-stored) transaction_id again returns its result and stores nothing."""

    def __init__(self, store: Store, models_dir: Path, label_delay_days: int = 7):
        self.store, self.models_dir, self.label_delay_days = store, Path(models_dir), label_delay_days
        self._lock = threading.Lock()
        self.engine = features.load_online(store, label_delay_days)
        self.version: str | None = None
        self.detector: Detector | None = None
        self._pending: dict[str, tuple[dict, Future]] = {}
        self._seen = _SeenIds(queries.transaction_ids(store))
        self._writer = _GroupWriter(store)
        self.reload_model()

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
            for _, write in list(self._pending.values()):
                try:
                    write.result()  # accepted payments must be in the database before it is read
                except BaseException:
                    pass  # finish() reports it, and its payment was never stored
            self.engine = features.load_online(self.store, self.label_delay_days)
            self._seen = _SeenIds(queries.transaction_ids(self.store))

    def score(self, records: list[dict]) -> list[dict]:
        """Validated records (importer.parse_record) -> one result per record, in order, once stored."""
        job = self.begin(records)
        for write in job.writes:
            try:
                write.result()
            except BaseException:
                pass  # finish() reports it
        return self.finish(job)

    def begin(self, records: list[dict]) -> "_Job":
        """Score now and queue the write. The caller waits for job.writes (blocking, or awaited on an event
        loop), then calls finish(). Quick: features and model only, no I/O wait."""
        ids = [r["transaction_id"] for r in records]
        with self._lock:
            if self.detector is None:
                raise NoModelError("no model in use yet: train one first")
            waiting = {i: self._pending[i] for i in ids if i in self._pending}
            known, stored = scores.stored_results(self.store, [i for i in ids if i not in waiting and i in self._seen])
            fresh, seen = [], set(waiting)
            for record in records:
                if record["transaction_id"] not in known and record["transaction_id"] not in seen:
                    fresh.append(record)
                    seen.add(record["transaction_id"])
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
                ticket = self._writer.submit([tuple(r[k] for k in scores.TX_COLUMNS) for r in fresh],
                                             [_score_row(results[r["transaction_id"]]) for r in fresh])
                self._pending.update({i: (results[i], ticket) for i in results})
                for i in results:
                    self._seen.add(i)
            answers = {i: _stored_result(row) for i, row in stored.items()}
            # Stored but never scored (imported earlier): score it as posted, store nothing new.
            missing = [r for r in records if r["transaction_id"] in known and r["transaction_id"] not in stored]
            if missing:
                X = np.asarray([self.engine.compute(r) for r in missing], dtype=np.float64)
                answers |= {r["transaction_id"]: r for r in score_records(
                    self.detector, self.version, [r["transaction_id"] for r in missing], X)}
        answers |= {i: result for i, (result, _) in waiting.items()} | results
        writes = ([ticket] if ticket else []) + [w for _, w in waiting.values()]
        return _Job(ids, answers, fresh, ticket, writes)

    def finish(self, job: "_Job") -> list[dict]:
        """After job.writes are done: the results, or the write's error (and the history is put right)."""
        if job.ticket is not None:
            with self._lock:
                for record in job.fresh:
                    self._pending.pop(record["transaction_id"], None)
                if job.ticket.exception() is not None:
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


_live: LiveScorer | None = None


def set_live(scorer: LiveScorer | None) -> None:
    """The process's live scorer (the API sets it), so labels recorded elsewhere reach its history."""
    global _live
    _live = scorer


def import_transactions(store: Store, path: Path, *, models_dir: Path, currency: str, label_delay_days: int = 7,
                        actor: str | None = None, progress: Progress | None = None) -> ImportReport:
    """Import a file (all or nothing), make its rows history for live scoring, and score them with the
    model in use, if any. The report says what was refused and where."""
    step = progress or (lambda fraction, message: None)
    report = importer.import_file(store, path, currency=currency, actor=actor,
                                  progress=lambda f, m: step(0.4 * f, m))
    if not report.imported:
        return report
    if _live is not None:
        step(0.45, "adding the rows to live scoring's history")
        _live.reload_history()
    version = registry.models.active_version(store)
    span = queries.unscored_span(store, version["version"]) if version else (None, None)
    if span[0] is not None:
        score_stored(store, models_dir=models_dir, start=span[0], end=span[1], label_delay_days=label_delay_days,
                     actor=actor, progress=lambda f, m: step(0.5 + 0.5 * f, m))
    step(1.0, f"{report.imported:,} rows imported")
    return report


def model_changed() -> str | None:
    """After a promote, rollback or new thresholds: live scoring picks up the version in use. Returns it."""
    return _live.reload_model() if _live is not None else None


def promote(store: Store, models_dir: Path, version: str, actor: str | None) -> str | None:
    """Put a version in use, live scoring included. Returns the version it replaced."""
    old = registry.promote(store, models_dir, version, actor)
    model_changed()
    return old


def rollback(store: Store, models_dir: Path, actor: str | None) -> str:
    """Back to the version used before, live scoring included. Returns the version now in use."""
    version = registry.rollback(store, models_dir, actor)
    model_changed()
    return version


def set_thresholds(store: Store, version: str, review: float, decline: float, actor: str | None) -> int:
    """New thresholds for a version: its stored decisions follow, and live scoring if it is in use."""
    changed = registry.set_thresholds(store, version, review, decline, actor)
    model_changed()
    return changed


def decide_cases(store: Store, transaction_ids: list[str], status: str, analyst: str, note: str | None) -> int:
    """A review decision (cases.decide); a confirmed fraud becomes known history for live scoring at once."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    n = cases.decide(store, transaction_ids, status, analyst, note, now=now)
    if _live is not None and cases.DECISIONS[status]:
        _live.fraud_known(queries.transaction_keys(store, list(transaction_ids)), now)
    return n


def export_cases(store: Store, out: Path, *, status: str = "flagged", start: dt.date | None = None,
                 end: dt.date | None = None) -> int:
    """CONTRACTS §2 `export`: the cases with score, decision, reasons in words, analyst and notes, as CSV."""
    frame = case_rows(store, status=status, start=start, end=end)
    write_table_file(pa.Table.from_pandas(frame, preserve_index=False), Path(out))
    return len(frame)


def case_rows(store: Store, *, status: str = "flagged", start: dt.date | None = None,
              end: dt.date | None = None) -> pd.DataFrame:
    """The rows `export` writes, with the reasons in words."""
    active = registry.models.active_version(store)
    version = analytics.scored_version(store) or (active and active["version"])  # none scored yet: no cases
    if version is None:
        raise registry.ModelError("nothing is scored yet: train a model and score first")
    frame = cases.export_rows(store, version, status, start, end)
    frame["reasons"] = [reason_line(json.loads(raw or "[]")) for raw in frame["reasons"]]
    return frame


def _score_row(result: dict) -> tuple:
    reasons = json.dumps([{k: r[k] for k in ("feature", "value", "contribution")} for r in result["reasons"]])
    return (result["transaction_id"], result["model_version"], result["fraud_probability"], result["risk_score"],
            result["risk_level"], result["decision"], reasons, dt.datetime.fromisoformat(result["scored_at"].rstrip("Z")))


def _num(value) -> float:
    return float("nan") if value is None else value


def _result(row: dict, reasons: list[dict]) -> dict:
    return {"transaction_id": row["transaction_id"], "fraud_probability": float(row["fraud_probability"]),
            "risk_score": int(row["risk_score"]), "risk_level": row["risk_level"], "decision": row["decision"],
            "reasons": reasons, "model_version": row["model_version"],
            "scored_at": row["scored_at"].isoformat() + "Z" if isinstance(row["scored_at"], dt.datetime)
            else row["scored_at"]}


def _stored_result(row: dict) -> dict:
    """An API result from a stored score row (reasons as JSON text, without their words)."""
    reasons = json.loads(row["reasons"] or "[]")
    for reason in reasons:
        reason["text"] = features.reason_text(reason["feature"], _num(reason["value"]))
    return _result(row, reasons)


def explain_stored(store: Store, models_dir: Path, transaction_id: str, label_delay_days: int = 7, *,
                   version: str | None = None) -> list[dict]:
    """The top reasons for one stored transaction, computed now: bulk scoring keeps them for flagged rows only.
    Features as the bulk path computes them (over the transaction's day), and the model version that scored
    it (`version`, else its latest score's, else the one in use). [{"feature", "value", "contribution", "text"}]"""
    from .store import investigate

    row = investigate.transaction(store, transaction_id, version)
    if row is None:
        raise ValueError(f"no stored transaction {transaction_id!r}")
    version, detector = _explainer(store, models_dir, version or row["model_version"])
    day = row["timestamp"].date()
    copy = investigate.history_copy(store, row["customer_id"], row["terminal_id"],
                                    dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))
    try:
        table = features.batch_features(copy, day, day, label_delay_days=label_delay_days)
    finally:
        copy.close()
    at = table.column("transaction_id").to_pylist().index(transaction_id)
    X = features.feature_matrix(table.slice(at, 1))
    return score_records(detector, version, [transaction_id], X)[0]["reasons"]


# In the app's process a model load costs ~0.2 s (skops checks each type against every loaded module), more than
# the rest of an explanation. A saved file never changes (its hash is recorded) and reasons do not use the
# thresholds, so one load per file serves every later explanation.
_explainers: dict[tuple[str, str, str], tuple[str, Detector]] = {}


def _explainer(store: Store, models_dir: Path, version: str | None) -> tuple[str, Detector]:
    from .store import models

    row = models.get_version(store, version) if version else models.active_version(store)
    if row is None:
        return registry.load(store, models_dir, version)  # raises, saying what is missing
    key = (str(models_dir), row["version"], row["sha256"])
    if key not in _explainers:
        _explainers[key] = registry.load(store, models_dir, row["version"])
    return _explainers[key]
