"""Online backups under REST load: how long a backup takes, and how long writes pause while it runs.

The server is this process: the application object and `fraud-app serve`'s own Tornado server (UI and REST API,
through Panel), on the default database (1.75M payments, generated, a model trained and every payment scored,
as a first start does). A second process posts single transactions to POST /api/v1/score at a fixed 200
requests a second (open loop, as bench/api_load.py) and records when it sent each one and how long the answer
took. Meanwhile this process takes --backups backups through FraudApp.backup, 12 s apart.

Two views of the pause:
- the REST clients': the worst latency of a request in flight during a backup, against the median of the 5 s
  before it (the difference is the largest increase a client saw);
- the group writer's: each of its commits is timed (by wrapping its commit method in this process), and the
  longest during a backup is set against the longest in the 5 s before.

    python bench/backup.py [--home DIR] [--backups 3]

--home takes a ready home (data/fraud.duckdb and models/, as `make run` leaves the checkout), copied first;
without it the database is built in a temporary folder (about 2.5 minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(port: int, rate: float) -> None:
    """The client process: open-loop posts until its standard input closes; then prints
    [[sent (epoch s), latency (s)], ...] as JSON."""
    sys.path.insert(0, str(HERE))
    from api_load import Client, body

    stop, lock, out = threading.Event(), threading.Lock(), []
    counter = iter(range(10**9))
    start = time.perf_counter() + 0.2
    offset = time.time() - time.perf_counter()

    def worker() -> None:
        client = Client(port)
        while not stop.is_set():
            with lock:
                i = next(counter)
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter() + offset
            took = client.post(body(i, f"b{os.getpid()}"))
            with lock:
                out.append((sent, took))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    sys.stdin.read()
    stop.set()
    for t in threads:
        t.join()
    json.dump(out, sys.stdout)


def build(home: Path, env: dict) -> None:
    db = str(home / "data" / "fraud.duckdb")
    for args in (["generate"], ["train"], ["score"]):
        print(f"fraud-app {args[0]} ...", file=sys.stderr, flush=True)
        subprocess.run([str(BIN / "fraud-app"), "--db", db, *args], env=env, check=True, capture_output=True)


def serve(home: Path, backups: int, gap: float) -> tuple[list, list, list, dict]:
    """Serve, load from a second process, back up meanwhile. Returns the clients' [sent, latency] pairs, the
    backups' (start, end, folder) in epoch seconds, the writer's (start, seconds) commits, and a manifest."""
    import panel as pn

    from fraud_app import api
    from fraud_app.application import FraudApp
    from fraud_app.config import load_settings
    from fraud_app.ui.app import create_app

    settings = load_settings({"home": home, "rate_limit": 0.0, "backup_every_hours": 0.0})
    app = FraudApp(settings)
    app.start()
    writer, commits = app.live._writer, []
    timed = writer.commit

    def commit(batch):  # instrumentation for this benchmark only
        started = time.time()
        timed(batch)
        commits.append((started, time.time() - started))

    writer.commit = commit
    port = free_port()
    pn.extension("tabulator")
    server = pn.serve({"/": lambda: create_app(app)}, address="127.0.0.1", port=port, show=False, start=False,
                      extra_patterns=api.routes(app), verbose=False)
    server.start()
    client = subprocess.Popen([sys.executable, __file__, "--load", str(port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    taken, result = [], []

    def back_up() -> None:
        time.sleep(8)  # the load settles
        for k in range(backups):
            started = time.time()
            folder = app.backup("bench")
            taken.append((started, time.time(), folder))
            time.sleep(gap if k < backups - 1 else 4)
        result.append(json.loads(client.communicate("")[0]))  # closing its input stops the client
        server.io_loop.add_callback(server.io_loop.stop)

    threading.Thread(target=back_up, daemon=True).start()
    server.io_loop.start()
    server.stop()
    manifest = json.loads((taken[-1][2] / "manifest.json").read_text())
    app.close()
    return result[0], taken, commits, manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="a ready home to copy (data/fraud.duckdb and models/)")
    parser.add_argument("--backups", type=int, default=3)
    parser.add_argument("--gap", type=float, default=12.0, help="seconds between backups")
    parser.add_argument("--dump", type=Path, help="write the raw timings (requests, backups, commits) as JSON")
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.load:
        load(opts.load, 200.0)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUD_APP_")}
        env.update(FRAUD_APP_HOME=tmp, FRAUD_APP_ENV_FILE=os.path.join(tmp, "none.env"))
        os.environ.update({k: v for k, v in env.items() if k.startswith("FRAUD_APP_")})
        if opts.home:
            (home / "data").mkdir()
            shutil.copy(opts.home / "data" / "fraud.duckdb", home / "data" / "fraud.duckdb")
            shutil.copytree(opts.home / "models", home / "models")
        else:
            build(home, env)
        requests, taken, commits, manifest = serve(home, opts.backups, opts.gap)
    if opts.dump:
        opts.dump.write_text(json.dumps({"requests": requests, "backups": [t[:2] for t in taken], "commits": commits}))
    sent, latency = np.array(requests).T
    commit_start, commit_took = np.array(commits).T
    size = sum(f["bytes"] for f in manifest.get("files", {}).values())
    print(f"database: {manifest.get('rows', {}).get('transactions', 0):,} transactions; backup {size / 1e6:.1f} MB; "
          f"load: {len(sent) / (sent.max() - sent.min()):.0f} req/s\n")
    print("| backup | time s | REST p50 before ms | REST worst during ms | largest increase ms | "
          "writer's longest commit before / during ms |\n|---|---|---|---|---|---|")
    worst = []
    for k, (start, end, _) in enumerate(taken, 1):
        before = latency[(sent >= start - 5) & (sent < start)]
        during = latency[(sent < end) & (sent + latency > start)]  # in flight while it ran
        w_before = commit_took[(commit_start >= start - 5) & (commit_start < start)]
        w_during = commit_took[(commit_start < end) & (commit_start + commit_took > start)]
        p50, top = np.median(before) * 1000, during.max() * 1000
        worst.append((top - p50, w_during.max() * 1000))
        print(f"| {k} | {end - start:.2f} | {p50:.1f} | {top:.1f} | {top - p50:.1f} | "
              f"{w_before.max() * 1000:.1f} / {w_during.max() * 1000:.1f} |")
    print(f"\nlongest write pause: {max(w for w, _ in worst):.0f} ms as the REST clients saw it (worst latency "
          f"increase), {max(c for _, c in worst):.0f} ms for the group writer's longest commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
