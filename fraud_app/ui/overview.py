"""Overview: what happened in a period. KPIs, fraud and alerts over time, the score distribution, and the
terminals and cards with the most alerts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource, HoverTool, Range1d

from .charts import GREY, RED, legend_above, new_figure
from .downloads import csv_download
from .tables import Table, fitted
from .view import View

BLUE = "#1f5fa8"
CARD = dict(font_size="24pt", title_size="10pt")
NUMBERS = {  # KPI: its name on screen, format, colour
    "transactions": ("Transactions", "{value:,.0f}", None), "alerts": ("Alerts", "{value:,.0f}", None),
    "alert_rate": ("Alert rate", "{value:.2f}%", None), "frauds": ("Confirmed fraud", "{value:,.0f}", None),
    "fraud_caught": ("Fraud amount caught", "{value:,.0f}", "#2e7d32"),
    "fraud_missed": ("Fraud amount missed", "{value:,.0f}", RED)}
WORDS = {"terminal_id": "Terminal", "customer_id": "Card", "transactions": "Payments", "alerts": "Alerts",
         "frauds": "Confirmed fraud", "top_score": "Highest probability (%)", "alert_amount": "Amount in alerts"}
# The short columns' widths (tables.fitted): the amount takes the rest.
# Ranked lists, not sorted by a header: six columns with sort arrows did not fit half the page. Tall enough
# for all ten rows under the wrapped headers.
WIDTHS = {"Terminal": 75, "Card": 75, "Payments": 80, "Alerts": 60, "Confirmed fraud": 80,
          "Highest probability (%)": 95}
TOPS = {"terminal_id": ("Terminals with the most alerts", "top_terminals.csv"),
        "customer_id": ("Cards with the most alerts", "top_cards.csv")}


def _in_words(top: pd.DataFrame) -> pd.DataFrame:
    """A top table as shown and downloaded: in words, the probability in percent as in the Review queue."""
    return top.assign(top_score=(100 * top["top_score"]).round(1)).rename(columns=WORDS)


class DailyChart:
    """Alerts and confirmed fraud per day."""

    def __init__(self):
        self.source = ColumnDataSource({"day": [], "alerts": [], "frauds": []})
        self.figure = fig = new_figure(x_axis_type="datetime", height=280, y_axis_label="per day",
                                       title="Alerts and confirmed fraud per day")
        lines = [fig.line("day", column, source=self.source, color=colour, line_width=2, legend_label=name)
                 for column, name, colour in (("alerts", "alerts", BLUE), ("frauds", "confirmed fraud", RED))]
        fig.add_tools(HoverTool(renderers=lines[:1], mode="vline", formatters={"@day": "datetime"},
                                tooltips=[("day", "@day{%F}"), ("alerts", "@alerts{0,0}"),
                                          ("confirmed fraud", "@frauds{0,0}")]))
        legend_above(fig)

    @staticmethod
    def prepare(daily: pd.DataFrame) -> dict:
        return {"day": pd.to_datetime(daily["day"]).to_numpy(), "alerts": daily["alerts"].to_numpy(),
                "frauds": daily["frauds"].to_numpy()}

    def show(self, data: dict) -> None:
        self.source.data = data


class ScoreHistogram:
    """Payments per band of fraud probability, genuine and fraud stacked, on a log scale."""

    def __init__(self):
        self.source = ColumnDataSource({k: [] for k in ("x", "width", "floor", "genuine", "total", "band",
                                                        "n_genuine", "n_fraud")})
        self.figure = fig = new_figure(y_axis_type="log", height=280, y_range=Range1d(0.5, 10), tools="save",
                                       x_axis_label="fraud probability", y_axis_label="transactions",
                                       title="Score distribution (log scale)")
        bars = [fig.vbar(x="x", width="width", bottom="floor", top="genuine", source=self.source, color=GREY,
                         legend_label="genuine"),
                fig.vbar(x="x", width="width", bottom="genuine", top="total", source=self.source, color=RED,
                         legend_label="fraud")]
        fig.add_tools(HoverTool(renderers=bars, tooltips=[("probability", "@band"), ("genuine", "@n_genuine{0,0}"),
                                                          ("fraud", "@n_fraud{0,0}")]))
        legend_above(fig)

    @staticmethod
    def prepare(histogram: pd.DataFrame) -> dict:
        wide = histogram.pivot_table(index="bin", columns="fraud", values="n", fill_value=0).sort_index()
        genuine = wide[False].to_numpy(float) if False in wide else np.zeros(len(wide))
        fraud = wide[True].to_numpy(float) if True in wide else np.zeros(len(wide))
        lower = wide.index.to_numpy(float)
        width = float(np.min(np.diff(lower))) if len(lower) > 1 else 1.0
        floor = np.maximum(genuine, 0.5)  # a log axis has no zero: bars stand on 0.5
        return {"x": lower + width / 2, "width": np.full(len(lower), 0.9 * width), "floor": np.full(len(lower), 0.5),
                "genuine": floor, "total": floor + fraud, "n_genuine": genuine, "n_fraud": fraud,
                "band": [f"{a:.2f}–{a + width:.2f}" for a in lower]}

    def show(self, data: dict) -> None:
        self.source.data = data
        top = float(np.max(data["total"])) if len(data["total"]) else 10.0
        self.figure.y_range.update(start=0.5, end=2 * top)


class OverviewView(View):

    def __init__(self, **params):
        super().__init__(**params)
        self._notice = pn.pane.Alert("No scores yet: train a model and score the data.", alert_type="info",
                                     visible=False)
        self._numbers = {key: pn.indicators.Number(name=name, value=0, format=fmt, **CARD,
                                                   **({"default_color": colour} if colour else {}))
                         for key, (name, fmt, colour) in NUMBERS.items()}
        self._daily, self._histogram = DailyChart(), ScoreHistogram()
        self._tops = {by: pd.DataFrame(columns=[WORDS[by]]) for by in TOPS}
        self._tables = {by: Table(
            show_index=False, disabled=True, sizing_mode="stretch_width", height=350, sortable=False,
            **fitted(WIDTHS),
            formatters={"Highest probability (%)": {"type": "progress", "max": 100, "legend": True, "color": RED},
                        "Amount in alerts": {"type": "money", "precision": 0}}) for by in TOPS}
        self._content = pn.Column(
            pn.FlexBox(*self._numbers.values(), gap="28px"),
            pn.Row(pn.pane.Bokeh(self._daily.figure, sizing_mode="stretch_width"),
                   pn.pane.Bokeh(self._histogram.figure, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            pn.Row(*(self._top(by) for by in TOPS), sizing_mode="stretch_width"),
            visible=False, sizing_mode="stretch_width")  # shown with its first figures, not as empty boxes
        self.param.watch(self._load, "drawn")
        self._load()

    def _top(self, by: str) -> pn.viewable.Viewable:
        title, filename = TOPS[by]
        return pn.Column(pn.Row(pn.pane.Markdown(f"#### {title}"), pn.HSpacer(),
                                csv_download(lambda: self._tops[by], filename, width=130)),
                         self._tables[by].slot, sizing_mode="stretch_width")

    def _period_picker(self) -> pn.widgets.DateRangePicker:
        bounds = self.data_store.bounds
        # As wide as its calendar (308 px), which opens at the input's left edge: at the page's right edge a
        # narrower picker pushed it off the page.
        # Both ways: a period chosen in Monitoring shows here too.
        return pn.widgets.DateRangePicker.from_param(
            self.data_store.param.period, label="Period", width=320, description=None,
            start=bounds[0] if bounds else None, end=bounds[1] if bounds else None)

    def _load(self, *_) -> None:
        self.later(self._fetch, self._show)

    def _fetch(self) -> dict | None:
        """The period's figures, ready to draw (in a worker thread)."""
        scored = self.data_store.scored_period()
        if scored is None:
            return None
        kpis = {**scored.kpis, "alert_rate": 100 * scored.kpis["alert_rate"]}
        return {"kpis": kpis, "daily": DailyChart.prepare(scored.daily),
                "histogram": ScoreHistogram.prepare(scored.histogram),
                "tops": {by: _in_words(scored.top_risky(by)) for by in TOPS}}

    def _show(self, found: dict | None) -> None:
        self._notice.visible, self._content.visible = found is None, found is not None
        if found is None:
            return
        for key, number in self._numbers.items():
            number.value = float(found["kpis"][key])
        self._daily.show(found["daily"])
        self._histogram.show(found["histogram"])
        self._tops = found["tops"]
        for by, table in self._tables.items():
            table.value = self._tops[by]

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(pn.pane.Markdown("## Overview"), pn.HSpacer(), self._period_picker()),
                         self._notice, self._content, sizing_mode="stretch_width")
