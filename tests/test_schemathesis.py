"""An outside API fuzzer, Schemathesis, pointed at the served /api/v1/openapi.json with every check on, finds
nothing: the description states exactly what the server accepts and answers.

Settings: every check (`--checks all`: no 5xx, only documented statuses, media types and headers, response
bodies as described, schema-valid requests accepted, schema-invalid ones refused, 405 with Allow for
undeclared methods, authentication enforced, ...), all four phases (the description's examples, the coverage
phase's boundary values, fuzzing of valid and invalid bodies, and stateful sequences along its links: label the
transaction just scored, post it again), up to 1,000 cases per operation and phase (each POST operation gets all
1,000 in fuzzing; a GET without parameters has one request to make), a fixed seed. The job routes start real
jobs (most are refused as busy while one runs), and the import route is called with the command line's secret,
the only way in to it. Three to five minutes on two cores, about half of it fuzzing, most of the rest stateful
sequences. The label link resolves only on a single transaction's answer; on a
batch's, Schemathesis notes that it could not extract the id, which is no failure."""
import json
import re
from collections import Counter
import subprocess
import time

import pytest

from conftest import BIN, Server, copy_of

TOKEN = "fuzz-token-0123456789-0123456789-xyz"
PHASES = "examples,coverage,fuzzing,stateful"
EXAMPLES = 1000
SEED = 1


def fuzzing_cases(events) -> Counter:
    """Requests the fuzzing phase generated, by (operation, positive or negative); not counting the probes a
    check sends after one."""
    counted: Counter = Counter()
    with open(events) as lines:
        for line in lines:
            scenario = json.loads(line).get("ScenarioFinished")
            if not scenario or scenario["phase"] != "fuzzing":
                continue
            for case in scenario["recorder"]["cases"].values():
                if not case.get("parent_id"):
                    counted[scenario["recorder"]["label"], case["value"]["meta"]["generation"]["mode"]] += 1
    return counted


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_schemathesis_with_every_check_finds_nothing(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    # Backups the fuzzer starts replace one another (only the newest is kept).
    srv = Server(tmp_path, db, FRAUD_APP_API_TOKEN=TOKEN, FRAUD_APP_RATE_LIMIT="0", FRAUD_APP_BACKUP_KEEP_DAYS="0")
    report, events = tmp_path / "schemathesis.json", tmp_path / "schemathesis.ndjson"
    config = tmp_path / "schemathesis.toml"
    try:
        srv.wait("api/v1/health")
        # The import route takes only the command line's secret (no token may make the server read a file):
        # the fuzzer calls it as the command line does. Stateful sequences follow the description's own links
        # only: links inferred to the job routes would spend them on jobs refused as busy.
        secret = json.loads(db.with_name(db.name + ".server.json").read_text())["secret"]
        config.write_text('[phases.stateful.inference]\nalgorithms = []\n\n'
                          '[[operations]]\ninclude-path = "/api/v1/jobs/import"\n'
                          f'headers = {{ Authorization = "Bearer {secret}", X-Fraud-App-User = "fuzzer" }}\n')
        started = time.monotonic()
        run = subprocess.run(
            [str(BIN / "st"), "--config-file", str(config), "run", srv.url + "api/v1/openapi.json",
             "--checks", "all", "--phases", PHASES,
             "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--header", f"Authorization: Bearer {TOKEN}",
             "--generation-database", "none", "--no-color", "--report", "json,ndjson", "--report-json-path",
             str(report), "--report-ndjson-path", str(events)],
            capture_output=True, text=True, cwd=tmp_path, timeout=840)
        took = time.monotonic() - started
    finally:
        log = srv.stop()
    print(f"schemathesis: {took:.0f} s\n{run.stdout[-3000:]}")
    assert run.returncode == 0, run.stdout[-40000:] + run.stderr[-5000:]
    result = json.loads(report.read_text())
    assert result["complete"] and result["failures"] == [] and result["errors"] == []
    assert {name: phase["status"] for name, phase in result["phases"].items()} == dict.fromkeys(
        PHASES.split(","), "success")
    # Every operation but the description's own route, which Schemathesis leaves out (test_api checks it).
    assert result["operations"]["tested"] == result["operations"]["total"] == 13
    # No warning either: every pattern usable, no operation left without valid data, none rate limited.
    assert not {name: found for name, found in result["warnings"].items() if found}
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", run.stdout)
    assert links and links.group(1) == links.group(2) == "2", run.stdout[-3000:]
    # Every operation with a body was fuzzed with at least 500 cases, valid and invalid ones both.
    fuzzed = fuzzing_cases(events)
    for operation in ("POST /api/v1/score", "POST /api/v1/labels"):
        assert fuzzed[operation, "positive"] + fuzzed[operation, "negative"] >= 500, fuzzed
        assert fuzzed[operation, "negative"] >= 100, fuzzed
    # Valid bodies reached the scoring and labelling code, not only its refusals.
    rates = result["valid_rates"]
    assert rates["POST /api/v1/score"]["fuzzing"]["accepted"] > 50
    assert rates["POST /api/v1/labels"]["coverage"]["accepted"] > 0
    assert "Traceback" not in log
