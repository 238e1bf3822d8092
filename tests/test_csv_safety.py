"""Every CSV the product writes neutralises spreadsheet formulas: a text cell that starts with =, +, -, @,
a tab or a carriage return gets a leading single quote. Numbers, timestamps and Parquet files are data and
stay as they are."""
import csv
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from conftest import HEADER, copy_of, run_cli, write
from fraud_app.store import Store, cases, write_table_file

FORMULA = '=HYPERLINK("http://x","y")'
# transaction_id, customer_id, terminal_id, merchant_category of each imported row, after the trained
# database's last day so that a date filter picks out just these rows.
ROWS = [
    (FORMULA, "+1", "-2+3", "@SUM(A1)"),
    ("\tTAB1", "\tC9", "@T9", "=1+1"),
    ("+3", "-C8", "+T8", "\tgrocery"),
    ("N1", "C00001", "T00002", "grocery"),
]
STARTS = ("=", "+", "-", "@", "\t", "\r")


def quoted(value: str) -> str:
    return "'" + value if value.startswith(STARTS) else value


def hostile_file(path: Path) -> Path:
    lines = [HEADER + ",merchant_category"]
    for i, (tx, customer, terminal, category) in enumerate(ROWS):
        fields = [tx, f"2018-06-20 1{i}:00:00", customer, terminal, f"{12.5 + i}", category]
        lines.append(",".join('"' + f.replace('"', '""') + '"' for f in fields))
    return write(path, "\n".join(lines) + "\n")


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_no_formula_cells(path: Path) -> None:
    with open(path, newline="") as f:
        for row in csv.reader(f):
            assert not any(cell.startswith(STARTS) for cell in row), row


def test_score_out_and_export_quote_formula_cells(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    result = run_cli(tmp_path, "--db", str(db), "import", str(hostile_file(tmp_path / "hostile.csv")))
    assert result.returncode == 0 and "imported 4 rows" in result.stdout, result.stderr
    with Store(db) as s:  # the database keeps the text as given: only CSV files are neutralised
        stored = s.cursor().execute("SELECT transaction_id, customer_id, terminal_id, merchant_category "
                                    "FROM transactions WHERE timestamp >= '2018-06-20' ORDER BY timestamp").fetchall()
    assert stored == ROWS

    scores_csv = tmp_path / "scores.csv"
    result = run_cli(tmp_path, "--db", str(db), "score", "--start", "2018-06-20", "--out", str(scores_csv))
    assert result.returncode == 0, result.stderr
    raw = scores_csv.read_text()
    assert '"\'=HYPERLINK(""http://x"",""y"")"' in raw and ",'+1,'-2+3" in raw
    assert_no_formula_cells(scores_csv)
    rows = read_rows(scores_csv)
    assert [(r["transaction_id"], r["customer_id"], r["terminal_id"]) for r in rows] == \
        [tuple(quoted(v) for v in row[:3]) for row in ROWS]
    assert [r["timestamp"] for r in rows] == [f"2018-06-20 1{i}:00:00" for i in range(4)]
    for r in rows:
        assert 0 <= float(r["fraud_probability"]) <= 1 and r["risk_score"].isdigit()
        assert r["model_version"] == "v1" and r["decision"] in ("approve", "review", "decline")

    assert run_cli(tmp_path, "--db", str(db), "score", "--start", "2018-06-20").returncode == 0
    notes = ['=HYPERLINK("http://evil","click")', "@ops please check", "+44 call back", "checked with the card"]
    with Store(db) as s:
        for (tx, *_), note in zip(ROWS, notes):
            cases.decide(s, [tx], "escalated", "ana", note)
        stored_scores = dict(s.cursor().execute("SELECT transaction_id, fraud_probability FROM scores").fetchall())
    cases_csv = tmp_path / "cases.csv"
    result = run_cli(tmp_path, "--db", str(db), "export", "--status", "all", "--start", "2018-06-20",
                     "--out", str(cases_csv))
    assert result.returncode == 0 and "exported 4 all cases" in result.stdout, result.stderr
    assert '"\'=HYPERLINK(""http://evil"",""click"")"' in cases_csv.read_text()
    assert_no_formula_cells(cases_csv)
    rows = read_rows(cases_csv)
    assert [(r["transaction_id"], r["customer_id"], r["terminal_id"], r["note"]) for r in rows] == \
        [(*(quoted(v) for v in row[:3]), quoted(note)) for row, note in zip(ROWS, notes)]
    assert [r["note"][:1] for r in rows] == ["'", "'", "'", "c"]
    for r, (tx, *_) in zip(rows, ROWS):
        assert r["analyst"] == "ana" and r["case_status"] == "escalated" and r["currency"] == "EUR"
        assert float(r["fraud_probability"]) == stored_scores[tx]
    assert [r["amount"] for r in rows] == ["12.5", "13.5", "14.5", "15.5"]


def test_import_rejects_file_quotes_formula_cells(tmp_path):
    text = (HEADER + "\nok1,2018-04-01 10:00:00,C1,T1,5\n"
            f'"{FORMULA.replace(chr(34), chr(34) * 2)}",2018-04-01 10:00:00,C1,T1,-5\n'
            "x2,@SUM(A1),C1,T1,5\n")
    # Not UTF-8: the CSV reader rejects the whole line, and the rejects file shows the line itself.
    f = write(tmp_path / "mixed.csv", text.encode() + b"=1+2\xff,2018-04-01 10:00:00,C1,T1,5\n")
    rejects = tmp_path / "rejects.csv"
    result = run_cli(tmp_path, "--db", str(tmp_path / "r.duckdb"), "import", str(f), "--skip-invalid",
                     "--rejects", str(rejects))
    assert result.returncode == 0 and "imported 1 rows" in result.stdout, result.stderr
    assert_no_formula_cells(rejects)
    rows = read_rows(rejects)
    assert [(r["line"], r["field"], r["reason"]) for r in rows] == [
        ("3", "amount", "must be at least 0"), ("4", "timestamp", "is not an ISO 8601 date-time"),
        ("5", "transaction_id", "is not valid UTF-8 text")]
    assert [r["value"] for r in rows[:2]] == ["'-5", "'@SUM(A1)"]
    assert rows[2]["value"].startswith("'=1+2") and rows[2]["value"].endswith(",2018-04-01 10:00:00,C1,T1,5")
    assert rejects.read_text().splitlines()[1] == "3,amount,must be at least 0,'-5"


def test_ui_download_quotes_formula_text_but_not_numbers(tmp_path):
    from fraud_app.ui.downloads import csv_bytes

    frame = pd.DataFrame({
        "transaction_id": [FORMULA, "N1", "\tTAB"],
        "note": ["@SUM(A1)", None, "\rCR"],
        "risk_level": pd.Categorical(["-high", "low", "low"]),
        "amount": [-5.0, 3.25, 0.0],
        "delta": [-1, 2, 3],
        "timestamp": pd.to_datetime(["2018-06-20 10:00:00", "2018-06-20 11:00:00", "2018-06-20 12:00:00"]),
    })
    data = csv_bytes(frame).getvalue()
    assert data == (b"transaction_id,note,risk_level,amount,delta,timestamp\n"
                    b"\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'@SUM(A1),'-high,-5.0,-1,2018-06-20 10:00:00\n"
                    b"N1,,low,3.25,2,2018-06-20 11:00:00\n"
                    b"'\tTAB,\"'\rCR\",low,0.0,3,2018-06-20 12:00:00\n")
    back = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    assert [r["transaction_id"] for r in back] == ["'" + FORMULA, "N1", "'\tTAB"]
    assert [r["note"] for r in back] == ["'@SUM(A1)", "", "'\rCR"]

    # Parquet is data for programs, not a spreadsheet: written as it is.
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_table_file(table, tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").column("transaction_id").to_pylist() == [FORMULA, "N1", "\tTAB"]


def test_a_large_csv_keeps_the_row_order(tmp_path):
    # Enough rows for DuckDB to write in parallel (several 122,880-row groups): the rows must still come
    # out in the table's order, hostile cells included.
    n = 400_000
    ids = [f"-{i}" if i % 1000 == 0 else f"t{i}" for i in range(n)]
    write_table_file(pa.table({"transaction_id": ids, "n": range(n), "note": ["a note"] * n}), tmp_path / "big.csv")
    with open(tmp_path / "big.csv", newline="") as f:
        rows = [(r["transaction_id"], r["n"]) for r in csv.DictReader(f)]
    assert rows == [(quoted(i), str(k)) for k, i in enumerate(ids)]
