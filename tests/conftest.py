from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests

from fraud_app.store import Store

BIN = Path(sys.executable).parent
HEADER = "transaction_id,timestamp,customer_id,terminal_id,amount"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "fraud.duckdb"


@pytest.fixture
def store(db_path: Path):
    with Store(db_path) as s:
        yield s


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def good_rows(n: int, start: int = 0) -> str:
    return "".join(f"{i},2018-04-01 00:{i % 60:02d}:00,C{i % 7},T{i % 5},{i % 90 + 0.5}\n"
                   for i in range(start, start + n))


def count(store: Store, table: str = "transactions") -> int:
    return store.cursor().execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no .env from the checkout, data and logs under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUD_APP_")}
    env.update(FRAUD_APP_HOME=str(tmp_path), FRAUD_APP_ENV_FILE=str(tmp_path / "none.env"), **extra)
    return env


class Server:
    """`fraud-app serve` (or another command given as `argv`, with {port} filled in) on a free port."""

    def __init__(self, tmp_path: Path, db: Path, argv: list[str] | None = None, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        argv = argv or [str(BIN / "fraud-app"), "--db", str(db), "serve", "--port", "{port}", "--no-show"]
        self.log = tmp_path / f"server-{self.port}.log"  # a file, not a pipe: a full pipe would stall the server
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([a.replace("{port}", str(self.port)) for a in argv],
                                         env=cli_env(tmp_path, FRAUD_APP_DB=str(db), **env), cwd=tmp_path,
                                         stdout=out, stderr=subprocess.STDOUT, text=True)

    def wait(self, path: str = "", timeout: float = 120) -> requests.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()}")
            try:
                return requests.get(self.url + path, timeout=30)
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow on a busy machine
                time.sleep(0.3)
        raise AssertionError("server did not answer in time")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.log.read_text()


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def run_cli(tmp_path: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it."""
    return subprocess.run([str(BIN / "fraud-app"), *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(tmp_path, **env), cwd=tmp_path)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A generated database with one trained model (home, db, train output). Tests copy it before writing."""
    home = tmp_path_factory.mktemp("engine")
    db = home / "e.duckdb"
    size = ["--customers", "500", "--terminals", "1000", "--days", "75"]
    assert run_cli(home, "--db", str(db), "generate", *size).returncode == 0
    result = run_cli(home, "--db", str(db), "train", "--seed", "1")
    assert result.returncode == 0, result.stderr
    return home, db, json.loads(result.stdout)


def app_of(trained, tmp_path: Path, **settings):
    """An application object on a private copy of the trained database (close it when done)."""
    from fraud_app.application import FraudApp
    from fraud_app.config import Settings

    return FraudApp(Settings(home=tmp_path, db=copy_of(trained, tmp_path), **settings))


def models_of(home: Path, db: Path) -> Path:
    """Where the app keeps this database's model files under `home`."""
    with Store(db) as store:
        return home / "models" / store.database_id


def copy_of(trained, tmp_path: Path) -> Path:
    """A private copy of the trained database and its models under tmp_path."""
    home, db, _ = trained
    shutil.copytree(home / "models", tmp_path / "models")
    shutil.copy(db, tmp_path / "e.duckdb")
    return tmp_path / "e.duckdb"


def add_skops_version(store: Store, folder: Path) -> str:
    """A version saved as the app saved them before its .lgbm.json files: scikit-learn's LGBMClassifier in a
    skops file, with its row. Fitted on the database's own first three weeks. Returns the version name."""
    import datetime as dt
    import hashlib

    import skops.io as sio
    from lightgbm import LGBMClassifier

    from fraud_app import features
    from fraud_app.store import models

    first = store.cursor().execute("SELECT min(timestamp)::DATE FROM transactions").fetchone()[0]
    table = features.batch_features(store, first, first + dt.timedelta(days=20))
    y = table.column("is_fraud").fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    model = LGBMClassifier(n_estimators=40, learning_rate=0.15, num_leaves=8, max_depth=3, min_child_samples=40,
                           subsample=0.8, subsample_freq=1, colsample_bytree=0.7, reg_lambda=1.0, random_state=0,
                           n_jobs=2, deterministic=True, force_row_wise=True, verbose=-1)
    model.fit(features.feature_matrix(table), y)
    version = models.next_version(store)
    path = folder / f"{version}.skops"
    folder.mkdir(parents=True, exist_ok=True)
    sio.dump({"model": model, "features": list(features.FEATURE_NAMES), "calibration": [0.9, -0.2],
              "thresholds": {"review": 0.3, "decline": 0.8}}, path)
    models.add_version(store, {
        "version": version, "created_at": dt.datetime(2024, 1, 1), "train_start": first,
        "train_end": first + dt.timedelta(days=20), "params": {"model": "lightgbm_depth3"},
        "features": list(features.FEATURE_NAMES), "metrics": {}, "thresholds": {"review": 0.3, "decline": 0.8},
        "library_versions": {"scikit-learn": "1.5", "skops": "0.10"},
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "path": path.name}, "tester")
    return version


@contextmanager
def scored_server(trained, tmp: Path, ready: str = "api/v1/health", **env: str) -> Iterator[Server]:
    """`fraud-app serve` on a private, scored copy of the trained database (its file: `.db`)."""
    db = copy_of(trained, tmp)
    assert run_cli(tmp, "--db", str(db), "score").returncode == 0
    srv = Server(tmp, db, **env)
    srv.db = db
    try:
        srv.wait(ready)
        yield srv
    finally:
        srv.stop()


def users_file(tmp: Path, users: dict[str, str], password: str) -> Path:
    """A users file, written by `fraud-app user add`, giving each name its role and all the one password."""
    path = tmp / "users.json"
    for name, role in users.items():
        subprocess.run([str(BIN / "fraud-app"), "user", "add", name, "--role", role, "--password-stdin", "--file",
                        str(path)], input=password + "\n", text=True, check=True, env=cli_env(tmp), cwd=tmp,
                       capture_output=True)
    return path


QUEUE_ROWS = ".tabulator-row:has([tabulator-field=Undecided])"  # the Review queue's cases
CASE_ROWS = ".tabulator-row:has([tabulator-field='Decision so far'])"  # an opened case's alerts


def open_first_case(page, timeout: float = 120_000) -> str:
    """In the browser: the Review queue, its first case opened. Returns the case's first alert's id."""
    page.get_by_role("button", name="Review queue", exact=True).click()
    page.locator(QUEUE_ROWS).first.click(timeout=timeout)
    page.get_by_text("Decisions apply to the ticked alerts").wait_for(timeout=timeout)
    return page.locator(CASE_ROWS).first.locator("[tabulator-field=Transaction]").inner_text(timeout=timeout)


def note_box(page):
    """The decision's note in the view on screen (Investigate has one too, hidden behind it)."""
    return page.get_by_placeholder("note for the decision (optional)").filter(visible=True)


def confirm_first_alert(page, note: str | None = None) -> str:
    """In the browser: the Review queue's first case opened, its first alert ticked, Confirm fraud pressed.
    Returns that alert's id."""
    transaction_id = open_first_case(page)
    page.locator(CASE_ROWS).first.locator("input[type=checkbox]").check()
    if note:
        note_box(page).fill(note)
    page.get_by_role("button", name="Confirm fraud").click()
    return transaction_id


CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by `make test`; Playwright downloads nothing


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True, "args": ["--no-sandbox"]}


@pytest.fixture
def watched(page):
    """The page, with every console error, page error and failed request collected."""
    errors = []
    page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def nullable_as_type(schema):
    """OpenAPI 3.0's `nullable` in JSON Schema terms, so a JSON Schema validator can check a document."""
    if isinstance(schema, list):
        return [nullable_as_type(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: nullable_as_type(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") and "type" in schema:
        out["type"] = [schema["type"], "null"]
        if "enum" in schema:
            out["enum"] = [*schema["enum"], None]
    return out
