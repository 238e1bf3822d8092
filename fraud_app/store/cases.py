"""Case decisions from the review queue: the case's status, the label it implies, and an audit entry for
every change, all in one transaction."""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    import pandas as pd

from .db import Store
from .schema import alert_sql, score_sql

# A decision and the label it records (None: no label, the case stays open for someone else).
DECISIONS = {"confirmed_fraud": True, "legitimate": False, "escalated": None}


class CaseError(ValueError):
    """A decision that cannot be recorded; the message names what is wrong."""


def decide(store: Store, transaction_ids: Sequence[str], status: str, analyst: str, note: str | None = None,
           now: dt.datetime | None = None, held: Callable | None = None) -> int:
    """Record one decision for each transaction (a bulk action is one transaction). Returns how many.
    `held(cur, ids)`, if given, may refuse (raise CaseError) inside the same transaction: alerts of a case
    someone else holds."""
    ids = list(dict.fromkeys(transaction_ids))
    with store.transaction() as cur:
        if held is not None:
            held(cur, ids)
        record_decisions(cur, ids, status, analyst, note, now)
    return len(ids)


def record_decisions(cur, transaction_ids: Sequence[str], status: str, analyst: str, note: str | None,
                     now: dt.datetime | None) -> None:
    """Inside the caller's transaction: each alert's decision, the label it implies, and an audit row."""
    if status not in DECISIONS:
        raise CaseError(f"status must be one of {', '.join(DECISIONS)} (got {status!r})")
    ids = list(dict.fromkeys(transaction_ids))
    if not ids:
        raise CaseError("no transactions selected")
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    marks = ", ".join("?" * len(ids))
    found = cur.execute(f"SELECT t.transaction_id, c.status FROM transactions t LEFT JOIN cases c "
                        f"USING (transaction_id) WHERE t.transaction_id IN ({marks})", ids).fetchall()
    if len(found) != len(ids):
        missing = sorted(set(ids) - {r[0] for r in found})
        raise CaseError(f"no stored transaction {missing[0]!r}" + (f" (and {len(missing) - 1} more)"
                                                                    if len(missing) > 1 else ""))
    old = dict(found)
    cur.executemany("INSERT OR REPLACE INTO cases (transaction_id, status, analyst, note, decided_at) "
                    "VALUES (?, ?, ?, ?, ?)", [[i, status, analyst, note, now] for i in ids])
    label = DECISIONS[status]
    if label is not None:
        cur.execute(f"UPDATE transactions SET is_fraud = ?, label_time = ? WHERE transaction_id IN ({marks})",
                    [label, now, *ids])
        cur.executemany("INSERT INTO labels (transaction_id, is_fraud, label_time, source, actor) "
                        "VALUES (?, ?, ?, 'analyst', ?)", [[i, label, now, analyst] for i in ids])
    cur.executemany("INSERT INTO audit_log (logged_at, actor, action, entity, entity_id, old_value, new_value, "
                    "note) VALUES (?, ?, 'case', 'cases', ?, ?, ?, ?)",
                    [[now, analyst, i, old[i] or "open", status, note] for i in ids])


def case_of(store: Store, transaction_id: str) -> dict | None:
    rows = store.cursor().execute("SELECT transaction_id, status, analyst, note, decided_at FROM cases "
                                  "WHERE transaction_id = ?", [transaction_id]).fetchall()
    return dict(zip(("transaction_id", "status", "analyst", "note", "decided_at"), rows[0])) if rows else None


def _days(where: list[str], params: list, start: dt.date | None, end: dt.date | None) -> None:
    """Add `start <= timestamp < end + 1 day` (either side optional) to a WHERE list."""
    if start:
        where.append("t.timestamp >= ?")
        params.append(dt.datetime.combine(start, dt.time()))
    if end:
        where.append("t.timestamp < ?")
        params.append(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()))


STATUSES = ("undecided", "open", "escalated", "confirmed_fraud", "legitimate", "all")
SORTS = {"score": "s.fraud_probability DESC", "amount": "t.amount DESC", "age": "t.timestamp ASC"}
# The queue's columns an analyst may sort by (a click on the column's header), and what each sorts on.
COLUMN_SORTS = {"transaction_id": "t.transaction_id", "timestamp": "t.timestamp", "amount": "t.amount",
                "score": "s.fraud_probability", "decision": "s.decision", "customer_id": "t.customer_id",
                "terminal_id": "t.terminal_id", "channel": "t.channel", "status": "coalesce(c.status, 'open')",
                "analyst": "c.analyst"}
DIRECTIONS = {"asc": "ASC", "desc": "DESC"}


def order_by(sort: str, sorts: dict[str, str], order, columns: dict[str, str]) -> str:
    """SQL to sort a page by: `order`, a (column of `columns`, "asc" or "desc") pair from a header click, or else
    the named `sort`. Anything else is a CaseError; no caller's text reaches the SQL."""
    if sort not in sorts:
        raise CaseError(f"sort must be one of {', '.join(sorts)}")
    if order is None:
        return sorts[sort]
    column, direction = tuple(order) if isinstance(order, (tuple, list)) and len(order) == 2 else (None, None)
    if str(column) not in columns or str(direction) not in DIRECTIONS:
        raise CaseError(f"order must be one of {', '.join(columns)} with asc or desc (got {order!r})")
    return f"{columns[str(column)]} {DIRECTIONS[str(direction)]} NULLS LAST"


def alert_page(store: Store, version: str, *, status: str = "undecided", start: dt.date | None = None,
               end: dt.date | None = None, min_score: float = 0.0, min_amount: float = 0.0,
               channel: str | None = None, customer_id: str | None = None, terminal_id: str | None = None,
               sort: str = "score", order: tuple[str, str] | None = None, page: int = 1,
               size: int = 25) -> tuple["pd.DataFrame", int]:
    """One page of alerts (review or decline) under `version`, filtered and sorted in SQL, and the total.
    `order`, a (column of COLUMN_SORTS, "asc" or "desc") pair, sorts instead of `sort`."""
    if status not in STATUSES:
        raise CaseError(f"status must be one of {', '.join(STATUSES)}")
    by = order_by(sort, SORTS, order, COLUMN_SORTS)
    where = ["s.model_version = ?", alert_sql("s.decision"), "s.fraud_probability >= ?",
             "t.amount >= ?"]
    params: list = [version, min_score, min_amount]
    state = {"undecided": "(c.status IS NULL OR c.status = 'escalated')", "open": "c.status IS NULL",
             "all": "true"}.get(status, "c.status = ?")
    where.append(state)
    if status in ("escalated", "confirmed_fraud", "legitimate"):
        params.append(status)
    for column, value in (("t.channel", channel), ("t.customer_id", customer_id), ("t.terminal_id", terminal_id)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    _days(where, params, start, end)
    base = (f"FROM scores s JOIN transactions t USING (transaction_id) LEFT JOIN cases c USING (transaction_id) "
            f"WHERE {' AND '.join(where)}")
    cur = store.new_cursor()
    try:
        total = cur.execute(f"SELECT count(*) {base}", params).fetchall()[0][0]
        frame = cur.execute(
            f"SELECT t.transaction_id, t.timestamp, t.customer_id, t.terminal_id, t.amount, t.channel, "
            f"{score_sql('s.fraud_probability')} AS score, s.decision, coalesce(c.status, 'open') AS status, c.analyst, "
            f"s.reasons {base} ORDER BY {by}, t.transaction_id LIMIT ? OFFSET ?",
            [*params, int(size), int(max(page - 1, 0) * size)]).df()
    finally:
        cur.close()
    return frame, total


EXPORTS = {"flagged": alert_sql("s.decision"), "fraud": "coalesce(t.is_fraud, false)",
           "all": f"({alert_sql('s.decision')} OR coalesce(t.is_fraud, false) OR c.status IS NOT NULL)"}


def export_rows(store: Store, version: str, status: str = "flagged", start: dt.date | None = None,
                end: dt.date | None = None) -> "pd.DataFrame":
    """The cases for an investigator's file: payment, score, decision, reasons (JSON), label and the
    analyst's decision and note. status: flagged (alerts), fraud (labelled fraud) or all."""
    if status not in EXPORTS:
        raise CaseError(f"status must be one of {', '.join(EXPORTS)} (got {status!r})")
    where, params = [EXPORTS[status]], [version]
    _days(where, params, start, end)
    cur = store.new_cursor()
    try:
        return cur.execute(
            "SELECT t.transaction_id, t.timestamp, t.customer_id, t.terminal_id, t.amount, t.currency, t.channel, "
            "s.fraud_probability, s.risk_level, s.decision, s.reasons, t.is_fraud, "
            "coalesce(c.status, 'open') AS case_status, c.analyst, c.note, c.decided_at, s.model_version "
            "FROM transactions t JOIN scores s ON s.transaction_id = t.transaction_id AND s.model_version = ? "
            f"LEFT JOIN cases c ON c.transaction_id = t.transaction_id WHERE {' AND '.join(where)} "
            "ORDER BY t.timestamp, t.transaction_id", params).df()
    finally:
        cur.close()
