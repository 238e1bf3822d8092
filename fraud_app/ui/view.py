"""The base of views that redraw when the DataStore changes."""
from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any, Callable

import panel as pn
import param
from panel.io.document import hold
from panel.viewable import Viewer

from .datastore import DataStore

log = logging.getLogger(__name__)
# A part of the page hidden and shown with a style: BokehJS applies `styles` without laying the page out again,
# where a change of `visible` makes it measure the whole root ("" takes the style away).
HIDDEN, SHOWN = {"display": "none"}, {"display": ""}


class View(Viewer):
    """Follows the DataStore while on screen. Hidden behind another view, it skips redrawing and catches up
    when shown again, so a change (a new period, a decision) costs only the view in front of the analyst."""

    data_store = param.ClassSelector(class_=DataStore)
    on_screen = param.Boolean(default=True, doc="Set by the app as the analyst moves between views.")
    drawn = param.Integer(default=0, doc="Bumped whenever the view must redraw; its sections depend on it.")
    follows: tuple[str, ...] = ("version", "period", "model_version")

    def __init__(self, **params):
        super().__init__(**params)
        self._stale = False
        self._asked: dict[str, int] = {}
        self._filled = False  # whether any results were shown yet
        self.data_store.param.watch(self._changed, list(self.follows))
        self.param.watch(self._moved, "on_screen")

    def _changed(self, *_) -> None:
        if self.on_screen:
            self.drawn += 1
        else:
            self._stale = True

    def _moved(self, event) -> None:
        if event.new and self._stale:
            self._stale = False
            self.drawn += 1

    def failed(self, error: Exception, lane: str) -> None:
        """What the view shows when a fetch in `lane` failed (logged already). By default it keeps what it shows."""

    def later(self, fetch: Callable[[], Any], show: Callable[[Any], None], lane: str = "") -> None:
        """fetch() in a worker thread, then show(its result) on the session's event loop. That loop serves every
        session and the REST API: the queries run off it (DuckDB lets go of it while it works), and only putting
        the results on screen runs on it. Of overlapping calls in one lane only the last one shows (a save in
        its own lane is not dropped for a redraw). Outside a served session (tests, benchmarks), both at once.

        The view's first show, which makes its tables, runs with Bokeh's model walk held to its end: a component
        it adds to the page must be filled before it is added, as the browser gets it as it was then."""
        asked = self._asked[lane] = self._asked.get(lane, 0) + 1
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            show(fetch())
            return

        def shown(found: Any) -> None:
            if asked != self._asked[lane]:
                return
            # The results' changes go to the browser together, as one message, not one for each property.
            with hold(doc):
                if self._filled:
                    show(found)
                    return
                self._filled = True
                # Each table or plot added to the page makes Bokeh walk every model of the page again: for the
                # first results, which make the view's tables, once at the end rather than once for each. Not for
                # later ones: a held walk is done at the end whether or not anything was added, a tenth of a
                # second or more on the event loop the other pages and the REST API share.
                with doc.models.freeze():
                    show(found)

        async def run() -> None:
            try:
                found = await asyncio.to_thread(fetch)
            except Exception as error:  # noqa: BLE001  (logged; the view says it could not show its results)
                log.exception("%s could not fetch what it shows", type(self).__name__)
                if asked == self._asked[lane]:
                    pn.state.execute(partial(self.failed, error, lane), schedule=True)
                return
            if pn.state.loaded:
                pn.state.execute(partial(shown, found), schedule=True)  # with the document's lock, as Bokeh needs
            else:
                # Not yet ready in the browser: Panel drops changes made between the browser's first copy of the
                # page and its "ready", so the page would keep its empty first state.
                pn.state.onload(partial(shown, found))

        pn.state.execute(run)
