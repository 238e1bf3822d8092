"""The Model view's charts, drawn with Bokeh as in charts.py: made once per session, `prepare` (any thread) turns
results into columns and `show` (the event loop) puts them in."""
from __future__ import annotations

import pandas as pd
from bokeh.core.properties import value
from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter, Range1d, Span

from .. import backtest
from .charts import BLUE, GREEN, ORANGE, RED, _show_items, legend_above, new_figure

COLOURS = (BLUE, ORANGE)  # the version, then the one it is compared with
SWEEP = range(5, 1001, 5)  # alert budgets drawn by the threshold simulator


def _no_line() -> dict:
    return {"x": [], "y": [], "version": []}


def _line(frame: pd.DataFrame, x: str, y: str, version: str) -> dict:
    return {"x": frame[x].to_numpy(float), "y": frame[y].to_numpy(float), "version": [version] * len(frame)}


class CurvesChart:
    """Precision-recall and ROC on the test window, a line for each chosen version (up to two)."""

    def __init__(self):
        self.pr = new_figure(height=320, y_range=Range1d(0, 1.02), title="Precision and recall on the test window",
                             x_axis_label="recall", y_axis_label="precision")
        # A log axis: the low false-positive end is where a fraud model works.
        self.roc = new_figure(height=320, x_axis_type="log", y_range=Range1d(0, 1.02), title="ROC on the test window",
                              x_axis_label="false positive rate (log scale)", y_axis_label="true positive rate")
        self.sources: dict[str, list[ColumnDataSource]] = {}
        for key, fig, axes in (("pr", self.pr, ("recall", "precision")),
                               ("roc", self.roc, ("false positives", "true positives"))):
            sources = [ColumnDataSource(_no_line()) for _ in COLOURS]
            lines = [fig.line("x", "y", source=source, color=colour, line_width=2, legend_label=f"line {i}")
                     for i, (source, colour) in enumerate(zip(sources, COLOURS))]
            fig.add_tools(HoverTool(renderers=lines, tooltips=[("version", "@version"), (axes[0], "@x{0.0000}"),
                                                               (axes[1], "@y{0.000}")]))
            legend_above(fig)
            self.sources[key] = sources

    @staticmethod
    def prepare(curves: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> dict:
        """From {version: backtest.curves(...)}, in the order chosen."""
        lines = [{"version": v, "pr": _line(pr, "recall", "precision", v),
                  "roc": _line(roc[roc["fpr"] > 0], "fpr", "tpr", v)}  # a log axis has no zero
                 for v, (pr, roc) in list(curves.items())[:len(COLOURS)]]
        return {"lines": lines, "drawable": any(len(line["pr"]["x"]) for line in lines)}

    def show(self, data: dict) -> None:
        lines = data["lines"] + [None] * (len(COLOURS) - len(data["lines"]))
        for fig, key in ((self.pr, "pr"), (self.roc, "roc")):
            for source, item, line in zip(self.sources[key], fig.legend[0].items, lines):
                source.data = line[key] if line else _no_line()
                item.label = value(line["version"] if line else "")
            _show_items(fig)


class SweepChart:
    """What each alert budget would have done on the test window: fraud caught and cost, with the chosen
    budget as a dashed line."""

    def __init__(self):
        self.source = ColumnDataSource({"budget": [], "caught": [], "cost": []})
        self.figure = fig = new_figure(height=300, x_axis_label="alert budget (alerts a day)",
                                       y_axis_label="amount on the test window",
                                       title="Fraud caught and cost by alert budget")
        lines = [fig.line("budget", column, source=self.source, color=colour, line_width=2, legend_label=name)
                 for column, name, colour in (("caught", "fraud caught", GREEN), ("cost", "cost", RED))]
        self.span = Span(location=100, dimension="height", line_color=BLUE, line_dash="dashed", line_width=2)
        fig.add_layout(self.span)
        fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
        fig.add_tools(HoverTool(renderers=lines[:1], mode="vline", tooltips=[
            ("alert budget", "@budget a day"), ("fraud caught", "@caught{0,0}"), ("cost", "@cost{0,0}")]))
        legend_above(fig)

    @staticmethod
    def prepare(frame: pd.DataFrame, budget: int, review_cost: float) -> dict:
        sweep = backtest.outcomes(frame, list(SWEEP), review_cost)
        best = sweep.loc[sweep["cost"].idxmin()]
        return {"columns": {"budget": sweep["budget"].to_numpy(), "caught": sweep["caught_amount"].to_numpy(),
                            "cost": sweep["cost"].to_numpy()},
                "title": f"Fraud caught and cost by alert budget (lowest cost at {best['budget']:.0f} a day)",
                "budget": budget}

    def show(self, data: dict) -> None:
        self.source.data = data["columns"]
        self.figure.title.text = data["title"]
        self.span.location = data["budget"]
