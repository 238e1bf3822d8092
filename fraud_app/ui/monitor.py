"""Monitoring: is the model still seeing the payments it was trained on, and is the API keeping up? Daily
volumes and alert rate, drift (PSI) of the score and of every feature against training, REST latency."""
from __future__ import annotations

import holoviews as hv
import hvplot.pandas  # noqa: F401  (registers .hvplot)
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from .. import monitoring
from ..metrics import LATENCY_WINDOW
from ..features import FEATURE_NAMES
from .downloads import csv_download
from .safe import plain
from .view import View

COLORS = {"stable": "#2e7d32", "watch": "#e08a00", "shift": "#c62828", "n/a": "#90a4ae"}
TINTS = {"stable": "#e8f5e9", "watch": "#fff3e0", "shift": "#ffebee", "n/a": "#eceff1"}
TRAINING, NOW = "#90a4ae", "#1f5fa8"
CARD = dict(font_size="24pt", title_size="10pt")
TOP = 15


def _dot(status: str) -> str:
    return f"<span style='color:{COLORS[status]}'>&#9679;</span> {status}"


LEGEND = (f"<small>{_dot('stable')} PSI below {monitoring.WATCH} &nbsp; {_dot('watch')} {monitoring.WATCH} to "
          f"{monitoring.SHIFT} &nbsp; {_dot('shift')} above {monitoring.SHIFT}</small>")


def _days(start, end) -> str:
    if (start.year, start.month) == (end.year, end.month):
        return f"{start:%-d} – {end:%-d %b %Y}"
    if start.year == end.year:
        return f"{start:%-d %b} – {end:%-d %b %Y}"
    return f"{start:%-d %b %Y} – {end:%-d %b %Y}"


def _histogram(frame: pd.DataFrame, title: str) -> hv.Overlay:
    """Training as wide grey bars, now as narrow blue ones in front: both readable where they overlap."""
    share = hv.Dimension("share", label="% of payments")
    training, now = (hv.Bars(pd.DataFrame({"bin": frame.bin, "share": 100 * frame[column]}), "bin", share,
                             label=label) for column, label in (("training", "training"), ("now", "last 7 days")))
    training = training.opts(color=TRAINING, fill_alpha=0.45, line_alpha=0, bar_width=0.85)
    now = now.opts(color=NOW, line_alpha=0, bar_width=0.4)
    return (training * now).opts(
        hv.opts.Bars(xrotation=45, tools=["hover"]),
        hv.opts.Overlay(title=title, responsive=True, height=320, legend_position="top", legend_cols=2, xlabel="",
                        shared_axes=False, toolbar="right"))


class MonitoringView(View):
    result = param.Parameter(default=None, doc="The drift on show (monitoring.Drift), once computed.")
    computing = param.Boolean(default=False)
    error = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self._job: monitoring.Job | None = None
        self._poller = None
        self._layout: pn.Column | None = None
        self._shown = False
        self._progress = pn.indicators.Progress(value=0, max=100, width=360, bar_color="primary")
        self._message = pn.pane.Markdown("", margin=(0, 10))
        self._feature = pn.widgets.Select(label="Feature", options=FEATURE_NAMES, width=280)
        # Made once and placed in each new drift layout, so old layouts leave no live callbacks behind.
        self._feature_plot = pn.panel(pn.bind(self._feature_histogram, self._feature, self.param.result))
        self.param.watch(self._start, "drawn")

    # -- drift, computed on a worker thread and polled ----------------------------------------------------
    def _start(self, *_) -> None:
        if not self._shown:  # views are built for every session; compute only for those who look
            return
        ds = self.data_store
        if ds.model_version is None or ds.period is None:
            self._job, self.result, self.computing = None, None, False
            return
        job = ds.app.drift_job(ds.model_version, ds.period[1])
        if job is self._job:
            return
        self._job, self.error = job, ""
        if job.future.done():
            self._take(job)
            return
        self.computing = True
        self._poll()
        if self._poller is None or not self._poller.running:
            self._poller = pn.state.add_periodic_callback(self._poll, period=400)

    def _poll(self) -> None:
        job = self._job
        if job is None:
            return
        self._progress.value = int(100 * job.fraction)
        self._message.object = f"{plain(job.message)}…"
        if job.future.done():
            self._take(job)

    def _take(self, job: monitoring.Job) -> None:
        if self._poller is not None and self._poller.running:
            self._poller.stop()
        try:
            drift = job.future.result()
        except Exception as exc:
            self.error, self.computing = f"Drift could not be computed: {exc}", False
            return
        top = drift.features.feature.tolist()
        self._feature.options = top
        if self._feature.value not in top or self.result is None:
            self._feature.value = top[0]
        self.result, self.computing = drift, False

    # -- sections ----------------------------------------------------------------------------------------
    def _period_picker(self) -> pn.widgets.DateRangePicker:
        bounds = self.data_store.bounds
        return pn.widgets.DateRangePicker.from_param(
            self.data_store.param.period, label="Period", width=260, description=None,
            start=bounds[0] if bounds else None, end=bounds[1] if bounds else None)

    def _volumes(self, *_) -> pn.viewable.Viewable:
        scored = self.data_store.scored_period()
        frame = scored.daily if scored is not None else None
        if frame is None or frame.empty:
            return pn.pane.Alert("No scores yet: train a model and score the data.", alert_type="info")
        frame = frame.assign(day=pd.to_datetime(frame["day"]),
                             alert_rate=100 * frame.alerts / frame.transactions.where(frame.transactions > 0))
        common = dict(x="day", xlabel="", responsive=True, height=260, shared_axes=False)
        volume = (frame.hvplot.area(y="transactions", color=NOW, alpha=0.25, line_alpha=0, **common)
                  * frame.hvplot.line(y="transactions", color=NOW, line_width=2, hover_cols=["alerts"], **common)
                  ).opts(title="Transactions per day", ylabel="transactions")
        rate = frame.hvplot.line(y="alert_rate", ylabel="% of transactions", title="Alert rate per day",
                                 color="#c62828", line_width=2, **common)
        return pn.Row(pn.pane.HoloViews(volume, sizing_mode="stretch_width"),
                      pn.pane.HoloViews(rate, sizing_mode="stretch_width"), sizing_mode="stretch_width")

    def _drift(self, result, computing: bool, error: str) -> pn.viewable.Viewable:
        if error:
            return pn.pane.Alert(plain(error), alert_type="danger")
        if computing:
            return pn.Column(self._message, self._progress, pn.pane.Markdown(
                "<small>Comparing recent payments with the model's training takes a few seconds the first time; "
                "the rest of the app stays usable meanwhile.</small>", margin=(0, 10)))
        if result is None:
            return pn.pane.Alert("No model in use yet: train one to compare recent payments with its training.",
                                 alert_type="info")
        ref = result.reference
        sampled = (f"features from {len(ref.weeks)} weeks spread over it ({ref.rows:,} payments)"
                   if len(ref.weeks) > 1 else f"features of all {ref.rows:,} payments")
        about = (f"Model **{plain(result.version)}**, trained on {_days(*ref.window)}: {sampled}, scores of all "
                 f"{ref.score_rows:,}. Compared with the 7 days {_days(*result.now)} ({result.now_rows:,} payments), "
                 "the last of the period.")
        counts = result.features.status.value_counts()
        score_status = monitoring.status(result.score_psi)
        cards = pn.FlexBox(
            pn.indicators.Number(label=f"Score PSI: {score_status}", value=result.score_psi,
                                 format="{value:.3f}" if score_status != "n/a" else "n/a",
                                 default_color=COLORS[score_status], **CARD),
            *[pn.indicators.Number(label=f"Features {label}", value=int(counts.get(label, 0)), format="{value:,}",
                                   default_color=COLORS[label] if counts.get(label, 0) else "#37474f", **CARD)
              for label in ("stable", "watch", "shift")],
            gap="28px")
        return pn.Column(
            pn.pane.Markdown(about, margin=(0, 10)), cards, pn.pane.Markdown(LEGEND, margin=(0, 10)),
            pn.Row(pn.Column(self._table(result), csv_download(lambda: result.features, "feature_drift.csv",
                                                               width=130), sizing_mode="stretch_width"),
                   self._top_chart(result), sizing_mode="stretch_width"),
            pn.Row(pn.Spacer(sizing_mode="stretch_width"), pn.Row(self._feature, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            pn.Row(pn.pane.HoloViews(_histogram(result.histograms["score"], "Score against training deciles"),
                                     sizing_mode="stretch_width"),
                   self._feature_plot, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    def _table(self, result) -> pn.widgets.Tabulator:
        table = pn.widgets.Tabulator(result.features, show_index=False, disabled=True, selectable=1,
                                     sizing_mode="stretch_width", height=420, layout="fit_columns",
                                     formatters={"psi": NumberFormatter(format="0.000", text_align="right")},
                                     titles={"feature": "Feature", "psi": "PSI", "status": "Status"})
        table.style.map(lambda s: f"color: {COLORS[s]}; background-color: {TINTS[s]}; font-weight: 600",
                        subset=["status"])
        table.on_click(lambda event: setattr(self._feature, "value", result.features.feature.iloc[event.row]))
        return table

    def _top_chart(self, result) -> pn.viewable.Viewable:
        top = result.features.dropna(subset=["psi"]).head(TOP).iloc[::-1]  # largest at the top once inverted
        bars = hv.Bars(top, "feature", ["psi", "status"]).opts(
            invert_axes=True, color=hv.dim("status").categorize(COLORS), tools=["hover"])
        # The watch line is always drawn, so small PSIs read as small rather than filling the chart.
        lines = [hv.HLine(monitoring.WATCH).opts(color=COLORS["watch"], line_dash="dashed", line_width=1.5)]
        if top.psi.max() > monitoring.WATCH:
            lines.append(hv.HLine(monitoring.SHIFT).opts(color=COLORS["shift"], line_dash="dashed", line_width=1.5))
        plot = hv.Overlay([bars, *lines]).opts(responsive=True, height=420, title=f"Largest PSIs (top {len(top)})",
                                                xlabel="", ylabel="PSI", shared_axes=False)
        return pn.pane.HoloViews(plot, sizing_mode="stretch_width")

    def _feature_histogram(self, name: str, result) -> pn.viewable.Viewable:
        if result is None or name not in result.histograms:
            return pn.pane.Markdown("")
        psi = result.features.set_index("feature").psi.get(name)
        value = f"{psi:.3f}" if monitoring.status(psi) != "n/a" else "n/a"
        plot = _histogram(result.histograms[name], f"{name} against training deciles (PSI {value})")
        return pn.pane.HoloViews(plot, sizing_mode="stretch_width")

    def _latency(self, *_) -> pn.viewable.Viewable:
        summary = self.data_store.app.metrics.percentiles()
        if not summary:
            return pn.pane.Alert("No API requests served by this server yet. Percentiles appear here once "
                                 "clients call /api/v1/.", alert_type="light")
        frame = pd.DataFrame([{"route": route, **values} for route, values in summary.items()])
        ms = NumberFormatter(format="0.0", text_align="right")
        return pn.Column(
            pn.widgets.Tabulator(frame, show_index=False, disabled=True, sizing_mode="stretch_width",
                                 layout="fit_columns", formatters={"p50": ms, "p95": ms, "p99": ms},
                                 titles={"route": "Route", "count": "Requests", "p50": "p50 (ms)",
                                         "p95": "p95 (ms)", "p99": "p99 (ms)"}),
            pn.pane.Markdown(f"<small>Over each route's last {LATENCY_WINDOW:,} requests since the server "
                             "started; Refresh to update.</small>", margin=(0, 10)),
            sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        self._shown = True
        self._start()
        if self._layout is not None:  # the app asks again on every visit; a new layout would re-query per visit
            return self._layout
        self._layout = pn.Column(
            pn.Row(pn.pane.Markdown("## Monitoring"), pn.HSpacer(), self._period_picker()),
            pn.panel(pn.bind(self._volumes, self.param.drawn)),
            pn.pane.Markdown("### Drift against training"),
            pn.panel(pn.bind(self._drift, self.param.result, self.param.computing, self.param.error)),
            pn.pane.Markdown("### REST API latency"),
            pn.panel(pn.bind(self._latency, self.param.drawn)),
            sizing_mode="stretch_width",
        )
        return self._layout
