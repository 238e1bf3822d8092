"""Charts drawn with Bokeh directly. Each figure is made once per session; new data only replaces what its
sources hold. Each chart splits its work in two: `prepare` (pure, any thread) turns query results into columns,
and `show` (the session's event loop) puts them in. Re-rendering whole plots on the one event loop, which every
session and the REST API share, held them all up for a second."""
from __future__ import annotations

import asyncio
import textwrap

import numpy as np
import pandas as pd
from bokeh.events import RangesUpdate
from bokeh.document import without_document_lock
from bokeh.models import (ColorBar, ColumnDataSource, FactorRange, FixedTicker, HoverTool, LinearAxis, LogColorMapper,
                          Range1d)
from bokeh.palettes import Plasma256
from bokeh.plotting import figure

GREY, BLUE, ORANGE, RED, GREEN = "#90a4ae", "#1f5fa8", "#ef6c00", "#c62828", "#2e7d32"
LINE = 40  # characters a line of a reason beside its bar: two short lines leave the bars room, one long line did not
CELLS = (300, 400)  # rows (amount) and columns (time) of the all-transactions view, a cell a pixel or two
# The all-transactions colours: a mean fraud probability on a log scale, one tick a power of ten. Most payments
# score near 0.1%, fraud near 100%; the same colour means the same probability at every zoom.
PROBABILITY_TICKS = {0.0001: "0.01%", 0.001: "0.1%", 0.01: "1%", 0.1: "10%", 1.0: "100%"}


def new_figure(**options) -> figure:
    # The toolbar on the right: above, it shared the title's row, and beside a long title at 1280 px it ran out of
    # the plot, its tools hidden.
    options = {"sizing_mode": "stretch_width", "toolbar_location": "right", "tools": "xpan,xwheel_zoom,reset,save",
               **options}
    fig = figure(**options)
    fig.title.text_font_size = "11pt"
    fig.toolbar.logo = None
    if options.get("x_axis_type") == "datetime":  # "Apr", "May" with the year below the first, not "Apr 2018"
        fig.xaxis.formatter.months = "%b"  # each time: at 1280 px those ran into each other
        fig.xaxis.formatter.context.months = "%Y"
    return fig


def legend_above(fig: figure) -> None:
    legend = fig.legend[0]
    legend.orientation, legend.click_policy = "horizontal", "hide"
    legend.border_line_alpha, legend.margin, legend.padding = 0, 0, 2
    legend.label_text_font_size, legend.glyph_width = "12px", 16  # five entries fit a half-width plot at 1280 px
    fig.add_layout(legend, "above")


def _show_items(fig: figure) -> None:
    """A legend entry only for layers that hold points (a card without fraud has no 'fraud' entry)."""
    for item in fig.legend[0].items:
        item.visible = len(item.renderers[0].data_source.data["x"]) > 0


def unique(texts: list[str]) -> list[str]:
    """Bokeh's categories must differ: a repeated text gets a number."""
    seen: dict[str, int] = {}
    out = []
    for text in texts:
        seen[text] = seen.get(text, 0) + 1
        out.append(text if seen[text] == 1 else f"{text} ({seen[text]})")
    return out


class ReasonsChart:
    """The top reasons as bars: red pushes the score up, green down."""

    def __init__(self):
        self.source = ColumnDataSource({"text": [], "label": [], "contribution": [], "colour": [], "shown": []})
        self.figure = new_figure(y_range=FactorRange(), height=250, tools="", toolbar_location=None,
                                 title="Why this score: top reasons",
                                 x_axis_label="pushes the score up (log-odds)")
        self.figure.hbar(y="label", right="contribution", height=0.75, color="colour", source=self.source)
        self.figure.add_tools(HoverTool(tooltips=[("reason", "@text"), ("contribution", "@shown")]))
        self.figure.yaxis.major_label_text_font_size = "10pt"
        self.figure.min_border_left = 10

    @staticmethod
    def prepare(reasons: list[dict]) -> dict:
        reasons = reasons[::-1]  # Bokeh draws the first category at the bottom: the top reason goes on top
        contributions = [float(r["contribution"]) for r in reasons]
        texts = [r["text"] for r in reasons]
        return {"text": texts, "label": unique(["\n".join(textwrap.wrap(t, LINE)) for t in texts]),
                "contribution": contributions,
                "colour": [RED if c > 0 else GREEN for c in contributions],
                "shown": [f"{c:+.2f}" for c in contributions]}

    def show(self, data: dict) -> None:
        self.figure.y_range.factors = data["label"]
        self.source.data = data
        self.figure.visible = bool(data["text"])


def _points(frame: pd.DataFrame, x: str, y: str, *extra: str) -> dict:
    return {"x": frame[x].to_numpy(), "y": frame[y].to_numpy(), **{c: frame[c].to_numpy() for c in extra}}


class CardChart:
    """The card's payments over time: alerts, fraud and this transaction marked."""

    LAYERS = {"payment": dict(color=GREY, size=5), "alert": dict(color=ORANGE, size=9),
              "fraud": dict(color=RED, size=12, marker="x", line_width=2),
              "this transaction": dict(color=BLUE, size=18, fill_alpha=0, line_width=3)}
    HOVER = ("transaction_id", "terminal_id", "score")

    def __init__(self):
        empty = {"x": [], "y": [], **{c: [] for c in self.HOVER}}
        self.sources = {name: ColumnDataSource(dict(empty)) for name in ["line", *self.LAYERS]}
        self.figure = fig = new_figure(x_axis_type="datetime", height=320, y_axis_label="amount")
        fig.line("x", "y", source=self.sources["line"], color="#cfd8dc", line_width=1)
        drawn = [fig.scatter("x", "y", source=self.sources[name], legend_label=name, **style)
                 for name, style in self.LAYERS.items()]
        fig.add_tools(HoverTool(renderers=drawn, formatters={"@x": "datetime"}, tooltips=[
            ("time", "@x{%F %T}"), ("amount", "@y{0,0.00}"), ("transaction", "@transaction_id"),
            ("terminal", "@terminal_id"), ("fraud probability", "@score{0.0[00]%}")]))
        legend_above(fig)

    @classmethod
    def prepare(cls, card: pd.DataFrame, current: str, customer_id: str) -> dict:
        parts = {"line": card, "payment": card, "alert": card[card["alert"]], "fraud": card[card["fraud"]],
                 "this transaction": card[card["transaction_id"] == current]}
        return {"title": f"Card {customer_id}: {len(card):,} payments",
                "sources": {name: _points(part, "timestamp", "amount", *cls.HOVER) for name, part in parts.items()}}

    def show(self, data: dict) -> None:
        self.figure.title.text = data["title"]
        for name, columns in data["sources"].items():
            self.sources[name].data = columns
        _show_items(self.figure)


class TerminalChart:
    """The terminal's payments per day, with its alerts and fraud, and its fraud share on a second axis."""

    LAYERS = {"alerts": dict(color=ORANGE, size=8), "fraud": dict(color=RED, size=11, marker="x", line_width=2),
              "this day": dict(color=BLUE, size=16, fill_alpha=0, line_width=3)}

    def __init__(self):
        self.sources = {name: ColumnDataSource({"x": [], "y": []}) for name in ["payments", *self.LAYERS, "share"]}
        self.figure = fig = new_figure(x_axis_type="datetime", height=320, y_axis_label="payments per day")
        fig.extra_y_ranges = {"share": Range1d(0, 5)}
        fig.add_layout(LinearAxis(y_range_name="share", axis_label="fraud share, 30 days (%)"), "right")
        # The grey steps are the payments the left axis names: no legend entry, so the legend fits above the frame
        fig.step("x", "y", source=self.sources["payments"], mode="center", color=GREY)
        drawn = [fig.scatter("x", "y", source=self.sources[name], legend_label=name, **style)
                 for name, style in self.LAYERS.items()]
        fig.line("x", "y", source=self.sources["share"], y_range_name="share", color=RED, line_dash="dashed",
                 line_width=1.5, legend_label="fraud share")  # over 30 days, as its axis says
        fig.add_tools(HoverTool(renderers=drawn, formatters={"@x": "datetime"},
                                tooltips=[("day", "@x{%F}"), ("payments", "@y")]))
        legend_above(fig)

    @staticmethod
    def prepare(days: pd.DataFrame, row: dict) -> dict:
        days = days.assign(day=pd.to_datetime(days["day"]), share=100 * days["fraud_share_30d"])
        frauds, total = int(days["frauds"].sum()), int(days["transactions"].sum())
        today = days["day"] == pd.Timestamp(row["timestamp"]).normalize()
        sources = {"payments": _points(days, "day", "transactions"),
                   "alerts": _points(days[days["alerts"] > 0], "day", "alerts"),
                   "fraud": _points(days[days["frauds"] > 0], "day", "frauds"),
                   "this day": _points(days[today], "day", "transactions"),
                   "share": _points(days, "day", "share")}
        return {"title": f"Terminal {row['terminal_id']}: {total:,} payments, {frauds:,} fraud", "sources": sources,
                "top": max(5.0, 1.2 * float(days["share"].max() if len(days) else 0))}  # no fraud: a flat line

    def show(self, data: dict) -> None:
        self.figure.title.text = data["title"]
        self.figure.extra_y_ranges["share"].end = data["top"]
        for name, columns in data["sources"].items():
            self.sources[name].data = columns
        _show_items(self.figure)


def bin_scores(x: np.ndarray, y: np.ndarray, score: np.ndarray, x_range: tuple[float, float],
               y_range: tuple[float, float], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Payments per cell and their mean score (NaN where empty) on a grid of shape (rows along y, columns
    along x) over the closed ranges. A cell holds its lower edges; the last row and column their upper ones too."""
    (x0, x1), (y0, y1), (rows, cols) = x_range, y_range, shape
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    x, y, score = x[inside], y[inside], score[inside]
    # Multiplied before divided, so a point on an inner edge gets the whole index of the cell above it (for
    # times in microseconds exactly); all >= 0 here, so truncation floors.
    col = np.minimum((x - x0) * cols / (x1 - x0), cols - 1).astype(np.intp)
    row = np.minimum((y - y0) * rows / (y1 - y0), rows - 1).astype(np.intp)
    cell = row * cols + col
    counts = np.bincount(cell, minlength=rows * cols).reshape(rows, cols)
    sums = np.bincount(cell, weights=score, minlength=rows * cols).reshape(rows, cols)
    with np.errstate(invalid="ignore"):
        return counts, sums / counts


class AllChart:
    """Every scored payment: amount over time, each cell coloured by its payments' mean score. Re-binned in a
    worker thread at each zoom or pan, within the bulk of the payments' times (a view zoomed out to decades would
    otherwise get cells months wide)."""

    def __init__(self):
        self.points: pd.DataFrame | None = None
        self.top = 1.0
        self.source = ColumnDataSource({"image": [], "payments": [], "x": [], "y": [], "dw": [], "dh": []})
        self.here = ColumnDataSource({"x": [], "y": []})
        ticks = list(PROBABILITY_TICKS)
        mapper = LogColorMapper(palette=Plasma256, low=ticks[0], high=ticks[-1], nan_color=(0, 0, 0, 0))
        self.figure = fig = new_figure(x_axis_type="datetime", height=380, y_axis_label="amount",
                                       x_range=Range1d(0, 1), y_range=Range1d(0, 1),
                                       tools="pan,wheel_zoom,box_zoom,reset,save")
        image = fig.image(image="image", x="x", y="y", dw="dw", dh="dh", color_mapper=mapper, source=self.source)
        fig.add_layout(ColorBar(color_mapper=mapper, title="mean fraud probability", ticker=FixedTicker(ticks=ticks),
                                major_label_overrides=PROBABILITY_TICKS), "right")
        fig.scatter("x", "y", source=self.here, color="#00e5ff", size=16, fill_alpha=0, line_width=3)
        fig.add_tools(HoverTool(renderers=[image], formatters={"$x": "datetime"}, tooltips=[
            ("time", "$x{%F %H:%M}"), ("amount", "$y{0,0.00}"), ("mean fraud probability", "@image{0.00%}"),
            ("payments", "@payments{0,0}")]))
        fig.on_event(RangesUpdate, self._moved)
        self._asked = None
        self._marked: dict | None = None

    @staticmethod
    def cells(points: pd.DataFrame, top: float, x_range: tuple[float, float] | None,
              y_range: tuple[float, float] | None) -> dict:
        """The image's columns for these ranges (x in milliseconds, as Bokeh's time axis has it)."""
        times = points["time"].to_numpy().astype("datetime64[us]", copy=False).view(np.int64)
        w0, w1 = _window(points)
        rows, cols = CELLS
        x0, x1 = (int(x_range[0] * 1000), int(x_range[1] * 1000)) if x_range else (w0, w1)
        x0, x1 = max(x0, w0), min(x1, w1)
        if x1 - x0 < cols:  # off the window (nothing to draw), or zoomed below a microsecond a cell
            x0, x1 = w0, w1
        y0, y1 = y_range or (0, top)
        if not y0 < y1:
            y0, y1 = 0, top
        counts, means = bin_scores(times, points["amount"].to_numpy(), points["score"].to_numpy(),
                                   (x0, x1), (y0, y1), CELLS)
        # Single precision halves what each session is sent (Bokeh sends the arrays as they are).
        return {"image": [means.astype(np.float32)], "payments": [counts.astype(np.float32)], "x": [x0 / 1000],
                "y": [y0], "dw": [(x1 - x0) / 1000], "dh": [y1 - y0]}

    def prepare(self, points: pd.DataFrame | None, row: dict | None) -> dict:
        """For a new transaction: its marker, and the image again if the points or the amount axis changed."""
        if points is None:
            return {"points": None}
        top = max(points.attrs["top"], 1.1 * row["amount"]) if row else points.attrs["top"]
        out = {"points": points, "top": top, "row": row}
        if points is not self.points or top != self.top:
            times = points["time"].to_numpy()
            first = ([float(t.astype("datetime64[ms]").astype(np.int64)) for t in (times.min(), times.max())]
                     if len(times) else [w / 1000 for w in _window(points)])  # the first view spans the payments
            out |= {"cells": self.cells(points, top, tuple(first), (0, top)), "x_range": first}
        return out

    def mark(self, row: dict | None) -> None:
        """The transaction's marker on the points drawn now, if any. Unchanged, nothing is sent to the page."""
        if self.points is None:
            return
        here = _marker(self.points, row)
        if self._marked != here:
            self._marked, self.here.data = here, here

    def show(self, data: dict) -> None:
        self.figure.visible = data["points"] is not None
        if data["points"] is None:
            return
        points = data["points"]
        left_out = points.attrs["left_out"]
        what = (f"{len(points):,} scored transactions ({left_out:,} dated far from the rest not drawn)" if left_out
                else f"All {len(points):,} scored transactions")
        self.figure.title.text = f"{what}: amount over time"  # the colour bar says what the colours are
        if "cells" in data:
            self.points, self.top, self._asked = points, data["top"], None  # a zoom's image still due is stale
            (x0, x1), y1 = data["x_range"], data["top"]
            self.figure.x_range.update(start=x0, end=x1, reset_start=x0, reset_end=x1)
            self.figure.y_range.update(start=0, end=y1, reset_start=0, reset_end=y1)
            self.source.data = data["cells"]
        self.mark(data["row"])

    def _moved(self, event: RangesUpdate) -> None:
        if self.points is None or None in (event.x0, event.x1, event.y0, event.y1):
            return
        job = self._asked = (self.points, self.top, (event.x0, event.x1), (event.y0, event.y1))
        doc = self.figure.document
        if doc is None or doc.session_context is None:  # not served (tests): at once
            self.source.data = self.cells(*job)
            return

        @without_document_lock
        async def rebin() -> None:  # binning 1.75M payments takes ~0.1 s: not on the event loop
            cells = await asyncio.to_thread(self.cells, *job)
            if self._asked is job:
                doc.add_next_tick_callback(lambda: setattr(self.source, "data", cells))

        doc.add_next_tick_callback(rebin)


def _marker(points: pd.DataFrame, row: dict | None) -> dict:
    """The transaction's marker: none for one far off the drawn times (it would widen the axis)."""
    window = points.attrs["window"]
    if row is None or window is None or not window[0] <= np.datetime64(row["timestamp"], "us") <= window[1]:
        return {"x": [], "y": []}
    return {"x": [np.datetime64(row["timestamp"], "ms")], "y": [row["amount"]]}


def _window(points: pd.DataFrame) -> tuple[int, int]:
    """Where the image may reach, in microseconds: the bulk of the payments' times."""
    now = np.datetime64("now", "us")
    window = points.attrs["window"] or (now - np.timedelta64(1, "D"), now)
    return tuple(int(np.datetime64(t, "us").astype(np.int64)) for t in window)
