"""Stored scores: one row per transaction and model version, with its top reasons as JSON."""
from __future__ import annotations

import pyarrow as pa

from .db import Store

REASONS = 3


def save_scores(store: Store, table: pa.Table, actor: str | None = None) -> int:
    """Replace the scores of these transactions under the same model version, in one transaction.
    `table` has transaction_id, model_version, fraud_probability, risk_score, risk_level, decision,
    scored_at, and reason{i}_feature / _value / _contribution for i in 1..REASONS."""
    reasons = ", ".join(f"{{'feature': reason{i}_feature, 'value': reason{i}_value, "
                        f"'contribution': reason{i}_contribution}}" for i in range(1, REASONS + 1))
    cur = store.new_cursor()
    try:
        cur.register("incoming", table)
        with store.transaction(cur):
            cur.execute("DELETE FROM scores USING incoming WHERE scores.transaction_id = incoming.transaction_id "
                        "AND scores.model_version = incoming.model_version")
            cur.execute("INSERT INTO scores (transaction_id, model_version, fraud_probability, risk_score, "
                        "risk_level, decision, reasons, scored_at) SELECT transaction_id, model_version, "
                        "fraud_probability, risk_score, risk_level, decision, "
                        f"to_json(list_filter([{reasons}], lambda r: r.feature IS NOT NULL)), scored_at FROM incoming")
            n = table.num_rows
            cur.execute("INSERT INTO audit_log (actor, action, entity, entity_id, new_value) "
                        "VALUES (?, 'score', 'scores', ?, ?)",
                        [actor, table.column("model_version")[0].as_py() if n else None, f"{n} rows"])
        return n
    finally:
        cur.close()


def score_counts(store: Store) -> list[tuple]:
    return store.cursor().execute("SELECT model_version, decision, count(*) FROM scores GROUP BY ALL "
                                  "ORDER BY ALL").fetchall()
