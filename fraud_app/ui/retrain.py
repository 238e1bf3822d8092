"""Train a new model version on a chosen window, on a background thread with a progress bar."""
from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from ..access import Forbidden, name_of
from .. import training
from .datastore import DataStore
from ..jobs import BusyError
from .jobs import JobStatus
from .safe import plain


class TrainingPanel(Viewer):
    data_store = param.ClassSelector(class_=DataStore)
    status = param.ClassSelector(class_=JobStatus)
    window = param.DateRange(default=None, doc="The days to train on, both inclusive.")
    delay_days = param.Integer(default=7, bounds=(0, 60), doc="Days between training and test, as labels lag.")
    test_days = param.Integer(default=7, bounds=(1, 60), doc="Days to test the new version on.")
    error = param.String(default="")
    trained = param.String(default=None, allow_None=True, doc="The version a training started here made.")

    def __init__(self, **params):
        super().__init__(**params)
        try:
            w = training.plan(self.data_store.store, None, None, self.delay_days, self.test_days)
            self.window = (w.train_start, w.train_end)
        except training.TrainingError as exc:
            self.error = str(exc)
        self._button = pn.widgets.Button(name="Train new version", button_type="primary", width=180,
                                         disabled=self.status.busy, align="end")
        self._button.on_click(self._train)
        self.status.param.watch(lambda *_: setattr(self._button, "disabled", self.status.busy), "message")
        self._job = None
        self.status.param.watch(self._ended, "ended")

    def _train(self, *_) -> None:
        app, store, who = self.data_store.app, self.data_store.store, self.data_store.actor
        start_day, end_day = self.window or (None, None)
        try:
            app.allow(who, "train")  # refused now, in words, rather than as a failed job
            w = training.plan(store, start_day, end_day, self.delay_days, self.test_days)
            last = self.data_store.bounds[1]
            if w.test_end > last:
                raise training.TrainingError(f"the test window would end on {w.test_end}, after the last stored "
                                             f"day ({last}): end training earlier or test on fewer days")

            def work(progress):
                return app.train(train_start=w.train_start, train_end=w.train_end, delay_days=self.delay_days,
                                 test_days=self.test_days, actor=who, progress=progress)

            self._job = app.jobs.start(f"Training on {w.train_start} to {w.train_end}", name_of(who), work)
        except (training.TrainingError, BusyError, Forbidden) as exc:
            self.error = f"Cannot train: {exc}"
            return
        self.error = ""
        self._button.disabled = True
        self.status.watch()

    def _ended(self, event) -> None:
        job = event.new
        if job is self._job and job.error is None:
            self.trained = job.result["model_version"]

    def __panel__(self) -> pn.viewable.Viewable:
        bounds = self.data_store.bounds or (None, None)
        picker = pn.widgets.DateRangePicker.from_param(self.param.window, name="Training window", width=250,
                                                       start=bounds[0], end=bounds[1])
        return pn.Column(
            "#### Train a new version",
            pn.Row(picker, pn.widgets.IntInput.from_param(self.param.delay_days, name="Gap before test (days)",
                                                         width=150),
                   pn.widgets.IntInput.from_param(self.param.test_days, name="Test days", width=110),
                   self._button),
            pn.pane.Markdown(pn.bind(lambda e: f"<span style='color:#c62828'>{plain(e)}</span>" if e else "",
                                     self.param.error)),
            pn.pane.Markdown("The new version is trained and tested, not put in use: compare it above, then promote "
                             "it.", styles={"color": "#555"}),
            sizing_mode="stretch_width",
        )
