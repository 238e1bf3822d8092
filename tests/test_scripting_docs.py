"""docs/scripting-api.md runs as written: its Python blocks, in order, as one script, then its curl block,
against a served app."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server, copy_of
from fraud_app.store import Store

PAGE = Path(__file__).resolve().parent.parent / "docs" / "scripting-api.md"
TOKEN = "docs-token-0123456789-0123456789-abc"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", PAGE.read_text(), re.S | re.M)


@pytest.fixture
def served(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    srv = Server(tmp_path, db, FRAUD_APP_API_TOKEN=TOKEN, FRAUD_APP_RATE_LIMIT="0")
    srv.wait("api/v1/health")
    yield srv, db
    srv.stop()


@pytest.mark.slow
def test_the_scripting_page_runs_as_written(served, tmp_path):
    srv, db = served
    python, shell = blocks("python"), blocks("sh")
    assert len(python) >= 6 and len(shell) == 1
    env = {"PATH": "/usr/bin:/bin", "FRAUD_APP_URL": srv.url.rstrip("/"), "FRAUD_APP_API_TOKEN": TOKEN}
    script = subprocess.run([sys.executable, "-"], input="\n".join(python), capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=600)
    assert script.returncode == 0, script.stdout + script.stderr
    assert "422 invalid amount: must be at least 0 and below 1e9" in script.stdout
    curl = subprocess.run(["bash", "-euo", "pipefail", "-c", shell[0]], capture_output=True, text=True, env=env,
                          timeout=120)
    assert curl.returncode == 0, curl.stdout + curl.stderr
    assert json.loads(curl.stdout)["transaction_id"] == "doc-curl-1"
    log = srv.stop()
    assert "Traceback" not in log
    with Store(db) as store:
        cur = store.cursor()
        stored = cur.execute("SELECT count(*) FROM transactions WHERE transaction_id LIKE 'doc-%'").fetchone()[0]
        label = cur.execute("SELECT is_fraud FROM transactions WHERE transaction_id = 'doc-1'").fetchone()[0]
    # doc-1, the 2,500 of the batches and the curl one; doc-2 to doc-4 were refused.
    assert stored == 1 + 2500 + 1 and label is True
