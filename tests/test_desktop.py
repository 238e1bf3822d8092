"""The desktop app as an analyst meets it: a first launch on an empty profile, the browser it opens, a second
launch, Quit, a relaunch, and the command line on the same profile. Run from the source (`python -m fraud_app`)
here, and from the frozen bundle in test_bundle.py."""
from __future__ import annotations

import csv
import http.server
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import confirm_first_alert, free_port
from fraud_app.config import Settings
from fraud_app.desktop import instance_path, running


LINK = re.compile(r"^http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)$", re.M)
# Big enough that the set-up outlasts the browser's first page load by seconds, on a fast machine too.
DEMO = {"FRAUD_APP_DEMO_CUSTOMERS": "1500", "FRAUD_APP_DEMO_TERMINALS": "600", "FRAUD_APP_DEMO_DAYS": "60"}
PAYMENT = {"transaction_id": "desk-1", "timestamp": "2018-05-30T12:00:00Z", "customer_id": "C-desk",
           "terminal_id": "T-desk", "amount": 123.45}


def wait_for(what: str, check, timeout: float = 300):
    """check()'s first true value; generous, because the machine may be busy with other builds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Desktop:
    """Launches of one desktop command on one profile, each opening a recorded "browser"."""

    def __init__(self, argv: list[str], tmp: Path, data: Path, **env: str):
        self.argv, self.tmp, self.data = argv, tmp, data
        self.opened = tmp / "opened.txt"
        browser = tmp / "browser"
        browser.write_text(f"#!/bin/sh\necho \"$1\" >> '{self.opened}'\n")
        browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("FRAUD_APP_", "XDG_")) and k.lower() != "no_proxy"}
        # An office proxy for the internet must not stand between a second launch and the first one.
        self.env.update(HOME=str(tmp / "home"), BROWSER=str(browser), FRAUD_APP_ENV_FILE=str(tmp / "none.env"),
                        http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", **DEMO, **env)
        self.launches = 0

    def launch(self) -> tuple[subprocess.Popen, str, Path]:
        self.launches += 1
        out = self.tmp / f"launch-{self.launches}.out"
        with open(out, "w") as f:  # a file, not a pipe: a full pipe would stall the app
            proc = subprocess.Popen(self.argv, env=self.env, cwd=self.tmp, stdout=f, stderr=subprocess.STDOUT)

        def printed():
            exited = proc.poll() is not None
            if found := LINK.search(out.read_text()):
                return found
            if exited:
                raise AssertionError(f"exited with {proc.returncode} before printing a link:\n{out.read_text()}")
            return None

        return proc, wait_for("the launch link", printed).group(0), out

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.argv, *args], env=self.env, cwd=self.tmp, capture_output=True, text=True,
                              timeout=300)


def open_overview(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="Overview").wait_for(timeout=300_000)


def investigate(page, transaction_id: str) -> None:
    page.get_by_role("button", name="Investigate").click()
    search = page.get_by_placeholder("id, then Enter")
    search.fill(transaction_id)
    search.press("Enter")
    page.get_by_text(f"Transaction {transaction_id}").first.wait_for(timeout=120_000)


def run_scenario(desktop: Desktop, page) -> None:
    """The seven steps every desktop build must pass."""
    # 1. First launch on an empty profile: the browser opens the link at once, on the set-up page.
    assert not desktop.data.exists()
    first, link, _ = desktop.launch()
    port = LINK.search(link).group(1)
    base = f"http://127.0.0.1:{port}/"
    wait_for("the browser to be opened", lambda: desktop.opened.exists() and link in desktop.opened.read_text())
    page.goto(link)
    # Attached, not visible: a fast set-up may reload the page into the app before its first layout is shown.
    page.get_by_text("Setting up fraud_app").wait_for(state="attached", timeout=120_000)
    page.get_by_role("heading", name="Overview").wait_for(timeout=600_000)  # the page turns into the app
    assert "token=" not in page.url  # the secret is traded for a cookie and leaves the address bar
    assert (desktop.data / "fraud.duckdb").is_file()

    # 7. Without the launch secret the page is refused; without its token, the API.
    refused = requests.get(base, timeout=60)
    assert refused.status_code == 403 and "needs the link" in refused.text
    assert requests.post(base + "api/v1/score", json=PAYMENT, timeout=60).status_code == 401

    # 2. A script posts a payment with the API token and gets a score; an analyst confirms an alert.
    token = (desktop.data / "api-token").read_text().strip()
    scored = wait_for("live scoring", lambda: (r := requests.post(
        base + "api/v1/score", json=PAYMENT, headers={"Authorization": f"Bearer {token}"}, timeout=60))
        .status_code != 503 and r)
    assert scored.status_code == 200, scored.text
    assert 0 <= scored.json()["fraud_probability"] <= 1
    decided = confirm_first_alert(page)
    page.get_by_text("1 alert marked confirmed fraud.").wait_for(timeout=60_000)
    for view, heading in (("Model", "Model and retraining"), ("Monitoring", "Drift against training"),
                          ("Data", "Data")):
        page.get_by_role("button", name=view).click()  # every view builds (a frozen app may lack a module)
        page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=120_000)

    # 3. A second launch opens the running one: same port, and it exits without a server of its own.
    second, again, _ = desktop.launch()
    assert second.wait(timeout=120) == 0
    assert LINK.search(again).group(1) == port
    assert desktop.opened.read_text().splitlines()[-1] == again
    assert first.poll() is None
    # The command line goes through the running app (straight to loopback, past the office proxy).
    status = desktop.cli("status")
    assert status.returncode == 0 and f"server        http://127.0.0.1:{port}, process " in status.stdout, \
        status.stdout + status.stderr

    # 4. Quit in the page stops the app with exit code 0, and the database opens cleanly.
    page.get_by_role("button", name="Quit fraud_app").click()
    page.get_by_text("fraud_app has stopped").wait_for(timeout=60_000)
    assert first.wait(timeout=120) == 0
    assert not (desktop.data / "fraud.duckdb.wal").exists()  # checkpointed
    assert not (desktop.data / "fraud.duckdb.desktop.json").exists()
    assert not (desktop.data / "fraud.duckdb.server.json").exists()

    # 5. A relaunch shows the decision and the posted payment.
    third, link, _ = desktop.launch()
    try:
        open_overview(page, link)
        investigate(page, decided)
        page.get_by_text("confirmed fraud (").filter(visible=True).first.wait_for(timeout=60_000)  # in words
        investigate(page, PAYMENT["transaction_id"])
        page.get_by_text("T-desk").first.wait_for(timeout=60_000)
    finally:
        third.send_signal(signal.SIGTERM)  # 6 needs the database free; SIGTERM stops as cleanly as Quit
        assert third.wait(timeout=120) == 0

    logs = "".join(p.read_text() for p in desktop.tmp.glob("launch-*.out"))
    logs += "".join(p.read_text() for p in (desktop.data / "logs").glob("*.log*"))
    assert "Traceback" not in logs and " ERROR " not in logs, logs[-3000:]

    # 6. The same executable is the command line, on the same profile.
    out = desktop.tmp / "cases.csv"
    result = desktop.cli("export", "--status", "all", "--out", str(out))
    assert result.returncode == 0, result.stderr
    with open(out, newline="") as f:
        rows = {row["transaction_id"]: row for row in csv.DictReader(f)}
    assert rows[decided]["case_status"] == "confirmed_fraud"
    assert PAYMENT["transaction_id"] in rows or scored.json()["decision"] == "approve"


def test_a_stale_instance_file_is_not_a_running_app(tmp_path):
    settings = Settings(home=tmp_path)
    path = instance_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"instance": "abc", "port": free_port(), "url": "http://127.0.0.1:1/?token=x"}))
    assert running(settings) is None  # nothing listens there: the file outlived a crash
    path.write_text("{not json")
    assert running(settings) is None


class _Other(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the standard library's name)
        body = json.dumps({"instance": "another"}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_server_that_is_not_this_instance_is_not_it(tmp_path):
    settings = Settings(home=tmp_path)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Other) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        port = other.server_address[1]
        instance_path(settings).parent.mkdir(parents=True)
        instance_path(settings).write_text(json.dumps({"instance": "abc", "port": port, "url": "x"}))
        assert running(settings) is None  # it answers, but as another instance
        instance_path(settings).write_text(json.dumps({"instance": "another", "port": port, "url": "x"}))
        assert running(settings)["url"] == "x"  # the check itself works against a live answer
        other.shutdown()


@pytest.mark.browser
@pytest.mark.slow
def test_the_desktop_app_from_source(tmp_path, page):
    home = tmp_path / "app"
    desktop = Desktop([sys.executable, "-m", "fraud_app"], tmp_path, home / "data", FRAUD_APP_HOME=str(home))
    run_scenario(desktop, page)
