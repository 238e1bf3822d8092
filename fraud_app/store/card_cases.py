"""Cases: one compromised card raises many alerts, so alerts are worked per card. A card's alerts (under the
model version in use) whose gaps are at most the case window apart form one case, named by its first alert's
transaction id. Decided alerts stay in their case, so a decision never renames one; a new alert within the
window of the last reopens it. An analyst takes a case and holds it until it is decided or released; notes form
a thread on it. Each alert's decision stays in `cases` (one row per alert), so decisions made before cases
existed carry over."""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import pandas as pd

from .cases import CaseError, order_by, record_decisions
from .db import Store
from .schema import alert_sql

SORTS = {"score": "top_score DESC", "amount": "at_risk DESC", "alerts": "alerts DESC", "age": "first_alert ASC",
         "newest": "last_alert DESC"}
# A column header's sort: the columns it may name, and how.
COLUMN_SORTS = {c: c for c in ("customer_id", "alerts", "undecided", "top_score", "at_risk", "first_alert",
                                "last_alert", "holder")}
STATUSES = ("undecided", "open", "escalated", "decided", "all")
# A case's state from its alerts' decisions: any alert still open keeps it open.
_STATE = ("CASE WHEN count(*) FILTER (WHERE a.status IS NULL) > 0 THEN 'open' "
          "WHEN count(*) FILTER (WHERE a.status = 'escalated') > 0 THEN 'escalated' ELSE 'decided' END")


def _alerts(cards: str = "") -> str:
    """SQL: every alert under $version with its case id, for the cards `cards` names (a condition on
    t.customer_id) or all. Parameters $version and $window (days)."""
    where = f"AND {cards}" if cards else ""
    return f"""
    WITH a AS (
        SELECT t.customer_id, t.transaction_id, t.timestamp, t.terminal_id, t.amount, t.channel,
               s.fraud_probability, s.decision, s.reasons, c.status, c.analyst, c.note, c.decided_at
        FROM scores s JOIN transactions t USING (transaction_id) LEFT JOIN cases c USING (transaction_id)
        WHERE s.model_version = $version AND {alert_sql('s.decision')} {where}),
    marked AS (
        SELECT *, CASE WHEN timestamp - lag(timestamp) OVER w > to_days(CAST($window AS INTEGER)) THEN 1 ELSE 0 END
               AS starts
        FROM a WINDOW w AS (PARTITION BY customer_id ORDER BY timestamp, transaction_id)),
    islands AS (
        SELECT *, sum(starts) OVER (PARTITION BY customer_id ORDER BY timestamp, transaction_id
                                    ROWS UNBOUNDED PRECEDING) AS island
        FROM marked)
    SELECT *, first_value(transaction_id) OVER (PARTITION BY customer_id, island
                                                ORDER BY timestamp, transaction_id) AS case_id
    FROM islands"""


def case_page(store: Store, version: str, window: int, *, status: str = "undecided", holder: str | None = None,
              start: dt.date | None = None, end: dt.date | None = None, min_score: float = 0.0,
              min_amount: float = 0.0, channel: str | None = None, customer_id: str | None = None,
              terminal_id: str | None = None, sort: str = "score", order: tuple[str, str] | None = None,
              page: int = 1, size: int = 25) -> tuple["pd.DataFrame", int]:
    """One page of cases, filtered and sorted in SQL, and how many match. `holder` keeps only the cases that
    person holds ("my cases"). Days, channel and terminal keep the cases with an alert that matches. `order`,
    a column (COLUMN_SORTS) and a direction, sorts instead of `sort`."""
    if status not in STATUSES:
        raise CaseError(f"status must be one of {', '.join(STATUSES)}")
    by = order_by(sort, SORTS, order, COLUMN_SORTS)
    params: dict = {"version": version, "window": int(window), "min_score": min_score, "min_amount": min_amount,
                    "size": int(size), "skip": int(max(page - 1, 0) * size)}
    having = ["top_score >= $min_score", "at_risk >= $min_amount"]
    if status != "all":
        having.append("state IN ('open', 'escalated')" if status == "undecided" else f"state = '{status}'")
    for name, column, value in (("channel", "a.channel", channel), ("terminal", "a.terminal_id", terminal_id)):
        if value:
            having.append(f"bool_or({column} = ${name})")
            params[name] = value
    if start:
        having.append("last_alert >= $start")
        params["start"] = dt.datetime.combine(start, dt.time())
    if end:
        having.append("first_alert < $end")
        params["end"] = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    cards = ""
    if customer_id:
        cards, params["card"] = "t.customer_id = $card", customer_id
    held = ""
    if holder:
        held, params["holder"] = "WHERE h.analyst = $holder", holder
    sql = f"""
    WITH alerts AS ({_alerts(cards)}),
    grouped AS (
        SELECT a.case_id, any_value(a.customer_id) AS customer_id, count(*) AS alerts,
               count(*) FILTER (WHERE a.status IS NULL OR a.status = 'escalated') AS undecided,
               max(a.fraud_probability) AS top_score,
               coalesce(sum(a.amount) FILTER (WHERE a.status IS NULL OR a.status = 'escalated'), 0) AS at_risk,
               min(a.timestamp) AS first_alert, max(a.timestamp) AS last_alert,
               arg_max(a.reasons, a.fraud_probability) AS reasons, {_STATE} AS state
        FROM alerts a GROUP BY a.case_id)
    SELECT g.*, h.analyst AS holder, h.taken_at, count(*) OVER () AS total
    FROM grouped g LEFT JOIN case_holds h USING (case_id) {held}
    {'WHERE' if not held else 'AND'} {' AND '.join(having)}
    ORDER BY {by}, g.case_id LIMIT $size OFFSET $skip"""
    cur = store.new_cursor()
    try:
        frame = cur.execute(sql, params).df()
        if len(frame):
            return frame.drop(columns="total"), int(frame["total"].iloc[0])
        if page > 1:  # a page past the end: count the cases anyway
            params |= {"size": 1, "skip": 0}
            counted = cur.execute(sql, params).df()
            return frame.drop(columns="total"), int(counted["total"].iloc[0]) if len(counted) else 0
        return frame.drop(columns="total"), 0
    finally:
        cur.close()


def case_alerts(store: Store, version: str, window: int, case_id: str, cur=None) -> "pd.DataFrame":
    """The alerts of one case, oldest first, with each one's decision so far (empty: no such case)."""
    cur = cur or store.cursor()
    card = cur.execute("SELECT customer_id FROM transactions WHERE transaction_id = ?", [case_id]).fetchall()
    if not card:
        return _empty(cur)
    return cur.execute(f"SELECT * FROM ({_alerts('t.customer_id = $card')}) WHERE case_id = $case "
                       "ORDER BY timestamp, transaction_id",
                       {"version": version, "window": int(window), "card": card[0][0], "case": case_id}).df()


def _empty(cur) -> "pd.DataFrame":
    return cur.execute(f"SELECT * FROM ({_alerts('false')}) LIMIT 0", {"version": "", "window": 0}).df()


def cases_of(store: Store, version: str, window: int, transaction_ids: Sequence[str], cur=None) -> dict[str, str]:
    """transaction id -> its case id, for those of them that are alerts under `version`."""
    cur = cur or store.cursor()
    ids = list(dict.fromkeys(transaction_ids))
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    cards = [r[0] for r in cur.execute(f"SELECT DISTINCT customer_id FROM transactions WHERE transaction_id IN "
                                       f"({marks})", ids).fetchall()]
    if not cards:
        return {}
    rows = cur.execute(f"SELECT transaction_id, case_id FROM ({_alerts('list_contains($cards, t.customer_id)')}) "
                       "WHERE list_contains($ids, transaction_id)",
                       {"version": version, "window": int(window), "cards": cards, "ids": ids}).fetchall()
    return dict(rows)


def holder_of(store: Store, case_id: str, cur=None) -> tuple[str, dt.datetime] | None:
    rows = (cur or store.cursor()).execute("SELECT analyst, taken_at FROM case_holds WHERE case_id = ?",
                                           [case_id]).fetchall()
    return rows[0] if rows else None


def _audit(cur, now: dt.datetime, actor: str, action: str, case_id: str, old: str | None, new: str | None,
           note: str | None = None) -> None:
    cur.execute("INSERT INTO audit_log (logged_at, actor, action, entity, entity_id, old_value, new_value, note) "
                "VALUES (?, ?, ?, 'case', ?, ?, ?, ?)", [now, actor, action, case_id, old, new, note])


def _open_case(cur, store: Store, version: str, window: int, case_id: str) -> "pd.DataFrame":
    alerts = case_alerts(store, version, window, case_id, cur)
    if alerts.empty:
        raise CaseError(f"no case {case_id!r} under model version {version}")
    return alerts


def hold(store: Store, version: str, window: int, case_id: str, analyst: str, actor: str,
         now: dt.datetime, force: bool = False) -> str | None:
    """Give the case to `analyst` (taking it: analyst == actor). Held by someone else, it is refused unless
    `force` (a lead assigning). Returns who held it before."""
    with store.transaction() as cur:
        alerts = _open_case(cur, store, version, window, case_id)
        if alerts["status"].notna().all() and not (alerts["status"] == "escalated").any():
            raise CaseError(f"case {case_id} is decided: there is nothing left to take")
        before = holder_of(store, case_id, cur)
        if before and before[0] != analyst and not force:
            raise CaseError(f"case {case_id} is held by {before[0]} since {before[1]:%Y-%m-%d %H:%M}")
        if before and before[0] == analyst:
            return analyst
        cur.execute("INSERT OR REPLACE INTO case_holds (case_id, customer_id, analyst, taken_at) VALUES (?, ?, ?, ?)",
                    [case_id, alerts["customer_id"].iloc[0], analyst, now])
        _audit(cur, now, actor, "take" if analyst == actor else "assign", case_id, before and before[0], analyst)
    return before and before[0]


def release(store: Store, case_id: str, actor: str, now: dt.datetime, force: bool = False) -> str | None:
    """Let go of a case; only its holder may, unless `force` (a lead). Returns who held it (None: nobody)."""
    with store.transaction() as cur:
        before = holder_of(store, case_id, cur)
        if before is None:
            return None
        if before[0] != actor and not force:
            raise CaseError(f"case {case_id} is held by {before[0]}: only they (or a lead) may release it")
        cur.execute("DELETE FROM case_holds WHERE case_id = ?", [case_id])
        _audit(cur, now, actor, "release", case_id, before[0], None)
    return before[0]


def decide(store: Store, version: str, window: int, case_id: str, status: str, analyst: str, note: str | None,
           now: dt.datetime, transaction_ids: Sequence[str] | None = None) -> list[str]:
    """Decide the case's undecided alerts (or only `transaction_ids` among its alerts), in one transaction with
    their labels, audit rows and the note on the thread. Someone else's case is refused, naming them. Once no
    alert is left open, the hold ends. Returns the transaction ids decided."""
    with store.transaction() as cur:
        alerts = _open_case(cur, store, version, window, case_id)
        held = holder_of(store, case_id, cur)
        if held and held[0] != analyst:
            raise CaseError(f"case {case_id} is held by {held[0]}: only they may decide it")
        if transaction_ids:
            ids = list(dict.fromkeys(transaction_ids))
            strangers = sorted(set(ids) - set(alerts["transaction_id"]))
            if strangers:
                raise CaseError(f"{strangers[0]} is not an alert of case {case_id}")
        else:
            waiting = alerts["status"].isna() | (alerts["status"] == "escalated")
            ids = alerts.loc[waiting, "transaction_id"].tolist()
            if not ids:
                raise CaseError(f"case {case_id} has no undecided alerts")
        record_decisions(cur, ids, status, analyst, note, now)
        if note:
            _write_note(cur, case_id, alerts["customer_id"].iloc[0], analyst, now, note)
        left = alerts["status"].isna() & ~alerts["transaction_id"].isin(ids)
        if held and not left.any():
            cur.execute("DELETE FROM case_holds WHERE case_id = ?", [case_id])
    return ids


def _write_note(cur, case_id: str, customer_id: str, author: str, now: dt.datetime, text: str) -> None:
    cur.execute("INSERT INTO case_notes (case_id, customer_id, author, written_at, text) VALUES (?, ?, ?, ?, ?)",
                [case_id, customer_id, author, now, text])


def add_note(store: Store, version: str, window: int, case_id: str, author: str, text: str,
             now: dt.datetime) -> None:
    text = (text or "").strip()
    if not text:
        raise CaseError("note: write something first")
    with store.transaction() as cur:
        alerts = _open_case(cur, store, version, window, case_id)
        _write_note(cur, case_id, alerts["customer_id"].iloc[0], author, now, text)
        _audit(cur, now, author, "note", case_id, None, None, text)


def thread(store: Store, version: str, window: int, case_id: str) -> "pd.DataFrame":
    """The case's notes, oldest first: those written on it, and the notes of alert decisions made one alert
    at a time (before cases, or from Investigate) that are not already there."""
    cur = store.cursor()
    return cur.execute(f"""
        SELECT written_at, author, text FROM case_notes WHERE case_id = $case
        UNION
        SELECT DISTINCT a.decided_at, a.analyst, a.note FROM ({_alerts('t.customer_id = $card')}) a
        WHERE a.case_id = $case AND a.note IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM case_notes n WHERE n.case_id = $case AND n.text = a.note AND n.author = a.analyst)
        ORDER BY 1""", {"case": case_id, "version": version, "window": int(window),
                        "card": (cur.execute("SELECT customer_id FROM transactions WHERE transaction_id = ?",
                                             [case_id]).fetchone() or [""])[0]}).df()
