"""Model and retraining: the versions with their test metrics, PR and ROC curves for one version or two
side by side, promote and rollback with a confirmation, training, and the threshold simulator."""
from __future__ import annotations

import hvplot.pandas  # noqa: F401  (registers .hvplot)
import pandas as pd
import panel as pn
import param

from ..access import Forbidden, name_of
from .. import backtest, registry
from ..store import analytics
from .downloads import csv_download
from ..jobs import BusyError
from .jobs import JobStatus
from .retrain import TrainingPanel
from .safe import plain
from .thresholds import ThresholdPanel
from .view import View

NONE = "(none)"
FORMATS = {"AUC": {"type": "money", "precision": 3}, "AP": {"type": "money", "precision": 3},
           "CP@100": {"type": "money", "precision": 3}, "alerts a day": {"type": "money", "precision": 1},
           "review at": {"type": "money", "precision": 4}, "decline at": {"type": "money", "precision": 4}}
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
        self.thresholds = ThresholdPanel(data_store=self.data_store)
        self._table = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True, sizing_mode="stretch_width",
                                           max_height=240, formatters=FORMATS)
        self._confirm = pn.Column(visible=False, sizing_mode="stretch_width")
        self._sync()
        self.param.watch(self._sync, "drawn")
        self.param.watch(lambda e: setattr(self.thresholds, "version", e.new), "version")
        self.thresholds.version = self.version

    def _rows(self) -> list[dict]:
        return registry.versions(self.data_store.store)

    def _sync(self, *_) -> None:
        rows = self._rows()
        names = [r["version"] for r in rows]
        active = next((r["version"] for r in rows if r["status"] == "active"), names[-1] if names else None)
        self.param.version.objects, self.param.compare.objects = names, [NONE] + names
        if self.version not in names:
            self.version = active
        if self.compare not in self.param.compare.objects:
            self.compare = NONE
        self._table.value = versions_frame(rows)

    # -- curves ----------------------------------------------------------------------------------------------
    def _chosen(self) -> list[str]:
        return [v for v in (self.version, self.compare) if v and v != NONE]

    @param.depends("version", "compare")
    def _curves(self) -> pn.viewable.Viewable:
        pr, roc = [], []
        for v in dict.fromkeys(self._chosen()):
            p, r = backtest.curves(self.data_store.app.backtest_scores(v))
            pr.append(p.assign(version=v))
            roc.append(r[r.fpr > 0].assign(version=v))  # a log axis: the low false-positive end matters
        if not pr or all(f.empty for f in pr):
            return pn.pane.Alert("No test window with both fraud and genuine payments to draw curves on.",
                                 alert_type="info")
        style = dict(by="version", responsive=True, height=320, shared_axes=False, legend="bottom_left",
                     color=["#1f5fa8", "#ef6c00"])
        pr_plot = pd.concat(pr).hvplot.line(x="recall", y="precision", title="Precision and recall on the test window",
                                            ylim=(0, 1.02), **style)
        roc_plot = pd.concat(roc).hvplot.line(x="fpr", y="tpr", title="ROC on the test window", logx=True,
                                              xlabel="false positive rate (log scale)", ylabel="true positive rate",
                                              ylim=(0, 1.02), **style)
        return pn.Row(pn.pane.HoloViews(pr_plot, sizing_mode="stretch_width"),
                      pn.pane.HoloViews(roc_plot, sizing_mode="stretch_width"), sizing_mode="stretch_width")

    @param.depends("version", "compare")
    def _metrics(self) -> pn.viewable.Viewable:
        rows = {r["version"]: r["metrics"] or {} for r in self._rows()}
        chosen = list(dict.fromkeys(self._chosen()))
        values = {v: [rows.get(v, {}).get(k) for k in METRICS] for v in chosen}
        frame = pd.DataFrame({"metric": [label for label, _ in METRICS.values()]} |
                             {v: [_fmt(x, f) for x, (_, f) in zip(values[v], METRICS.values())] for v in chosen})
        if len(chosen) == 2:
            a, b = chosen
            frame["change"] = ["" if x is None or y is None else ("+" if y >= x else "") + _fmt(y - x, f)
                               for x, y, (_, f) in zip(values[a], values[b], METRICS.values())]
        return pn.widgets.Tabulator(frame, show_index=False, disabled=True, width=560,
                                    configuration={"columnDefaults": {"hozAlign": "right"}})

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
                   csv_download(lambda: self._table.value, "model_versions.csv")),
            self.status,
            self._table,
            pn.Row(pn.widgets.Select.from_param(self.param.version, name="Version", width=140),
                   pn.widgets.Select.from_param(self.param.compare, name="Compare with", width=140),
                   promote, rollback),
            self._confirm,
            pn.pane.Markdown(pn.bind(plain, self.param.message)),  # error texts among them
            self._curves,
            self._metrics,
            pn.layout.Divider(),
            self.thresholds,
            pn.layout.Divider(),
            self.training,
            sizing_mode="stretch_width",
        )
