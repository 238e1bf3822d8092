"""Stored scores: one row per transaction and model version, with its top reasons as JSON."""
from __future__ import annotations

import pyarrow as pa

from .db import Store

REASONS = 3


def _insert_scores(cur, name: str) -> None:
    reasons = ", ".join(f"{{'feature': reason{i}_feature, 'value': reason{i}_value, "
                        f"'contribution': reason{i}_contribution}}" for i in range(1, REASONS + 1))
    cur.execute("INSERT INTO scores (transaction_id, model_version, fraud_probability, risk_score, risk_level, "
                "decision, reasons, scored_at) SELECT transaction_id, model_version, fraud_probability, risk_score, "
                f"risk_level, decision, to_json(list_filter([{reasons}], lambda r: r.feature IS NOT NULL)), "
                f"scored_at FROM {name}")


def save_scores(store: Store, table: pa.Table, actor: str | None = None) -> int:
    """Replace the scores of these transactions under the same model version, in one transaction.
    `table` has transaction_id, model_version, fraud_probability, risk_score, risk_level, decision,
    scored_at, and reason{i}_feature / _value / _contribution for i in 1..REASONS."""
    cur = store.new_cursor()
    try:
        cur.register("incoming", table)
        with store.transaction(cur):
            cur.execute("DELETE FROM scores USING incoming WHERE scores.transaction_id = incoming.transaction_id "
                        "AND scores.model_version = incoming.model_version")
            _insert_scores(cur, "incoming")
            n = table.num_rows
            cur.execute("INSERT INTO audit_log (actor, action, entity, entity_id, new_value) "
                        "VALUES (?, 'score', 'scores', ?, ?)",
                        [actor, table.column("model_version")[0].as_py() if n else None, f"{n} rows"])
        return n
    finally:
        cur.close()


TX_COLUMNS = ("transaction_id", "timestamp", "customer_id", "terminal_id", "amount", "currency",
              "merchant_category", "channel", "country")
SCORE_COLUMNS = ("transaction_id", "model_version", "fraud_probability", "risk_score", "risk_level", "decision",
                 "reasons", "scored_at")
_FEW = 64  # up to this many rows, one multi-row VALUES statement beats registering Arrow tables


def _insert(cur, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if len(rows) <= _FEW:
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        cur.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * len(rows))}",
                    [value for row in rows for value in row])
        return
    name = f"incoming_{table}"
    cur.register(name, pa.Table.from_pylist([dict(zip(columns, row)) for row in rows]))
    try:
        cur.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {name}")
    finally:
        cur.unregister(name)


def insert_scored(store: Store, transactions: list[tuple], scored: list[tuple]) -> None:
    """New transactions (TX_COLUMNS) and their scores (SCORE_COLUMNS, reasons as JSON text), committed
    together: acknowledged means durable."""
    with store.transaction() as cur:
        _insert(cur, "transactions", TX_COLUMNS, transactions)
        _insert(cur, "scores", SCORE_COLUMNS, scored)


_RESULT = ("transaction_id, fraud_probability, risk_score, risk_level, decision, reasons, model_version, "
           "scored_at")


def stored_results(store: Store, ids: list[str]) -> tuple[dict[str, tuple], dict[str, dict]]:
    """Which of ids are stored transactions, with their TX_COLUMNS values, and the latest stored score of
    each that has one."""
    if not ids:
        return {}, {}
    cur = store.cursor()
    marks = ", ".join("?" * len(ids))  # a literal list lets DuckDB use the primary-key index
    known = {r[0]: r for r in cur.execute(f"SELECT {', '.join(TX_COLUMNS)} FROM transactions "
                                          f"WHERE transaction_id IN ({marks})", ids).fetchall()}
    if not known:  # the usual case, answered by the primary-key index; scores has none, so skip its scan
        return known, {}
    rows = cur.execute(f"SELECT {_RESULT} FROM scores WHERE transaction_id IN (SELECT unnest(?)) "
                       "QUALIFY row_number() OVER (PARTITION BY transaction_id ORDER BY scored_at DESC) = 1",
                       [list(known)]).fetchall()
    names = [c.strip() for c in _RESULT.split(",")]
    return known, {r[0]: dict(zip(names, r)) for r in rows}
