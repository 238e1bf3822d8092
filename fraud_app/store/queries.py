"""Read queries shared by the faces (CLI, UI, API)."""
from __future__ import annotations

from dataclasses import dataclass
import datetime as dt

from .db import Store


@dataclass(frozen=True)
class Summary:
    transactions: int
    customers: int
    terminals: int
    labelled_fraud: int
    first: dt.datetime | None
    last: dt.datetime | None
    total_amount: float


def summary(store: Store) -> Summary:
    row = store.cursor().execute(
        "SELECT count(*), count(DISTINCT customer_id), count(DISTINCT terminal_id), "
        "count(*) FILTER (is_fraud), min(timestamp), max(timestamp), coalesce(sum(amount), 0) "
        "FROM transactions").fetchone()
    return Summary(*row)


def transaction_count(store: Store) -> int:
    return store.cursor().execute("SELECT count(*) FROM transactions").fetchone()[0]


def scored_count(store: Store, version: str) -> int:
    return store.cursor().execute("SELECT count(*) FROM scores WHERE model_version = ?", [version]).fetchone()[0]


def imports(store: Store, limit: int = 20) -> list[tuple]:
    """The latest loads, newest first: import_id, finished_at, source, actor, status (imported or refused),
    rows_imported, rows_rejected and, for a refused one, why."""
    return store.cursor().execute(
        "SELECT import_id, finished_at, source, actor, status, rows_imported, rows_rejected, error FROM imports "
        "ORDER BY import_id DESC LIMIT ?", [limit]).fetchall()


def time_span(store: Store) -> tuple[dt.datetime | None, dt.datetime | None]:
    return store.cursor().execute("SELECT min(timestamp), max(timestamp) FROM transactions").fetchone()


def usual_span(store: Store) -> tuple[dt.date | None, dt.date | None]:
    """The first and last day that hold a normal share of the payments: at least a tenth of the median
    day's, and more than one. This is where the data really is; min() and max() of the timestamps would
    follow a single payment dated decades away. Falls back to them when no day is that full."""
    return store.cursor().execute("""
        WITH days AS (SELECT CAST(timestamp AS DATE) AS day, count(*) AS n FROM transactions GROUP BY ALL),
        usual AS (SELECT greatest(2, median(n) / 10) AS least_n FROM days)
        SELECT coalesce(min(day) FILTER (n >= least_n), min(day)), coalesce(max(day) FILTER (n >= least_n), max(day))
        FROM days, usual""").fetchone()


def transaction_ids(store: Store) -> list[str]:
    """Every stored transaction id (for the live scorer's membership filter, built once at start)."""
    cur = store.new_cursor()
    try:
        return cur.sql("SELECT transaction_id FROM transactions").to_arrow_table().column(0).to_pylist()
    finally:
        cur.close()


def transaction_keys(store: Store, ids: list[str]) -> list[tuple[str, str, dt.datetime]]:
    """(customer_id, terminal_id, timestamp) of each stored id."""
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    return store.cursor().execute(f"SELECT customer_id, terminal_id, timestamp FROM transactions "
                                  f"WHERE transaction_id IN ({marks})", ids).fetchall()


def unscored_span(store: Store, version: str) -> tuple[dt.date | None, dt.date | None]:
    """The first and last day of transactions the version has not scored yet."""
    return store.cursor().execute(
        "SELECT CAST(min(t.timestamp) AS DATE), CAST(max(t.timestamp) AS DATE) FROM transactions t "
        "WHERE NOT EXISTS (SELECT 1 FROM scores s WHERE s.transaction_id = t.transaction_id "
        "AND s.model_version = ?)", [version]).fetchone()
