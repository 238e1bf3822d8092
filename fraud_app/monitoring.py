"""Drift: how far recent payments have moved from the ones the model in use was trained on.

Each feature, and the model's score, is cut into the deciles of its training values (plus a bin for
missing values); the population stability index (PSI) compares the share of recent payments in each
bin with the share in training. Below 0.1 is stable, 0.1 to 0.25 worth watching, above 0.25 a shift.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from . import features
from .store import Store, models, queries
from .store import monitoring as reads

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
WATCH, SHIFT = 0.1, 0.25
EPSILON = 1e-4          # share given to an empty bin, so one empty bin cannot make the PSI infinite
REFERENCE_WEEKS = 3     # weeks of the training window featurised as its sample


# -- PSI -------------------------------------------------------------------------------------------------

def edges(reference, bins: int = 10) -> np.ndarray:
    """Inner bin edges: the reference's quantiles, ties merged, so a constant column gets one edge and a
    0/1 column two bins, never empty duplicates."""
    values = np.asarray(reference, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return np.empty(0)
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def shares(values, inner: np.ndarray) -> np.ndarray:
    """The share of values in each bin (-inf, e0], (e0, e1], ..., (e_last, inf), then missing (NaN)."""
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(inner, values[~missing], side="left"), minlength=len(inner) + 1)
    return np.append(counts, missing.sum()) / max(len(values), 1)


def psi_of_shares(reference: np.ndarray, current: np.ndarray) -> float:
    p, q = np.maximum(reference, EPSILON), np.maximum(current, EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def psi(reference, current, bins: int = 10) -> float:
    """Population stability index of `current` against `reference`, on the reference's deciles (for
    bins=10) and a bin for NaN. 0 for the same distribution; NaN when either sample is empty."""
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if not reference.size or not current.size:
        return float("nan")
    inner = edges(reference, bins)
    return psi_of_shares(shares(reference, inner), shares(current, inner))


def status(value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return "stable" if value < WATCH else "watch" if value <= SHIFT else "shift"


def _number(x: float) -> str:
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


def bin_labels(inner: np.ndarray) -> list[str]:
    """Each bin by its upper edge (the bins are contiguous, so that names it), then the open top and missing."""
    if not inner.size:
        return ["any value", "missing"]
    return [f"≤ {_number(e)}" for e in inner] + [f"> {_number(inner[-1])}", "missing"]


# -- the reference: the active model's training window -----------------------------------------------------

@dataclass(frozen=True)
class Reference:
    """Bin edges and shares per feature (and 'score'); the featurised rows themselves are not kept."""
    version: str
    window: tuple[dt.date, dt.date]
    weeks: list[tuple[dt.date, dt.date]]
    rows: int
    score_rows: int
    edges: dict[str, np.ndarray]
    shares: dict[str, np.ndarray]


def sample_weeks(start: dt.date, end: dt.date, weeks: int = REFERENCE_WEEKS) -> list[tuple[dt.date, dt.date]]:
    """Whole weeks spread evenly over [start, end], first and last included: every weekday and the window's
    whole span are represented, for a fraction of the cost of featurising it all."""
    days = (end - start).days + 1
    if days <= 7 * weeks:
        return [(start, end)]
    step = (days - 7) / (weeks - 1) if weeks > 1 else 0
    starts = sorted({start + dt.timedelta(days=round(i * step)) for i in range(weeks)})
    return [(s, s + dt.timedelta(days=6)) for s in starts]


def _matrix(store: Store, start: dt.date, end: dt.date, label_delay_days: int) -> np.ndarray:
    table = features.batch_features(store, start, end, label_delay_days=label_delay_days)
    return features.feature_matrix(table)


def reference(store: Store, version: str, *, label_delay_days: int = 7, bins: int = 10,
              weeks: int = REFERENCE_WEEKS, progress: Progress | None = None) -> Reference:
    """The training window's bin edges and shares. Featurising all of a 3-month window of the 1.75M-payment
    demo takes 7 to 12 s and peaks near 1.9 GB in a server process; three weeks of it take about 5 s and
    0.5 GB, and their shares are within a PSI of 0.001 of the whole window's on every feature."""
    row = models.get_version(store, version)
    if row is None or row["train_start"] is None:
        raise ValueError(f"model version {version!r} has no training window")
    window = (row["train_start"], row["train_end"])
    spread = sample_weeks(*window, weeks)
    parts = []
    for i, (start, end) in enumerate(spread):
        if progress:
            progress(0.75 * i / len(spread), f"Computing training features, week {i + 1} of {len(spread)}")
        parts.append(_matrix(store, start, end, label_delay_days))
    X = np.concatenate(parts) if parts else np.empty((0, len(features.FEATURE_NAMES)))
    scores = reads.scores_between(store, version, *window)
    columns = {name: X[:, j] for j, name in enumerate(features.FEATURE_NAMES)} | {"score": scores}
    cuts = {name: edges(values, bins) for name, values in columns.items()}
    return Reference(version, window, spread, len(X), len(scores), cuts,
                     {name: shares(values, cuts[name]) for name, values in columns.items()})


# -- drift: recent payments against the reference ---------------------------------------------------------

@dataclass(frozen=True)
class Drift:
    version: str
    reference: Reference
    now: tuple[dt.date, dt.date]
    now_rows: int
    now_score_rows: int
    features: pd.DataFrame             # feature, psi, status; largest PSI first
    score_psi: float
    histograms: dict[str, pd.DataFrame] = field(repr=False)  # per feature and 'score': bin, training, now
    seconds: float = 0.0


def _histogram(ref: Reference, name: str, now_shares: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"bin": bin_labels(ref.edges[name]), "training": ref.shares[name], "now": now_shares})
    return frame[(frame.training > 0) | (frame.now > 0)].reset_index(drop=True)  # e.g. no "missing" bar


def drift(store: Store, version: str, now_days: int = 7, end: dt.date | None = None, *,
          label_delay_days: int = 7, bins: int = 10, ref: Reference | None = None,
          progress: Progress | None = None) -> Drift:
    """PSI of every feature and of the score: the `now_days` days to `end` (default: the last day of the data)
    against `version`'s training window (`ref`, computed here when not given)."""
    started = time.perf_counter()
    ref = ref or reference(store, version, label_delay_days=label_delay_days, bins=bins, progress=progress)
    if end is None:
        end = queries.usual_span(store)[1] or ref.window[1]
    now = (end - dt.timedelta(days=now_days - 1), end)
    if progress:
        progress(0.8, f"Computing features of the {now_days} days to {end:%d %b %Y}")
    X = _matrix(store, *now, label_delay_days)
    scores = reads.scores_between(store, version, *now)
    columns = {name: X[:, j] for j, name in enumerate(features.FEATURE_NAMES)} | {"score": scores}
    histograms, values = {}, {}
    for name, column in columns.items():
        now_shares = shares(column, ref.edges[name])
        histograms[name] = _histogram(ref, name, now_shares)
        empty = not len(column) or not (ref.score_rows if name == "score" else ref.rows)
        values[name] = float("nan") if empty else psi_of_shares(ref.shares[name], now_shares)
    frame = pd.DataFrame({"feature": features.FEATURE_NAMES,
                          "psi": [values[name] for name in features.FEATURE_NAMES]})
    frame["status"] = frame["psi"].map(status)
    frame = frame.sort_values("psi", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    return Drift(version, ref, now, len(X), len(scores), frame, values["score"], histograms,
                 time.perf_counter() - started)


# -- once per process, in the background -----------------------------------------------------------------
# Cached in memory, not stored: a reference costs about 5 s once per model version and server start, on a
# worker thread, and keying it on the training window's row count keeps it true to the data (an import
# into that window recomputes it). A stored copy would need a schema migration, and could go stale
# silently.

@dataclass
class Job:
    """A drift computation that sessions share; they poll `fraction` and `message`, then read `future`."""
    future: Future = field(default_factory=Future)
    fraction: float = 0.0
    message: str = "Waiting to start"
    finished: float | None = None  # time.monotonic() when it ended well

    def usable(self, fresh_for: float) -> bool:
        """Running, or ended well at most `fresh_for` seconds ago."""
        if not self.future.done():
            return True
        return self.finished is not None and time.monotonic() - self.finished <= fresh_for

    def progress(self, fraction: float, message: str) -> None:
        self.fraction, self.message = fraction, message


KEEP = 4
# Seconds a drift stays good for the same days while payments for them keep arriving through the API: seven
# days' drift hardly moves in minutes, and each new computation takes both cores for seconds. Recomputed on
# every visit, ten analysts looking at Monitoring on a live server kept the server busy.
FRESH_FOR = 600.0


def _remember(cache: OrderedDict, key: tuple, value) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > KEEP:
        cache.popitem(last=False)


class DriftJobs:
    """Drift computations of one store, shared by every session of the process (the application object
    owns one). One runs at a time: each query uses every core."""

    def __init__(self, store: Store, label_delay_days: int = 7, fresh_for: float = FRESH_FOR):
        self.store, self.label_delay_days, self.fresh_for = store, label_delay_days, fresh_for
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift")
        self._lock = threading.Lock()
        self._jobs: OrderedDict[tuple, Job] = OrderedDict()
        self._references: OrderedDict[tuple, Reference] = OrderedDict()

    def close(self) -> None:
        """Drop queued computations; one already running ends with the database."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def job(self, version: str, end: dt.date | None = None, *, now_days: int = 7) -> Job:
        """The drift of `version` to `end`, computed at most once for the same data: sessions that ask for
        the same (version, end, rows the result depends on) share one job and its result. Featurising takes
        seconds, so it runs on a worker thread and callers poll the job instead of blocking a page."""
        end = end or queries.usual_span(self.store)[1]
        # Only the days shown and the history their features look back over matter: payments arriving through
        # the API for later days must not make every session compute the same drift again.
        if end is not None:
            lookback = dt.timedelta(days=now_days - 1) + dt.timedelta(seconds=features.MAX_WINDOW) + \
                dt.timedelta(days=self.label_delay_days)
            rows = reads.row_count(self.store, end - lookback, end)
        else:
            rows = 0
        key = (version, end, now_days, rows)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not (job.future.done() and job.future.exception() is not None):
                return job
            # The same days with more payments since: the latest job for them, while it is fresh.
            for (*days, _), earlier in reversed(self._jobs.items()):
                if tuple(days) == key[:3] and earlier.usable(self.fresh_for):
                    return earlier
            job = Job()
            _remember(self._jobs, key, job)

        def run() -> None:
            if not job.future.set_running_or_notify_cancel():
                return
            try:
                result = self._run(job, version, now_days, end)
                job.finished = time.monotonic()
                job.future.set_result(result)
            except Exception as exc:  # shown to the analyst; the log keeps the traceback
                if self.store.closed:  # the app is stopping: not a failure to report
                    log.info("drift of %s stopped: the database closed", version)
                else:
                    log.exception("drift of %s failed", version)
                job.future.set_exception(exc)

        self._pool.submit(run)
        return job

    def _run(self, job: Job, version: str, now_days: int, end: dt.date | None) -> Drift:
        store, delay = self.store, self.label_delay_days
        row = models.get_version(store, version)
        if row is None or row["train_start"] is None:
            raise ValueError(f"model version {version!r} has no training window")
        # New payments arrive through the API all day; they change "now" but not the training window, so the
        # reference is kept until the window's own rows change.
        key = (version, reads.row_count(store, row["train_start"], row["train_end"]))
        started = time.perf_counter()
        with self._lock:
            ref = self._references.get(key)
        if ref is None:
            ref = reference(store, version, label_delay_days=delay, progress=job.progress)
            with self._lock:
                _remember(self._references, key, ref)
            log.info("drift reference of %s: %d rows in %.1f s", version, ref.rows, time.perf_counter() - started)
        result = drift(store, version, now_days, end, label_delay_days=delay, ref=ref, progress=job.progress)
        job.progress(1.0, "Done")
        log.info("drift of %s to %s: %d rows in %.1f s, %.1f s in all", version, result.now[1], result.now_rows,
                 result.seconds, time.perf_counter() - started)
        return result
