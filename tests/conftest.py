from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

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


def copy_of(trained, tmp_path: Path) -> Path:
    """A private copy of the trained database and its models under tmp_path."""
    home, db, _ = trained
    shutil.copytree(home / "models", tmp_path / "models")
    shutil.copy(db, tmp_path / "e.duckdb")
    return tmp_path / "e.duckdb"
