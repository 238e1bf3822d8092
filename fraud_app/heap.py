"""Keeping Python's garbage collector from stopping the server.

A full collection walks every object the process holds, and each analyst's page holds about 70,000 (its
views' models and widgets). With ten analysts one took a second, and the event loop, which serves every page
and every API request, stood still meanwhile. Objects that are built to live on (the app at start, a page, a
view) are moved out of the collector's sight as soon as they are built (gc.freeze), so it walks only what is
new. A page's objects become garbage when the page closes: a while after, they are brought back for one full
collection, at most once a minute.
"""
from __future__ import annotations

import gc
import logging
import threading
import time

log = logging.getLogger(__name__)


class Heap:
    def __init__(self, sweep_after: float = 60.0):
        self.sweep_after = sweep_after
        self._due = False
        self._lock = threading.Lock()

    def settled(self) -> None:
        """What is alive now lives on (the app has started, a page or a view was just built): out of the
        collector's sight. The young generations are collected first, so little garbage goes with it."""
        gc.collect(1)
        gc.freeze()

    def page_closed(self, loop) -> None:
        """A page closed: its objects are garbage, and a full collection on `loop` will free them, once
        sweep_after has passed (pages closing together share one)."""
        with self._lock:
            if self._due:
                return
            self._due = True
        log.info("a page closed: its objects are freed in %.0f s", self.sweep_after)
        loop.call_later(self.sweep_after, self.sweep)

    def sweep(self) -> None:
        """One full collection of everything, then all that remains is out of sight again."""
        with self._lock:
            self._due = False
        started = time.perf_counter()
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        log.info("freed %d objects of closed pages in %.0f ms", freed, 1000 * (time.perf_counter() - started))
