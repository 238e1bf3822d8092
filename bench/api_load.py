"""REST scoring under load, from this (second) process over loopback, against `fraud-app serve` on a
database holding the default 1.75M simulated payments with a model in use:

1. single-transaction POST /api/v1/score at a fixed 200 requests a second (open loop);
2. the same at concurrency 32 (closed loop);
3. both again against bench/baseline_service.py (FastAPI + uvicorn, a DataFrame per request, the same
   model's LightGBM prediction, no history features, no database write).

Targets on the 2-core reference machine: at 200 req/s p50 <= 3 ms and p99 <= 15 ms; at concurrency 32
>= 500 req/s and at least the baseline's throughput.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, path: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.5)
    sys.exit("server did not come up")


class Client:
    """One keep-alive connection; returns the latency of each POST in seconds."""

    def __init__(self, port: int, token: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def post(self, body: bytes) -> float:
        started = time.perf_counter()
        self.conn.request("POST", "/api/v1/score", body, self.headers)
        response = self.conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return time.perf_counter() - started


def body(i: int, prefix: str) -> bytes:
    return json.dumps({"transaction_id": f"{prefix}-{i}", "timestamp": "2018-10-01T12:00:00",
                       "customer_id": f"C{i % 5000:05d}", "terminal_id": f"T{(i * 7) % 10000:05d}",
                       "amount": 5.0 + (i * 37) % 250, "channel": "online" if i % 9 == 0 else "pos"}).encode()


def fixed_rate(port: int, rate: float, seconds: float, prefix: str) -> tuple[np.ndarray, float]:
    """Open loop: request i is due at start + i/rate, whatever happened before."""
    n = int(rate * seconds)
    latencies = np.zeros(n)
    clients = threading.local()
    start = time.perf_counter() + 0.2

    def send(i: int) -> None:
        if not hasattr(clients, "c"):
            clients.c = Client(port)
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        latencies[i] = clients.c.post(body(i, prefix))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(n)))
    return latencies, n / (time.perf_counter() - start)


def closed_loop(port: int, concurrency: int, seconds: float, prefix: str) -> tuple[np.ndarray, float]:
    stop = time.perf_counter() + seconds

    def worker(k: int) -> list[float]:
        client, out, i = Client(port), [], 0
        while time.perf_counter() < stop:
            out.append(client.post(body(k * 1_000_000 + i, prefix)))
            i += 1
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = np.array([x for part in pool.map(worker, range(concurrency)) for x in part])
    return latencies, len(latencies) / (time.perf_counter() - started)


def report(name: str, latencies: np.ndarray, rate: float) -> str:
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) * 1000
    line = f"| {name} | {p50:.2f} | {p95:.2f} | {p99:.2f} | {rate:,.0f} |"
    print(line, flush=True)
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUD_APP_")}
        env.update(FRAUD_APP_HOME=tmp, FRAUD_APP_ENV_FILE=os.path.join(tmp, "none.env"), FRAUD_APP_RATE_LIMIT="0")
        db = str(Path(tmp) / "load.duckdb")
        for args in (["generate"], ["train"]):
            subprocess.run([str(BIN / "fraud-app"), "--db", db, *args], env=env, check=True, capture_output=True)
        ours_port, base_port = free_port(), free_port()
        ours = subprocess.Popen([str(BIN / "fraud-app"), "--db", db, "serve", "--port", str(ours_port), "--no-show"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        model_file = next(Path(tmp).glob("models/*/v1.lgbm.json"))
        base = subprocess.Popen([str(BIN / "uvicorn"), "baseline_service:app", "--port", str(base_port),
                                 "--log-level", "warning"], cwd=HERE, stdout=subprocess.DEVNULL,
                                env={**env, "FRAUD_APP_BASELINE_MODEL": str(model_file)})
        try:
            wait_up(ours_port, "/api/v1/health", ours)
            wait_up(base_port, "/docs", base)
            closed_loop(ours_port, 4, 2, "warm")  # first requests pay for imports and caches
            closed_loop(base_port, 4, 2, "warm")
            print("| load | p50 ms | p95 ms | p99 ms | req/s |\n|---|---|---|---|---|")
            at200 = fixed_rate(ours_port, 200, opts.seconds, "r")
            report("fraud_app, 200 req/s", *at200)
            c32 = closed_loop(ours_port, 32, opts.seconds, "c")
            report("fraud_app, concurrency 32", *c32)
            report("baseline, 200 req/s", *fixed_rate(base_port, 200, opts.seconds, "r"))
            b32 = closed_loop(base_port, 32, opts.seconds, "c")
            report("baseline, concurrency 32", *b32)
        finally:
            for proc in (ours, base):
                proc.terminate()
                proc.wait()
    p50, p99 = np.percentile(at200[0], [50, 99]) * 1000
    ok = p50 <= 3 and p99 <= 15 and c32[1] >= 500 and c32[1] >= b32[1]
    print(f"\ntargets (p50 <= 3 ms, p99 <= 15 ms at 200 req/s; >= 500 req/s and >= baseline at 32): "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
