import os

import pytest

from fraud_app.store import Store
from conftest import HEADER, Server, count, good_rows, one_line_error, run_cli, write


def test_help_for_every_command(tmp_path):
    for command in ("generate", "import", "serve"):
        result = run_cli(tmp_path, command, "--help")
        assert result.returncode == 0 and f"fraud-app {command}" in result.stdout


def test_every_option_of_every_command_says_what_it_does():
    import argparse

    from fraud_app.cli import build_parser

    def silent(parser: argparse.ArgumentParser, command: str) -> list[str]:
        out = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out += silent(sub, f"{command} {name}".strip())
            elif command and not action.help and not isinstance(action, argparse._HelpAction):
                out.append(f"{command} {'/'.join(action.option_strings) or action.dest}")
        return out

    assert silent(build_parser(), "") == []


def test_generate_to_csv_then_import(tmp_path):
    out = tmp_path / "sim.csv"
    result = run_cli(tmp_path, "generate", "--customers", "200", "--terminals", "400", "--days", "30",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "generated" in result.stdout
    header = out.read_text().splitlines()[0].split(",")
    assert header[:5] == ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount"]
    rows = len(out.read_text().splitlines()) - 1
    db = tmp_path / "x.duckdb"
    result = run_cli(tmp_path, "--db", str(db), "import", str(out))
    assert result.returncode == 0, result.stderr
    assert f"imported {rows:,} rows" in result.stdout
    with Store(db) as s:
        assert count(s) == rows
        assert s.cursor().execute("SELECT count(*) FROM transactions WHERE is_fraud").fetchone()[0] > 0


def test_generate_parquet_and_straight_into_the_database(tmp_path):
    out = tmp_path / "sim.parquet"
    assert run_cli(tmp_path, "generate", "--customers", "100", "--terminals", "200", "--days", "20",
                   "--out", str(out)).returncode == 0
    assert out.read_bytes()[:4] == b"PAR1"
    db = tmp_path / "g.duckdb"
    result = run_cli(tmp_path, "--db", str(db), "generate", "--customers", "100", "--terminals", "200",
                     "--days", "20")
    assert result.returncode == 0, result.stderr
    with Store(db) as s:
        assert count(s) > 1000 and count(s, "imports") == 1
    again = run_cli(tmp_path, "--db", str(db), "generate", "--customers", "100", "--days", "20")
    assert "already holds" in one_line_error(again)


def test_import_with_bad_rows_exits_nonzero_and_changes_nothing(tmp_path):
    f = write(tmp_path / "bad.csv", HEADER + "\n" + good_rows(5) + "x,2018-04-01,c,t,-5\n")
    db = tmp_path / "x.duckdb"
    result = run_cli(tmp_path, "--db", str(db), "import", str(f), "--rejects", str(tmp_path / "r.csv"))
    assert "nothing imported: 1 of 6 rows are invalid" in one_line_error(result)
    assert "line 7: amount: must be at least 0 (got '-5')" in result.stderr
    # The value is a text cell, so it is neutralised for spreadsheets.
    assert (tmp_path / "r.csv").read_text().splitlines()[1] == "7,amount,must be at least 0,'-5"
    with Store(db) as s:
        assert count(s) == 0
    result = run_cli(tmp_path, "--db", str(db), "import", str(f), "--skip-invalid")
    assert result.returncode == 0 and "imported 5 rows" in result.stdout and "rejected 1" in result.stdout


def test_import_with_map(tmp_path):
    f = write(tmp_path / "hb.csv", "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD\n"
              "0,2018-04-01 00:00:31,596,3156,57.16,0\n1,2018-04-01 00:02:10,4961,3412,81.51,1\n")
    db = tmp_path / "x.duckdb"
    result = run_cli(tmp_path, "--db", str(db), "import", str(f), "--map", "TX_DATETIME=timestamp",
                     "TX_AMOUNT=amount", "--map", "TX_FRAUD=is_fraud")
    assert result.returncode == 0, result.stderr
    bad = run_cli(tmp_path, "--db", str(db), "import", str(f), "--map", "TX_AMOUNT=amt")
    assert "'amt' is not a transaction field" in one_line_error(bad)


@pytest.mark.parametrize("args, message", [
    (["import", "missing.csv"], "no such file"),
    (["generate", "--customers", "0"], "must be at least 1"),
    (["generate", "--start", "April"], "is not a date"),
])
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path, args, message):
    result = run_cli(tmp_path, *args)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_bad_environment_is_one_line(tmp_path):
    result = run_cli(tmp_path, "import", "x.csv", FRAUD_APP_PORT="http")
    assert "FRAUD_APP_PORT: expected int" in one_line_error(result)


def test_locked_database_names_the_pid(tmp_path):
    db = tmp_path / "locked.duckdb"
    f = write(tmp_path / "ok.csv", HEADER + "\n" + good_rows(2))
    with Store(db):
        result = run_cli(tmp_path, "--db", str(db), "import", str(f))
    line = one_line_error(result)
    assert f"in use by process {os.getpid()}" in line and "REST API" in line


def test_environment_variable_chooses_the_database(tmp_path):
    f = write(tmp_path / "ok.csv", HEADER + "\n" + good_rows(3))
    db = tmp_path / "env.duckdb"
    assert run_cli(tmp_path, "import", str(f), FRAUD_APP_DB=str(db)).returncode == 0
    with Store(db) as s:
        assert count(s) == 3


def test_non_loopback_bind_without_auth_is_refused(tmp_path):
    result = run_cli(tmp_path, "--db", str(tmp_path / "x.duckdb"), "serve", "--address", "0.0.0.0", "--no-show")
    assert "refusing to serve on 0.0.0.0" in one_line_error(result)


@pytest.mark.browser
def test_serve_answers_with_the_database_counts(tmp_path, page):
    db = tmp_path / "s.duckdb"
    f = write(tmp_path / "ok.csv", HEADER + "\n" + good_rows(1234))
    assert run_cli(tmp_path, "--db", str(db), "import", str(f)).returncode == 0
    server = Server(tmp_path, db)
    try:
        answer = server.wait()
        assert answer.status_code == 200 and "<title>fraud_app</title>" in answer.text
        # With no model yet the page opens on the Data view, whose counts arrive once the page is ready.
        page.goto(server.url)
        page.get_by_text("1,234", exact=True).first.wait_for(timeout=120_000)
        assert page.get_by_text("Transactions", exact=True).count() >= 1
    finally:
        server.stop()


@pytest.mark.slow
def test_serve_bootstraps_an_empty_database_with_progress(tmp_path):
    db = tmp_path / "empty.duckdb"
    server = Server(tmp_path, db, FRAUD_APP_DEMO_CUSTOMERS="300", FRAUD_APP_DEMO_TERMINALS="600",
                    FRAUD_APP_DEMO_DAYS="60")
    try:
        assert server.wait().status_code == 200
    finally:
        output = server.stop()
    assert "generating demo data" in output and "demo transactions loaded" in output
    assert "first model v1 in use" in output
    with Store(db) as s:
        n = count(s)
        assert n > 10_000
        assert s.cursor().execute("SELECT source FROM imports").fetchone()[0] == "demo data (generated)"
        assert s.cursor().execute("SELECT version, status FROM model_versions").fetchall() == [("v1", "active")]
        assert count(s, "scores") == n


@pytest.mark.parametrize("args, says", [
    (["generate", "--customers", "0"], "--customers: 0 must be at least 1"),
    (["score", "--start", "May"], "'May' is not a date"),
    (["export", "--status", "maybe", "--out", "x.csv"], "invalid choice"),
    ([], "required: COMMAND"),
])
def test_usage_errors_are_one_line(tmp_path, args, says):
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2 and says in one_line_error(result)
    assert len(result.stderr.strip().splitlines()) == 1
