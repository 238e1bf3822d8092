"""Model and retraining: the versions with their test metrics, PR and ROC curves for one version or two
side by side, promote and rollback with a confirmation, training, and the threshold simulator."""
from __future__ import annotations

from functools import partial

import pandas as pd
import panel as pn
import param

from ..access import Forbidden, name_of
from .. import backtest, registry
from ..store import analytics
from .downloads import csv_download
from ..jobs import BusyError
from .jobs import JobStatus
from .model_charts import CurvesChart
from .retrain import TrainingPanel
from .safe import plain
from .tables import Table, fitted
from .thresholds import ThresholdPanel
from .view import View

NONE = "(none)"
NO_CURVES = "No test window with both fraud and genuine payments to draw curves on."
FORMATS = {"AUC": {"type": "money", "precision": 3}, "AP": {"type": "money", "precision": 3},
           "CP@100": {"type": "money", "precision": 3}, "alerts a day": {"type": "money", "precision": 1},
           "review at": {"type": "money", "precision": 4}, "decline at": {"type": "money", "precision": 4},
           "trained on": {"type": "textarea"}, "tested on": {"type": "textarea"}}  # the two spans wrap
# The short columns' widths (tables.fitted): the spans share the rest.
WIDTHS = {"version": 85, "status": 80, "created": 135, "AUC": 65, "AP": 65, "CP@100": 90, "alerts a day": 70,
          "review at": 80, "decline at": 80}
# metric: (label, format)
METRICS = {"auc_roc": ("AUC", "{:.3f}"), "average_precision": ("Average precision", "{:.3f}"),
           "card_precision_at_100": ("Card precision@100", "{:.3f}"),
           "recall_at_1pct_fpr": ("Recall at 1% false positives", "{:.3f}"),
           "precision_at_review": ("Precision at review", "{:.3f}"), "recall_at_review": ("Recall at review", "{:.3f}"),
           "alerts_per_day_at_review": ("Alerts a day", "{:,.1f}"),
           "caught_fraud_amount": ("Fraud amount caught", "{:,.0f}"),
           "missed_fraud_amount": ("Fraud amount missed", "{:,.0f}"),
           "transactions": ("Test transactions", "{:,.0f}"), "frauds": ("Test frauds", "{:,.0f}")}


def _fmt(value, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def _change(shown: str, other: str, fmt: str) -> str:
    """The first number less the second, as both are shown (so the row adds up as read), with its sign."""
    if not shown or not other:
        return ""
    change = float(shown.replace(",", "")) - float(other.replace(",", ""))
    return fmt.format(0.0) if change == 0 else fmt.replace("{:", "{:+").format(change)


def metrics_frame(rows: list[dict], chosen: list[str]) -> pd.DataFrame:
    """A row for each metric, a column for each chosen version, and for two, "A − B": A's value less B's."""
    metrics = {r["version"]: r["metrics"] or {} for r in rows}
    shown = {v: [_fmt(metrics.get(v, {}).get(k), fmt) for k, (_, fmt) in METRICS.items()] for v in chosen}
    frame = pd.DataFrame({"metric": [label for label, _ in METRICS.values()]} | shown)
    if len(chosen) == 2:
        a, b = chosen
        frame[f"{a} − {b}"] = [_change(x, y, fmt) for x, y, (_, fmt) in zip(shown[a], shown[b], METRICS.values())]
    return frame


def versions_frame(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in reversed(rows):  # newest first
        m, params, t = r["metrics"] or {}, r["params"] or {}, r["thresholds"] or {}
        out.append({"version": r["version"], "status": r["status"], "created": f"{r['created_at']:%Y-%m-%d %H:%M}",
                    "trained on": f"{r['train_start']} to {r['train_end']}",
                    "tested on": f"{params.get('test_start', '?')} to {params.get('test_end', '?')}",
                    "AUC": m.get("auc_roc"), "AP": m.get("average_precision"),
                    "CP@100": m.get("card_precision_at_100"), "alerts a day": m.get("alerts_per_day_at_review"),
                    "review at": t.get("review"), "decline at": t.get("decline")})
    return pd.DataFrame(out)


class ModelView(View):
    follows = ("version",)
    version = param.Selector(default=None, objects=[], doc="The version to inspect, promote or tune.")
    compare = param.Selector(default=NONE, objects=[NONE], doc="A second version to compare with.")
    message = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self.status = JobStatus(data_store=self.data_store)
        self.training = TrainingPanel(data_store=self.data_store, status=self.status)
        # The version the views show is most often the one this view picks: the simulator reads its test window
        # alongside this view's own queries rather than after them.
        self.thresholds = ThresholdPanel(data_store=self.data_store, version=self.data_store.model_version)
        self._versions = Table(show_index=False, disabled=True, sizing_mode="stretch_width", max_height=240,
                               formatters=FORMATS, **fitted(WIDTHS))
        self._metrics = Table(show_index=False, disabled=True, width=560,
                              configuration={"columnDefaults": {"hozAlign": "right"}})
        self._curves = CurvesChart()
        self._plots = pn.Row(pn.pane.Bokeh(self._curves.pr, sizing_mode="stretch_width"),
                             pn.pane.Bokeh(self._curves.roc, sizing_mode="stretch_width"),
                             sizing_mode="stretch_width", visible=False)
        self._no_curves = pn.pane.Alert(NO_CURVES, alert_type="info", visible=False)
        self._confirm = pn.Column(visible=False, sizing_mode="stretch_width")
        self._pick: str | None = None  # a version to choose once the versions are read again
        self._showing = False
        self.param.watch(self._load, ["drawn", "version", "compare"])
        self.param.watch(lambda e: setattr(self.thresholds, "version", e.new), "version")
        self.training.param.watch(self._trained, "trained")
        self._load()

    def _trained(self, event) -> None:
        self._pick = event.new  # chosen when the refresh the training's end brings reads the versions

    def _load(self, *_) -> None:
        if self._showing:  # the version and comparison just shown are what was read
            return
        self.later(partial(self._fetch, self._pick or self.version, self.compare, self._pick), self._show)

    def _fetch(self, version: str | None, compare: str, pick: str | None) -> dict:
        """The versions, and the metrics and curves of the chosen ones (in a worker thread)."""
        app = self.data_store.app
        rows = registry.versions(app.store)
        names = [r["version"] for r in rows]
        if version not in names:
            version = next((r["version"] for r in rows if r["status"] == "active"), names[-1] if names else None)
        compare = compare if compare in names else NONE
        chosen = list(dict.fromkeys(v for v in (version, compare) if v and v != NONE))
        curves, problems = {}, []
        for v in chosen:
            try:
                curves[v] = backtest.curves(app.backtest_scores(v))
            except registry.ModelError as exc:  # an old version whose file cannot score its test window
                problems.append(str(exc))
        return {"names": names, "version": version, "compare": compare, "pick": pick,
                "versions": versions_frame(rows), "metrics": metrics_frame(rows, chosen),
                "curves": CurvesChart.prepare(curves), "problems": problems}

    def _show(self, found: dict) -> None:
        self._showing = True
        try:
            self.param.version.objects, self.param.compare.objects = found["names"], [NONE] + found["names"]
            self.version, self.compare = found["version"], found["compare"]
        finally:
            self._showing = False
        if found["pick"] is not None and found["pick"] == self._pick:
            self._pick = None
        self._versions.refill(found["versions"])
        self._metrics.refill(found["metrics"])
        drawable = found["curves"]["drawable"]
        self._curves.show(found["curves"])
        self._plots.visible, self._no_curves.visible = drawable, not drawable or bool(found["problems"])
        self._no_curves.object = plain(" ".join(found["problems"])) or NO_CURVES

    # -- promote and rollback --------------------------------------------------------------------------------
    def _ask(self, question: str, action) -> None:
        yes = pn.widgets.Button(name="Yes, go ahead", button_type="danger", width=150)
        no = pn.widgets.Button(name="Cancel", button_type="light", width=100)

        def go(*_):
            self._confirm.visible = False
            action()

        yes.on_click(go)
        no.on_click(lambda *_: setattr(self._confirm, "visible", False))
        self._confirm.objects = [pn.pane.Alert(question, alert_type="warning", margin=(5, 10)), pn.Row(yes, no)]
        self._confirm.visible = True

    def _promote(self) -> None:
        ds, version = self.data_store, self.version
        try:
            old = ds.app.promote(version, ds.actor)
        except (registry.ModelError, Forbidden) as exc:
            self.message = f"Cannot promote: {exc}"
            return
        if old == version:
            self.message = f"{version} is already in use; nothing changed."
            return
        self.message = f"{version} is in use (was {old or 'none'}); live scoring switched."
        self._rescore(version)
        ds.refresh()

    def _rollback(self) -> None:
        ds = self.data_store
        try:
            version = ds.app.rollback(ds.actor)
        except (registry.ModelError, Forbidden) as exc:
            self.message = f"Cannot roll back: {exc}"
            return
        self.message = f"Rolled back: {version} is in use again; live scoring switched."
        self._rescore(version)
        ds.refresh()

    def _rescore(self, version: str) -> None:
        """The views show the version in use once every stored transaction has its score."""
        ds = self.data_store
        if analytics.has_scores(ds.store, version):
            return
        who = ds.actor
        try:
            ds.app.jobs.start(f"Scoring stored transactions with {version}", name_of(who),
                              lambda progress: ds.app.score_stored(actor=who, progress=progress))
        except BusyError as exc:
            self.message += f" Scoring waits: {exc}."
            return
        self.status.watch()

    def __panel__(self) -> pn.viewable.Viewable:
        promote = pn.widgets.Button(name="Promote…", button_type="primary", width=120, align="end")
        rollback = pn.widgets.Button(name="Roll back…", button_type="light", width=120, align="end")
        promote.on_click(lambda *_: self._ask(
            f"Put **{plain(self.version)}** in use for all new scores? The current version is kept for rollback.",
            self._promote))
        rollback.on_click(lambda *_: self._ask("Go back to the version used before the current one?", self._rollback))
        return pn.Column(
            pn.Row(pn.pane.Markdown("## Model and retraining"), pn.HSpacer(),
                   csv_download(lambda: self._versions.value, "model_versions.csv")),
            self.status,
            self._versions.slot,
            pn.Row(pn.widgets.Select.from_param(self.param.version, name="Version", width=140),
                   pn.widgets.Select.from_param(self.param.compare, name="Compare with", width=140),
                   promote, rollback),
            self._confirm,
            pn.pane.Markdown(pn.bind(plain, self.param.message)),  # error texts among them
            self._no_curves,
            self._plots,
            self._metrics.slot,
            pn.layout.Divider(),
            self.thresholds,
            pn.layout.Divider(),
            self.training,
            sizing_mode="stretch_width",
        )
