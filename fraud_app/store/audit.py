"""Audit rows that belong to no single table: refused actions."""
from __future__ import annotations

from .db import Store


def record_refusal(store: Store, actor: str, action: str, reason: str) -> None:
    """A refused attempt, so a lead can see who tried what (action 'refused', entity the action tried)."""
    store.cursor().execute("INSERT INTO audit_log (actor, action, entity, note) VALUES (?, 'refused', ?, ?)",
                           [actor, action, reason])


def refusals(store: Store, limit: int = 100) -> list[dict]:
    rows = store.cursor().execute(
        "SELECT logged_at, actor, entity, note FROM audit_log WHERE action = 'refused' "
        "ORDER BY audit_id DESC LIMIT ?", [limit]).fetchall()
    return [dict(zip(("logged_at", "actor", "action", "note"), row)) for row in rows]
