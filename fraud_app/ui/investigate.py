"""Investigate: one transaction in full (fields, score, reasons in words), its card's payments over time, its
terminal's days, and where it sits among all transactions."""
from __future__ import annotations

import json

import holoviews as hv
import hvplot.pandas  # noqa: F401  (registers .hvplot and loads the Bokeh backend)
import numpy as np
import pandas as pd
import panel as pn
import param

from ..features import reason_text
from ..registry import ModelError
from ..store import ALERT_DECISIONS, investigate
from .downloads import csv_download
from .safe import plain
from .view import View

GREY, BLUE, ORANGE, RED, GREEN = "#90a4ae", "#1f5fa8", "#ef6c00", "#c62828", "#2e7d32"
LEVELS = {"low": GREEN, "medium": ORANGE, "high": RED}
PAGE_SIZE = 10
CURRENT = "background-color: #dbe7f5; color: #0d2c54; font-weight: 600"  # the transaction shown, in its card's table
HINT = "Type a transaction id above, or click a transaction id in the Review queue."
CELLS = (300, 400)  # rows (amount) and columns (time) of the all-transactions view, a cell a pixel or two

def _badge(text: str, colour: str) -> str:
    return (f'<span style="background:{colour};color:white;border-radius:4px;padding:2px 8px;'
            f'font-size:11pt;margin-left:8px">{plain(text)}</span>')


def _label(row: dict) -> str:
    if row["is_fraud"] is None:
        return "not labelled"
    source = f" by {row['label_source']}" if row["label_source"] else ""
    when = f" on {row['label_time']:%Y-%m-%d}" if row["label_time"] is not None else ""
    return ("fraud" if row["is_fraud"] else "genuine") + source + when


def _fields(row: dict) -> str:
    p = row["fraud_probability"]
    case = row["case_status"] or ("open" if row["decision"] in ALERT_DECISIONS else None)  # alerts only
    if row["analyst"]:
        case += f" ({row['analyst']}, {row['decided_at']:%Y-%m-%d %H:%M})"
    items = [("Time", f"{row['timestamp']:%Y-%m-%d %H:%M:%S}"), ("Card", row["customer_id"]),
             ("Terminal", row["terminal_id"]), ("Amount", f"{row['amount']:,.2f} {row['currency']}"),
             ("Channel", row["channel"]), ("Merchant category", row["merchant_category"]),
             ("Country", row["country"]),
             ("Fraud probability", "not scored" if p is None else f"{p:.2%}"),
             ("Risk score", None if p is None else f"{row['risk_score']} of 99, {row['risk_level']}"),
             ("Decision", row["decision"]), ("Model", row["model_version"]), ("Label", _label(row)),
             ("Case", case), ("Note", row["note"])]
    cells = "".join(f'<tr><td style="color:#607d8b;padding:3px 16px 3px 0">{k}</td>'
                    f'<td style="padding:3px 0">{plain(v)}</td></tr>' for k, v in items if v is not None)
    return f'<table style="font-size:10.5pt;border-collapse:collapse">{cells}</table>'


def _reasons_plot(reasons: list[dict]) -> hv.Bars:
    frame = pd.DataFrame(reasons[::-1])  # Bokeh draws the first category at the bottom
    frame["colour"] = [RED if c > 0 else GREEN for c in frame["contribution"]]
    frame["shown"] = [f"{c:+.2f}" for c in frame["contribution"]]
    bars = hv.Bars(frame, kdims=["text"], vdims=["contribution", "colour", "shown"])
    return bars.opts(invert_axes=True, color="colour", responsive=True, height=200, shared_axes=False,
                     title="Why this score: top reasons", xlabel="", ylabel="contribution to the score (log-odds)",
                     tools=["hover"], hover_tooltips=[("reason", "@text"), ("contribution", "@shown")],
                     toolbar=None, default_tools=[], fontsize={"yticks": "10pt"})


def _card_plot(card: pd.DataFrame, current: str, customer_id: str) -> hv.Overlay:
    hover = ["transaction_id", "terminal_id", "score"]
    groups = [(card, "payment", dict(color=GREY, size=5)),
              (card[card["alert"]], "alert", dict(color=ORANGE, size=9)),
              (card[card["fraud"]], "fraud", dict(color=RED, size=12, marker="x", line_width=2)),
              (card[card["transaction_id"] == current], "this transaction",
               dict(color=BLUE, size=18, fill_alpha=0, line_width=3))]
    layers = [hv.Curve(card, "timestamp", "amount").opts(color="#cfd8dc", line_width=1)]
    layers += [hv.Scatter(part, "timestamp", ["amount", *hover], label=name).opts(tools=["hover"], **style)
               for part, name, style in groups if len(part)]
    return hv.Overlay(layers).opts(
        responsive=True, height=320, shared_axes=False, legend_position="top", legend_cols=4, xlabel="",
        ylabel="amount", padding=0.05, title=f"Card {customer_id}: {len(card):,} payments")


def _terminal_plot(days: pd.DataFrame, row: dict) -> hv.Overlay:
    days = days.assign(day=pd.to_datetime(days["day"]), share=100 * days["fraud_share_30d"])
    frauds, total = int(days["frauds"].sum()), int(days["transactions"].sum())
    count = hv.Dimension("n", label="payments per day")

    def per_day(column: str, only: pd.Series | None = None) -> pd.DataFrame:
        part = days if only is None else days[only]
        return part[["day", column]].rename(columns={column: "n"})

    today = days["day"] == pd.Timestamp(row["timestamp"]).normalize()
    layers = [hv.Curve(per_day("transactions"), "day", count, label="payments").opts(
        interpolation="steps-mid", color=GREY)]
    for column, name, style in (("alerts", "alerts", dict(color=ORANGE, size=8)),
                                ("frauds", "fraud", dict(color=RED, size=11, marker="x", line_width=2))):
        if days[column].any():
            layers.append(hv.Scatter(per_day(column, days[column] > 0), "day", count, label=name).opts(**style))
    layers.append(hv.Scatter(per_day("transactions", today), "day", count, label="this day").opts(
        color=BLUE, size=16, fill_alpha=0, line_width=3))
    top = max(5.0, 1.2 * days["share"].max())  # a terminal without fraud keeps a flat line at the bottom
    layers.append(hv.Curve(days, "day", ("share", "fraud share, 30 days (%)"), label="fraud share, 30d").opts(
        color=RED, line_dash="dashed", line_width=1.5, ylim=(0, top)))
    return hv.Overlay(layers).opts(
        multi_y=True, responsive=True, height=320, shared_axes=False, legend_position="top", legend_cols=5,
        xlabel="", padding=0.05, title=f"Terminal {row['terminal_id']}: {total:,} payments, {frauds:,} fraud")


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


def _all_plot(points: pd.DataFrame, here: hv.streams.Pipe, top: float) -> hv.Overlay:
    left_out = points.attrs["left_out"]
    what = (f"{len(points):,} scored transactions ({left_out:,} dated far from the rest not drawn)" if left_out
            else f"All {len(points):,} scored transactions")
    times = points["time"].to_numpy().astype("datetime64[us]", copy=False).view(np.int64)
    amounts, scores = points["amount"].to_numpy(), points["score"].to_numpy()
    now = np.datetime64("now", "us")
    window = [np.datetime64(t, "us").astype(np.int64)
              for t in points.attrs["window"] or (now - np.timedelta64(1, "D"), now)]
    first = [times.min(), times.max()] if len(times) else window  # the first view spans the payments
    rows, cols = CELLS

    def cells(x_range, y_range) -> hv.Image:
        # Re-binned at each zoom or pan, within the window: all points lie there, and a view zoomed out to
        # decades would otherwise get cells months wide.
        x0, x1 = (np.datetime64(t, "us").astype(np.int64) for t in x_range) if x_range else first
        x0, x1 = max(x0, window[0]), min(x1, window[1])
        if x1 - x0 < cols:  # off the window (nothing to draw), or zoomed below a microsecond a cell
            x0, x1 = window
        y0, y1 = y_range or (0, top)
        if not y0 < y1:
            y0, y1 = 0, top
        counts, means = bin_scores(times, amounts, scores, (x0, x1), (y0, y1), CELLS)
        xs = ((np.arange(cols) + 0.5) * ((x1 - x0) / cols) + x0).astype(np.int64).view("datetime64[us]")
        ys = (np.arange(rows) + 0.5) * ((y1 - y0) / rows) + y0
        return hv.Image((xs, ys, means, counts.astype(np.int32)), ["time", "amount"],
                        [hv.Dimension("score", label="mean score"), "payments"],
                        xdensity=cols / (x1 - x0), ydensity=rows / (y1 - y0))  # exact: inferred ones are rounded

    raster = hv.DynamicMap(cells, streams=[hv.streams.RangeXY()]).opts(
        cmap="plasma", cnorm="eq_hist", colorbar=True, clabel="mean score", cformatter="%.3g", tools=["hover"],
        responsive=True, height=380, xlabel="", ylabel="amount", ylim=(0, top),
        title=f"{what}: amount over time, coloured by score")
    marker = hv.DynamicMap(lambda data: hv.Points(data, ["time", "amount"]), streams=[here]).opts(
        color="#00e5ff", size=16, fill_alpha=0, line_width=3)
    return (raster * marker).opts(shared_axes=False)


class InvestigateView(View):
    follows = ("version", "model_version")
    transaction_id = param.String(default="", doc="The transaction shown.")

    def __init__(self, **params):
        super().__init__(**params)
        self._search = pn.widgets.TextInput(label="Transaction id", placeholder="id, then Enter", width=220)
        self._notice = pn.pane.Alert(HINT, alert_type="info")
        self._title = pn.pane.Markdown(margin=(0, 10))
        self._fields = pn.pane.HTML(width=420, margin=(0, 10))
        self._why = pn.pane.HoloViews(sizing_mode="stretch_width")
        self._card_plot = pn.pane.HoloViews(sizing_mode="stretch_width")
        self._terminal_plot = pn.pane.HoloViews(sizing_mode="stretch_width")
        self._card_title = pn.pane.Markdown(margin=(0, 10))
        self._card_table = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, selectable=False, sizing_mode="stretch_width",
            pagination="local", page_size=PAGE_SIZE, layout="fit_data_stretch",
            formatters={"score": {"type": "progress", "max": 1, "color": RED, "legend": True},
                        "amount": {"type": "money", "precision": 2},
                        "fraud": {"type": "tickCross", "crossElement": False},
                        "alert": {"type": "tickCross", "crossElement": False}})
        self._detail = pn.Column(
            self._title, pn.Row(self._fields, self._why, sizing_mode="stretch_width"),
            pn.Row(self._card_plot, self._terminal_plot, sizing_mode="stretch_width"),
            pn.Row(self._card_title, pn.HSpacer(),
                   csv_download(lambda: self._card_table.value, "card_payments.csv", width=130)),
            self._card_table, visible=False, sizing_mode="stretch_width")
        self._here = hv.streams.Pipe(data=[])
        self._all = pn.pane.HoloViews(sizing_mode="stretch_width")
        self._drawn = (None, None)
        self.transaction_id = self._search.value = self.data_store.focus or ""
        self._search.param.watch(self._searched, "value")
        self._card_table.on_click(self._clicked)
        self._card_table.style.apply(self._current_row, axis=1)  # kept through every new value
        self.data_store.param.watch(self._follow, "focus")
        self.param.watch(self._load, "drawn")
        self.param.watch(self._load, "transaction_id")
        self._load()

    def _follow(self, event) -> None:
        if event.new:  # investigate() passes through None so the same id twice still navigates
            self.transaction_id = event.new
            self._search.value = event.new

    def _searched(self, event) -> None:
        wanted = event.new.strip()
        if wanted and wanted != self.transaction_id:
            self.data_store.investigate(wanted)

    def _current_row(self, row: pd.Series) -> list[str]:
        return [CURRENT if row["transaction_id"] == self.transaction_id else ""] * len(row)

    def _clicked(self, event) -> None:
        self.data_store.investigate(self._card_table.value["transaction_id"].iloc[event.row])

    def _reasons(self, row: dict) -> list[dict]:
        stored = json.loads(row["reasons"] or "[]")
        if stored:
            return [{**r, "text": reason_text(r["feature"], float("nan") if r["value"] is None else r["value"])}
                    for r in stored]
        try:
            return self.data_store.app.explain(row["transaction_id"], version=row["model_version"])
        except ModelError:  # no model to explain with yet: the fields say "not scored"
            return []

    def _load(self, *_) -> None:
        data, tid = self.data_store, self.transaction_id
        row = investigate.transaction(data.store, tid, data.model_version) if tid else None
        self._show_all(row)
        if row is None:
            self._notice.object = f"No transaction with id **{plain(tid)}**. {HINT}" if tid else HINT
            self._notice.alert_type = "warning" if tid else "info"
            self._notice.visible, self._detail.visible = True, False
            return
        # Shown before it is filled: Tabulator drops row styles it receives while hidden.
        self._notice.visible, self._detail.visible = False, True
        card = investigate.card_history(data.store, row["customer_id"], data.model_version)
        days = investigate.terminal_daily(data.store, row["terminal_id"], data.model_version)
        level = row["risk_level"]
        self._title.object = f"### Transaction {plain(tid)}" + (
            _badge(f"{level} risk · {row['decision']}", LEVELS.get(level, GREY)) if level else "")
        self._fields.object = _fields(row)
        reasons = self._reasons(row)
        self._why.object = _reasons_plot(reasons) if reasons else None
        self._card_plot.object = _card_plot(card, tid, row["customer_id"])
        self._terminal_plot.object = _terminal_plot(days, row)
        self._card_title.object = (f"#### Card {plain(row['customer_id'])}: payments, newest first "
                                   "(click one to open it)")
        shown = card.iloc[::-1].reset_index(drop=True)  # newest first, as a statement reads
        at = shown.index[shown["transaction_id"] == tid]
        self._card_table.value = shown
        self._card_table.page = int(at[0]) // PAGE_SIZE + 1 if len(at) else 1

    def _show_all(self, row: dict | None) -> None:
        version = self.data_store.model_version
        points = self.data_store.app.score_points(version) if version else None
        if points is None:
            self._all.object, self._drawn = None, (None, None)
            return
        # Amounts are skewed: show the usual range (99.9% of payments), stretched to this transaction's amount.
        top = max(points.attrs["top"], 1.1 * row["amount"]) if row else points.attrs["top"]
        if self._drawn[0] is not points or self._drawn[1] != top:
            self._drawn = (points, top)
            self._all.object = _all_plot(points, self._here, top)
        window = points.attrs["window"]
        shown = row is not None and window is not None and window[0] <= np.datetime64(row["timestamp"], "us") <= window[1]
        self._here.send([(row["timestamp"], row["amount"])] if shown else [])  # a far-off one would widen the axis

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(pn.pane.Markdown("## Investigate"), pn.HSpacer(), self._search),
                         self._notice, self._detail, self._all, sizing_mode="stretch_width")
