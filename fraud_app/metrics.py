"""The process's metrics: Prometheus counters for /metrics, and exact recent latencies per route for the
Monitoring view (Prometheus' histogram buckets are too coarse for percentiles)."""
from __future__ import annotations

import asyncio
import threading
from collections import defaultdict, deque

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_WINDOW = 10_000  # recent requests per route behind the latency percentiles


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.scores_total = Counter("fraud_app_scores_total", "Transactions scored through the API",
                                    registry=self.registry)
        self.flagged_total = Counter("fraud_app_flagged_total", "Scored transactions flagged for review or decline",
                                     registry=self.registry)
        self.latency = Histogram("fraud_app_score_latency_seconds", "Time to score and store one request",
                                 buckets=(.001, .002, .003, .005, .0075, .01, .015, .025, .05, .1, .25, .5, 1),
                                 registry=self.registry)
        self.requests = Counter("fraud_app_http_requests_total", "API requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.loop_lag = Histogram(
            "fraud_app_event_loop_lag_seconds", "How late the server's event loop ran a timer due every 50 ms: "
            "how long it was busy with one thing, while every session and API request waited",
            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5), registry=self.registry)
        self._durations: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=LATENCY_WINDOW))
        self._lock = threading.Lock()

    def request_done(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        with self._lock:
            self._durations[route].append(seconds)

    def percentiles(self) -> dict[str, dict[str, float]]:
        """Per route, over its last LATENCY_WINDOW requests: count, p50, p95, p99 in ms. {} before the API has
        served anything in this process."""
        with self._lock:  # copy, so requests are not held up while the percentiles are worked out
            recent = {route: list(window) for route, window in self._durations.items() if window}
        out = {}
        for route in sorted(recent):
            p50, p95, p99 = np.percentile(1000 * np.array(recent[route]), [50, 95, 99])
            out[route] = {"count": len(recent[route]), "p50": float(p50), "p95": float(p95), "p99": float(p99)}
        return out

    async def watch_loop(self, every: float = 0.05) -> None:
        """Measures loop_lag for as long as the server's event loop runs (started by the server on it)."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + every
            await asyncio.sleep(every)
            self.loop_lag.observe(max(0.0, loop.time() - due))
