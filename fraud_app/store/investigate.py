"""Queries behind the Investigate view: one transaction in full, its card's payments, its terminal's days,
and the three columns of the all-transactions raster."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .analytics import _frame
from .db import Store
from .schema import alert_sql, score_sql

ALERT = alert_sql("s.decision")


def transaction(store: Store, transaction_id: str, version: str | None = None) -> dict | None:
    """The transaction with its score (under `version` if it has one, else its latest), its case and how
    its label was last set. None if no such transaction."""
    frame = _frame(store, """
        SELECT t.*, s.model_version, s.fraud_probability, s.risk_score, s.risk_level, s.decision, s.reasons,
               s.scored_at, c.status AS case_status, c.analyst, c.note, c.decided_at,
               l.source AS label_source, l.actor AS label_actor
        FROM transactions t
        LEFT JOIN (SELECT * FROM scores WHERE transaction_id = $id
                   ORDER BY model_version = $version DESC NULLS LAST, scored_at DESC LIMIT 1) s USING (transaction_id)
        LEFT JOIN cases c USING (transaction_id)
        LEFT JOIN (SELECT * FROM labels WHERE transaction_id = $id ORDER BY label_id DESC LIMIT 1) l
               USING (transaction_id)
        WHERE t.transaction_id = $id""", {"id": transaction_id, "version": version})
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    return {k: None if v is pd.NaT or (isinstance(v, float) and np.isnan(v)) else v for k, v in row.items()}


def card_history(store: Store, customer_id: str, version: str, limit: int = 2000) -> pd.DataFrame:
    """The card's payments (its latest `limit`; a card has a few hundred), oldest first, with their scores."""
    return _frame(store, f"""
        SELECT * FROM (
            SELECT t.transaction_id, t.timestamp, t.terminal_id, t.amount, t.channel, t.country,
                   {score_sql('s.fraud_probability')} AS score, s.decision, coalesce({ALERT}, false) AS alert,
                   coalesce(t.is_fraud, false) AS fraud
            FROM transactions t LEFT JOIN scores s ON s.transaction_id = t.transaction_id AND s.model_version = $version
            WHERE t.customer_id = $card ORDER BY t.timestamp DESC, t.transaction_id LIMIT {int(limit)}
        ) ORDER BY timestamp, transaction_id""", {"card": customer_id, "version": version})


def terminal_daily(store: Store, terminal_id: str, version: str) -> pd.DataFrame:
    """Per day from the terminal's first payment to its last (quiet days as zeros): payments, alerts, payments
    labelled fraud, and the fraud share of its last 30 days' payments."""
    return _frame(store, f"""
        WITH d AS (
            SELECT CAST(t.timestamp AS DATE) AS day, count(*) AS transactions,
                   count(*) FILTER ({ALERT}) AS alerts, count(*) FILTER (t.is_fraud) AS frauds
            FROM transactions t LEFT JOIN scores s ON s.transaction_id = t.transaction_id AND s.model_version = $version
            WHERE t.terminal_id = $terminal GROUP BY ALL
        ),
        days AS (
            SELECT CAST(g.day AS DATE) AS day, coalesce(transactions, 0) AS transactions,
                   coalesce(alerts, 0) AS alerts, coalesce(frauds, 0) AS frauds
            FROM generate_series((SELECT min(day) FROM d), (SELECT max(day) FROM d), INTERVAL 1 DAY) g(day)
            LEFT JOIN d ON d.day = CAST(g.day AS DATE)
        )
        SELECT *, sum(frauds) OVER w / greatest(sum(transactions) OVER w, 1) AS fraud_share_30d
        FROM days WINDOW w AS (ORDER BY day ROWS 29 PRECEDING) ORDER BY day""",
                  {"terminal": terminal_id, "version": version})


def score_points(store: Store, version: str) -> dict[str, np.ndarray]:
    """time, amount and score of every payment scored by `version`, as numpy columns."""
    cur = store.new_cursor()
    try:
        return cur.sql("SELECT t.timestamp AS time, t.amount, s.fraud_probability AS score FROM transactions t "
                       "JOIN scores s ON s.transaction_id = t.transaction_id AND s.model_version = $version",
                       params={"version": version}).fetchnumpy()
    finally:
        cur.close()


def history_copy(store: Store, customer_id: str, terminal_id: str, until: dt.datetime) -> Store:
    """A private in-memory Store holding the card's and the terminal's payments before `until`. A payment's
    features read nothing else (every window is per card or per terminal), so features computed on this copy
    equal the bulk ones at a fraction of the cost of a window over every card. The caller closes it."""
    cur = store.new_cursor()
    try:
        rows = cur.sql("SELECT * FROM transactions WHERE (customer_id = $card OR terminal_id = $terminal) "
                       "AND timestamp < $until",
                       params={"card": customer_id, "terminal": terminal_id, "until": until}).to_arrow_table()
    finally:
        cur.close()
    copy = Store(":memory:", migrate_to=0)  # a scratch copy needs only the rows, not the app's schema
    out = copy.cursor()
    out.register("copied", rows)
    out.execute("CREATE TABLE transactions AS SELECT * FROM copied")
    out.unregister("copied")
    return copy
