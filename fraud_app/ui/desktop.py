"""What the desktop app adds to the page: the first-launch set-up page, and a Quit button."""
from __future__ import annotations

import time
from typing import Callable

import panel as pn
import param
from panel.custom import JSComponent
from panel.viewable import Viewer

from ..jobs import Jobs
from .safe import plain


class Reload(JSComponent):
    """Loads the page again, without its query string, when `ready` turns true."""

    ready = param.Boolean(default=False)

    _esm = """
export function render({model}) {
  const go = () => { if (model.ready) window.location.replace(window.location.pathname) }
  model.on("ready", go)
  go()
}
"""


class SetupPage(Viewer):
    """The set-up job's progress (demo data, first model, scoring); the app itself once it is done."""

    jobs = param.ClassSelector(class_=Jobs)

    def __init__(self, **params):
        super().__init__(**params)
        self._bar = pn.indicators.Progress(value=0, max=100, width=480, bar_color="primary")
        self._line = pn.pane.Markdown("Starting…", width=480)
        self._reload = Reload(visible=False)
        self._poll = pn.state.add_periodic_callback(self.update, period=300)
        self.update()

    def update(self) -> None:
        job = self.jobs.current
        if job is None:
            return
        self._bar.value = int(100 * job.fraction)
        took = f"{time.monotonic() - job.started:.0f} s"
        if job.error:
            self._line.object = f"**Set-up failed** after {took}: {plain(job.error)}. The log file has the details."
            self._poll.stop()
        elif job.running:
            self._line.object = f"{plain(job.message)} · {took}"
        else:
            self._line.object = "Ready: opening the app…"
            self._poll.stop()
            self._reload.ready = True

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown("## Setting up fraud_app\nThe first start builds a demo: simulated card payments, a "
                             "first model trained on them, and their scores. This takes a minute or two; the app "
                             "opens here when it is ready."),
            self._bar, self._line, self._reload, margin=(40, 60))


def quit_button(stop: Callable[[], None]) -> pn.Column:
    """A sidebar button that stops the desktop app; the page then says it has stopped."""
    button = pn.widgets.Button(name="Quit fraud_app", button_type="light", sizing_mode="stretch_width",
                               description="Stop the app and its server; your work is saved")
    said = pn.pane.Markdown(visible=False, margin=(0, 10))

    def clicked(event) -> None:
        button.disabled = True
        said.object, said.visible = "**fraud_app has stopped.** You can close this tab.", True
        stop()

    button.on_click(clicked)
    return pn.Column(button, said, sizing_mode="stretch_width")
