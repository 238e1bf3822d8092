"""The analyst UI on the default 1.75M-transaction database (generated, trained and scored first unless
--home names a ready one):

1. each view's server-side build (a new session's DataStore and the view's Bokeh models), first and median;
2. filter changes (the review queue's filters, the Overview's period, a new transaction in Investigate);
3. the server process's memory (peak RSS) with 5 browser sessions that have opened every view.

Targets on the 2-core reference machine: each build <= 2 s, each filter change <= 0.5 s, 5 sessions <= 2 GB.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import free_port, wait_up  # noqa: E402


def cli(home: Path, *args: str) -> None:
    env = {**os.environ, "FRAUD_APP_HOME": str(home), "FRAUD_APP_ENV_FILE": str(home / "none.env")}
    subprocess.run([str(BIN / "fraud-app"), *args], env=env, check=True, capture_output=True)


def prepare_home(ready: Path | None, home: Path) -> None:
    """A copy of the ready home's database and models in `home` (the benchmarks write: scores on demand,
    migrations), or without one the default database, generated, trained and scored there."""
    if ready:
        shutil.copytree(ready / "data", home / "data", ignore=shutil.ignore_patterns("logs"))
        shutil.copytree(ready / "models", home / "models")
    else:
        print("generating, training and scoring the default database...", flush=True)
        for step in (["generate"], ["train"], ["score"]):
            cli(home, *step)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def builds(home: Path, repeats: int) -> None:
    import panel as pn

    from bokeh.document import Document

    from fraud_app.application import FraudApp
    from fraud_app.config import Settings
    from fraud_app.store import analytics
    from fraud_app.ui.app import VIEWS, create_app
    from fraud_app.ui.datastore import DataStore

    app = FraudApp(Settings(home=home))
    with app.store as store:
        started = time.perf_counter()
        print(f"1. server-side build, {repeats} new sessions each (s): first / median")
        for name, view in {**VIEWS, "whole app (opening view)": None}.items():
            def build():
                if view is None:
                    create_app(app).server_doc(Document())
                else:
                    pn.panel(view(data_store=DataStore(app=app))).get_root()
            times = [timed(build) for _ in range(repeats)]
            print(f"   {name:<26} {times[0]:6.3f} / {statistics.median(times):6.3f}")
        # The Monitoring view started the drift computation in the background on its first build; let it
        # finish so it does not share the 2 cores with the changes timed next.
        app.drift_job(analytics.scored_version(store)).future.result()
        print(f"   drift (PSI of score and 45 features), in the background: ready "
              f"{time.perf_counter() - started:.1f} s after the first Monitoring build began")
        changes(app)


def changes(app) -> None:
    import panel as pn

    from fraud_app.ui.app import VIEWS
    from fraud_app.ui.datastore import DataStore

    data = DataStore(app=app)
    views = {name: view(data_store=data) for name, view in VIEWS.items()}
    for view in views.values():
        pn.panel(view).get_root()  # rendered, so a change also updates the Bokeh models, as in a session
    review = views["Review queue"]
    last = data.period[1]
    # (the view on screen, what changes): as in a session that has opened every view; the others are hidden.
    steps = {
        ("Review queue", "min score 0.5"): lambda: setattr(review, "min_score", 0.5),
        ("Review queue", "channel online"): lambda: setattr(review, "channel", "online"),
        ("Review queue", "sort by amount"): lambda: setattr(review, "sort", "amount"),
        ("Review queue", "days, last week"): lambda: setattr(review, "dates", (last - dt.timedelta(days=6), last)),
        ("Review queue", "next page"): lambda: setattr(review, "page", 2),
        ("Overview", "period, 7 days"): lambda: setattr(data, "period", (last - dt.timedelta(days=6), last)),
        ("Overview", "period, 90 days"): lambda: setattr(data, "period", (last - dt.timedelta(days=89), last)),
        ("Monitoring", "period, 30 days"): lambda: setattr(data, "period", (last - dt.timedelta(days=29), last)),
        ("Overview", "shown again after that"): lambda: None,
    }
    ids = review._table.value["transaction_id"].tolist()
    steps[("Investigate", "open an alert")] = lambda: data.investigate(ids[0])
    steps[("Investigate", "another")] = lambda: data.investigate(ids[1])
    print("2. filter changes (s), one view on screen, every view open")
    worst = 0.0
    for (shown, name), step in steps.items():
        def act():
            for other, view in views.items():
                view.on_screen = other == shown
            step()
        took = timed(act)
        worst = max(worst, took)
        print(f"   {shown.lower() + ': ' + name:<40} {took:6.3f}")
    print(f"   slowest                                  {worst:6.3f}  (target 0.5)")


def memory(home: Path, sessions: int) -> None:
    from playwright.sync_api import sync_playwright

    from fraud_app.ui.app import VIEWS

    port = free_port()
    env = {**os.environ, "FRAUD_APP_HOME": str(home), "FRAUD_APP_ENV_FILE": str(home / "none.env")}
    server = subprocess.Popen([str(BIN / "fraud-app"), "serve", "--port", str(port), "--no-show"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(port, "/api/v1/health", server)
        status = Path(f"/proc/{server.pid}/status")

        def rss(field: str = "VmRSS") -> float:
            line = next(x for x in status.read_text().splitlines() if x.startswith(field))
            return int(line.split()[1]) / 1024 / 1024

        print(f"3. server memory (GB): idle {rss():.2f}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            pages = []
            for i in range(sessions):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_role("button", name="Data").wait_for(timeout=60_000)
                for name in VIEWS:
                    page.get_by_role("button", name=name).click()
                    time.sleep(2.5)
                pages.append(page)
                print(f"   after session {i + 1} opened every view: {rss():.2f}")
            time.sleep(3)
            print(f"   {sessions} sessions open: {rss():.2f} now, peak {rss('VmHWM'):.2f}  (target 2)")
            browser.close()
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="a fraud_app home with a generated, trained and scored database")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        prepare_home(args.home, home)
        builds(home, args.repeats)
        memory(home, args.sessions)


if __name__ == "__main__":
    main()
