"""Monitoring: is the model still seeing the payments it was trained on, and is the API keeping up? Daily
volumes and alert rate, drift (PSI) of the score and of every feature against training, REST latency.

Everything is worked out in a worker thread (View.later); the session's event loop only puts it on screen."""
from __future__ import annotations

import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from .. import monitoring
from ..metrics import LATENCY_WINDOW
from .downloads import csv_download
from .monitor_charts import COLORS, DailyCharts, Histogram, PsiChart, words
from .safe import plain
from .tables import Table
from .view import View

TINTS = {"stable": "#e8f5e9", "watch": "#fff3e0", "shift": "#ffebee", "n/a": "#eceff1"}
CARD = dict(font_size="24pt", title_size="10pt")
NO_SCORES = "No scores yet: train a model and score the data."
NO_MODEL = "No model in use yet: train one to compare recent payments with its training."
NO_REQUESTS = ("No API requests served by this server yet. Percentiles appear here once clients call /api/v1/.")
LATENCY = {"route": "Route", "count": "Requests", "p50": "p50 (ms)", "p95": "p95 (ms)", "p99": "p99 (ms)"}
# Bokeh opens the calendar (308 px wide) at the input's left edge, whatever room the page has to its right: an
# input at least as wide keeps it under the input, so a picker at the page's right edge does not push it off.
PICKER_WIDTH = 320


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


def _about(result: monitoring.Drift) -> str:
    ref = result.reference
    sampled = (f"features from {len(ref.weeks)} weeks spread over it ({ref.rows:,} payments)"
               if len(ref.weeks) > 1 else f"features of all {ref.rows:,} payments")
    return (f"Model **{plain(result.version)}**, trained on {_days(*ref.window)}: {sampled}, scores of all "
            f"{ref.score_rows:,}. Compared with the 7 days {_days(*result.now)} ({result.now_rows:,} payments), "
            "the last of the period.")


def _psi_text(psi: float) -> str:
    return f"{psi:.3f}" if monitoring.status(psi) != "n/a" else "n/a"


def drift_table(result: monitoring.Drift) -> pd.DataFrame:
    """Every feature's PSI, largest first, as the page shows it and its CSV holds it: in words."""
    return pd.DataFrame({"Feature": [words(f) for f in result.features["feature"]],
                         "PSI": result.features["psi"].to_numpy(), "Status": result.features["status"].to_numpy()})


def latency_table(summary: dict[str, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"route": route, **values} for route, values in summary.items()],
                        columns=list(LATENCY)).rename(columns=LATENCY)


def prepare_drift(result: monitoring.Drift) -> dict:
    """All a drift result puts on screen, every feature's histogram included, so picking one only shows it."""
    psi = result.features.set_index("feature")["psi"]
    return {"result": result, "about": _about(result), "table": drift_table(result),
            "counts": result.features["status"].value_counts().to_dict(), "psi": PsiChart.prepare(result.features),
            "score": Histogram.prepare(result.histograms["score"], f"Score (PSI {_psi_text(result.score_psi)})"),
            "features": {name: Histogram.prepare(result.histograms[name],
                                                 f"{words(name)} (PSI {_psi_text(psi.get(name, float('nan')))})")
                         for name in result.features["feature"] if name in result.histograms}}


class MonitoringView(View):
    result = param.Parameter(default=None, doc="The drift on show (monitoring.Drift), once computed.")
    computing = param.Boolean(default=False)
    error = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self._job: monitoring.Job | None = None
        self._job_for: tuple | None = None  # the (model version, last day) the job computes
        self._poller = None
        self._layout: pn.Column | None = None
        self._shown = False
        self._histograms: dict[str, dict] = {}
        self._table_frame = pd.DataFrame(columns=["Feature", "PSI", "Status"])
        self._names: list[str] = []  # the table's features, row by row
        self._daily, self._psi = DailyCharts(), PsiChart()
        self._score_chart, self._feature_chart = Histogram(), Histogram()
        # Sections are made once and shown or hidden; nothing shows before its first data (no empty boxes).
        self._volumes_notice = pn.pane.Alert(NO_SCORES, alert_type="info", visible=False)
        self._volumes = pn.Row(pn.pane.Bokeh(self._daily.volume, sizing_mode="stretch_width"),
                               pn.pane.Bokeh(self._daily.rate, sizing_mode="stretch_width"),
                               visible=False, sizing_mode="stretch_width")
        self._progress = pn.indicators.Progress(value=0, max=100, width=360, bar_color="primary")
        self._message = pn.pane.Markdown("", margin=(0, 10))
        self._computing = pn.Column(self._message, self._progress, pn.pane.Markdown(
            "<small>Comparing recent payments with the model's training takes a few seconds the first time; "
            "the rest of the app stays usable meanwhile.</small>", margin=(0, 10)), visible=False)
        self._drift_notice = pn.pane.Alert("", alert_type="info", visible=False)
        self._about = pn.pane.Markdown("", margin=(0, 10))
        self._cards = {key: pn.indicators.Number(label=key, value=0, format="{value:,}", **CARD)
                       for key in ("score", "stable", "watch", "shift")}
        self._feature = pn.widgets.Select(label="Feature", options={}, width=340)
        self._feature.param.watch(self._pick, "value")
        self._table = Table(show_index=False, disabled=True, selectable=1, sizing_mode="stretch_width",
                            height=PsiChart.HEIGHT, layout="fit_columns", widths={"PSI": 80, "Status": 90},
                            formatters={"PSI": NumberFormatter(format="0.000", text_align="right")})
        self._table.style_rows(self._status_style)
        self._table.on_click(lambda event: setattr(self._feature, "value", self._names[event.row]))
        self._drift = pn.Column(
            self._about, pn.FlexBox(*self._cards.values(), gap="28px"), pn.pane.Markdown(LEGEND, margin=(0, 10)),
            pn.Row(pn.Column(self._table.slot, csv_download(lambda: self._table_frame, "feature_drift.csv",
                                                            width=130), sizing_mode="stretch_width"),
                   pn.pane.Bokeh(self._psi.figure, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            pn.Row(pn.Spacer(sizing_mode="stretch_width"), pn.Row(self._feature, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            pn.Row(pn.pane.Bokeh(self._score_chart.figure, sizing_mode="stretch_width"),
                   pn.pane.Bokeh(self._feature_chart.figure, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            visible=False, sizing_mode="stretch_width")
        self._latency_notice = pn.pane.Alert(NO_REQUESTS, alert_type="light", visible=False)
        ms = NumberFormatter(format="0.0", text_align="right")
        self._latency_table = Table(show_index=False, disabled=True, sizing_mode="stretch_width", layout="fit_columns",
                                    formatters={LATENCY[p]: ms for p in ("p50", "p95", "p99")})
        self._latency = pn.Column(self._latency_table.slot, pn.pane.Markdown(
            f"<small>Over each route's last {LATENCY_WINDOW:,} requests since the server started; Refresh to "
            "update.</small>", margin=(0, 10)), visible=False, sizing_mode="stretch_width")
        self.param.watch(self._load, "drawn")

    @staticmethod
    def _status_style(frame: pd.DataFrame) -> pd.DataFrame:
        styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
        styles["Status"] = [f"color: {COLORS[s]}; background-color: {TINTS[s]}; font-weight: 600"
                            for s in frame["Status"]]
        return styles

    # -- loading: queries in a worker thread, then onto the page ---------------------------------------------
    def _load(self, *_) -> None:
        if self._shown:  # views are built for every session; compute only for those who look
            self.later(self._fetch, self._show)

    def _fetch(self, finished: tuple | None = None) -> dict:
        return {"daily": self._daily_part(), "latency": self._latency_part(), "drift": self._drift_part(finished)}

    def _latency_part(self) -> pd.DataFrame:
        return latency_table(self.data_store.app.metrics.percentiles())

    def _daily_part(self) -> dict | None:
        scored = self.data_store.scored_period()
        if scored is None or scored.daily.empty:
            return None
        return DailyCharts.prepare(scored.daily)

    def _drift_part(self, finished: tuple | None) -> dict:
        """The drift job for the period's last day, and what it found once done. `finished`: the job a poll saw end,
        with what it was for; a failed one is shown as it ended, not started again (a redraw retries it)."""
        ds = self.data_store
        if ds.model_version is None or ds.period is None:
            return {"job": None}
        wanted = (ds.model_version, ds.period[1])
        if finished is not None and finished[1] == wanted and finished[0].future.exception() is not None:
            job = finished[0]
        else:  # the same job while the data it reads is the same (sessions share it)
            job = ds.app.drift_job(*wanted)
        part = {"job": job, "for": wanted}
        if not job.future.done():
            return part
        try:
            result = job.future.result()
        except Exception as exc:  # the log has its traceback (monitoring.DriftJobs)
            return part | {"error": f"Drift could not be computed: {exc}"}
        return part | prepare_drift(result)

    def _show(self, found: dict) -> None:
        daily = found["daily"]
        self._volumes_notice.visible, self._volumes.visible = daily is None, daily is not None
        if daily is not None:
            self._daily.show(daily)
        latency = found["latency"]
        self._latency_notice.visible, self._latency.visible = latency.empty, not latency.empty
        if not latency.empty:
            self._latency_table.value = latency
        self._show_drift(found["drift"])

    def _show_drift(self, part: dict) -> None:
        job = part["job"]
        self._job, self._job_for = job, part.get("for")
        running = job is not None and "result" not in part and "error" not in part
        if not running and self._poller is not None and self._poller.running:
            self._poller.stop()
        self._computing.visible = running
        self._drift.visible = "result" in part
        self._drift_notice.visible = job is None or "error" in part
        if job is None:
            self._drift_notice.param.update(object=NO_MODEL, alert_type="info")
            self.result, self.computing, self.error = None, False, ""
        elif "error" in part:
            self._drift_notice.param.update(object=plain(part["error"]), alert_type="danger")
            self.computing, self.error = False, part["error"]
        elif running:
            self.computing, self.error = True, ""
            self._progressed(job)
            if self._poller is None or not self._poller.running:
                self._poller = pn.state.add_periodic_callback(self._poll, period=400)
        else:
            self._show_result(part)

    def _show_result(self, part: dict) -> None:
        result = part["result"]
        self._about.object = part["about"]
        score_status = monitoring.status(result.score_psi)
        self._cards["score"].param.update(label=f"Score PSI: {score_status}", value=result.score_psi,
                                          format="{value:.3f}" if score_status != "n/a" else "n/a",
                                          default_color=COLORS[score_status])
        for label in ("stable", "watch", "shift"):
            count = int(part["counts"].get(label, 0))
            self._cards[label].param.update(label=f"Features {label}", value=count,
                                            default_color=COLORS[label] if count else "#37474f")
        self._psi.show(part["psi"])
        self._score_chart.show(part["score"])
        self._histograms, self._names = part["features"], result.features["feature"].tolist()
        self._table_frame = part["table"]
        self._table.value = part["table"]
        picked = self._feature.value
        self._feature.options = {words(name): name for name in self._names}
        if picked not in self._names or self.result is None:
            picked = self._names[0]
        if self._feature.value == picked:
            self._pick()
        else:
            self._feature.value = picked  # shown by _pick
        self.result, self.computing, self.error = result, False, ""

    def _pick(self, *_) -> None:
        data = self._histograms.get(self._feature.value)
        self._feature_chart.figure.visible = data is not None
        if data is not None:
            self._feature_chart.show(data)

    def _poll(self) -> None:
        job = self._job
        if job is None or not self.computing:  # a tick already queued when the result came in
            return
        self._progressed(job)
        if job.future.done():
            if self._poller is not None:
                self._poller.stop()
            finished = (job, self._job_for)
            self.later(lambda: self._fetch(finished), self._show)

    def _progressed(self, job: monitoring.Job) -> None:
        self._progress.value = int(100 * job.fraction)
        self._message.object = f"{plain(job.message)}…"

    # -- the page --------------------------------------------------------------------------------------------
    def _period_picker(self) -> pn.widgets.DateRangePicker:
        bounds = self.data_store.bounds
        return pn.widgets.DateRangePicker.from_param(
            self.data_store.param.period, label="Period", width=PICKER_WIDTH, description=None,
            start=bounds[0] if bounds else None, end=bounds[1] if bounds else None)

    def __panel__(self) -> pn.viewable.Viewable:
        if self._layout is not None:  # the app asks again on every visit; a new layout would re-query per visit
            return self._layout
        self._shown = True
        self._layout = pn.Column(
            pn.Row(pn.pane.Markdown("## Monitoring"), pn.HSpacer(), self._period_picker()),
            self._volumes_notice, self._volumes,
            pn.pane.Markdown("### Drift against training"),
            self._drift_notice, self._computing, self._drift,
            pn.pane.Markdown("### REST API latency"),
            self._latency_notice, self._latency,
            sizing_mode="stretch_width",
        )
        self._load()
        return self._layout
