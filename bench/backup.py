"""Online backups under REST load: how long a backup takes, and how long writes pause while it runs.

The server is this process: the application object and `fraud-app serve`'s own Tornado server (UI and REST API,
through Panel), on the default database (1.75M payments, generated, a model trained and every payment scored,
as a first start does). A second process posts single transactions to POST /api/v1/score at a fixed 200
requests a second (open loop, as bench/api_load.py) and records when it sent each one and how long the answer
took. Meanwhile this process takes --backups backups, 12 s apart, one of three ways (--ways):

- export: FraudApp.backup, the product's way (EXPORT DATABASE to Parquet inside one read transaction);
- copy: ATTACH a new database file and COPY FROM DATABASE into it, inside one read transaction;
- pause: hold the group writer, CHECKPOINT, copy the database file.

Two views of the pause:
- the REST clients': the worst latency of a request in flight during a backup, against the median of the 5 s
  before it (the difference is the largest increase a client saw);
- the group writer's: each of its commits is timed, waiting included (by wrapping its commit method in this
  process), and the longest during a backup is set against the longest in the 5 s before.

    python bench/backup.py [--home DIR] [--ways export,copy,pause] [--backups 3]

--home takes a ready home (data/fraud.duckdb and models/, as `make run` leaves the checkout), copied first;
without it the database is built in a temporary folder (about 2.5 minutes). Each way starts a fresh server on
its own copy.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from api_load import free_port  # noqa: E402


def load(port: int, rate: float) -> None:
    """The client process: open-loop posts until its standard input closes; then prints
    [[sent (epoch s), latency (s)], ...] as JSON."""
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
    (home / "data").mkdir(parents=True)
    db = str(home / "data" / "fraud.duckdb")
    for args in (["generate"], ["train"], ["score"]):
        print(f"fraud-app {args[0]} ...", file=sys.stderr, flush=True)
        subprocess.run([str(BIN / "fraud-app"), "--db", db, *args], env=env, check=True, capture_output=True)


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def serve(home: Path, way: str, backups: int, gap: float) -> tuple[list, list, list]:
    """Serve, load from a second process, back up `way` meanwhile. Returns the clients' [sent, latency] pairs,
    the backups' (start, end, bytes) in epoch seconds, and the writer's (start, seconds) commits."""
    import panel as pn

    from fraud_app import api
    from fraud_app.application import FraudApp
    from fraud_app.config import load_settings
    from fraud_app.ui.app import create_app

    settings = load_settings({"home": home, "rate_limit": 0.0, "backup_every_hours": 0.0})
    app = FraudApp(settings)
    app.start()
    writer, commits, hold = app.live._writer, [], threading.Lock()
    timed = writer.commit

    def commit(batch):  # instrumentation for this benchmark only; `hold` pauses the writer for the third way
        started = time.time()
        with hold:
            timed(batch)
        commits.append((started, time.time() - started))

    writer.commit = commit

    def back_up(k: int) -> Path:
        if way == "export":  # the product's way
            return app.backup("bench")
        out = home / f"{way}-{k}.duckdb"
        cur = app.store.new_cursor()
        try:
            if way == "copy":  # a read transaction's snapshot copied into a new database file
                name = cur.execute("SELECT current_database()").fetchone()[0]
                cur.execute("BEGIN TRANSACTION")
                cur.execute(f"ATTACH '{out}' AS backup")
                cur.execute(f"COPY FROM DATABASE {name} TO backup")
                cur.execute("COMMIT")
                cur.execute("DETACH backup")
            else:  # pause the group writer, fold the log into the file, copy the file
                with hold:
                    cur.execute("CHECKPOINT")
                    shutil.copyfile(app.store.path, out)
        finally:
            cur.close()
        return out

    port = free_port()
    pn.extension("tabulator")
    server = pn.serve({"/": lambda: create_app(app)}, address="127.0.0.1", port=port, show=False, start=False,
                      extra_patterns=api.routes(app), verbose=False)
    server.start()
    client = subprocess.Popen([sys.executable, __file__, "--load", str(port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    taken, result = [], []

    def run() -> None:
        time.sleep(8)  # the load settles
        for k in range(backups):
            started = time.time()
            where = back_up(k)
            taken.append((started, time.time(), _size(where)))
            time.sleep(gap if k < backups - 1 else 4)
        result.append(json.loads(client.communicate("")[0]))  # closing its input stops the client
        server.io_loop.add_callback(server.io_loop.stop)

    threading.Thread(target=run, daemon=True).start()
    server.io_loop.start()
    server.stop()
    app.close()
    return result[0], taken, commits


WAYS = {"export": "EXPORT DATABASE in one read transaction (FraudApp.backup)",
        "copy": "ATTACH + COPY FROM DATABASE in one read transaction",
        "pause": "pause the group writer, CHECKPOINT, copy the file"}


def report(way: str, requests: list, taken: list, commits: list) -> tuple[float, float]:
    sent, latency = np.array(requests).T
    commit_start, commit_took = np.array(commits).T
    print(f"\n{WAYS[way]}; load {len(sent) / (sent.max() - sent.min()):.0f} req/s\n")
    print("| backup | time s | size MB | REST p50 before ms | REST worst during ms | largest increase ms | "
          "writer's longest commit before / during ms |\n|---|---|---|---|---|---|---|")
    worst = []
    for k, (start, end, size) in enumerate(taken, 1):
        before = latency[(sent >= start - 5) & (sent < start)]
        during = latency[(sent < end) & (sent + latency > start)]  # in flight while it ran
        w_before = commit_took[(commit_start >= start - 5) & (commit_start < start)]
        w_during = commit_took[(commit_start < end) & (commit_start + commit_took > start)]
        p50, top = np.median(before) * 1000, during.max() * 1000
        worst.append((top - p50, w_during.max() * 1000))
        print(f"| {k} | {end - start:.2f} | {size / 1e6:.1f} | {p50:.1f} | {top:.1f} | {top - p50:.1f} | "
              f"{w_before.max() * 1000:.1f} / {w_during.max() * 1000:.1f} |", flush=True)
    rest, wrote = max(w for w, _ in worst), max(c for _, c in worst)
    print(f"\nlongest write pause: {rest:.0f} ms as the REST clients saw it (worst latency increase), "
          f"{wrote:.0f} ms for the group writer's longest commit", flush=True)
    return rest, wrote


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="a ready home to copy (data/fraud.duckdb and models/)")
    parser.add_argument("--ways", default="export", help=f"comma-separated, of: {', '.join(WAYS)}")
    parser.add_argument("--backups", type=int, default=3, help="backups taken under load, each way")
    parser.add_argument("--gap", type=float, default=12.0, help="seconds between backups")
    parser.add_argument("--dump", type=Path, help="write the raw timings (requests, backups, commits) as JSON")
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.load:
        load(opts.load, 200.0)
        return 0
    ways = opts.ways.split(",")
    if unknown := set(ways) - set(WAYS):
        parser.error(f"unknown ways: {', '.join(sorted(unknown))}")
    raw = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUD_APP_")}
        env.update(FRAUD_APP_HOME=tmp, FRAUD_APP_ENV_FILE=os.path.join(tmp, "none.env"))
        os.environ.update({k: v for k, v in env.items() if k.startswith("FRAUD_APP_")})
        ready = Path(tmp) / "ready"
        if opts.home:
            (ready / "data").mkdir(parents=True)
            shutil.copy(opts.home / "data" / "fraud.duckdb", ready / "data" / "fraud.duckdb")
            shutil.copytree(opts.home / "models", ready / "models")
        else:
            build(ready, env)
        for way in ways:
            home = Path(tmp) / way  # each way starts from the same database, with a cold server
            shutil.copytree(ready, home)
            requests, taken, commits = serve(home, way, opts.backups, opts.gap)
            report(way, requests, taken, commits)
            raw[way] = {"requests": requests, "backups": taken, "commits": commits}
            shutil.rmtree(home)
    if opts.dump:
        opts.dump.write_text(json.dumps(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
