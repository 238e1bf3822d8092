"""Audit rows that belong to no single table: sessions and refused actions."""
from __future__ import annotations

from .db import Store


def record_refusal(store: Store, actor: str, action: str, reason: str) -> None:
    """A refused attempt, so a lead can see who tried what (action 'refused', entity the action tried)."""
    store.cursor().execute("INSERT INTO audit_log (actor, action, entity, note) VALUES (?, 'refused', ?, ?)",
                           [actor, action, reason])


def record_session(store: Store, actor: str, role: str) -> None:
    """A signed-in user opened the app, with the role they had then (action 'sign_in', new_value the role)."""
    store.cursor().execute("INSERT INTO audit_log (actor, action, entity, new_value) "
                           "VALUES (?, 'sign_in', 'session', ?)", [actor, role])


def refusals(store: Store, limit: int = 100) -> list[dict]:
    rows = store.cursor().execute(
        "SELECT logged_at, actor, entity, note FROM audit_log WHERE action = 'refused' "
        "ORDER BY audit_id DESC LIMIT ?", [limit]).fetchall()
    return [dict(zip(("logged_at", "actor", "action", "note"), row)) for row in rows]
