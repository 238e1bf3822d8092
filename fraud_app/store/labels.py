"""Labels arriving after the fact (chargeback feeds, analysts): the current label on the transaction,
every change kept in `labels`, and an audit entry, all in one transaction."""
from __future__ import annotations

import datetime as dt

from .db import Store


def record_label(store: Store, transaction_id: str, is_fraud: bool, source: str, actor: str | None,
                 label_time: dt.datetime) -> tuple[str, str, dt.datetime] | None:
    """Returns (customer_id, terminal_id, timestamp) of the labelled transaction, or None if unknown."""
    with store.transaction() as cur:
        found = cur.execute("SELECT customer_id, terminal_id, timestamp, is_fraud FROM transactions "
                            "WHERE transaction_id = ?", [transaction_id]).fetchall()
        if not found:
            return None
        customer, terminal, timestamp, old = found[0]
        cur.execute("UPDATE transactions SET is_fraud = ?, label_time = ? WHERE transaction_id = ?",
                    [is_fraud, label_time, transaction_id])
        cur.execute("INSERT INTO labels (transaction_id, is_fraud, label_time, source, actor) VALUES (?, ?, ?, ?, ?)",
                    [transaction_id, is_fraud, label_time, source, actor])
        cur.execute("INSERT INTO audit_log (actor, action, entity, entity_id, old_value, new_value, note) "
                    "VALUES (?, 'label', 'transactions', ?, ?, ?, ?)",
                    [actor, transaction_id, None if old is None else str(old).lower(), str(is_fraud).lower(),
                     source])
    return customer, terminal, timestamp
