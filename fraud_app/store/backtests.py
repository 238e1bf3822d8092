"""Each model version's scores on its own test window (schema v4)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from .db import Store


def save(store: Store, version: str, transaction_ids: pa.Array, p: np.ndarray) -> None:
    """Replace the version's backtest scores, in one transaction."""
    table = pa.table({"transaction_id": transaction_ids, "fraud_probability": pa.array(p, pa.float64())})
    cur = store.new_cursor()
    try:
        cur.register("incoming_backtest", table)
        with store.transaction(cur):
            cur.execute("DELETE FROM backtests WHERE model_version = ?", [version])
            cur.execute("INSERT INTO backtests SELECT ?, transaction_id, fraud_probability FROM incoming_backtest",
                        [version])
    finally:
        cur.close()


def load(store: Store, version: str) -> pd.DataFrame:
    """day, customer_id, amount, fraud (the current label) and p for each test transaction, by time."""
    cur = store.new_cursor()
    try:
        return cur.execute(
            "SELECT t.transaction_id, CAST(t.timestamp AS DATE) AS day, t.customer_id, t.amount, "
            "coalesce(t.is_fraud, false) AS fraud, b.fraud_probability AS p "
            "FROM backtests b JOIN transactions t USING (transaction_id) WHERE b.model_version = ? "
            "ORDER BY t.timestamp, t.transaction_id", [version]).df()
    finally:
        cur.close()
