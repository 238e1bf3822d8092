"""The base of views that redraw when the DataStore changes."""
from __future__ import annotations

import param
from panel.viewable import Viewer

from .datastore import DataStore


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
