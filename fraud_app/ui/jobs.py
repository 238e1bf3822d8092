"""Long work (training, re-scoring) on a background thread, one job per server process.

The job lives at module level, not in a session: every open session sees its progress, a second analyst
cannot start a rival training, and closing the browser tab does not lose the work. Sessions poll it with
a periodic callback, so no thread ever touches a Bokeh document."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import panel as pn
import param
from panel.viewable import Viewer

from .datastore import DataStore
from .safe import plain

log = logging.getLogger(__name__)


class BusyError(RuntimeError):
    """Another job is still running."""


@dataclass
class Job:
    title: str
    actor: str
    fraction: float = 0.0
    message: str = "starting"
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    def progress(self, fraction: float, message: str) -> None:
        self.fraction, self.message = max(self.fraction, min(fraction, 1.0)), message


_lock = threading.Lock()
_current: Job | None = None


def current() -> Job | None:
    """The running job, or the last one to finish."""
    return _current


def start(title: str, actor: str, work: Callable[[Callable[[float, str], None]], Any]) -> Job:
    """Run work(progress) on a thread. Raises BusyError if a job is running."""
    global _current
    with _lock:
        if _current is not None and _current.running:
            raise BusyError(f"{_current.title} (started by {_current.actor}) is still running")
        job = _current = Job(title, actor)

    def run() -> None:
        try:
            job.result = work(job.progress)
            job.progress(1.0, job.message)
        except Exception as exc:  # shown to the analyst; the log keeps the traceback
            log.exception("%s failed", title)
            job.error = str(exc) or type(exc).__name__
        finally:
            job.finished = time.monotonic()

    threading.Thread(target=run, name=f"job: {title}", daemon=True).start()
    return job


def wait(timeout: float | None = None) -> Job | None:
    """Block until the current job finishes (tests, benchmarks)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while _current is not None and _current.running:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{_current.title} still running")
        time.sleep(0.05)
    return _current


class JobStatus(Viewer):
    """The process's job as a progress bar and a line of text, in this session. When the job ends, the
    session's DataStore refreshes so every view shows its result."""

    data_store = param.ClassSelector(class_=DataStore)
    message = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self._bar = pn.indicators.Progress(value=0, max=100, sizing_mode="stretch_width", visible=False,
                                           bar_color="primary")
        self._poll = None
        self._seen: Job | None = current()  # a job that ended before this session opened is old news
        if self._seen is not None and self._seen.running:
            self.watch()

    @property
    def busy(self) -> bool:
        job = current()
        return job is not None and job.running

    def watch(self) -> None:
        """Follow the current job until it ends."""
        if self._poll is None and pn.state.curdoc is not None:
            self._poll = pn.state.add_periodic_callback(self.update, period=400)
        self.update()

    def update(self) -> None:
        job = current()
        if job is None:
            return
        self._bar.visible, self._bar.value = job.running, int(100 * job.fraction)
        if job.running:
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
            self.data_store.refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._bar, pn.pane.Markdown(self.param.message, margin=(0, 10)),
                         sizing_mode="stretch_width")
