"""Long work (training, importing, re-scoring) on a background thread, one job at a time per process.

The application object owns one Jobs: every UI session sees the same job's progress, a second analyst
cannot start a rival training, and closing a browser tab does not lose the work."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]


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


class Jobs:
    """The process's one background job slot."""

    def __init__(self):
        self._lock = threading.Lock()
        self._current: Job | None = None

    @property
    def current(self) -> Job | None:
        """The running job, or the last one to finish."""
        return self._current

    @property
    def busy(self) -> bool:
        job = self._current
        return job is not None and job.running

    def start(self, title: str, actor: str, work: Callable[[Progress], Any]) -> Job:
        """Run work(progress) on a thread. Raises BusyError if a job is running."""
        with self._lock:
            if self.busy:
                raise BusyError(f"{self._current.title} (started by {self._current.actor}) is still running")
            job = self._current = Job(title, actor)

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

    def wait(self, timeout: float | None = None) -> Job | None:
        """Block until the current job finishes (tests, benchmarks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.busy:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self._current.title} still running")
            time.sleep(0.05)
        return self._current
