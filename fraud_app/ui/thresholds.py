"""The threshold simulator: what an alert budget would have done on a version's test window (fraud caught,
alerts a day, precision, cost), and saving the review threshold it implies."""
from __future__ import annotations

from functools import partial

import pandas as pd
import panel as pn
import param

from ..access import Forbidden
from .. import backtest, registry
from .charts import GREEN, RED
from .model_charts import SweepChart
from .safe import plain
from .view import View

CARD = dict(font_size="20pt", title_size="10pt")
NUMBERS = {  # outcome: its name on screen, format, colour
    "threshold": ("Review threshold", "{value:.4f}", None), "alerts_per_day": ("Alerts a day", "{value:,.0f}", None),
    "caught": ("Fraud caught", "{value:,.0f}", None), "caught_amount": ("Fraud amount caught", "{value:,.0f}", GREEN),
    "precision": ("Precision", "{value:.1f}%", None), "recall": ("Recall", "{value:.1f}%", None),
    "cost": ("Cost (missed fraud + reviews)", "{value:,.0f}", RED)}
PERCENT = ("precision", "recall")
NO_WINDOW = "This version has no test window to simulate on."


class ThresholdPanel(View):
    """Its test window is read in a worker thread, once per version and refresh; each move of a slider works
    on it there too, and only the numbers and the chart's columns are set on the event loop."""

    follows = ()  # it follows its version and sliders, set by the Model view
    version = param.String(default=None, allow_None=True)
    budget = param.Integer(default=100, bounds=(5, 1000), doc="Alerts a day the review team can work.")
    review_cost = param.Number(default=5.0, bounds=(0, 100), doc="Cost of reviewing one alert.")
    message = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self.budget = self.data_store.settings.alert_budget
        self.review_cost = self.data_store.settings.review_cost
        self._numbers = {key: pn.indicators.Number(name=name, value=0, format=fmt, **CARD,
                                                   **({"default_color": colour} if colour else {}))
                         for key, (name, fmt, colour) in NUMBERS.items()}
        self._readout = pn.FlexBox(*self._numbers.values(), gap="20px", visible=False)
        self._chart = SweepChart()
        self._plot = pn.pane.Bokeh(self._chart.figure, sizing_mode="stretch_width", visible=False)
        self._no_window = pn.pane.Alert(NO_WINDOW, alert_type="info", visible=False)
        self._save = pn.widgets.Button(name="Save as review threshold", button_type="primary", width=220)
        self._save.on_click(self._save_thresholds)
        self._held: tuple | None = None  # ((version, data version), its test window)
        self.param.watch(self._load, ["version", "budget", "review_cost"])
        self._load()

    def _test_window(self, version: str) -> pd.DataFrame:
        key = (version, self.data_store.version)  # a refresh may bring new labels
        held = self._held
        if held is None or held[0] != key:
            held = self._held = (key, self.data_store.app.backtest_scores(version))
        return held[1]

    def _load(self, *_) -> None:
        self.later(partial(self._fetch, self.version, self.budget, self.review_cost), self._show)

    def _fetch(self, version: str | None, budget: int, review_cost: float) -> dict | None:
        if not version:
            return None
        try:
            frame = self._test_window(version)
        except registry.ModelError as exc:
            return {"problem": str(exc)}
        if not len(frame):
            return {"problem": NO_WINDOW}
        outcome = backtest.outcomes(frame, [budget], review_cost).iloc[0]
        return {"outcome": {key: float(outcome[key]) for key in NUMBERS},
                "sweep": SweepChart.prepare(frame, budget, review_cost)}

    def _show(self, found: dict | None) -> None:
        drawn = found is not None and "outcome" in found
        self._readout.visible = self._plot.visible = drawn
        self._no_window.visible = found is not None and not drawn
        if not drawn:
            if found is not None:
                self._no_window.object = plain(found["problem"])
            return
        for key, number in self._numbers.items():
            number.value = 100 * found["outcome"][key] if key in PERCENT else found["outcome"][key]
        self._chart.show(found["sweep"])

    def _save_thresholds(self, *_) -> None:
        save = partial(self._saved, self.data_store.actor, self.version, self.budget, self.review_cost)
        self.later(save, self._said, lane="save")

    def _saved(self, who, version: str | None, budget: int, review_cost: float) -> tuple[str, bool]:
        """(what to say, whether it saved), in a worker thread: the save rewrites the version's stored decisions."""
        app = self.data_store.app
        try:
            app.allow(who, "thresholds")  # refused in words whether or not there is a threshold to save
            frame = self._test_window(version) if version else None
            if frame is None or not len(frame):
                return "Not saved: this version has no test window to set a threshold on.", False
            review = float(backtest.outcomes(frame, [budget], review_cost).iloc[0].threshold)
            row = registry.models.get_version(app.store, version)
            decline = max(float((row["thresholds"] or {}).get("decline", 1.0)), review)
            changed = app.set_thresholds(version, review, decline, who)  # `who` may: asked above
        except (Forbidden, registry.ModelError) as exc:
            return f"Not saved: {exc}.", False
        return (f"Saved: {version} now sends scores ≥ {review:.4f} to review "
                f"({changed:,} stored decisions changed)."), True

    def _said(self, said: tuple[str, bool]) -> None:
        self.message, saved = said
        if saved:
            self.data_store.refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            "#### Threshold simulator",
            pn.pane.Markdown(pn.bind(lambda v: f"On the test window of **{plain(v)}**." if v else "",
                                     self.param.version)),
            pn.Row(pn.widgets.IntSlider.from_param(self.param.budget, name="Alert budget (a day)", step=5, width=300),
                   pn.widgets.FloatSlider.from_param(self.param.review_cost, name="Cost of one review", step=0.5,
                                                     width=300)),
            self._no_window, self._readout, self._plot,
            pn.Row(self._save, pn.pane.Markdown(pn.bind(plain, self.param.message), margin=(8, 10))),
            sizing_mode="stretch_width")
