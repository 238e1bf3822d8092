"""Long work (training, importing, re-scoring) on a background thread, one job at a time per process.

The application object owns one Jobs: every UI session sees the same job's progress, a second analyst
cannot start a rival training, and closing a browser tab does not lose the work."""
from __future__ import annotations

import logging
import math
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
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
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    # A file the job writes for whoever started it, alone in a private folder made for it (tempfile.mkdtemp).
    # The folder goes when the file is fetched, two jobs later, or when the process closes.
    file: Path | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    def progress(self, fraction: float, message: str) -> None:
        self.fraction, self.message = max(self.fraction, min(fraction, 1.0)), message

    def describe(self) -> dict:
        """The job as the REST API and `fraud-app status` show it; a result only when it is a JSON object."""
        end = self.finished if self.finished is not None else time.monotonic()
        return {"id": self.id, "title": self.title, "actor": self.actor, "running": self.running,
                "fraction": self.fraction, "message": self.message, "error": self.error,
                "seconds": round(end - self.started, 1),
                "file": self.file is not None and not self.running and self.error is None,
                "result": _plain(self.result) if isinstance(self.result, dict) else None}

    def discard_file(self) -> None:
        if self.file is not None:
            shutil.rmtree(self.file.parent, ignore_errors=True)
            self.file = None


def _plain(value: Any) -> Any:
    """JSON has no NaN or infinity: null stands for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class Jobs:
    """The process's one background job slot."""

    def __init__(self):
        self._lock = threading.Lock()
        self._current: Job | None = None
        self._previous: Job | None = None  # kept so its starter can still read its result once the next starts

    @property
    def current(self) -> Job | None:
        """The running job, or the last one to finish."""
        return self._current

    @property
    def busy(self) -> bool:
        job = self._current
        return job is not None and job.running

    def start(self, title: str, actor: str, work: Callable[[Progress], Any], file: Path | None = None) -> Job:
        """Run work(progress) on a thread. Raises BusyError if a job is running. `file` is where the work writes
        a file for whoever started it (see Job.file)."""
        with self._lock:
            if self.busy:
                raise BusyError(f"{self._current.title} (started by {self._current.actor}) is still running")
            if self._previous is not None:
                self._previous.discard_file()
            self._previous, self._current = self._current, Job(title, actor, file=file)
            job = self._current

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

    def find(self, job_id: str) -> Job | None:
        """The running or last job, or the one before it, by id."""
        return next((job for job in (self._current, self._previous) if job is not None and job.id == job_id), None)

    def discard_files(self) -> None:
        for job in (self._current, self._previous):
            if job is not None:
                job.discard_file()

    def wait(self, timeout: float | None = None) -> Job | None:
        """Block until the current job finishes (tests, benchmarks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.busy:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self._current.title} still running")
            time.sleep(0.05)
        return self._current
