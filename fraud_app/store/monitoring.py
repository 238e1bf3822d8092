"""Reads for drift monitoring: the row counts that key its caches, and a model version's stored scores."""
from __future__ import annotations

import datetime as dt

import numpy as np

from .db import Store


def _bounds(start: dt.date, end: dt.date) -> list[dt.datetime]:
    """[start, end] as whole days: midnight of start, midnight after end."""
    return [dt.datetime.combine(start, dt.time()), dt.datetime.combine(end + dt.timedelta(days=1), dt.time())]


def row_count(store: Store, start: dt.date | None = None, end: dt.date | None = None) -> int:
    """Stored transactions, all of them or those of the days [start, end]."""
    if start is None or end is None:
        return store.cursor().execute("SELECT count(*) FROM transactions").fetchone()[0]
    return store.cursor().execute("SELECT count(*) FROM transactions WHERE timestamp >= ? AND timestamp < ?",
                                  _bounds(start, end)).fetchone()[0]


def scores_between(store: Store, version: str, start: dt.date, end: dt.date) -> np.ndarray:
    """The fraud probabilities `version` gave the transactions of the days [start, end], in no order."""
    cur = store.new_cursor()  # callers run on a worker thread; the thread's shared cursor is not theirs
    try:
        found = cur.execute(
            "SELECT s.fraud_probability FROM scores s JOIN transactions t USING (transaction_id) "
            "WHERE s.model_version = ? AND t.timestamp >= ? AND t.timestamp < ?",
            [version, *_bounds(start, end)]).fetchnumpy()
        return np.asarray(found["fraud_probability"], dtype=float)
    finally:
        cur.close()
