import datetime as dt

import duckdb
import pytest

from fraud_app.importer import ImportFileError, import_file, parse_mapping
from conftest import HEADER, count, good_rows, write

HANDBOOK_MAP = parse_mapping(["TRANSACTION_ID=transaction_id", "TX_DATETIME=timestamp", "CUSTOMER_ID=customer_id",
                              "TERMINAL_ID=terminal_id", "TX_AMOUNT=amount", "TX_FRAUD=is_fraud"])


def reasons(report) -> list[tuple[int, str, str]]:
    return [(r.line, r.field, r.reason) for r in report.sample]


def test_good_file_imports_every_row_with_types(store, tmp_path):
    f = write(tmp_path / "ok.csv", HEADER + ",currency,channel,country,is_fraud,label_time,extra\n"
              "a1,2018-04-01T10:00:00+02:00,c1,t1,12.5,usd,ONLINE,fr,true,2018-04-09,x\n"
              "a2,2018-04-01 09:00:00,c1,t2,0,,,,0,,y\n")
    report = import_file(store, f)
    assert (report.imported, report.rejected) == (2, 0)
    rows = store.cursor().execute("SELECT * FROM transactions ORDER BY transaction_id").fetchall()
    assert rows[0] == ("a1", dt.datetime(2018, 4, 1, 8, 0), "c1", "t1", 12.5, "USD", None, "online", "FR", True,
                       dt.datetime(2018, 4, 9))
    assert rows[1][5] == "EUR" and rows[1][9] is False and rows[1][10] is None
    assert count(store, "imports") == 1 and count(store, "audit_log") == 1


def test_missing_required_column_names_it(store, tmp_path):
    from fraud_app.store import queries

    f = write(tmp_path / "m.csv", "transaction_id,timestamp,customer_id,amount\n1,2018-04-01,c,5\n")
    with pytest.raises(ImportFileError, match="missing required column terminal_id") as raised:
        import_file(store, f)
    assert count(store) == 0
    # The command line is told its way out; the page, which has no --map, and the load history are not.
    assert str(raised.value).endswith("(use --map SOURCE=field)") and "--map" not in raised.value.reason
    assert queries.imports(store)[0][-1] == raised.value.reason


@pytest.mark.parametrize("row, field, reason", [
    ("99,yesterday,c,t,5", "timestamp", "is not an ISO 8601 date-time"),
    ("99,2018-04-01,c,t,-0.01", "amount", "must be at least 0"),
    ("99,2018-04-01,c,t,1000000000", "amount", "must be below 1e9"),
    ("99,2018-04-01,c,t,ten", "amount", "is not a number"),
    ("99,2018-04-01,c,t,nan", "amount", "is not a finite number"),
    ("99,2018-04-01,,t,5", "customer_id", "is empty"),
    ("99,1899-01-01,c,t,5", "timestamp", "is outside the years 1970-2099"),
    (f"{'x' * 65},2018-04-01,c,t,5", "transaction_id", "is longer than 64 characters"),
])
def test_bad_field_is_named_with_its_line(store, tmp_path, row, field, reason):
    f = write(tmp_path / "bad.csv", HEADER + "\n" + good_rows(3) + row + "\n")
    report = import_file(store, f)
    assert report.imported == 0 and report.rejected == 1
    assert reasons(report) == [(5, field, reason)]
    assert count(store) == 0


def test_optional_fields_are_checked(store, tmp_path):
    f = write(tmp_path / "o.csv", HEADER + ",channel,country,currency,is_fraud,label_time\n"
              "1,2018-04-02,c,t,5,phone,FRA,EURO,maybe,2018-04-01\n")
    report = import_file(store, f)
    assert sorted(r[1:] for r in reasons(report)) == [
        ("channel", "must be pos, online or atm"), ("country", "must be a 2-letter code"),
        ("currency", "must be a 3-letter code"), ("is_fraud", "must be 0/1 or true/false"),
        ("label_time", "is before timestamp")]
    assert report.rejected == 1


def test_duplicate_ids_within_file_and_against_db(store, tmp_path):
    import_file(store, write(tmp_path / "first.csv", HEADER + "\n" + good_rows(3)))
    f = write(tmp_path / "dup.csv", HEADER + "\n" + good_rows(2, start=10) + "10,2018-04-02,c,t,1\n"
              + good_rows(1, start=2))
    report = import_file(store, f)
    assert reasons(report) == [(4, "transaction_id", "duplicates line 2 of this file"),
                               (5, "transaction_id", "is already stored")]
    assert count(store) == 3


def test_empty_and_header_only_files(store, tmp_path):
    with pytest.raises(ImportFileError, match="the file is empty"):
        import_file(store, write(tmp_path / "e.csv", b""))
    with pytest.raises(ImportFileError, match="header but no rows"):
        import_file(store, write(tmp_path / "h.csv", HEADER + "\n"))
    with pytest.raises(ImportFileError, match="no such file"):
        import_file(store, tmp_path / "missing.csv")
    with pytest.raises(ImportFileError, match="unsupported file type"):
        import_file(store, write(tmp_path / "x.xlsx", "a"))


def test_non_utf8_bytes_reject_that_line(store, tmp_path):
    f = write(tmp_path / "enc.csv", (HEADER + "\n" + good_rows(2)).encode() + b"9,2018-04-01,c\xff\xfe,t,5\n")
    report = import_file(store, f)
    assert report.rejected == 1 and count(store) == 0
    assert report.sample[0].line == 4 and "UTF-8" in report.sample[0].reason


def test_ten_megabyte_field_is_rejected_by_name(store, tmp_path):
    f = write(tmp_path / "big.csv", HEADER + ",merchant_category\n" + "1,2018-04-01,c,t,5," + "m" * 10_000_000
              + "\n2,2018-04-01,c,t,5,grocery\n")
    report = import_file(store, f)
    assert reasons(report) == [(2, "merchant_category", "is longer than 64 characters")]
    assert count(store) == 0
    report = import_file(store, f, skip_invalid=True)
    assert report.imported == 1 and count(store) == 1


def test_skip_invalid_imports_the_rest_and_writes_rejects(store, tmp_path):
    f = write(tmp_path / "mix.csv", HEADER + "\n" + good_rows(4) + "x,bad,c,t,5\n" + good_rows(2, start=20)
              + "y,2018-04-01,c,t,-1\n")
    rejects = tmp_path / "rejects.csv"
    report = import_file(store, f, skip_invalid=True, rejects_path=rejects)
    assert (report.imported, report.rejected) == (6, 2)
    assert count(store) == 6
    lines = rejects.read_text().splitlines()
    assert lines == ["line,field,reason,value", "6,timestamp,is not an ISO 8601 date-time,bad",
                     "9,amount,must be at least 0,'-1"]  # text: neutralised for spreadsheets


def test_short_rows_are_padded_and_judged_by_field(store, tmp_path):
    f = write(tmp_path / "short.csv", HEADER + ",note\n1,2018-04-01,c,t,5,n\n2,2018-04-01,c,t\n")
    report = import_file(store, f)
    assert reasons(report) == [(3, "amount", "is empty")]


def test_handbook_layout_via_map(store, tmp_path):
    f = write(tmp_path / "hb.csv", ",TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,"
              "TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO\n"
              "0,0,2018-04-01 00:00:31,596,3156,57.16,31,0,0,0\n"
              "1,1,2018-04-01 00:02:10,4961,3412,81.51,130,0,1,1\n")
    report = import_file(store, f, HANDBOOK_MAP)
    assert report.imported == 2
    rows = store.cursor().execute("SELECT transaction_id, customer_id, terminal_id, amount, is_fraud "
                                  "FROM transactions ORDER BY timestamp").fetchall()
    assert rows == [("0", "596", "3156", 57.16, False), ("1", "4961", "3412", 81.51, True)]


def test_mapping_errors_are_clear(store, tmp_path):
    with pytest.raises(ImportFileError, match="'amountt' is not a transaction field"):
        parse_mapping(["TX_AMOUNT=amountt"])
    with pytest.raises(ImportFileError, match="expected SOURCE=field"):
        parse_mapping(["TX_AMOUNT"])
    f = write(tmp_path / "a.csv", HEADER + "\n" + good_rows(1))
    with pytest.raises(ImportFileError, match="no column 'NOPE'"):
        import_file(store, f, parse_mapping(["NOPE=amount"]))


def test_parquet_with_numeric_ids(store, tmp_path):
    path = tmp_path / "t.parquet"
    duckdb.execute(f"COPY (SELECT i AS transaction_id, TIMESTAMP '2018-04-01' + INTERVAL (i) MINUTE AS timestamp, "
                   f"i * 1.0 AS customer_id, i::DOUBLE + 100 AS terminal_id, CASE WHEN i = 3 THEN -1 ELSE i * 1.5 END AS amount "
                   f"FROM range(5) t(i)) TO '{path}' (FORMAT parquet)")
    report = import_file(store, path)
    assert reasons(report) == [(4, "amount", "must be at least 0")] and report.where == "row"
    report = import_file(store, path, skip_invalid=True)
    ids = store.cursor().execute("SELECT transaction_id, customer_id, terminal_id FROM transactions ORDER BY 1")
    assert ids.fetchall() == [("0", "0", "100"), ("1", "1", "101"), ("2", "2", "102"), ("4", "4", "104")]


def test_million_rows_with_one_bad_row_change_nothing(store, tmp_path):
    path = tmp_path / "million.csv"
    duckdb.execute(f"COPY (SELECT i AS transaction_id, TIMESTAMP '2018-04-01' + to_seconds(i) AS timestamp, "
                   f"'C' || (i % 5000) AS customer_id, 'T' || (i % 9000) AS terminal_id, "
                   f"CASE WHEN i = 654321 THEN 'abc' ELSE (i % 100)::VARCHAR END AS amount "
                   f"FROM range(1000000) t(i)) TO '{path}' (HEADER)")
    report = import_file(store, path)
    assert report.rows_read == 1_000_000 and report.imported == 0
    assert reasons(report) == [(654323, "amount", "is not a number")]
    assert count(store) == 0
    assert store.cursor().execute("SELECT status, rows_imported, rows_rejected FROM imports").fetchall() == \
        [("refused", 0, 1)]


def loads(store) -> list[tuple]:
    return store.cursor().execute("SELECT source, actor, status, rows_imported, rows_rejected, error FROM imports "
                                  "ORDER BY import_id").fetchall()


def test_a_refused_file_is_a_refused_load_with_its_reason_and_no_rows(store, tmp_path):
    bad = write(tmp_path / "bad.csv", HEADER + "\n" + good_rows(3) + "9,2018-04-01,c,t,ten\n" + "8,soon,c,t,5\n")
    report = import_file(store, bad, actor="ana")
    assert (report.imported, report.rejected, report.import_id) == (0, 2, None)
    assert count(store) == 0
    assert loads(store) == [(str(bad), "ana", "refused", 0, 2, "2 of 5 rows are invalid: line 5: amount: is not a "
                             "number (got 'ten'); line 6: timestamp: is not an ISO 8601 date-time (got 'soon')")]
    assert count(store, "audit_log") == 0  # the audit log records what changed: nothing did


def test_a_file_refused_as_a_whole_is_a_refused_load_naming_why(store, tmp_path):
    with pytest.raises(ImportFileError, match="missing required column terminal_id"):
        import_file(store, write(tmp_path / "m.csv", "transaction_id,timestamp,customer_id,amount\n1,2018-04-01,c,5\n"),
                    source="m.csv")
    with pytest.raises(ImportFileError, match="^e.csv: the file is empty"):
        import_file(store, write(tmp_path / "e.csv", b""), source="e.csv")
    with pytest.raises(ImportFileError, match="no such file"):
        import_file(store, tmp_path / "missing.csv")  # no file: no load
    assert [row[:5] for row in loads(store)] == [("m.csv", None, "refused", 0, 0), ("e.csv", None, "refused", 0, 0)]
    assert loads(store)[0][5].startswith("missing required column terminal_id; the file has: transaction_id")
    assert loads(store)[1][5] == "e.csv: the file is empty"
    assert count(store) == 0


def test_a_good_file_is_an_imported_load_under_the_name_given(store, tmp_path):
    import_file(store, write(tmp_path / "upload-x.csv", HEADER + "\n" + good_rows(2)), source="june.csv", actor="bo")
    everything_bad = write(tmp_path / "b.csv", HEADER + "\n" + "7,2018-04-01,c,t,-1\n")
    import_file(store, everything_bad, skip_invalid=True)  # imported, if only nothing: one load
    assert loads(store) == [("june.csv", "bo", "imported", 2, 0, None), (str(everything_bad), None, "imported", 0, 1, None)]
