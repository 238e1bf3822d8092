"""Case decisions from the review queue: the case's status, the label it implies, and an audit entry for
every change, all in one transaction."""
from __future__ import annotations

import datetime as dt
from typing import Sequence

from .db import Store

# A decision and the label it records (None: no label, the case stays open for someone else).
DECISIONS = {"confirmed_fraud": True, "legitimate": False, "escalated": None}


class CaseError(ValueError):
    """A decision that cannot be recorded; the message names what is wrong."""


def decide(store: Store, transaction_ids: Sequence[str], status: str, analyst: str, note: str | None = None,
           now: dt.datetime | None = None) -> int:
    """Record one decision for each transaction (a bulk action is one transaction). Returns how many."""
    if status not in DECISIONS:
        raise CaseError(f"status must be one of {', '.join(DECISIONS)} (got {status!r})")
    ids = list(dict.fromkeys(transaction_ids))
    if not ids:
        raise CaseError("no transactions selected")
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    marks = ", ".join("?" * len(ids))
    with store.transaction() as cur:
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
    return len(ids)


def case_of(store: Store, transaction_id: str) -> dict | None:
    rows = store.cursor().execute("SELECT transaction_id, status, analyst, note, decided_at FROM cases "
                                  "WHERE transaction_id = ?", [transaction_id]).fetchall()
    return dict(zip(("transaction_id", "status", "analyst", "note", "decided_at"), rows[0])) if rows else None
