"""Model versions: the registry's rows, promotion history and the audit trail of both."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .db import Store
from .schema import RISK_LEVELS, decision_sql

_COLUMNS = ("version", "created_at", "train_start", "train_end", "params", "features", "metrics", "thresholds",
            "library_versions", "sha256", "path", "status", "promoted_at")
_JSON = {"params", "features", "metrics", "thresholds", "library_versions"}


def _row(values) -> dict[str, Any]:
    row = dict(zip(_COLUMNS, values))
    for key in _JSON:
        row[key] = json.loads(row[key]) if row[key] is not None else None
    return row


def next_version(store: Store) -> str:
    n = store.cursor().execute("SELECT count(*) FROM model_versions").fetchone()[0]
    return f"v{n + 1}"


def add_version(store: Store, row: dict[str, Any], actor: str | None) -> None:
    values = [json.dumps(row.get(c)) if c in _JSON else row.get(c) for c in _COLUMNS[:-2]]
    with store.transaction() as cur:
        cur.execute(f"INSERT INTO model_versions ({', '.join(_COLUMNS[:-2])}) "
                    f"VALUES ({', '.join('?' * (len(_COLUMNS) - 2))})", values)
        cur.execute("INSERT INTO audit_log (actor, action, entity, entity_id, new_value) "
                    "VALUES (?, 'train', 'model_versions', ?, ?)", [actor, row["version"], row["path"]])


def get_version(store: Store, version: str) -> dict[str, Any] | None:
    found = store.cursor().execute(f"SELECT {', '.join(_COLUMNS)} FROM model_versions WHERE version = ?",
                                   [version]).fetchone()
    return _row(found) if found else None


def active_version(store: Store) -> dict[str, Any] | None:
    found = store.cursor().execute(f"SELECT {', '.join(_COLUMNS)} FROM model_versions "
                                   "WHERE status = 'active'").fetchone()
    return _row(found) if found else None


def list_versions(store: Store) -> list[dict[str, Any]]:
    rows = store.cursor().execute(f"SELECT {', '.join(_COLUMNS)} FROM model_versions "
                                  "ORDER BY created_at, version").fetchall()
    return [_row(r) for r in rows]


def set_active(store: Store, version: str, actor: str | None, action: str = "promote") -> str | None:
    """Make version the one in use; the previous one is retired. Returns the previous version."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with store.transaction() as cur:
        old = cur.execute("SELECT version FROM model_versions WHERE status = 'active'").fetchone()
        old = old[0] if old else None
        # A rolled-back version is not a rollback target itself, so repeated rollbacks walk back in time.
        cur.execute("UPDATE model_versions SET status = ? WHERE status = 'active'",
                    ["rolled_back" if action == "rollback" else "retired"])
        cur.execute("UPDATE model_versions SET status = 'active', promoted_at = ? WHERE version = ?", [now, version])
        cur.execute("INSERT INTO audit_log (actor, action, entity, entity_id, old_value, new_value) "
                    "VALUES (?, ?, 'model_versions', ?, ?, ?)", [actor, action, version, old, version])
    return old


def previously_active(store: Store) -> str | None:
    """The most recently used version that was replaced by a promotion (not by a rollback)."""
    found = store.cursor().execute(
        "SELECT version FROM model_versions WHERE status = 'retired' AND promoted_at IS NOT NULL "
        "ORDER BY promoted_at DESC LIMIT 1").fetchone()
    return found[0] if found else None


def set_thresholds(store: Store, version: str, thresholds: dict[str, float], actor: str | None,
                   figures: dict[str, float] | None = None) -> int:
    """New review and decline thresholds for a version; its stored decisions follow at once, so the review
    queue matches what live scoring now does. `figures` replace those of its metrics (the ones at the
    thresholds). Returns the number of stored decisions that changed."""
    review, decline = float(thresholds["review"]), float(thresholds["decline"])
    with store.transaction() as cur:
        old = cur.execute("SELECT thresholds, metrics FROM model_versions WHERE version = ?", [version]).fetchone()
        if old is None:
            raise KeyError(version)
        metrics = json.loads(old[1]) if old[1] is not None else None
        if figures:
            metrics = {**(metrics or {}), **figures}
        cur.execute("UPDATE model_versions SET thresholds = ?, metrics = ? WHERE version = ?",
                    [json.dumps({"review": review, "decline": decline}), json.dumps(metrics), version])
        changed = cur.execute(
            "UPDATE scores SET decision = d.decision, risk_level = d.level FROM ("
            f"  SELECT transaction_id, {decision_sql('fraud_probability')} AS decision,"
            f"  {decision_sql('fraud_probability', RISK_LEVELS)} AS level"
            "  FROM scores WHERE model_version = $version) d "
            "WHERE scores.model_version = $version AND scores.transaction_id = d.transaction_id "
            "AND scores.decision <> d.decision",
            {"review": review, "decline": decline, "version": version}).fetchone()[0]
        cur.execute("INSERT INTO audit_log (actor, action, entity, entity_id, old_value, new_value) "
                    "VALUES (?, 'thresholds', 'model_versions', ?, ?, ?)",
                    [actor, version, old[0], json.dumps({"review": review, "decline": decline})])
    return int(changed)
