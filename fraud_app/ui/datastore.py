"""The per-session DataStore: the views' one door to the application (Panel's DataStore pattern).

It holds the process's application object, through which views act, and no table in memory: every view
asks it for aggregates or pages, computed in SQL by `store`.
"""
from __future__ import annotations

import datetime as dt
import getpass

import panel as pn
import param

from ..access import Actor
from ..application import FraudApp
from ..config import Settings
from ..store import Store, analytics, queries


class DataStore(param.Parameterized):
    app = param.ClassSelector(class_=FraudApp, constant=True, doc="The process's application object.")
    version = param.Integer(default=0, doc="Bumped after a write, so views re-query.")
    period = param.DateRange(default=None, doc="The days the views show, both inclusive.")
    model_version = param.String(default=None, allow_None=True, doc="The model whose scores the views show.")
    focus = param.String(default=None, allow_None=True, doc="The transaction under investigation.")

    def __init__(self, **params):
        super().__init__(**params)
        self.model_version = analytics.scored_version(self.store)
        self.app.opened(self.actor)
        first, last = queries.usual_span(self.store)  # where the data is: a stray far-off payment moves nothing
        if last is not None:  # the last 30 days of data, a month an analyst can take in
            self.period = (max(first, last - dt.timedelta(days=29)), last)

    @property
    def store(self) -> Store:
        return self.app.store

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def actor(self) -> Actor | str:
        """Who acts in this session: the signed-in user with their role. Without sign-in (one analyst at their
        own computer, or the desktop app), the computer's user, who may do everything."""
        if pn.state.user:
            return Actor(pn.state.user, self.app.role_of(pn.state.user, pn.state.user_info))
        try:
            return getpass.getuser()
        except Exception:  # no login name in some containers
            return "unknown"

    def may(self, action: str) -> bool:
        actor = self.actor
        return not isinstance(actor, Actor) or actor.may(action)

    def investigate(self, transaction_id: str) -> None:
        """Open the Investigate view on this transaction (the app follows `focus`)."""
        self.focus = None  # the same id twice in a row must still navigate
        self.focus = transaction_id

    def refresh(self) -> None:
        self.model_version = analytics.scored_version(self.store)
        self.version += 1

    @property
    def bounds(self) -> tuple[dt.date, dt.date] | None:
        first, last = queries.time_span(self.store)
        return (first.date(), last.date()) if last is not None else None

    @param.depends("version")
    def summary(self) -> queries.Summary:
        return queries.summary(self.store)

    @param.depends("version")
    def imports(self) -> list[tuple]:
        return queries.imports(self.store)

    @param.depends("version", "period", "model_version")
    def scored_period(self) -> analytics.Period | None:
        """The period's aggregates, asked once per state: the Overview and Monitoring views both draw them."""
        if self.model_version is None or self.period is None:
            return None
        state = (self.version, self.model_version, tuple(self.period))
        if getattr(self, "_period_for", None) != state:
            self._period_for, self._period = state, analytics.period(self.store, self.model_version, *self.period)
        return self._period
