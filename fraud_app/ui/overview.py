"""Overview: what happened in a period. KPIs, fraud and alerts over time, the score distribution, and the
terminals and cards with the most alerts."""
from __future__ import annotations

import hvplot.pandas  # noqa: F401  (registers .hvplot)
import pandas as pd
import panel as pn

from .downloads import csv_download
from .view import View

CARD = dict(font_size="24pt", title_size="10pt")


def _money(value: float) -> str:
    return f"{value:,.0f}"


class OverviewView(View):

    def _period_picker(self) -> pn.widgets.DateRangePicker:
        bounds = self.data_store.bounds
        picker = pn.widgets.DateRangePicker(name="Period", value=self.data_store.period, width=260,
                                            start=bounds[0] if bounds else None, end=bounds[1] if bounds else None)
        picker.link(self.data_store, value="period")
        return picker

    def _kpis(self, *_) -> pn.viewable.Viewable:
        scored = self.data_store.scored_period()
        if scored is None:
            return pn.pane.Alert("No scores yet: train a model and score the data.", alert_type="info")
        k = scored.kpis
        cards = [
            pn.indicators.Number(name="Transactions", value=int(k["transactions"]), format="{value:,}", **CARD),
            pn.indicators.Number(name="Alerts", value=int(k["alerts"]), format="{value:,}", **CARD),
            pn.indicators.Number(name="Alert rate", value=100 * k["alert_rate"], format="{value:.2f}%", **CARD),
            pn.indicators.Number(name="Confirmed fraud", value=int(k["frauds"]), format="{value:,}", **CARD),
            pn.indicators.Number(name="Fraud amount caught", value=k["fraud_caught"], format="{value:,.0f}",
                                 default_color="#2e7d32", **CARD),
            pn.indicators.Number(name="Fraud amount missed", value=k["fraud_missed"], format="{value:,.0f}",
                                 default_color="#c62828", **CARD),
        ]
        return pn.FlexBox(*cards, gap="28px")

    def _over_time(self, *_) -> pn.viewable.Viewable:
        scored = self.data_store.scored_period()
        frame = scored.daily if scored is not None else None
        if frame is None or frame.empty:
            return pn.pane.Markdown("")
        frame = frame.assign(day=pd.to_datetime(frame["day"]))
        plot = frame.hvplot.line(x="day", y=["alerts", "frauds"], ylabel="per day", xlabel="",
                                 title="Alerts and confirmed fraud per day", responsive=True, height=280,
                                 legend="top_left", color=["#1f5fa8", "#c62828"], shared_axes=False)
        return pn.pane.HoloViews(plot, sizing_mode="stretch_width")

    def _distribution(self, *_) -> pn.viewable.Viewable:
        scored = self.data_store.scored_period()
        frame = scored.histogram if scored is not None else None
        if frame is None or frame.empty:
            return pn.pane.Markdown("")
        wide = frame.pivot_table(index="bin", columns="fraud", values="n", fill_value=0)
        wide = wide.rename(columns={False: "genuine", True: "fraud"}).reset_index()
        for column in ("genuine", "fraud"):
            if column not in wide:
                wide[column] = 0
        plot = wide.hvplot.bar(x="bin", y=["genuine", "fraud"], stacked=True, logy=True, rot=45,
                               title="Score distribution (log scale)", xlabel="fraud probability",
                               ylabel="transactions", responsive=True, height=280, color=["#90a4ae", "#c62828"],
                               ylim=(0.5, None),
                               shared_axes=False)
        return pn.pane.HoloViews(plot, sizing_mode="stretch_width")

    def _top(self, by: str, title: str):
        def table(*_) -> pn.viewable.Viewable:
            scored = self.data_store.scored_period()
            frame = scored.top_risky(by) if scored is not None else None
            if frame is None:
                return pn.pane.Markdown("")
            name = "terminals" if by == "terminal_id" else "cards"
            return pn.Column(
                pn.Row(pn.pane.Markdown(f"#### {title}"), pn.HSpacer(),
                       csv_download(lambda: frame, f"top_{name}.csv", width=130)),
                pn.widgets.Tabulator(
                    frame, show_index=False, disabled=True, sizing_mode="stretch_width", height=300,
                    formatters={"top_score": {"type": "progress", "max": 1, "legend": True, "color": "#c62828"},
                                "alert_amount": {"type": "money", "precision": 0}}),
                sizing_mode="stretch_width")
        return table

    def __panel__(self) -> pn.viewable.Viewable:
        deps = (self.param.drawn,)
        return pn.Column(
            pn.Row(pn.pane.Markdown("## Overview"), pn.HSpacer(), self._period_picker()),
            pn.panel(pn.bind(self._kpis, *deps)),
            pn.Row(pn.panel(pn.bind(self._over_time, *deps)), pn.panel(pn.bind(self._distribution, *deps)),
                   sizing_mode="stretch_width"),
            pn.Row(pn.panel(pn.bind(self._top("terminal_id", "Terminals with the most alerts"), *deps)),
                   pn.panel(pn.bind(self._top("customer_id", "Cards with the most alerts"), *deps)),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
