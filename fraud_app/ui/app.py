"""The Panel application. `fraud-app serve` calls serve(); `panel serve fraud_app/ui/app.py` runs this file."""
from __future__ import annotations

import logging
import secrets
import signal
import sys
import warnings
from functools import partial
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import panel as pn
from bokeh.util.warnings import BokehUserWarning
from panel.theme.fast import Fast
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.websocket import WebSocketClosedError

from fraud_app.access import Actor
from fraud_app.application import FraudApp, served_app
from fraud_app.config import Settings
from fraud_app.guard import server_limits
from fraud_app.priority import lower_background
from fraud_app.ui.datastore import DataStore
from fraud_app.ui.investigate import InvestigateView
from fraud_app.ui.model import ModelView
from fraud_app.ui.monitor import MonitoringView
from fraud_app.ui.overview import OverviewView
from fraud_app.ui.keys import Keys
from fraud_app.ui.plots_css import NoCssVisuals
from fraud_app.ui.review import ReviewView
from fraud_app.ui.safe import plain
from fraud_app.ui.summary import SummaryView
from fraud_app.ui.view import HIDDEN, SHOWN

log = logging.getLogger(__name__)
TITLE = "fraud_app"


SYSTEM_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


# Panel's Fast design links its web font from Google. Analysts may work offline, so the app loads nothing
# from the internet: no web font, the system font instead. (Panel offers no setting for this.)
Fast._resources = {**Fast._resources, "font": {}}


# BokehJS sends a model that the server added to a page back in full with the first event that names it (a click
# on a table that arrived after the page loaded). The server keeps its own copy of the model, as it should, and
# warns of nothing amiss; Panel hides the same warning in VS Code notebooks.
warnings.filterwarnings("ignore", message="reference already known", category=BokehUserWarning)


VIEWS = {"Overview": OverviewView, "Review queue": ReviewView, "Investigate": InvestigateView,
         "Model": ModelView, "Monitoring": MonitoringView, "Data": SummaryView}


def create_app(app: FraudApp, quit: Callable[[], None] | None = None) -> pn.template.FastListTemplate:
    """The analyst's page. `quit`, in the desktop app only, adds a button that stops the app."""
    data = DataStore(app=app)
    # With no scores yet there is nothing to overview: open on the data instead.
    nav = pn.widgets.RadioButtonGroup(options=list(VIEWS), value="Overview" if data.model_version else "Data",
                                      orientation="vertical",
                                      button_type="primary", button_style="outline", sizing_mode="stretch_width")
    # Each view has a root of its own on the page, hidden with a style rather than Bokeh's `visible`: the browser
    # lays out again only the root that changed. With the views in one root, each move between views made it
    # measure every view (hidden ones too), 130 to 340 ms of the browser's time for each view opened.
    slots = {name: pn.Column(sizing_mode="stretch_width", margin=(16, 0), styles=HIDDEN) for name in VIEWS}
    built: dict[str, pn.viewable.Viewer] = {}

    def build(name: str, visible: bool) -> None:
        if name not in built:
            built[name] = VIEWS[name](data_store=data, on_screen=visible)
            slots[name].styles = SHOWN if visible else HIDDEN  # before it is filled: the browser gets it as it is then
            slots[name].objects = [pn.panel(built[name])]
            _settle(app)

    def show(name: str) -> None:
        # Each view is built on its first visit and then kept on the page, hidden while another is shown:
        # going back to it sends one property, where putting it back would render all its plots again on
        # the server's one event loop, which the REST API shares. Views out of sight skip redrawing until
        # shown again (ui/view.py).
        build(name, True)
        for other, view in built.items():
            view.on_screen = other == name
            slots[other].styles = SHOWN if other == name else HIDDEN

    def key(pressed: str) -> None:  # a shortcut goes to the view on screen, if it takes keys
        view = built.get(nav.value)
        if pressed in getattr(view, "KEYS", ()):
            view.key(pressed)

    show(nav.value)
    nav.param.watch(lambda event: show(event.new), "value")
    keys = Keys(key, keys=sorted({k for view in VIEWS.values() for k in getattr(view, "KEYS", ())}))
    # A row clicked in any table opens its transaction in Investigate. After Investigate's own watcher (the
    # default precedence, 0), so the transaction's queries are under way while the page switches views.
    data.param.watch(lambda event: event.new and setattr(nav, "value", "Investigate"), "focus", precedence=1)
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:  # served
        pn.state.onload(app.heap.settled)
        # Investigate is built out of sight soon after the page is ready, while the analyst looks at the first
        # view: building it and its four plots on the first transaction opened made that wait the longest.
        doc = pn.state.curdoc
        pn.state.onload(lambda: doc.add_timeout_callback(partial(build, "Investigate", False), 500))
        # Bound now: under `panel serve` this module's globals are gone by the time a session ends.
        closed = partial(app.heap.page_closed, IOLoop.current())
        pn.state.on_session_destroyed(lambda context: closed())
    refresh = pn.widgets.Button(name="Refresh", button_type="light", sizing_mode="stretch_width")
    refresh.on_click(lambda event: data.refresh())
    return pn.template.FastListTemplate(
        title=TITLE,
        sidebar=[NoCssVisuals(), nav, pn.layout.Divider(), refresh,
                 pn.pane.Markdown(f"<small>Database<br><code>{plain(app.store.path)}</code></small>"),
                 *_signed_in(data),
                 *_quit(quit), keys],
        main=list(slots.values()),
        accent="#1f5fa8",
        font=SYSTEM_FONT,
        sidebar_width=220,
        # Panel's busy spinner follows every session's events at once: with ten analysts each event sent a
        # change to all ten pages, a good part of the server's work.
        busy_indicator=None,
        # The views' roots as they are, without a card or a margin each: the hidden ones take no room.
        main_layout=None,
        raw_css=[".main .card-margin { margin: 0; }"],
    )


def _settle(app: FraudApp) -> None:
    """Once the page's new view has its models, they live on: out of the garbage collector's sight."""
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        doc.add_next_tick_callback(app.heap.settled)


def _signed_in(data: DataStore) -> list:
    actor = data.actor
    if not isinstance(actor, Actor):
        return []
    return [pn.pane.HTML(f"<small>Signed in as <b>{plain(actor.name)}</b> ({plain(actor.role)}) · "
                         "<a href='./logout'>sign out</a></small>")]


def _quit(quit: Callable[[], None] | None) -> list:
    if quit is None:
        return []
    from fraud_app.ui.desktop import quit_button

    return [pn.layout.Divider(), quit_button(quit)]


def _origins(settings: Settings) -> list[str]:
    """Hosts whose pages may open the UI's websocket: this server's own, and those of
    FRAUD_APP_ALLOWED_ORIGINS (behind a proxy, the address people open)."""
    if settings.address in ("0.0.0.0", "::"):
        return ["*"]  # bound to every interface; a non-loopback bind already requires auth
    listed = {urlsplit(item.strip()).netloc or item.strip() for item in (settings.allowed_origins or "").split(",")}
    own = {f"{host}:{settings.port}" for host in (settings.address, "localhost", "127.0.0.1")}
    return sorted(own | {host.lower() for host in listed if host})


def serve(app: FraudApp, show: bool = True) -> None:
    """The UI and the REST API on one Tornado server, both handed `app`. Blocks until the server stops."""
    from fraud_app import api
    from fraud_app.local import Credentials, local_url, published

    settings = app.settings
    pn.extension("tabulator")
    prefix = settings.path_prefix  # Bokeh puts it before every route: the page, its websocket, the API, the login
    log.info("serving on http://%s:%d%s/ (API under %s/api/v1/)", settings.address, settings.port, prefix, prefix)
    cli = Credentials.new()  # the command line's way in while this server holds the database
    server = pn.serve({"/": lambda: create_app(app)}, address=settings.address, port=settings.port,
                      show=show, title=TITLE, websocket_origin=_origins(settings), print_url=True,
                      extra_patterns=api.routes(app, cli) + _favicon(prefix), prefix=prefix, start=False,
                      http_server_kwargs=server_limits(settings), **_auth(settings))
    # A thread waiting for the interpreter lock gets it after this long at most (5 ms by default). The event
    # loop waits for it after every socket call and every LightGBM call of each API request, while the
    # sessions' worker threads and the database writer run Python: 1 ms keeps those waits short.
    sys.setswitchinterval(0.001)
    server.start()
    if hasattr(signal, "SIGTERM"):  # a service manager's stop: the loop ends, and the caller closes the app
        signal.signal(signal.SIGTERM, lambda *_: server.io_loop.asyncio_loop.call_soon_threadsafe(server.io_loop.stop))
    server.io_loop.add_callback(app.metrics.watch_loop)
    server.io_loop.asyncio_loop.set_exception_handler(closed_pages_quiet)
    # The loop and the journal thread first; the other threads' work waits for a free core (priority.py).
    lower_background()
    server.io_loop.add_callback(PeriodicCallback(lower_background, 1000).start)
    app.heap.settled()  # the app as started lives on
    try:
        with published(settings.db_path, cli, local_url(settings.address, server.port, prefix)):
            server.io_loop.start()
    finally:
        app.jobs.discard_files()  # files the command line never fetched


def closed_pages_quiet(loop, context: dict) -> None:
    """Panel writes some messages to a page's websocket without awaiting the write: when the page has just
    closed, asyncio logged the write's WebSocketClosedError as a task exception, with a traceback. Nothing is
    wrong then (the page is gone), so it is a debug line; anything else goes to asyncio's own handler. The
    desktop launcher's server installs it too."""
    if isinstance(context.get("exception"), WebSocketClosedError):
        log.debug("a message to a page that had just closed was dropped")
        return
    loop.default_exception_handler(context)


def _favicon(prefix: str) -> list:
    """Bokeh serves its icon at /favicon.ico only, outside any prefix, while pages ask for ./favicon.ico: under a
    prefix the same icon is served there too."""
    if not prefix:
        return []
    from panel.io.resources import DIST_DIR
    from tornado.web import StaticFileHandler

    return [(r"/(favicon\.ico)", StaticFileHandler, {"path": str(DIST_DIR / "images")})]


def _auth(settings: Settings) -> dict:
    """Single sign-on through Panel's generic OAuth provider when an OpenID Connect issuer is set; else Panel's
    basic auth, throttled (ui/auth.py), when a UI password or users file is set. The REST routes keep their
    bearer token."""
    if settings.oidc_issuer:
        from fraud_app.ui.auth import oidc_options

        return oidc_options(settings)
    if not (settings.ui_password or settings.ui_users):
        return {}
    from fraud_app.ui.auth import ThrottledAuthProvider

    provider = ThrottledAuthProvider(password=settings.ui_password, users_file=settings.ui_users,
                                     window=settings.auth_window,
                                     login_template=str(Path(__file__).with_name("login.html")))
    return {"auth_provider": provider, "cookie_secret": settings.cookie_secret or secrets.token_urlsafe(32)}


if pn.state.served:  # run by `panel serve fraud_app/ui/app.py`, once per session
    pn.extension("tabulator")
    create_app(served_app()).servable(title=TITLE)
