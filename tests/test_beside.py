"""The command line beside a running server: while `fraud-app serve` holds the database, `export`, `score`,
`import`, `train` and `status` go through it (its credentials file, its secret, its REST routes and background
job) and give what they give with the server stopped: the same stdout, files, exit codes and audit actor."""
import getpass
import json
import os
import re
import stat
import time

import requests

from conftest import HEADER, Server, copy_of, one_line_error, run_cli, write
from fraud_app.store import Store

TOKEN = "beside-admin-token-0123456789-0123456789"


def credentials(db) -> dict:
    return json.loads(db.with_name(db.name + ".server.json").read_text())


def cli(tmp_path, db, *args, **env):
    return run_cli(tmp_path, "--db", str(db), *args, **env)


def without_seconds(text: str) -> str:
    return re.sub(r" in [0-9.]+ s$", "", text.strip())


def post_job(srv, route, body, headers):
    return requests.post(srv.url + route.lstrip("/"), json=body, headers=headers, timeout=30)


def follow(srv, job, headers, timeout=120) -> dict:
    """The job once it has ended."""
    deadline = time.monotonic() + timeout
    while job["running"]:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = requests.get(srv.url + f"api/v1/job?id={job['id']}", headers=headers, timeout=30).json()["job"]
    return job


def test_the_commands_go_through_the_running_server_and_give_what_they_give_without_it(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    assert cli(tmp_path, db, "score").returncode == 0  # cases to export
    cases, scores, rejects = (tmp_path / name for name in ("cases.csv", "scores.csv", "rejects.csv"))
    export = ("export", "--status", "all", "--out", str(cases))
    score = ("score", "--start", "2018-05-01", "--end", "2018-05-03", "--out", str(scores))
    rows = "".join(f"beside-{i},2018-06-15 11:{10 + i:02d}:00,C-BESIDE,T00001,{20 + i}\n" for i in range(3))
    incoming = write(tmp_path / "incoming.csv", HEADER + "\n" + rows + "beside-bad,2018-06-15 12:00:00,C1,T1,-3\n")
    bad = write(tmp_path / "bad.csv", HEADER + "\nbad-0,2018-06-15 12:00:00,C1,T1,5\n"
                "bad-1,2018-06-15 12:01:00,C1,T1,-3\n")
    srv = Server(tmp_path, db)
    try:
        srv.wait("api/v1/health")
        path = db.with_name(db.name + ".server.json")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert credentials(db)["url"] == srv.url.rstrip("/") and credentials(db)["pid"] == srv.proc.pid
        status = cli(tmp_path, db, "status")
        exported = cli(tmp_path, db, *export)
        scored = cli(tmp_path, db, *score)
        refused = cli(tmp_path, db, "import", str(bad), "--rejects", str(rejects))
        imported = cli(tmp_path, db, "import", str(incoming), "--skip-invalid")
        # Live scoring knows the imported rows at once: the same id with other content is a conflict.
        conflict = requests.post(srv.url + "api/v1/score", timeout=30, json={
            "transaction_id": "beside-0", "timestamp": "2018-06-15T11:10:00Z", "customer_id": "C-BESIDE",
            "terminal_id": "T00001", "amount": 999.0})
        trained_now = cli(tmp_path, db, "train", "--seed", "2")
        status_after = cli(tmp_path, db, "status")
        backed_up = cli(tmp_path, db, "backup", "--out", "kept")
        metrics = requests.get(srv.url + "metrics", timeout=30).text
    finally:
        srv.stop()
    assert not path.exists()  # the server removed its file when it stopped
    assert all(r.returncode == 0 for r in (status, exported, scored, imported, trained_now)), \
        [r.stderr for r in (status, exported, scored, imported, trained_now)]
    for route, code in (("status", 200), ("jobs/export", 202), ("jobs/score", 202), ("jobs/import", 202),
                        ("jobs/train", 202), ("jobs/backup", 202), ("job/file", 200)):  # each went through the server
        assert f'route="/api/v1/{route}",status="{code}"' in metrics, route
    assert re.search(rf"^server +{re.escape(srv.url.rstrip('/'))}, process {srv.proc.pid}, up \d+ s$",
                     status.stdout, re.M), status.stdout
    assert re.search(r"^model +v1$", status.stdout, re.M) and re.search(r"^job +none$", status.stdout, re.M)
    assert re.search(r"^job +Training a new version, started by \S+: done in \d+ s$", status_after.stdout, re.M)
    assert conflict.status_code == 409 and conflict.json()["error"]["stored"] is None, conflict.text

    # An import refused whole says so as it does without the server, and its rejects file is the same.
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == ["line 3: amount: must be at least 0 (got '-3')",
                                           "error: nothing imported: 1 of 2 rows are invalid (fix them, or use "
                                           "--skip-invalid)"]
    via_rejects = rejects.read_bytes()
    assert imported.stdout == f"imported 3 rows from {incoming}; rejected 1\n"
    result = json.loads(trained_now.stdout)
    assert result.keys() == trained[2].keys() and result["model_version"] == "v2" and not result["promoted"]

    via = {"cases": cases.read_bytes(), "scores": scores.read_bytes()}
    again = cli(tmp_path, db, *export)
    score_again = cli(tmp_path, db, *score)
    refused_again = cli(tmp_path, db, "import", str(bad), "--rejects", str(rejects))
    assert again.stdout == exported.stdout and again.stdout.startswith("exported ") and \
        int(again.stdout.split()[1].replace(",", "")) > 100
    assert cases.read_bytes() == via["cases"]  # the done-when: the same file, byte for byte
    assert without_seconds(score_again.stdout) == without_seconds(scored.stdout)
    assert scores.read_bytes() == via["scores"] and via["scores"].count(b"\n") > 100
    assert (refused_again.returncode, refused_again.stderr, rejects.read_bytes()) == (1, refused.stderr, via_rejects)
    with Store(db) as store:
        cur = store.cursor()
        stored = cur.execute("SELECT count(*) FROM transactions WHERE transaction_id LIKE 'beside-%'").fetchone()[0]
        versions = [v for (v,) in cur.execute("SELECT version FROM model_versions ORDER BY version").fetchall()]
        actors = dict(cur.execute("SELECT action, actor FROM audit_log WHERE action IN ('import', 'train') "
                                  "ORDER BY audit_id").fetchall())
    assert stored == 3 and versions == ["v1", "v2"]
    assert actors == {"import": getpass.getuser(), "train": getpass.getuser()}  # the OS user, as without a server

    # A backup through the server: the folder as the user named its parent, and a complete backup in it, as
    # the same command writes with the server stopped.
    line = re.compile(rf"^backed up {re.escape(str(db))} \(([0-9,]+) transactions, 2 model files, [0-9.]+ MB\) "
                      r"to kept/(e-\d{8}T\d{6}Z)\n$")
    direct = cli(tmp_path, db, "backup", "--out", "kept")
    found, found_direct = line.match(backed_up.stdout), line.match(direct.stdout)
    assert backed_up.returncode == direct.returncode == 0 and found and found_direct, backed_up.stdout + direct.stdout
    assert found.group(1) == found_direct.group(1)
    manifest = json.loads((tmp_path / "kept" / found.group(2) / "manifest.json").read_text())
    assert manifest["actor"] == getpass.getuser() and manifest["models"] == ["v1", "v2"]
    assert manifest["rows"]["transactions"] == int(found.group(1).replace(",", ""))


def test_status_without_a_server(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    result = cli(tmp_path, db, "status")
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^database +{re.escape(str(db))}$", result.stdout, re.M)
    assert re.search(r"^server +not running$", result.stdout, re.M) and re.search(r"^model +v1$", result.stdout, re.M)


def test_the_secret_is_the_only_way_to_the_import_route_and_a_stale_file_is_ignored(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    incoming = write(tmp_path / "incoming.csv", HEADER + "\nstale-0,2018-06-15 11:00:00,C1,T1,5\n")
    made = cli(tmp_path, db, "token", "create", "ops", "--scope", "admin")
    assert made.returncode == 0, made.stderr
    named = {"Authorization": f"Bearer {made.stdout.strip()}"}
    srv = Server(tmp_path, db, FRAUD_APP_API_TOKEN=TOKEN, FRAUD_APP_RATE_LIMIT="0")
    try:
        srv.wait("api/v1/health")
        info = credentials(db)
        secret = {"Authorization": f"Bearer {info['secret']}", "X-Fraud-App-User": "ana%20lyst"}
        body = {"path": str(incoming)}
        as_admin = post_job(srv, "api/v1/jobs/import", body, {"Authorization": f"Bearer {TOKEN}"})
        as_named_admin = post_job(srv, "api/v1/jobs/import", body, named)
        named_may_export = post_job(srv, "api/v1/jobs/export", {"start": "2030-01-01"}, named)
        named_export = follow(srv, named_may_export.json(), named)  # done before the next job starts
        backup_elsewhere = post_job(srv, "api/v1/jobs/backup", {"out": str(tmp_path / "anywhere")},
                                    {"Authorization": f"Bearer {TOKEN}"})
        anonymous = post_job(srv, "api/v1/jobs/import", body, {})
        wrong = post_job(srv, "api/v1/jobs/import", body, {**secret, "Authorization": f"Bearer {info['secret']}x"})
        no_user = post_job(srv, "api/v1/jobs/import", body, {"Authorization": secret["Authorization"]})
        wrong_elsewhere = requests.get(srv.url + "api/v1/status", timeout=30,
                                       headers={**secret, "Authorization": "Bearer cli_wrong"})
        # With tokens in use, the command line still goes through with its secret.
        exported = cli(tmp_path, db, "export", "--out", str(tmp_path / "cases.csv"))
        # A job's file is for whoever started it only.
        started = post_job(srv, "api/v1/jobs/export", {"start": "2018-05-01", "end": "2018-05-02"}, secret)
        job = follow(srv, started.json(), secret)
        someone_else = requests.get(srv.url + f"api/v1/job/file?id={job['id']}", timeout=30,
                                    headers={"Authorization": f"Bearer {TOKEN}"})
        fetched = requests.get(srv.url + f"api/v1/job/file?id={job['id']}", headers=secret, timeout=30)
        fetched_again = requests.get(srv.url + f"api/v1/job/file?id={job['id']}", headers=secret, timeout=30)
        imported = post_job(srv, "api/v1/jobs/import", body, secret)
        import_job = follow(srv, imported.json(), secret)
        # Commands that cannot go through the server keep the one-line message.
        generate = cli(tmp_path, db, "generate", "--days", "1")
    finally:
        srv.stop()
    assert as_admin.status_code == 403 and as_admin.json()["error"]["code"] == "forbidden"
    assert "token api-token (admin) may not call /api/v1/jobs/import" in as_admin.json()["error"]["message"]
    assert as_named_admin.status_code == 403, as_named_admin.text
    assert "token ops (admin) may not call /api/v1/jobs/import" in as_named_admin.json()["error"]["message"]
    assert named_may_export.status_code == 202 and named_export["actor"] == "ops"  # the other job routes: admin
    assert backup_elsewhere.status_code == 403 and backup_elsewhere.json()["error"]["field"] == "out"
    assert not (tmp_path / "anywhere").exists()
    assert anonymous.status_code == 401 and wrong.status_code == 401 and wrong_elsewhere.status_code == 401
    assert no_user.status_code == 400 and "X-Fraud-App-User" in no_user.json()["error"]["message"]
    assert exported.returncode == 0 and exported.stdout.startswith("exported "), exported.stderr
    assert started.status_code == 202 and job["actor"] == "ana lyst" and job["error"] is None and job["file"]
    assert someone_else.status_code == 403 and "started by ana lyst" in someone_else.json()["error"]["message"]
    assert fetched.status_code == 200 and fetched.headers["Content-Type"].startswith("text/csv")
    assert fetched.content.startswith(b"transaction_id,timestamp,")
    assert fetched_again.status_code == 409 and fetched_again.json()["error"]["code"] == "no_file"
    assert imported.status_code == 202 and import_job["error"] is None and import_job["result"]["imported"] == 1
    assert "is in use by process" in one_line_error(generate)

    # A file left behind (a server killed, say) names a server that is gone: the command works on its own.
    write(db.with_name(db.name + ".server.json"), json.dumps(info))
    direct = cli(tmp_path, db, "export", "--out", str(tmp_path / "direct.csv"))
    assert direct.returncode == 0 and direct.stdout == exported.stdout.replace("cases.csv", "direct.csv")
    assert (tmp_path / "direct.csv").read_bytes() == (tmp_path / "cases.csv").read_bytes()
    with Store(db) as store:  # and the import through the secret happened, as the user the header named
        assert store.cursor().execute("SELECT actor FROM imports WHERE source = ?", [str(incoming)]).fetchall() == \
            [("ana lyst",)]
        # While another process holds the database, a stale file gives the usual message.
        held = cli(tmp_path, db, "export", "--out", str(tmp_path / "held.csv"))
    assert f"is in use by process {os.getpid()}" in one_line_error(held)


def test_a_file_naming_another_live_server_is_ignored(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    srv = Server(tmp_path, db)
    other = tmp_path / "other.duckdb"
    try:
        srv.wait("api/v1/health")
        # The right URL and secret, but not this start of the server: it is not the one that wrote the file.
        write(other.with_name(other.name + ".server.json"), json.dumps({**credentials(db), "instance": "0" * 16}))
        result = cli(tmp_path, other, "export", "--out", str(tmp_path / "x.csv"))
    finally:
        srv.stop()
    # The command opened `other` itself (a new, empty database), instead of exporting the server's cases.
    assert "nothing is scored yet" in one_line_error(result)
