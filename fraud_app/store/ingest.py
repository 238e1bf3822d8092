"""Bulk writes of transactions: staging a file, checking every field in SQL, committing the good rows.

All checks run as set-based SQL over a staged copy, so a file of millions of rows is validated in a
few seconds and nothing reaches `transactions` until the whole file has been judged.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pyarrow as pa

from . import limits
from .db import Store
from .schema import TRANSACTION_FIELDS

# Large enough for the 10 MB fields that real exports sometimes carry; the field checks then
# reject the value by name instead of the CSV reader failing the whole file.
MAX_LINE_BYTES = 64 * 1024 * 1024
MAX_ERROR_LENGTH = 1000  # of a refused load's reason, as kept: a file's column list can be long
COLUMNS = ", ".join(TRANSACTION_FIELDS)
_CSV_ERRORS = {
    "INVALID ENCODING": "is not valid UTF-8 text",
    "INVALID UNICODE": "is not valid UTF-8 text",
    "TOO MANY COLUMNS": "has more fields than the header",
    "MISSING COLUMNS": "has fewer fields than the header",
    "UNQUOTED VALUE": "has a badly quoted field",
    "LINE SIZE OVER MAXIMUM": "is longer than the 64 MB line limit",
}


@dataclass(frozen=True)
class Reject:
    line: int
    field: str
    reason: str
    value: str | None

    def __str__(self) -> str:
        shown = "" if self.value is None else f" (got {self.value!r})"
        return f"{self.field}: {self.reason}{shown}"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _empty(x: str) -> str:
    return f"({x} IS NULL OR trim({x}) = '')"


def _parse_time(x: str) -> str:
    # A plain TIMESTAMP cast ignores a UTC offset, so only zone-bearing text takes the (slower) TZ cast.
    return (f"CASE WHEN regexp_matches(substr(trim({x}), 12), '[+\\-A-Za-z]') "
            f"THEN try_cast(trim({x}) AS TIMESTAMPTZ)::TIMESTAMP ELSE try_cast(trim({x}) AS TIMESTAMP) END")


def _nul(v: str) -> str:
    return f"WHEN contains({v}, chr(0)) THEN 'must not contain a NUL character'"


def _field_sql(field: str, currency: str) -> tuple[str, str]:
    """(typed value from raw_<field>, reason v_<field> is invalid or NULL) for one field, by the limits in
    store.limits that the REST API applies too. (Text that is not valid UTF-8 the file readers refuse.)"""
    x, v = f"raw_{field}", f"v_{field}"
    if field in ("transaction_id", "customer_id", "terminal_id"):
        return (f"nullif(trim({x}), '')",
                f"CASE WHEN {v} IS NULL THEN 'is empty' WHEN length({v}) > {limits.MAX_ID_LENGTH} "
                f"THEN 'is longer than {limits.MAX_ID_LENGTH} characters' {_nul(v)} END")
    if field in ("timestamp", "label_time"):
        missing = "'is empty'" if field == "timestamp" else "NULL"
        later = "WHEN v_label_time < v_timestamp THEN 'is before timestamp'" if field == "label_time" else ""
        # The date as written (a plain cast ignores the offset) is in the years; on their first and last day the
        # time must be in UTC, so the value in UTC is in them too. The REST API's pattern (fields.py) says the same.
        written, first, last = f"try_cast(trim({x}) AS TIMESTAMP)", limits.EARLIEST, limits.LATEST
        inner = (f"{written} >= TIMESTAMP '{first + dt.timedelta(days=1):%Y-%m-%d}' "
                 f"AND {written} < TIMESTAMP '{last:%Y-%m-%d}'")
        return (_parse_time(x), f"CASE WHEN {_empty(x)} THEN {missing} WHEN {v} IS NULL "
                                f"THEN 'is not an ISO 8601 date-time' WHEN NOT coalesce({written} >= TIMESTAMP "
                                f"'{limits.EARLIEST}' AND {written} < TIMESTAMP '{limits.END}', false) "
                                f"THEN 'is outside the years {first.year}-{last.year}' "
                                f"WHEN NOT ({v} = {written} OR {inner}) THEN 'must be in UTC on {first:%Y-%m-%d} "
                                f"and {last:%Y-%m-%d}' {later} END")
    if field == "amount":
        return (f"try_cast(trim({x}) AS DOUBLE)",
                f"CASE WHEN {_empty(x)} THEN 'is empty' WHEN {v} IS NULL THEN 'is not a number' "
                f"WHEN NOT isfinite({v}) THEN 'is not a finite number' "
                f"WHEN {v} < {limits.MIN_AMOUNT} THEN 'must be at least {limits.MIN_AMOUNT:g}' "
                f"WHEN {v} >= {limits.MAX_AMOUNT} THEN 'must be below {limits.MAX_AMOUNT_TEXT}' END")
    if field == "currency":
        return (f"CASE WHEN {_empty(x)} THEN '{currency}' ELSE upper(trim({x})) END",
                f"CASE WHEN NOT regexp_full_match({v}, '[A-Z]{{{limits.CURRENCY_LETTERS}}}') "
                f"THEN 'must be a {limits.CURRENCY_LETTERS}-letter code' END")
    if field == "country":
        return (f"nullif(upper(trim({x})), '')",
                f"CASE WHEN NOT regexp_full_match({v}, '[A-Z]{{{limits.COUNTRY_LETTERS}}}') "
                f"THEN 'must be a {limits.COUNTRY_LETTERS}-letter code' END")
    if field == "channel":
        allowed = ", ".join(f"'{c}'" for c in limits.CHANNELS)
        return (f"nullif(lower(trim({x})), '')",
                f"CASE WHEN {v} NOT IN ({allowed}) THEN 'must be {', '.join(limits.CHANNELS[:-1])} "
                f"or {limits.CHANNELS[-1]}' END")
    if field == "merchant_category":
        return (f"nullif(trim({x}), '')",
                f"CASE WHEN length({v}) > {limits.MAX_TEXT_LENGTH} "
                f"THEN 'is longer than {limits.MAX_TEXT_LENGTH} characters' {_nul(v)} END")
    if field == "is_fraud":
        t = f"lower(trim({x}))"
        return (f"CASE WHEN {t} IN ('1', '1.0', 'true', 't', 'yes') THEN true "
                f"WHEN {t} IN ('0', '0.0', 'false', 'f', 'no') THEN false END",
                f"CASE WHEN NOT {_empty(x)} AND {v} IS NULL THEN 'must be 0/1 or true/false' END")
    raise KeyError(field)


class Staging:
    """One file on its way in. Holds a private cursor, whose temporary tables vanish on close()."""

    def __init__(self, store: Store):
        self.store = store
        self.cur = store.new_cursor()
        self.kind = "csv"

    def close(self) -> None:
        self.cur.close()

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def load(self, path: Path, kind: str) -> dict[str, str]:
        """Read the file as text columns. Returns {column name: source type}."""
        self.kind = kind
        if kind == "csv":
            self.cur.execute(
                "CREATE TEMP TABLE stage AS SELECT * FROM read_csv(?, all_varchar = true, header = true, "
                "null_padding = true, store_rejects = true, rejects_table = 'stage_rejects', rejects_scan = 'stage_scan', "
                f"max_line_size = {MAX_LINE_BYTES})", [str(path)])
        else:
            self.cur.execute("CREATE TEMP TABLE stage_native AS SELECT * FROM read_parquet(?)", [str(path)])
            native = self.cur.execute("DESCRIBE stage_native").fetchall()
            # Ids written as floats by some tools (1.0) are stored as their integer text (1).
            casts = [f"CASE WHEN {_q(n)} = trunc({_q(n)}) THEN CAST(CAST({_q(n)} AS HUGEINT) AS VARCHAR) "
                     f"ELSE CAST({_q(n)} AS VARCHAR) END AS {_q(n)}" if t in ("FLOAT", "DOUBLE") or t.startswith("DECIMAL")
                     else f"CAST({_q(n)} AS VARCHAR) AS {_q(n)}" for n, t, *_ in native]
            self.cur.execute(f"CREATE TEMP TABLE stage AS SELECT {', '.join(casts)} FROM stage_native")
            self.cur.execute("DROP TABLE stage_native")
        return {name: typ for name, typ, *_ in self.cur.execute("DESCRIBE stage").fetchall()}

    def row_count(self) -> int:
        return self.cur.execute("SELECT count(*) FROM stage").fetchone()[0]

    def _line_of(self) -> tuple[str, str]:
        """(join clause, expression) giving each staged record's line (CSV, header = 1) or row (Parquet)."""
        if self.kind != "csv":
            return "", "rec + 1"
        bad = self.cur.execute("SELECT count(DISTINCT line) FROM stage_rejects").fetchone()[0]
        if not bad:
            return "", "rec + 2"
        # Lines the reader rejected are missing from `stage`, so record k is the k-th line not rejected.
        last = self.row_count() + bad + 2
        self.cur.execute("CREATE TEMP TABLE line_map AS SELECT row_number() OVER (ORDER BY l) - 1 AS rec, "
                         f"l AS line FROM range(2, {last}) t(l) WHERE l NOT IN (SELECT line FROM stage_rejects)")
        return "JOIN line_map USING (rec)", "line_map.line"

    def check(self, columns: Mapping[str, str | None], currency: str) -> None:
        """Type and validate every field. `columns` maps each canonical field to its staged column."""
        raws, values, reasons = [], [], []
        for field in TRANSACTION_FIELDS:
            raws.append(f"{_q(columns[field]) if columns.get(field) else 'NULL::VARCHAR'} AS raw_{field}")
            value, reason = _field_sql(field, currency)
            values.append(f"{value} AS v_{field}")
            reasons.append(f"{reason} AS r_{field}")
        join, line = self._line_of()
        where = "line" if self.kind == "csv" else "row"
        no_reason = " AND ".join(f"r_{f} IS NULL" for f in [*TRANSACTION_FIELDS, "duplicate"])
        self.cur.execute(f"""
            CREATE TEMP TABLE typed AS
            WITH raw AS (SELECT rowid AS rec, {', '.join(raws)} FROM stage),
            valued AS (SELECT raw.*, {', '.join(values)} FROM raw)
            SELECT valued.*, {', '.join(reasons)}, {line} AS line FROM valued {join}""")
        # Duplicates are rare: find them with a narrow aggregate instead of a window over wide rows.
        self.cur.execute("""
            CREATE TEMP TABLE repeats AS
            SELECT v_transaction_id, min(rec) AS first_rec, arg_min(line, rec) AS first_line FROM typed
            WHERE v_transaction_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1""")
        self.cur.execute(f"""
            CREATE TEMP TABLE checked AS
            WITH judged AS (
                SELECT typed.*,
                       CASE WHEN d.first_rec <> typed.rec THEN 'duplicates {where} ' || d.first_line || ' of this file'
                            WHEN t.transaction_id IS NOT NULL THEN 'is already stored' END AS r_duplicate
                FROM typed
                LEFT JOIN repeats d USING (v_transaction_id)
                LEFT JOIN transactions t ON t.transaction_id = typed.v_transaction_id)
            SELECT *, ({no_reason}) AS ok FROM judged""")
        self.cur.execute("DROP TABLE typed")

    def rejects_sql(self) -> str:
        parts = [f"SELECT line, '{f}' AS field, r_{f} AS reason, left(raw_{f}, 60) AS value "
                 f"FROM checked WHERE NOT ok AND r_{f} IS NOT NULL" for f in TRANSACTION_FIELDS]
        parts.append("SELECT line, 'transaction_id', r_duplicate, left(raw_transaction_id, 60) "
                     "FROM checked WHERE NOT ok AND r_duplicate IS NOT NULL")
        if self.kind == "csv":
            cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _CSV_ERRORS.items())
            parts.append(f"SELECT line, coalesce(column_name, '(line)'), CASE error_type {cases} "
                         "ELSE split_part(error_message, chr(10), 1) END, left(csv_line, 60) FROM stage_rejects")
        return " UNION ALL ".join(parts)

    def summary(self, sample: int = 20) -> tuple[int, int, list[Reject]]:
        """(valid rows, rejected rows, the first `sample` reasons in file order)."""
        valid = self.cur.execute("SELECT count(*) FILTER (ok) FROM checked").fetchone()[0]
        rejected = self.cur.execute(f"SELECT count(DISTINCT line) FROM ({self.rejects_sql()})").fetchone()[0]
        rows = self.cur.execute(f"SELECT * FROM ({self.rejects_sql()}) ORDER BY line, field LIMIT {int(sample)}")
        return valid, rejected, [Reject(*row) for row in rows.fetchall()]

    def write_rejects(self, path: Path) -> None:
        label = "line" if self.kind == "csv" else "row"
        copy_csv(self.cur, f"SELECT line AS {label}, field, reason, value FROM ({self.rejects_sql()})", path,
                 order_by=f"{label}, field")

    def commit(self, source: str, actor: str | None, started: dt.datetime, rejected: int) -> tuple[int, int]:
        """Insert the valid rows in one transaction. Returns (import_id, rows inserted)."""
        values = ", ".join(f"v_{f}" for f in TRANSACTION_FIELDS)
        with self.store.transaction(self.cur) as cur:
            n = cur.execute("SELECT count(*) FROM checked WHERE ok").fetchone()[0]
            import_id = _record_import(cur, source, actor, started, n, rejected)
            # Sorted by time so DuckDB's zone maps prune time-range scans later.
            cur.execute(f"INSERT INTO transactions ({COLUMNS}) SELECT {values} FROM checked WHERE ok "
                        "ORDER BY v_timestamp, v_transaction_id")
        return import_id, n


def _record_import(cur, source: str, actor: str | None, started: dt.datetime, n: int, rejected: int) -> int:
    import_id = cur.execute(
        "INSERT INTO imports (started_at, finished_at, source, actor, rows_imported, rows_rejected) "
        "VALUES (?, now()::TIMESTAMP, ?, ?, ?, ?) RETURNING import_id",
        [started, source, actor, n, rejected]).fetchone()[0]
    cur.execute("INSERT INTO audit_log (actor, action, entity, entity_id, new_value, note) "
                "VALUES (?, 'import', 'imports', ?, ?, ?)", [actor, str(import_id), f"{n} rows", source])
    return import_id


def record_refused(store: Store, source: str, actor: str | None, started: dt.datetime, rejected: int,
                   error: str) -> int:
    """A load that was refused whole and wrote no transaction, with why in words. Returns its import_id."""
    return store.cursor().execute(
        "INSERT INTO imports (started_at, finished_at, source, actor, rows_imported, rows_rejected, status, error) "
        "VALUES (?, now()::TIMESTAMP, ?, ?, 0, ?, 'refused', ?) RETURNING import_id",
        [started, source, actor, rejected, error[:MAX_ERROR_LENGTH]]).fetchone()[0]


def insert_table(store: Store, table: pa.Table, source: str, actor: str | None = None) -> tuple[int, int]:
    """Load rows that are valid by construction (the simulator's). Returns (import_id, rows)."""
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    cur = store.new_cursor()
    try:
        cur.register("incoming", table.select(list(TRANSACTION_FIELDS)))
        with store.transaction(cur):
            import_id = _record_import(cur, source, actor, started, table.num_rows, 0)
            cur.execute(f"INSERT INTO transactions ({COLUMNS}) SELECT {COLUMNS} FROM incoming "
                        "ORDER BY timestamp, transaction_id")
        return import_id, table.num_rows
    finally:
        cur.close()


# A spreadsheet runs a cell that starts with =, +, -, @, a tab or a carriage return as a formula (OWASP,
# "CSV injection"). A regular expression rather than an IN list: DuckDB plans an IN list of six values as a
# join, and a join in a COPY loses the rows' order. All six characters sort below 'A' (65), so most cells
# skip the expression.
FORMULA_START = r"^[=+\-@\t\r]"


def csv_safe_sql(x: str) -> str:
    """SQL for text `x` as a CSV cell: a leading ' when a spreadsheet would take it for a formula."""
    return (f"CASE WHEN ascii({x}) < 65 AND regexp_matches({x}, '{FORMULA_START}') "
            f"THEN '''' || {x} ELSE {x} END")


def copy_csv(cur, query: str, path: Path, order_by: str | None = None) -> None:
    """Write a query's rows as CSV with every text column made safe to open in a spreadsheet; numbers and
    times are written as they are. Every CSV file the product writes goes through here."""
    columns = [f"{csv_safe_sql(_q(name))} AS {_q(name)}" if typ == "VARCHAR" else _q(name)
               for name, typ, *_ in cur.execute(f"DESCRIBE {query}").fetchall()]
    order = f" ORDER BY {order_by}" if order_by else ""
    cur.execute(f"COPY (SELECT {', '.join(columns)} FROM ({query}){order}) TO ? (FORMAT csv, HEADER)", [str(path)])


def write_table_file(table: pa.Table, path: Path) -> None:
    """CSV or Parquet, chosen by the file's suffix. DuckDB writes both fast and in parallel. Parquet is data
    for programs and keeps every value as it is; CSV goes through copy_csv."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.register("outgoing", table)
        if path.suffix.lower() in (".parquet", ".pq"):
            con.execute("COPY outgoing TO ? (FORMAT parquet)", [str(path)])
        else:
            copy_csv(con, "SELECT * FROM outgoing", path)
