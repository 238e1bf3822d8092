"""Named API tokens: one row each, holding the sha256 of its secret (never the secret), its scopes, who made it
and when, and when it was revoked. Creating and revoking write an audit entry in the same transaction."""
from __future__ import annotations

import datetime as dt
from typing import Any

from .db import Store

_COLUMNS = ("name", "sha256", "scopes", "created_at", "created_by", "revoked_at")


class TokenError(ValueError):
    """A token that cannot be created or revoked as asked; the message names it."""


def all_tokens(store: Store) -> list[dict[str, Any]]:
    """Every token, revoked ones included, oldest first."""
    rows = store.cursor().execute(f"SELECT {', '.join(_COLUMNS)} FROM api_tokens ORDER BY created_at, name").fetchall()
    return [dict(zip(_COLUMNS, row)) for row in rows]


def add_token(store: Store, name: str, sha256: str, scopes: list[str], actor: str | None, now: dt.datetime) -> None:
    with store.transaction() as cur:
        if cur.execute("SELECT 1 FROM api_tokens WHERE name = ?", [name]).fetchone():
            raise TokenError(f"name: a token named {name!r} exists already (a revoked one keeps its name)")
        cur.execute("INSERT INTO api_tokens (name, sha256, scopes, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
                    [name, sha256, scopes, now, actor])
        cur.execute("INSERT INTO audit_log (actor, action, entity, entity_id, new_value) "
                    "VALUES (?, 'token_create', 'api_tokens', ?, ?)", [actor, name, ",".join(scopes)])


def revoke_token(store: Store, name: str, actor: str | None, now: dt.datetime) -> None:
    with store.transaction() as cur:
        found = cur.execute("SELECT revoked_at FROM api_tokens WHERE name = ?", [name]).fetchone()
        if found is None:
            raise TokenError(f"name: no token named {name!r}")
        if found[0] is not None:
            raise TokenError(f"name: the token {name!r} was revoked already, at {found[0]:%Y-%m-%d %H:%M:%S} UTC")
        cur.execute("UPDATE api_tokens SET revoked_at = ? WHERE name = ?", [now, name])
        cur.execute("INSERT INTO audit_log (actor, action, entity, entity_id, old_value, new_value) "
                    "VALUES (?, 'token_revoke', 'api_tokens', ?, 'active', 'revoked')", [actor, name])
