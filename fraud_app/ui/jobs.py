"""The process's background job (training, importing, re-scoring) as each session sees it.

The job belongs to the application object, not to a session. Sessions poll it with a periodic callback,
so no thread ever touches a Bokeh document."""
from __future__ import annotations

import time

import panel as pn
import param
from panel.viewable import Viewer

from ..jobs import Job
from .datastore import DataStore
from .safe import plain


class JobStatus(Viewer):
    """The process's job as a progress bar and a line of text, in this session. When the job ends, the
    session's DataStore refreshes so every view shows its result."""

    data_store = param.ClassSelector(class_=DataStore)
    message = param.String(default="")
    ended = param.ClassSelector(class_=Job, default=None, doc="The last job seen to end, set before the refresh.")

    def __init__(self, **params):
        super().__init__(**params)
        self._bar = pn.indicators.Progress(value=0, max=100, sizing_mode="stretch_width", visible=False,
                                           bar_color="primary")
        self._jobs = self.data_store.app.jobs
        self._poll = None
        current = self._jobs.current
        # A job that ended before this session opened is old news; one still running is followed to its end.
        self._seen: Job | None = current if current is not None and not current.running else None
        if current is not None and current.running:
            self.watch()

    @property
    def busy(self) -> bool:
        return self._jobs.busy

    def watch(self) -> None:
        """Follow the current job until it ends."""
        if self._poll is None and pn.state.curdoc is not None:
            self._poll = pn.state.add_periodic_callback(self.update, period=400)
        self.update()

    def update(self) -> None:
        job = self._jobs.current
        if job is None:
            return
        # Read once: the job may end while the bar is drawn, and the poll stops only after a reading that saw
        # it ended, which hides the bar.
        running = job.running
        self._bar.visible, self._bar.value = running, int(100 * job.fraction)
        if running:
            self.message = (f"{plain(job.title)} ({plain(job.actor)}): {plain(job.message)} · "
                            f"{time.monotonic() - job.started:.0f} s")
            return
        if self._poll is not None:
            self._poll.stop()
            self._poll = None
        if job is not self._seen:
            self._seen = job
            took = f"{job.finished - job.started:.0f} s"
            self.message = (f"**{plain(job.title)} failed** after {took}: {plain(job.error)}" if job.error
                            else f"{plain(job.title)} finished in {took}: {plain(job.message)}")
            self.ended = job
            self.data_store.refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._bar, pn.pane.Markdown(self.param.message, margin=(0, 10)),
                         sizing_mode="stretch_width")
