"""Aggregates for the analyst views, computed in SQL so no session holds the transactions table."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from .db import Store

# Scores of one model version, joined to their transactions, within a period. Parameters: $version, $start,
# $end (exclusive).
_SCORED = """
SELECT t.transaction_id, t.timestamp, t.customer_id, t.terminal_id, t.amount, coalesce(t.is_fraud, false) AS fraud,
       s.fraud_probability AS p, s.decision IN ('review', 'decline') AS alert
FROM transactions t JOIN scores s ON s.transaction_id = t.transaction_id AND s.model_version = $version
WHERE t.timestamp >= $start AND t.timestamp < $end
"""


def _params(version: str, start: dt.date, end: dt.date) -> dict:
    return {"version": version, "start": dt.datetime.combine(start, dt.time()),
            "end": dt.datetime.combine(end + dt.timedelta(days=1), dt.time())}


def _frame(store: Store, sql: str, params: dict) -> pd.DataFrame:
    cur = store.new_cursor()
    try:
        return cur.sql(sql, params=params).df()
    finally:
        cur.close()


def scored_version(store: Store) -> str | None:
    """The version the views show: the one in use if it has scores (a promoted version is scored in the
    background), else the latest that has scores."""
    row = store.cursor().execute(
        "SELECT coalesce((SELECT version FROM model_versions WHERE status = 'active' "
        "AND EXISTS (SELECT 1 FROM scores WHERE model_version = version)), "
        "(SELECT model_version FROM scores ORDER BY scored_at DESC LIMIT 1))").fetchall()
    return row[0][0] if row else None


def kpis(store: Store, version: str, start: dt.date, end: dt.date) -> dict:
    frame = _frame(store, f"""
        SELECT count(*) AS transactions, coalesce(sum(amount), 0) AS volume, count(*) FILTER (alert) AS alerts,
               count(*) FILTER (fraud) AS frauds,
               coalesce(sum(amount) FILTER (fraud AND alert), 0) AS fraud_caught,
               coalesce(sum(amount) FILTER (fraud AND NOT alert), 0) AS fraud_missed
        FROM ({_SCORED})""", _params(version, start, end))
    out = frame.iloc[0].to_dict()
    out["alert_rate"] = out["alerts"] / out["transactions"] if out["transactions"] else 0.0
    return out


def daily(store: Store, version: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    return _frame(store, f"""
        SELECT CAST(timestamp AS DATE) AS day, count(*) AS transactions, count(*) FILTER (alert) AS alerts,
               count(*) FILTER (fraud) AS frauds
        FROM ({_SCORED}) GROUP BY ALL ORDER BY day""", _params(version, start, end))


def score_histogram(store: Store, version: str, start: dt.date, end: dt.date, bins: int = 25) -> pd.DataFrame:
    """Counts per probability bin, genuine and fraud apart."""
    return _frame(store, f"""
        SELECT least(floor(p * {bins}), {bins - 1}) / {bins} AS bin, fraud, count(*) AS n
        FROM ({_SCORED}) GROUP BY ALL ORDER BY bin""", _params(version, start, end))


def top_risky(store: Store, version: str, start: dt.date, end: dt.date, by: str, limit: int = 10) -> pd.DataFrame:
    """The terminals (by='terminal_id') or cards (by='customer_id') with the most alerts in the period."""
    if by not in ("terminal_id", "customer_id"):
        raise ValueError(f"by must be terminal_id or customer_id, not {by!r}")
    return _frame(store, f"""
        SELECT {by}, count(*) AS transactions, count(*) FILTER (alert) AS alerts, count(*) FILTER (fraud) AS frauds,
               round(max(p), 3) AS top_score, round(sum(amount) FILTER (alert), 2) AS alert_amount
        FROM ({_SCORED}) GROUP BY ALL HAVING count(*) FILTER (alert) > 0
        ORDER BY alerts DESC, top_score DESC LIMIT {int(limit)}""", _params(version, start, end))


def has_scores(store: Store, version: str) -> bool:
    return bool(store.cursor().execute("SELECT EXISTS (SELECT 1 FROM scores WHERE model_version = ?)",
                                       [version]).fetchone()[0])
