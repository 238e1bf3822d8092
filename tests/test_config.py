import logging
import time
from pathlib import Path

import pytest

from fraud_app.config import ConfigError, Settings, load_settings, setup_logging


def test_defaults_put_the_database_under_the_checkout():
    s = load_settings(environ={}, dotenv_file=Path("/nonexistent/.env"))
    assert s.db_path == Path(__file__).resolve().parent.parent / "data" / "fraud.duckdb"
    assert (s.address, s.port, s.label_delay_days, s.api_token) == ("127.0.0.1", 5006, 7, None)


def test_precedence_defaults_dotenv_environment_flags(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("FRAUD_APP_PORT=7000\nFRAUD_APP_LABEL_DELAY_DAYS=3\nFRAUD_APP_DB=/from/dotenv.duckdb\n")
    s = load_settings(environ={}, dotenv_file=dotenv)
    assert (s.port, s.label_delay_days, s.db_path) == (7000, 3, Path("/from/dotenv.duckdb"))
    env = {"FRAUD_APP_PORT": "7100", "FRAUD_APP_DB": "/from/env.duckdb"}
    s = load_settings(environ=env, dotenv_file=dotenv)
    assert (s.port, s.label_delay_days, s.db_path) == (7100, 3, Path("/from/env.duckdb"))
    s = load_settings({"port": 7200, "db": None}, environ=env, dotenv_file=dotenv)
    assert (s.port, s.db_path) == (7200, Path("/from/env.duckdb"))


def test_env_file_location_comes_from_the_environment(tmp_path):
    dotenv = tmp_path / "custom.env"
    dotenv.write_text("FRAUD_APP_API_TOKEN=secret\n")
    assert load_settings(environ={"FRAUD_APP_ENV_FILE": str(dotenv)}).api_token == "secret"


@pytest.mark.parametrize("env, message", [
    ({"FRAUD_APP_PORT": "eighty"}, "FRAUD_APP_PORT: expected int"),
    ({"FRAUD_APP_PORT": "70000"}, "port: 70000 is not a TCP port"),
    ({"FRAUD_APP_LOG_LEVEL": "LOUD"}, "log_level: unknown level"),
    ({"FRAUD_APP_CURRENCY": "EURO"}, "currency: 'EURO' is not a 3-letter code"),
    ({"FRAUD_APP_DEMO_DAYS": "0"}, "demo_days: must be at least 1"),
])
def test_bad_values_name_the_setting(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env, dotenv_file=Path("/nonexistent/.env"))


def test_logging_writes_a_rotating_file(tmp_path):
    settings = Settings(home=tmp_path)
    log_file = setup_logging(settings)
    logging.getLogger("fraud_app.test").warning("hello from the test")
    for handler in logging.getLogger("fraud_app").handlers:
        handler.flush()
    assert log_file == tmp_path / "data" / "logs" / "fraud_app.log"
    assert "hello from the test" in log_file.read_text()
    assert any(isinstance(h, logging.handlers.RotatingFileHandler) for h in logging.getLogger("fraud_app").handlers)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["fraud-app serve", "panel serve"])
def test_a_served_app_prints_each_log_line_once(trained, tmp_path, how):
    import requests

    from conftest import BIN, Server, copy_of

    app = Path(__file__).resolve().parent.parent / "fraud_app" / "ui" / "app.py"
    argv = None if how == "fraud-app serve" else [
        str(BIN / "panel"), "serve", str(app), "--plugins", "fraud_app.api", "--port", "{port}",
        "--address", "127.0.0.1", "--allow-websocket-origin", "127.0.0.1:{port}",
        "--check-unused-sessions", "500", "--unused-session-lifetime", "500"]  # a page no browser opens ends soon
    srv = Server(tmp_path, copy_of(trained, tmp_path), argv=argv)
    try:
        assert srv.wait("api/v1/health").status_code == 200
        assert requests.get(srv.url + ("" if argv is None else "app"), timeout=60).status_code == 200  # a session
        if argv is not None:  # its end is handled too (this module's globals are gone by then under panel serve)
            deadline = time.monotonic() + 120
            while "a page closed" not in srv.log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
        printed = srv.log.read_text()
    finally:
        srv.stop()
    assert printed.count("live scoring ready (model v1)") == 1, printed
    if argv is not None:
        assert "a page closed: its objects are freed in 60 s" in printed and "is not defined" not in printed, printed
