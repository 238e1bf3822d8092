"""The threshold simulator: what an alert budget would have done on a version's test window (fraud caught,
alerts a day, precision, cost), and saving the review threshold it implies."""
from __future__ import annotations

import holoviews as hv
import hvplot.pandas  # noqa: F401  (registers .hvplot)
import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from ..access import Forbidden
from .. import backtest, registry
from .datastore import DataStore
from .safe import plain

CARD = dict(font_size="20pt", title_size="10pt")
SWEEP = np.arange(5, 1001, 5)


class ThresholdPanel(Viewer):
    data_store = param.ClassSelector(class_=DataStore)
    version = param.String(default=None, allow_None=True)
    budget = param.Integer(default=100, bounds=(5, 1000), doc="Alerts a day the review team can work.")
    review_cost = param.Number(default=5.0, bounds=(0, 100), doc="Cost of reviewing one alert.")
    message = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self.budget = self.data_store.settings.alert_budget
        self.review_cost = self.data_store.settings.review_cost
        self._save = pn.widgets.Button(name="Save as review threshold", button_type="primary", width=220)
        self._save.on_click(self._save_thresholds)

    def _scores(self) -> pd.DataFrame | None:
        if not self.version:
            return None
        return self.data_store.app.backtest_scores(self.version)

    def _outcome(self) -> pd.Series | None:
        frame = self._scores()
        if frame is None or not len(frame):
            return None
        return backtest.outcomes(frame, [self.budget], self.review_cost).iloc[0]

    @param.depends("version", "budget", "review_cost")
    def _readout(self) -> pn.viewable.Viewable:
        o = self._outcome()
        if o is None:
            return pn.pane.Alert("This version has no test window to simulate on.", alert_type="info")
        return pn.FlexBox(
            pn.indicators.Number(name="Review threshold", value=float(o.threshold), format="{value:.4f}", **CARD),
            pn.indicators.Number(name="Alerts a day", value=float(o.alerts_per_day), format="{value:,.0f}", **CARD),
            pn.indicators.Number(name="Fraud caught", value=int(o.caught), format="{value:,}", **CARD),
            pn.indicators.Number(name="Fraud amount caught", value=float(o.caught_amount), format="{value:,.0f}",
                                 default_color="#2e7d32", **CARD),
            pn.indicators.Number(name="Precision", value=100 * float(o.precision), format="{value:.1f}%", **CARD),
            pn.indicators.Number(name="Recall", value=100 * float(o.recall), format="{value:.1f}%", **CARD),
            pn.indicators.Number(name="Cost (missed fraud + reviews)", value=float(o.cost), format="{value:,.0f}",
                                 default_color="#c62828", **CARD),
            gap="20px")

    @param.depends("version", "budget", "review_cost")
    def _plot(self) -> pn.viewable.Viewable:
        frame = self._scores()
        if frame is None or not len(frame):
            return pn.pane.Markdown("")
        sweep = backtest.outcomes(frame, SWEEP, self.review_cost)
        best = sweep.loc[sweep.cost.idxmin()]
        sweep = sweep.rename(columns={"caught_amount": "fraud caught", "cost": "cost"})
        lines = sweep.hvplot.line(x="budget", y=["fraud caught", "cost"], color=["#2e7d32", "#c62828"],
                                  yformatter="%.0f",
                                  xlabel="alert budget (alerts a day)", ylabel="amount on the test window",
                                  title=f"Fraud caught and cost by alert budget (lowest cost at {best.budget:.0f} a day)",
                                  responsive=True, height=300, legend="right", shared_axes=False)
        return pn.pane.HoloViews(lines * hv.VLine(self.budget).opts(color="#1f5fa8", line_dash="dashed"),
                                 sizing_mode="stretch_width")

    def _save_thresholds(self, *_) -> None:
        app, who = self.data_store.app, self.data_store.actor
        try:
            app.allow(who, "thresholds")  # refused in words whether or not there is a threshold to save
        except Forbidden as exc:
            self.message = f"Not saved: {exc}."
            return
        o = self._outcome()
        if o is None:
            self.message = "Not saved: this version has no test window to set a threshold on."
            return
        row = registry.models.get_version(self.data_store.store, self.version)
        review = float(o.threshold)
        decline = max(float((row["thresholds"] or {}).get("decline", 1.0)), review)
        changed = app.set_thresholds(self.version, review, decline, who)  # `who` may: asked above
        self.message = (f"Saved: {self.version} now sends scores ≥ {review:.4f} to review "
                        f"({changed:,} stored decisions changed).")
        self.data_store.refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            "#### Threshold simulator",
            pn.pane.Markdown(pn.bind(lambda v: f"On the test window of **{plain(v)}**." if v else "",
                                     self.param.version)),
            pn.Row(pn.widgets.IntSlider.from_param(self.param.budget, name="Alert budget (a day)", step=5, width=300),
                   pn.widgets.FloatSlider.from_param(self.param.review_cost, name="Cost of one review", step=0.5,
                                                     width=300)),
            self._readout, self._plot,
            pn.Row(self._save, pn.pane.Markdown(pn.bind(plain, self.param.message), margin=(8, 10))),
            sizing_mode="stretch_width")
