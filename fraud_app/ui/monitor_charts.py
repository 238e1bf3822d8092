"""The Monitoring view's charts, drawn with Bokeh as in charts.py: each figure is made once per session, `prepare`
(pure, any thread) turns results into columns and `show` (the session's event loop) puts them in."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, Range1d, Span

from .. import monitoring
from ..features import FEATURE_WORDS
from .charts import legend_above, new_figure, unique

COLORS = {"stable": "#2e7d32", "watch": "#e08a00", "shift": "#c62828", "n/a": "#90a4ae"}
TRAINING, NOW, RATE = "#90a4ae", "#1f5fa8", "#c62828"
TOP = 15
BAR = 26  # pixels a PSI bar gets, so its label stays clear of its neighbours'
FRAME = 90  # the PSI chart's title, axis and borders


def words(feature: str) -> str:
    return FEATURE_WORDS.get(feature, feature)  # a name without words (none today) shows as it is


class DailyCharts:
    """Transactions per day and the alert rate per day: two figures, one source."""

    def __init__(self):
        self.source = ColumnDataSource({"day": [], "transactions": [], "alerts": [], "rate": []})
        self.volume = new_figure(x_axis_type="datetime", height=260, y_axis_label="transactions",
                                 title="Transactions per day")
        self.volume.varea(x="day", y1=0, y2="transactions", source=self.source, color=NOW, alpha=0.25)
        line = self.volume.line("day", "transactions", source=self.source, color=NOW, line_width=2)
        self.rate = new_figure(x_axis_type="datetime", height=260, y_axis_label="% of transactions",
                               title="Alert rate per day", x_range=self.volume.x_range)
        rate = self.rate.line("day", "rate", source=self.source, color=RATE, line_width=2)
        tooltips = [("day", "@day{%F}"), ("transactions", "@transactions{0,0}"), ("alerts", "@alerts{0,0}"),
                    ("alert rate", "@rate{0.00}%")]
        for fig, renderer in ((self.volume, line), (self.rate, rate)):
            fig.add_tools(HoverTool(renderers=[renderer], mode="vline", formatters={"@day": "datetime"},
                                    tooltips=tooltips))
            fig.y_range.start = 0

    @staticmethod
    def prepare(daily: pd.DataFrame) -> dict:
        transactions = daily["transactions"].to_numpy(float)
        alerts = daily["alerts"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(transactions > 0, 100 * alerts / transactions, np.nan)  # no payments: a gap
        return {"day": pd.to_datetime(daily["day"]).to_numpy(), "transactions": transactions, "alerts": alerts,
                "rate": rate}

    def show(self, data: dict) -> None:
        self.source.data = data


class Histogram:
    """Shares per bin of the training deciles: training as wide grey bars, the last 7 days as narrow blue ones in
    front, so both read where they overlap."""

    def __init__(self):
        self.source = ColumnDataSource({"bin": [], "training": [], "now": []})
        self.figure = fig = new_figure(x_range=FactorRange(), height=340, tools="save",
                                       x_axis_label="bins of the training deciles", y_axis_label="% of payments")
        training = fig.vbar(x="bin", top="training", width=0.85, source=self.source, color=TRAINING,
                            fill_alpha=0.45, line_alpha=0, legend_label="training")
        fig.vbar(x="bin", top="now", width=0.4, source=self.source, color=NOW, line_alpha=0,
                 legend_label="last 7 days")
        # Over the wide bar's whole column, so a narrow bar taller than it still answers.
        fig.add_tools(HoverTool(renderers=[training], mode="vline", tooltips=[
            ("bin", "@bin"), ("training", "@training{0.0}%"), ("last 7 days", "@now{0.0}%")]))
        fig.xaxis.major_label_orientation = math.pi / 4
        fig.xaxis.major_label_text_font_size = "9pt"
        fig.xgrid.grid_line_color = None
        fig.y_range.start = 0
        legend_above(fig)

    @staticmethod
    def prepare(frame: pd.DataFrame, title: str) -> dict:
        # The PSI on a line of its own: a long feature name and its PSI on one line ran out of a plot at 1280 px.
        return {"title": title.replace(" (PSI ", "\n(PSI "), "columns": {"bin": unique([str(b) for b in frame["bin"]]),
                                            "training": 100 * frame["training"].to_numpy(float),
                                            "now": 100 * frame["now"].to_numpy(float)}}

    def show(self, data: dict) -> None:
        self.figure.title.text = data["title"]
        self.figure.x_range.factors = data["columns"]["bin"]
        self.source.data = data["columns"]


class PsiChart:
    """The largest PSIs as horizontal bars coloured by status, the feature in words beside each, with the watch
    and shift levels as dashed lines."""

    HEIGHT = FRAME + TOP * BAR

    def __init__(self):
        self.source = ColumnDataSource({"feature": [], "psi": [], "status": [], "colour": []})
        self.figure = fig = new_figure(y_range=FactorRange(), x_range=Range1d(0, 1), height=self.HEIGHT,
                                       tools="save", x_axis_label="PSI", title="Largest PSIs")
        bars = fig.hbar(y="feature", right="psi", height=0.7, color="colour", source=self.source)
        fig.add_tools(HoverTool(renderers=[bars], tooltips=[("feature", "@feature"), ("PSI", "@psi{0.000}"),
                                                            ("status", "@status")]))
        self.watch, self.shift = (Span(location=level, dimension="height", line_color=COLORS[name],
                                       line_dash="dashed", line_width=1.5)
                                  for level, name in ((monitoring.WATCH, "watch"), (monitoring.SHIFT, "shift")))
        fig.add_layout(self.watch)
        fig.add_layout(self.shift)
        fig.yaxis.major_label_text_font_size = "10pt"
        fig.ygrid.grid_line_color = None
        fig.min_border_left = 10
        # The names leave the bars a narrow frame at 1280 px: the title ends at its right edge (from the left edge
        # it ran out of the plot), and three ticks (five ran into each other).
        fig.title.align = "right"
        fig.xaxis.ticker.desired_num_ticks = 3

    @staticmethod
    def prepare(features: pd.DataFrame) -> dict:
        top = features.dropna(subset=["psi"]).head(TOP).iloc[::-1]  # Bokeh puts the first factor at the bottom
        psi = top["psi"].to_numpy(float)
        largest = float(psi.max()) if len(psi) else 0.0
        # The watch line is always in view, so small PSIs read as small rather than filling the chart; the shift
        # line once a PSI passes the watch level.
        shift = largest > monitoring.WATCH
        end = 1.08 * max(largest, monitoring.SHIFT if shift else monitoring.WATCH)
        return {"title": f"Largest PSIs (top {len(top)})", "end": end, "shift": shift,
                "columns": {"feature": unique([words(f) for f in top["feature"]]), "psi": psi,
                            "status": top["status"].tolist(), "colour": [COLORS[s] for s in top["status"]]}}

    def show(self, data: dict) -> None:
        self.figure.title.text = data["title"]
        self.figure.x_range.update(start=0, end=data["end"])
        self.figure.y_range.factors = data["columns"]["feature"]
        self.shift.visible = data["shift"]
        self.source.data = data["columns"]
