"""The desktop app: what the bundle runs when double-clicked (`fraud-app desktop` from an install).

It serves the UI and the REST API on 127.0.0.1 on a free port and opens the default browser there. Other local
users and web pages cannot reach the UI: the page needs a secret made at each launch, which the browser trades
for a cookie on its first request (as Jupyter does); the REST API needs its bearer token. A second launch finds
the running one through an instance file beside the database and opens the browser on it. Quit in the page,
SIGTERM or Ctrl-C stop the server and close the application object: the job finishes, accepted payments are
written, the database is checkpointed and its lock released.
"""
from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
import webbrowser
from pathlib import Path

from bokeh.server.auth_provider import AuthProvider
from tornado.web import RequestHandler

from .application import FraudApp
from .config import Settings
from .local import DIRECT, Credentials, local_url, published, write_private
from .store import StoreLockedError

log = logging.getLogger(__name__)
ADDRESS = "127.0.0.1"
WAIT_FOR_OTHER = 90.0  # seconds a second launch waits for a first one that holds the database but isn't serving yet
REFUSED = """<!doctype html><html><head><meta charset="utf-8"><title>fraud_app</title></head>
<body style="font-family:system-ui,sans-serif;margin:60px;max-width:640px">
<h2>This page needs the link fraud_app opened</h2>
<p>fraud_app only answers the browser tab it opened itself. Start fraud_app again: it opens this app in your
browser with the right link.</p></body></html>"""


def instance_path(settings: Settings) -> Path:
    """Where a running desktop app says how to reach it (its port and launch link); readable by its user only."""
    return settings.db_path.with_name(settings.db_path.name + ".desktop.json")


def api_token(settings: Settings) -> str:
    """The REST API's bearer token: FRAUD_APP_API_TOKEN, or one made on first launch and kept in the data folder,
    so scripts keep working across launches."""
    if settings.api_token:
        return settings.api_token
    path = settings.db_path.with_name("api-token")
    if path.is_file() and (token := path.read_text(encoding="utf-8").strip()):
        return token
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token


def running(settings: Settings) -> dict | None:
    """The desktop app serving this database, if one answers; None otherwise (a stale file is ignored)."""
    try:
        info = json.loads(instance_path(settings).read_text(encoding="utf-8"))
        with DIRECT.open(f"http://{ADDRESS}:{int(info['port'])}/desktop/ping", timeout=5) as reply:
            answer = json.loads(reply.read())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if answer.get("instance") == info.get("instance") else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ADDRESS, 0))
        return s.getsockname()[1]


class LaunchSecret(AuthProvider):
    """The page's sign-in: the launch link's ?token= sets a cookie, which later requests (and the websocket)
    carry. Without either, the browser is sent to a page that says how to open the app."""

    def __init__(self, secret: str, cookie: str):
        self._secret, self._cookie = secret, cookie
        super().__init__()

    @property
    def get_user(self):
        def user(handler: RequestHandler) -> str | None:
            token = handler.get_argument("token", "")
            if token and hmac.compare_digest(token.encode(), self._secret.encode()):
                handler.set_signed_cookie(self._cookie, "1", expires_days=None, httponly=True, samesite="Strict")
                return "desktop"
            return "desktop" if handler.get_signed_cookie(self._cookie, max_age_days=3650) == b"1" else None
        return user

    @property
    def login_url(self) -> str:
        return "/desktop/refused"

    @property
    def login_handler(self):
        return RefusedHandler


class RefusedHandler(RequestHandler):
    def get(self) -> None:
        self.set_status(403)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(REFUSED)


class PingHandler(RequestHandler):
    """Tells a second launch that this server is the instance its file names; nothing else."""

    def initialize(self, instance: str) -> None:
        self.instance = instance

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish({"instance": self.instance})


def _open_app(settings: Settings) -> FraudApp | dict:
    """The application object; or, when another launch holds the database and serves it, that one's info."""
    deadline = time.monotonic() + WAIT_FOR_OTHER
    while True:
        try:
            return FraudApp(settings)
        except StoreLockedError:
            if (other := running(settings)) is not None:
                return other
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _show(url: str, browser: bool) -> None:
    print(url, flush=True)
    if browser and not _open_browser(url):
        print("no web browser found: open the link above in one", file=sys.stderr, flush=True)


def _open_browser(url: str) -> bool:
    # A frozen app's loader points LD_LIBRARY_PATH at the bundle's libraries; a browser started with it would
    # load them instead of its own. Start the browser with the user's own value (PyInstaller keeps it in _ORIG).
    saved = os.environ.get("LD_LIBRARY_PATH")
    if getattr(sys, "frozen", False) and saved is not None:
        original = os.environ.get("LD_LIBRARY_PATH_ORIG")
        if original is None:
            del os.environ["LD_LIBRARY_PATH"]
        else:
            os.environ["LD_LIBRARY_PATH"] = original
    try:
        return webbrowser.open(url)
    finally:
        if saved is not None:
            os.environ["LD_LIBRARY_PATH"] = saved


def main(settings: Settings, browser: bool = True) -> int:
    """Serve until Quit, SIGTERM or Ctrl-C; or open the browser on the instance already serving this database."""
    if (other := running(settings)) is not None:
        _show(other["url"], browser)
        return 0
    # One analyst on this computer: no proxy, no path prefix, no sign-in but the launch link's.
    settings = dataclasses.replace(settings, address=ADDRESS, port=free_port(), api_token=api_token(settings),
                                   ui_password=None, ui_users=None, oidc_issuer=None, prefix=None,
                                   behind_proxy=False)
    app = _open_app(settings)
    if isinstance(app, dict):  # another launch got there first
        _show(app["url"], browser)
        return 0
    try:
        return _run(app, browser)
    finally:
        app.close()


def _run(app: FraudApp, browser: bool) -> int:
    secret, instance, settings = secrets.token_urlsafe(32), secrets.token_hex(8), app.settings
    setup = None
    if app.needs_setup:  # the page shows this job's progress until the app is ready
        setup = app.jobs.start("Setting up the demo", "fraud-app", lambda progress: app.start(
            data_progress=lambda f, m: progress(0.45 * f, m), model_progress=lambda f, m: progress(0.45 + 0.55 * f, m)))
    else:  # the page opens at once; REST scoring answers 503 for the seconds live scoring takes to load
        app.jobs.start("Starting live scoring", "fraud-app", lambda progress: app.start())
    cli = Credentials.new()  # `fraud-app export` and the like go through this app while it holds the database
    server = _serve(app, secret, instance, setup, cli)
    url = f"http://{ADDRESS}:{settings.port}/?token={secret}"
    path = instance_path(settings)
    write_private(path, json.dumps({"instance": instance, "port": settings.port, "url": url, "pid": os.getpid()}))
    try:
        with published(settings.db_path, cli, local_url(ADDRESS, settings.port)):
            _show(url, browser)
            server.io_loop.start()  # until stopped
    finally:
        server.stop()
        path.unlink(missing_ok=True)
    log.info("stopped")
    return 0


def _serve(app: FraudApp, secret: str, instance: str, setup, cli: Credentials | None = None):
    """The server, bound and started but its loop not yet running."""
    import panel as pn

    from .api import routes
    from .guard import server_limits
    from .ui.app import TITLE, closed_pages_quiet, create_app
    from .ui.desktop import SetupPage

    settings = app.settings
    pn.extension("tabulator")
    server = None

    def stop() -> None:
        # From a session's callback or a signal: let the page show "stopped" before the loop ends.
        server.io_loop.asyncio_loop.call_soon_threadsafe(server.io_loop.call_later, 0.5, server.io_loop.stop)

    def page():
        if setup is not None and (setup.running or setup.error):
            return SetupPage(jobs=app.jobs)
        return create_app(app, quit=stop)

    patterns = routes(app, cli) + [(r"/desktop/ping", PingHandler, {"instance": instance})]
    server = pn.serve({"/": page}, address=ADDRESS, port=settings.port, show=False, start=False, title=TITLE,
                      websocket_origin=[f"{ADDRESS}:{settings.port}", f"localhost:{settings.port}"],
                      extra_patterns=patterns, http_server_kwargs=server_limits(settings),
                      auth_provider=LaunchSecret(secret, f"fraud_app_{settings.port}"),
                      cookie_secret=secrets.token_urlsafe(32), verbose=False)
    server.start()
    server.io_loop.asyncio_loop.set_exception_handler(closed_pages_quiet)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, lambda *_: server.io_loop.asyncio_loop.call_soon_threadsafe(server.io_loop.stop))
    log.info("desktop app on http://%s:%d/ (API under /api/v1/)", ADDRESS, settings.port)
    return server
