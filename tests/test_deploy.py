"""Deployment on a shared host: behind nginx under /fraud/, as a hardened systemd service, in containers.

nginx runs from deploy/nginx/fraud-app.conf itself (only its ports filled in) as an ordinary process, in front
of a served app; the systemd unit is checked by systemd-analyze and the app is run under its system call
filters; the container files are checked against the product, as no container engine runs here."""
from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from conftest import BIN, Server, cli_env, confirm_first_alert, copy_of, free_port, one_line_error, run_cli

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx" / "fraud-app.conf"
UNIT = ROOT / "deploy" / "systemd" / "fraud-app.service"
ENV_EXAMPLE = ROOT / "deploy" / "systemd" / "fraud-app.env.example"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
TOKEN = "t" * 40
PAYMENT = {"transaction_id": "deploy-1", "timestamp": "2018-06-01T12:00:00", "customer_id": "C00001",
           "terminal_id": "T00002", "amount": 312.5, "channel": "online"}


def settings_names() -> set[str]:
    from fraud_app.config import Settings

    return {f"FRAUD_APP_{field.name.upper()}" for field in fields(Settings)} | {"FRAUD_APP_ENV_FILE"}


class Nginx:
    """Debian's nginx as an ordinary process (not the system service): deploy/nginx/fraud-app.conf inside a
    minimal main configuration whose pid, logs and temporary files live in `tmp`, listening on a free
    loopback port and passing to `upstream_port`."""

    def __init__(self, tmp: Path, upstream_port: int, port: int | None = None):
        assert Path(NGINX).exists(), "nginx is missing: `make test` installs it (apt-get install nginx)"
        self.port, self.dir = port or free_port(), tmp / f"nginx-{upstream_port}"
        self.dir.mkdir()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = NGINX_CONF.read_text()
        for old, new in (("server 127.0.0.1:5006;", f"server 127.0.0.1:{upstream_port};"),
                         ("listen 80;", f"listen 127.0.0.1:{self.port};")):
            assert conf.count(old) == 1, f"{NGINX_CONF.name} no longer has exactly one {old!r}"
            conf = conf.replace(old, new)
        d = self.dir
        # One process (master_process off): run as root, nginx would otherwise hand requests to workers
        # running as `nobody`, who cannot write the temporary files under this private directory.
        (d / "nginx.conf").write_text(f"""
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{conf}
}}
""")
        with open(d / "stderr.log", "w") as stderr:
            self.proc = subprocess.Popen([NGINX, "-e", str(d / "error.log"), "-c", str(d / "nginx.conf"),
                                          "-p", str(d), "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (d / "stderr.log").read_text() + (d / "error.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("nginx did not listen in time")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGQUIT)  # finish open requests, then stop
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def call(url: str, source: str = "127.0.0.1", token: str | None = TOKEN,
         headers: dict | None = None) -> tuple[int, dict]:
    """GET `url` from the loopback address `source` (any of 127.0.0.0/8 works on Linux), so that nginx and
    the app see clients at different addresses. Returns the status and the JSON body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30, source_address=(source, 0))
    try:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        connection.request("GET", parts.path, headers=sent)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def served(tmp: Path, trained, *argv: str, score: bool = False, **env: str) -> tuple[Server, Path]:
    """`fraud-app serve` on a private copy of the trained database (scored first if `score`)."""
    tmp.mkdir()
    db = copy_of(trained, tmp)
    if score:
        assert run_cli(tmp, "--db", str(db), "score").returncode == 0
    return Server(tmp, db, [str(BIN / "fraud-app"), "--db", str(db), "serve", "--port", "{port}", "--no-show",
                            *argv], **env), db


# The text each view shows once it is drawn; every view in the navigation must be here.
VIEW_TEXT = {"Overview": "Fraud amount caught", "Review queue": "Click a case to open it", "Investigate": "Transaction id",
             "Model": "Threshold simulator", "Monitoring": "REST API latency", "Data": "generate --seed 0"}


@pytest.mark.browser
@pytest.mark.slow
def test_the_app_works_behind_nginx_under_a_prefix(trained, tmp_path, watched):
    from fraud_app.store import Store
    from fraud_app.store.schema import DECISIONS
    from fraud_app.ui.app import VIEWS

    assert set(VIEW_TEXT) == set(VIEWS)
    page, errors = watched
    port = free_port()  # nginx's: the app must know the address people open
    public = f"http://127.0.0.1:{port}"
    srv, db = served(tmp_path / "app", trained, "--prefix", "/fraud", score=True, FRAUD_APP_UI_PASSWORD="s3cret",
                     FRAUD_APP_API_TOKEN=TOKEN, FRAUD_APP_BEHIND_PROXY="1", FRAUD_APP_ALLOWED_ORIGINS=public)
    nginx = None
    try:
        srv.wait("fraud/favicon.ico")
        nginx = Nginx(tmp_path, srv.port, port)
        page.goto(f"{public}/fraud")  # nginx adds the slash; the app sends a visitor to its own login page
        assert urlsplit(page.url).path == "/fraud/login"
        page.locator("input[name=username]").fill("ana")
        page.locator("input[name=password]").fill("s3cret")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text(VIEW_TEXT["Overview"]).first.wait_for(timeout=60_000)
        assert urlsplit(page.url).path == "/fraud/"
        for view in VIEWS:  # each view is drawn by the server, over the websocket through nginx
            page.get_by_role("button", name=view, exact=True).click()
            page.get_by_text(VIEW_TEXT[view]).first.wait_for(timeout=60_000)

        first_id = confirm_first_alert(page, "seen behind the proxy")
        page.get_by_text("1 alert marked confirmed fraud.").wait_for(timeout=60_000)

        # A script scores a payment through the same nginx.
        scored = requests.post(f"{public}/fraud/api/v1/score", json=PAYMENT, timeout=30,
                               headers={"Authorization": f"Bearer {TOKEN}"})
        assert scored.status_code == 200, scored.text
        assert scored.json()["transaction_id"] == "deploy-1" and 0 <= scored.json()["fraud_probability"] <= 1
        assert scored.json()["decision"] in DECISIONS
        # A body over FRAUD_APP_MAX_BODY_BYTES is refused by nginx with the API's own error object.
        big = requests.post(f"{public}/fraud/api/v1/score", data=b" " * 2_000_001, timeout=30,
                            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
        assert requests.get(f"{public}/fraud/api/v1/health", timeout=30).status_code == 401  # the token still applies
        assert errors == []
    finally:
        srv.stop()
        if nginx:
            nginx.stop()
    with Store(db) as store:
        case = store.cursor().execute("SELECT status, note FROM cases WHERE transaction_id = ?", [first_id]).fetchall()
        stored = store.cursor().execute("SELECT count(*) FROM transactions WHERE transaction_id = 'deploy-1'").fetchone()
    assert case == [("confirmed_fraud", "seen behind the proxy")] and stored == (1,)


@pytest.mark.slow
def test_a_forwarded_client_address_counts_only_with_the_proxy_setting(trained, tmp_path):
    """Ten wrong tokens make a client wait (FRAUD_APP_AUTH_WINDOW): which client that is shows which address
    the app took for it. Behind nginx, every request comes from nginx's own address."""
    env = {"FRAUD_APP_API_TOKEN": TOKEN, "FRAUD_APP_AUTH_WINDOW": "600", "FRAUD_APP_PREFIX": "/fraud"}
    trusting, _ = served(tmp_path / "trusting", trained, FRAUD_APP_BEHIND_PROXY="1", **env)
    plain, _ = served(tmp_path / "plain", trained, **env)
    proxies = []
    try:
        for srv in (trusting, plain):
            srv.wait("fraud/favicon.ico")  # not the API: a request without the token would count
            proxies.append(Nginx(tmp_path, srv.port))
        health = "/fraud/api/v1/health"
        for proxy in proxies:
            for _ in range(10):
                assert call(proxy.url + health, source="127.0.0.2", token="wrong")[0] == 401
            assert call(proxy.url + health, source="127.0.0.2")[0] == 429

        # With FRAUD_APP_BEHIND_PROXY=1 another client behind nginx is still served, even when it claims to
        # be the one that must wait: nginx sets X-Real-IP itself.
        spoofed = {"X-Real-IP": "127.0.0.2", "X-Forwarded-For": "127.0.0.2"}
        status, body = call(proxies[0].url + health, source="127.0.0.3", headers=spoofed)
        assert status == 200 and body["status"] == "ok"
        # ... and it believes those headers from whoever sends them: hence the setting, off by default.
        assert call(trusting.url + health.lstrip("/"), headers={"X-Real-IP": "127.0.0.2"})[0] == 429

        # Without it, nginx's address is the client: one client's wrong tokens make everyone behind nginx wait,
        status, body = call(proxies[1].url + health, source="127.0.0.3")
        assert status == 429 and body["error"]["code"] == "rate_limited"
        # and a client's own X-Real-IP or X-Forwarded-For is ignored: 127.0.0.1 (nginx) must still wait.
        claimed = {"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "203.0.113.9"}
        assert call(plain.url + health.lstrip("/"), headers=claimed)[0] == 429
        assert call(plain.url + health.lstrip("/"), source="127.0.0.4")[0] == 200  # another address is served
    finally:
        for srv in (trusting, plain):
            srv.stop()
        for proxy in proxies:
            proxy.stop()


@pytest.mark.slow
def test_panel_serve_with_a_prefix_behind_nginx(trained, tmp_path):
    tmp_path.joinpath("app").mkdir()
    db = copy_of(trained, tmp_path / "app")
    port = free_port()
    srv = Server(tmp_path / "app", db, [str(BIN / "panel"), "serve", str(ROOT / "fraud_app" / "ui" / "app.py"),
                                        "--plugins", "fraud_app.api", "--prefix", "fraud", "--port", "{port}",
                                        "--use-xheaders", "--allow-websocket-origin", f"127.0.0.1:{port}"],
                 FRAUD_APP_API_TOKEN=TOKEN)
    nginx = None
    try:
        srv.wait("fraud/favicon.ico")
        nginx = Nginx(tmp_path, srv.port, port)
        assert call(f"{nginx.url}/fraud/api/v1/health")[1]["status"] == "ok"  # the plugin's routes, prefixed
        home = requests.get(f"{nginx.url}/fraud/", timeout=60)  # Panel sends the root to its one app
        assert home.status_code == 200 and urlsplit(home.url).path == "/fraud/app"
        assert "<title>fraud_app</title>" in home.text
    finally:
        srv.stop()
        if nginx:
            nginx.stop()


def _unit_copy(tmp_path: Path, binary: Path) -> Path:
    """The unit with ExecStart pointing at `binary` (it must exist for systemd-analyze verify); nothing else
    changed."""
    text = UNIT.read_text()
    assert text.count("ExecStart=/opt/fraud-app/.venv/bin/fraud-app ") == 1
    unit = tmp_path / "fraud-app.service"
    unit.write_text(text.replace("ExecStart=/opt/fraud-app/.venv/bin/fraud-app ", f"ExecStart={binary} "))
    return unit


def test_the_systemd_unit_verifies_and_is_hardened(tmp_path):
    assert Path(SYSTEMD_ANALYZE).exists(), "systemd-analyze is missing: `make test` installs it (apt-get install systemd)"
    unit = _unit_copy(tmp_path, BIN / "fraud-app")
    verify = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify only warns (exit 0) about unknown keys or bad values: any output at all is a failure.
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stdout + verify.stderr
    (tmp_path / "broken").mkdir()
    broken = _unit_copy(tmp_path / "broken", tmp_path / "no-such")
    missing = subprocess.run([SYSTEMD_ANALYZE, "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "no-such" in missing.stderr  # the check is real: ExecStart must exist

    from unit_sandbox import unit_settings

    settings = unit_settings(UNIT)
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "StateDirectory": "fraud-app", "LogsDirectory": "fraud-app",
                       "CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes", "DynamicUser": "yes",
                       "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "KillSignal": "SIGINT",
                       "EnvironmentFile": "/etc/fraud-app/fraud-app.env"}.items():
        assert settings.get(key) == [value], key
    assert settings["SystemCallFilter"][0] == "@system-service"
    assert settings["ExecStart"][0].endswith("/fraud-app serve --no-show")
    environment = dict(item.split("=", 1) for line in settings["Environment"] for item in line.split())
    assert environment == {"FRAUD_APP_HOME": "%S/fraud-app", "FRAUD_APP_LOGS": "%L/fraud-app"}
    assert set(environment) <= settings_names()

    # The exposure score systemd gives the unit is the one the README states.
    security = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", str(unit)], capture_output=True,
                              text=True, timeout=60)
    score = re.search(r"Overall exposure level for fraud-app\.service: (\d+\.\d)", security.stdout)
    assert score, security.stdout + security.stderr
    readme = (ROOT / "README.md").read_text()
    assert f"exposure level of **{score.group(1)}**" in readme and f"{score.group(1)} " in (
        ROOT / "docs" / "deploy.md").read_text()


def test_the_env_example_holds_valid_settings_only(tmp_path):
    from dotenv import dotenv_values

    from fraud_app.config import load_settings

    names = set(dotenv_values(ENV_EXAMPLE))
    assert names and names <= settings_names(), names - settings_names()
    settings = load_settings(environ={"FRAUD_APP_ENV_FILE": str(ENV_EXAMPLE)})
    assert settings.path_prefix == "/fraud" and settings.behind_proxy is True
    assert f"server {settings.address}:{settings.port};" in NGINX_CONF.read_text()
    assert f"location {settings.path_prefix}/ {{" in NGINX_CONF.read_text()


@pytest.mark.slow
def test_the_app_trains_scores_and_serves_under_the_units_system_call_filters(trained, tmp_path):
    """systemd cannot start units here (it is not PID 1), so the unit's SystemCallFilter=,
    SystemCallErrorNumber= and MemoryDenyWriteExecute= are installed as systemd would (tests/unit_sandbox.py)."""
    sandbox = [sys.executable, str(Path(__file__).with_name("unit_sandbox.py")), str(UNIT)]
    for refused in ("import mmap; mmap.mmap(-1, 4096, prot=7)", "import os; os.chroot('/')"):  # the filters hold
        probe = subprocess.run([*sandbox, sys.executable, "-c", refused], capture_output=True, text=True, timeout=60)
        assert probe.returncode == 1 and "PermissionError" in probe.stderr, probe.stderr
    home = tmp_path / "app"
    home.mkdir()
    db = copy_of(trained, home)
    train = subprocess.run([*sandbox, str(BIN / "fraud-app"), "--db", str(db), "train", "--seed", "2", "--promote"],
                           capture_output=True, text=True, timeout=600, env=cli_env(home), cwd=home)
    assert train.returncode == 0, train.stderr
    assert json.loads(train.stdout)["model_version"] == "v2"  # LightGBM trained (OpenMP threads) under the filters
    srv = Server(home, db, [*sandbox, str(BIN / "fraud-app"), "--db", str(db), "serve", "--port", "{port}",
                            "--no-show"])
    try:
        page = srv.wait()
        assert page.status_code == 200 and "<title>fraud_app</title>" in page.text
        assert "Seccomp_filters:\t2" in Path(f"/proc/{srv.proc.pid}/status").read_text()
        scored = requests.post(srv.url + "api/v1/score", json=PAYMENT, timeout=30)
        assert scored.status_code == 200 and scored.json()["model_version"] == "v2", scored.text
    finally:
        srv.stop()


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in lines]


def one(instructions: list[tuple[str, str]], name: str) -> str:
    found = [args for word, args in instructions if word == name]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def exec_form(args: str) -> list[str]:
    argv = json.loads(args)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), args
    return argv


@pytest.mark.slow
def test_the_container_files_name_only_what_the_product_has(trained, tmp_path):
    """No container engine runs here: the Dockerfile and compose.yaml are checked against the product, and
    their commands are run as they would run in the container."""
    from fraud_app.cli import build_parser
    from fraud_app.config import Settings, load_settings

    steps = dockerfile()
    assert one(steps, "FROM") == "python:3.11-slim"
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    for args in (args for word, args in steps if word == "COPY"):
        for source in args.split()[:-1]:
            assert (ROOT / source).exists() and source.rstrip("/") not in ignored, source
    assert any(word == "RUN" and "pip install --no-cache-dir ." in args for word, args in steps)
    user = one(steps, "USER")
    assert user not in ("root", "0") and any(word == "RUN" and re.search(rf"useradd .* {user}\b", args)
                                             for word, args in steps)
    env = dict(re.findall(r"(\w+)=(\S+)", one(steps, "ENV")))
    assert {k for k in env if k.startswith("FRAUD_APP_")} <= settings_names()
    volume = one(steps, "VOLUME")
    assert env["FRAUD_APP_HOME"] == volume
    assert one(steps, "EXPOSE") == str(Settings().port)
    assert one(steps, "STOPSIGNAL") == "SIGINT"  # what `serve` stops cleanly on, as the unit's KillSignal

    # CMD: the real CLI takes its arguments, and on 0.0.0.0 demands the authentication settings compose sets.
    cmd = exec_form(one(steps, "CMD"))
    assert cmd[0] == "fraud-app" and cmd[1] == "serve"
    build_parser().parse_args(cmd[1:])
    refused = run_cli(tmp_path, *cmd[1:], FRAUD_APP_PORT=str(free_port()), timeout=60)
    assert refused.returncode == 1 and "refusing to serve on 0.0.0.0" in refused.stderr, refused.stderr

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app, nginx = compose["services"]["app"], compose["services"]["nginx"]
    assert set(compose["services"]) == {"app", "nginx"} and app["build"] == "."
    assert app["command"][:2] == ["fraud-app", "serve"]
    build_parser().parse_args(app["command"][1:])
    app_env = app["environment"]
    assert set(app_env) <= settings_names(), set(app_env) - settings_names()
    for needed in ("FRAUD_APP_API_TOKEN", "FRAUD_APP_UI_PASSWORD"):
        assert needed in refused.stderr and needed in app_env
    for name, value in app_env.items():  # each ${VAR...} fills the setting of its own name, or the public origin
        for var in re.findall(r"\$\{(\w+)", str(value)):
            assert var in (name, "PUBLIC_ORIGIN"), (name, value)
    filled = {name: re.sub(r"\$\{[^}]*\}", "x" * 40, str(value)) for name, value in app_env.items()}
    assert load_settings(environ={**filled, "FRAUD_APP_ENV_FILE": str(tmp_path / "none.env")}).behind_proxy
    assert [v.split(":") for v in app["volumes"]] == [["fraud-data", volume]] and "fraud-data" in compose["volumes"]
    conf = NGINX_CONF.read_text()
    (published,) = app["ports"]
    assert f"listen {published.split(':')[1]};" in conf  # nginx shares the app's network: the port is nginx's
    assert nginx["network_mode"] == "service:app"
    address = app["command"][app["command"].index("--address") + 1]
    assert f"server {address}:{one(steps, 'EXPOSE')};" in conf
    assert f"location {app_env['FRAUD_APP_PREFIX']}/ {{" in conf
    (mount,) = nginx["volumes"]
    source, target, mode = mount.split(":")
    assert (ROOT / source).resolve() == NGINX_CONF and target.startswith("/etc/nginx/conf.d/") and mode == "ro"

    # HEALTHCHECK, run as the container would, against a served app: the route exists and answers with the
    # token, at the port and prefix the app reads from its settings.
    health = one(steps, "HEALTHCHECK")
    probe = exec_form(health.split("CMD", 1)[1])
    assert probe[0] == "python" and "/api/v1/health" in probe[-1]
    srv, _ = served(tmp_path / "app", trained, FRAUD_APP_API_TOKEN=TOKEN, FRAUD_APP_PREFIX="/fraud")

    def check(token: str) -> int:
        env = cli_env(tmp_path, FRAUD_APP_PORT=str(srv.port), FRAUD_APP_PREFIX="/fraud", FRAUD_APP_API_TOKEN=token)
        return subprocess.run([sys.executable, *probe[1:]], env=env, cwd=tmp_path, capture_output=True,
                              timeout=60).returncode

    try:
        srv.wait("fraud/favicon.ico")
        assert check(TOKEN) == 0
        assert check("a-wrong-token-of-forty-characters-xxxxxx") != 0
    finally:
        srv.stop()
    assert check(TOKEN) != 0  # nothing answers


@pytest.mark.parametrize("given, expected", [("/fraud", "/fraud"), ("fraud/", "/fraud"), ("/a/b.c/", "/a/b.c"),
                                             ("/", ""), (None, "")])
def test_a_prefix_is_a_plain_url_path(given, expected):
    from fraud_app.config import load_settings

    environ = {"FRAUD_APP_ENV_FILE": "/nonexistent.env"} | ({"FRAUD_APP_PREFIX": given} if given else {})
    assert load_settings(environ=environ).path_prefix == expected


@pytest.mark.parametrize("given", ["/fr aud", "/../x", "/a/..", "//x", "/a?b", "https://x/"])
def test_a_prefix_that_is_not_a_plain_path_is_refused_naming_the_setting(given, tmp_path):
    result = run_cli(tmp_path, "serve", "--prefix", given, "--no-show", timeout=60)
    line = one_line_error(result)
    assert "prefix" in line and repr(given) in line


def test_the_proxy_setting_turns_on_forwarded_headers_only_when_set(tmp_path):
    from fraud_app.config import ConfigError, load_settings
    from fraud_app.guard import server_limits

    def limits(value: str | None) -> dict:
        environ = {"FRAUD_APP_ENV_FILE": str(tmp_path / "none.env")}
        return server_limits(load_settings(environ=environ | ({"FRAUD_APP_BEHIND_PROXY": value} if value else {})))

    assert limits(None)["xheaders"] is False and limits("0")["xheaders"] is False
    assert limits("1")["xheaders"] is True and limits("Yes")["xheaders"] is True
    with pytest.raises(ConfigError, match="FRAUD_APP_BEHIND_PROXY: expected 1 or 0"):
        limits("maybe")


def test_the_log_file_goes_where_fraud_app_logs_says(tmp_path):
    from fraud_app.config import load_settings, setup_logging

    settings = load_settings(environ={"FRAUD_APP_HOME": str(tmp_path / "home"), "FRAUD_APP_LOGS": str(tmp_path / "logs"),
                                      "FRAUD_APP_ENV_FILE": str(tmp_path / "none.env")})
    assert setup_logging(settings) == tmp_path / "logs" / "fraud_app.log"
    assert (tmp_path / "logs" / "fraud_app.log").exists() and not (tmp_path / "home" / "data" / "logs").exists()
