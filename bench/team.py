"""A team on one server: analysts in Chromium working through the views while scripts post single
transactions to POST /api/v1/score, on the default 1.75M-transaction database (the checkout's
data/fraud.duckdb, made first if there is none; --home names another ready home). The server runs on a copy.

- 10 browser sessions (one Chromium, a context each) sign in on the login page as users of a users file, then
  loop Overview, Review queue (back from the case left open, if one is), a case (a row of the queue clicked, a
  different one each time), Investigate (an alert of that case clicked), Model, Monitoring, Data, looking at
  each view for --pause seconds on average (5 by default: a person reads a view before moving on; at 1 s, ten
  pages showing a view each 1.4 s need more CPU than the 2 cores have, about 0.4 s of a core per view shown).
  The sessions' loops start apart and each look lasts 0.5 to 1.5 times --pause, so they do not move in step.
- Each open is timed from the click to the view's content on screen (the texts in DRAWN; the sign-in counts as
  the first Overview open). A click is the element's own click event, sent to an element found before the
  timer starts (see clicks()).
- A separate process posts a new valid transaction at a steady 100 a second (open loop, with the API token).
  Each is timed from the moment it was due, so a stalled server cannot hide the queue it causes, and from the
  moment it was sent (mostly the server's part: a client thread sends as soon as it is free).

The browsers stand in for the analysts' own computers. Here they share the server's 2 cores, so they run at a
lower CPU priority (--browsers-nice, 10 by default; 0 for none): ten pages rendering plots would otherwise take
the CPU the server needs. The server, the REST load and the timing (this process and Playwright's driver) keep
the usual priority.

Monitoring's content includes the drift result, so its first open includes computing drift in the background.

The warm-up is each session's sign-in and first pass through every view (the views are built then; the REST
load already runs); it is reported apart. Then every session loops for --seconds, and only that window counts.

Targets: every view opens within 3 s (p95 and max), REST p99 within 25 ms, no errors.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import Client, body, free_port, wait_up  # noqa: E402
from seen import SEEN, seen, text  # noqa: E402
from ui import prepare_home  # noqa: E402

LOOP = ["Overview", "Review queue", "Case", "Investigate", "Model", "Monitoring", "Data"]
# Per view, texts that only its drawn content holds (the view before it in LOOP holds none of them).
DRAWN = {"Overview": ["Fraud amount missed", "Cards with the most alerts"],
         "Review queue": ["Click a case to open it", "Page 1 of"],
         "Case": ["Decisions apply to the ticked alerts"],  # and the case's own title, see opened()
         "Investigate": ["payments, newest first"],  # and the transaction's own title, see opened()
         "Model": ["Threshold simulator", "Train new version"],
         "Monitoring": ["Score PSI", "REST API latency"],
         "Data": ["Labelled fraud", "Loads"]}
CARDS = ".tabulator-row:has([tabulator-field=Undecided]) [tabulator-field=Card]"  # the queue's cases
IDS = ".tabulator-row:has([tabulator-field='Decision so far']) [tabulator-field=Transaction]"  # a case's alerts
TARGET_VIEW, TARGET_P99 = 3.0, 0.025
GIVE_UP = 60  # seconds after which an open counts as never shown


# -- the REST load, in its own process ---------------------------------------------------------------------
def rest_load(port: int, token: str, rate: float, stop, out) -> None:
    """Open loop until `stop` is set. Puts on `out`, per request, (due, seconds from due to answer, seconds from
    sending to answer, error or ""): the first is what a steady client sees, the second the server's part."""
    results, local, prefix = [], threading.local(), f"team-{secrets.token_hex(4)}"

    def send(i: int, due: float) -> None:
        sent, error = time.monotonic(), ""
        try:
            local.client = getattr(local, "client", None) or Client(port, token)
            local.client.post(body(i, prefix))
        except Exception as exc:  # noqa: BLE001  (counted and shown; a broken connection is made anew)
            local.client, error = None, str(exc) or type(exc).__name__
        done = time.monotonic()
        results.append((due, done - due, done - sent, error))

    start = time.monotonic() + 0.1
    with ThreadPoolExecutor(32) as pool:
        i = 0
        while not stop.is_set():
            due = start + i / rate
            time.sleep(max(0.0, due - time.monotonic()))
            pool.submit(send, i, due)
            i += 1
    out.put(results)


# -- the browser sessions ----------------------------------------------------------------------------------
async def opened(page, view: str, click, tid: str = "", card: str = "") -> float | None:
    """Seconds from the click to the view's content on screen; None if it never showed."""
    wanted = [text(words) for words in DRAWN[view]]
    if tid:  # the new transaction's title, not the last one's
        wanted.append(text(f"Transaction {tid}", rf"^Transaction {re.escape(tid)}(?!\d)"))
    if card:  # the new case's title
        wanted.append(text(f": card {card}", rf": card {re.escape(card)}$"))
    started = time.monotonic()
    try:
        await click()
        # Every 100 ms: ten pages checking more often took CPU from the server they measure.
        await seen(page, *wanted, timeout=GIVE_UP, every=100)
    except Exception:  # noqa: BLE001  (Playwright's timeout; counted as never shown)
        return None
    return time.monotonic() - started


async def open_view(page, view: str, turn: int, nav: dict) -> float | None:
    if view == "Review queue":
        return await opened(page, view, lambda: to_queue(page, nav))
    if view not in ("Case", "Investigate"):
        return await opened(page, view, nav[view])
    cells = page.locator(CARDS if view == "Case" else IDS)  # the queue, or the case opened before Investigate
    try:
        cell = cells.nth(turn % max(1, await cells.count()))
        label = (await cell.inner_text(timeout=GIVE_UP * 1000)).strip()
        handle = await cell.element_handle(timeout=GIVE_UP * 1000)
    except Exception:  # noqa: BLE001  (no queue or case to click in: the open never started)
        return None
    return await opened(page, view, lambda: handle.dispatch_event("click"),
                        **({"card": label} if view == "Case" else {"tid": label}))


async def to_queue(page, nav: dict) -> None:
    """The Review queue; the case left open there (before Investigate) is closed first."""
    await nav["Review queue"]()
    back = text("◀ Back to the queue")
    await seen(page, {"any": [back, text("Click a case to open it")]}, timeout=GIVE_UP, every=100)
    if await page.evaluate(SEEN, [back]):
        await nav["Back"]()


async def clicks(page) -> dict:
    """A click on each button the loop uses, by name. Each is found once; the click is the element's own
    event, as a person's is: Playwright's click first waits for the element to hold still over two frames and
    to take the pointer, and on pages starved of CPU that waiting took up to 5 s before the click was made."""
    found = {}
    for name in LOOP:
        if name in ("Case", "Investigate"):  # a table's row, clicked in open_view
            continue
        handle = await page.get_by_role("button", name=name, exact=True).element_handle(timeout=GIVE_UP * 1000)
        found[name] = lambda handle=handle: handle.dispatch_event("click")

    async def back() -> None:  # in the case view, made once the first case is opened
        if "back" not in found:
            found["back"] = await page.get_by_role("button", name="◀ Back to the queue").element_handle()
        await found["back"].dispatch_event("click")

    found["Back"] = back
    return found


def _where(error) -> str:
    """The top of a page error's JavaScript stack: which part of the page failed."""
    lines = [line.strip() for line in (getattr(error, "stack", "") or "").splitlines()[1:3]]
    return " < ".join(lines) or "?"


class Team:
    """What the sessions share: the browsers' errors and the measured window, which starts once all are warm."""

    def __init__(self, sessions: int, seconds: float, cpu, lag):
        self.sessions, self.seconds, self.cpu, self.warm, self.errors = sessions, seconds, cpu, 0, []
        self.lag, self.lags = lag, []  # the server's event-loop lag histogram at the window's ends
        self.start = self.until = 0.0
        self.cpu_used: list[tuple[float, float]] = []  # CPU seconds (server, machine) at the window's ends
        self.ready = asyncio.Event()

    async def warmed(self) -> None:
        self.warm += 1
        if self.warm == self.sessions:
            self.start = time.monotonic()
            self.until = self.start + self.seconds
            self.cpu_used.append(self.cpu())
            self.lags.append(await asyncio.to_thread(self.lag))
            asyncio.get_running_loop().call_later(self.seconds, lambda: self.cpu_used.append(self.cpu()))
            asyncio.get_running_loop().call_later(self.seconds, lambda: asyncio.ensure_future(self._lag_at_end()))
            self.ready.set()
        await self.ready.wait()

    async def _lag_at_end(self) -> None:
        self.lags.append(await asyncio.to_thread(self.lag))


async def session(browser, url: str, k: int, user: str, password: str, team: Team, pause: float) -> list[tuple]:
    """Analyst number k: (phase, view, seconds or None) for every open."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda error: team.errors.append(f"{user}: {error} at {_where(error)}"))
    page.on("console", lambda m: m.type == "error" and team.errors.append(f"{user}: {m.text}"))
    page.on("requestfailed", lambda request: team.errors.append(f"{user}: failed {request.url}"))
    await page.goto(url)
    await page.get_by_placeholder("user name").fill(user)
    await page.get_by_placeholder("password").fill(password)
    opens = [("first", "Overview", await opened(page, "Overview", page.get_by_role("button", name="Sign in").click))]
    nav = await clicks(page)
    for view in LOOP[1:]:
        opens.append(("first", view, await open_view(page, view, k, nav)))
        await asyncio.sleep(pause)
    await team.warmed()
    # People do not move in step: each session starts its loop a little after the one before and reads each
    # view for between half and one and a half times --pause. All ten clicking the same view at the same
    # moment, every few seconds, would measure a queue of ten that a team does not make.
    await asyncio.sleep(k * pause / team.sessions)
    reading, turn = random.Random(k), 0
    while time.monotonic() < team.until:
        view = LOOP[turn % len(LOOP)]
        opens.append(("loop", view, await open_view(page, view, k + 1 + turn // len(LOOP), nav)))
        await asyncio.sleep(reading.uniform(0.5, 1.5) * pause)
        turn += 1
    return opens


async def team_at_work(url: str, users: dict[str, str], seconds: float, pause: float, cpu, lag,
                       log: Path, browser: Path) -> tuple[list, Team, int]:
    """Every session's opens, the team (its errors, measured window and CPU use), and how much the server
    had logged when the sessions stopped working (closing a page makes the server log its own noise)."""
    from playwright.async_api import async_playwright

    team = Team(len(users), seconds, cpu, lag)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(browser), headless=True, args=["--no-sandbox"])
        parts = await asyncio.gather(*(session(browser, url, k, u, pw, team, pause)
                                       for k, (u, pw) in enumerate(users.items())))
        logged = log.stat().st_size
        await browser.close()
    return [o for part in parts for o in part], team, logged


# -- the server ---------------------------------------------------------------------------------------------
def env_of(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUD_APP_")}
    return {**env, "FRAUD_APP_HOME": str(home), "FRAUD_APP_ENV_FILE": str(home / "none.env"), **extra}


def add_users(home: Path, sessions: int) -> tuple[Path, dict[str, str]]:
    """A users file with one lead, one viewer and analysts; their passwords by name."""
    path, users = home / "users.json", {}
    for k in range(sessions):
        name, role, password = f"user{k + 1}", {0: "lead", 1: "viewer"}.get(k, "analyst"), secrets.token_urlsafe(12)
        subprocess.run([str(BIN / "fraud-app"), "user", "add", name, "--role", role, "--password-stdin",
                        "--file", str(path)], input=password + "\n", text=True, env=env_of(home), check=True,
                       capture_output=True)
        users[name] = password
    return path, users


def serve(home: Path, users_file: Path, token: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    with open(home / "serve.log", "w") as log:  # a file, not a pipe: a full pipe would stall the server
        server = subprocess.Popen([str(BIN / "fraud-app"), "serve", "--port", str(port), "--no-show"],
                                  env=env_of(home, FRAUD_APP_UI_USERS=str(users_file), FRAUD_APP_API_TOKEN=token),
                                  stdout=log, stderr=subprocess.STDOUT)
    wait_up(port, "/api/v1/health", server)
    return server, port


def chromium(home: Path, nice: int) -> Path:
    """Chromium at the given CPU priority (the timing, in this process and Playwright's driver, keeps its own).
    Playwright starts the browser in a session of its own, and Linux shares the CPU between sessions before
    it looks at a process's nice value (autogroups): the browser's session gets the nice value too."""
    path = home / "chromium"
    path.write_text(f'#!/bin/sh\necho {int(nice)} > /proc/self/autogroup 2>/dev/null\n'
                    f'exec nice -n {int(nice)} /usr/bin/chromium "$@"\n')
    path.chmod(0o755)
    return path


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time so far: the server process's (all its threads), and the whole machine's busy time."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    machine = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    busy = sum(int(x) for i, x in enumerate(machine) if i not in (3, 4))  # all but idle and iowait
    return (int(fields[11]) + int(fields[12])) / tick, busy / tick


HISTOGRAMS = {"lag": "fraud_app_event_loop_lag_seconds", "score": "fraud_app_score_latency_seconds"}


def loop_lag(port: int, token: str) -> dict[str, dict[float, float]]:
    """From the server's /metrics, by upper bound in seconds (cumulative): its event loop's timer ticks by how
    late they ran, and the requests by how long scoring and storing took in the server (HISTOGRAMS)."""
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"})
    text = urllib.request.urlopen(request, timeout=60).read().decode()
    return {key: {float(le): float(n) for le, n in re.findall(rf'^{name}_bucket\{{le="([^"]+)"\}} (\S+)$', text, re.M)}
            for key, name in HISTOGRAMS.items()}


def lag_report(lags: list[dict[str, dict[float, float]]]) -> None:
    if len(lags) < 2:
        return
    ticks, scored = ({le: lags[1][key][le] - lags[0][key].get(le, 0.0) for le in lags[1][key]}
                     for key in ("lag", "score"))
    total, requests = ticks[float("inf")] or 1, scored[float("inf")] or 1
    worst = min((le for le, n in ticks.items() if n == ticks[float("inf")]), default=float("inf"))
    print(f"server event loop in the window: {total:,.0f} timer ticks; late by more than 25 ms: "
          f"{100 * (1 - ticks[0.025] / total):.2f}%, more than 100 ms: {100 * (1 - ticks[0.1] / total):.2f}%; "
          f"the latest within {worst:g} s")
    print(f"in the server, from reading a request to its stored answer: over 25 ms for "
          f"{100 * (1 - scored[0.025] / requests):.2f}% of {requests:,.0f} requests, over 50 ms for "
          f"{100 * (1 - scored[0.05] / requests):.2f}%")


def peak_rss(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(x for x in status if x.startswith("VmHWM")).split()[1]) / 1024 / 1024


# -- the figures --------------------------------------------------------------------------------------------
def views_report(opens: list[tuple], phase: str) -> bool:
    print("| view | opens | median s | p95 s | max s | never shown |\n|---|---|---|---|---|---|")
    met = True
    for view in LOOP:
        times = [t for ph, v, t in opens if ph == phase and v == view]
        shown = np.array([t for t in times if t is not None])
        missing = len(times) - len(shown)
        if len(shown):
            median, p95 = np.percentile(shown, [50, 95])
            print(f"| {view} | {len(times)} | {median:.2f} | {p95:.2f} | {shown.max():.2f} | {missing} |")
        else:
            print(f"| {view} | {len(times)} | - | - | - | {missing} |")
        met = met and len(shown) > 0 and missing == 0 and shown.max() <= TARGET_VIEW
    return met


def rest_report(results: list[tuple], start: float, end: float) -> bool:
    """The requests due in the window; the warm-up's alongside, for what the team's arrival cost the API."""
    print("| REST POST /api/v1/score, latency | requests | errors | p50 ms | p95 ms | p99 ms |\n"
          "|---|---|---|---|---|---|")
    met = False
    for phase, (low, high) in (("warm-up", (0, start)), ("window", (start, end))):
        part = [r for r in results if low <= r[0] < high]
        errors = [r[3] for r in part if r[3]]
        for column, name in ((1, "from when it was due"), (2, "from when it was sent")):
            ok = np.array([r[column] for r in part if not r[3]])
            p50, p95, p99 = np.percentile(ok, [50, 95, 99]) * 1000 if len(ok) else (np.nan,) * 3
            print(f"| {phase}, {name} | {len(part):,} | {len(errors)} | {p50:.1f} | {p95:.1f} | {p99:.1f} |")
            if (phase, column) == ("window", 1):
                met = p99 <= TARGET_P99 * 1000 and not errors
        if errors:
            print(f"{phase} errors:" + counted(errors, 3))
    return met


def server_problems(text: str) -> list[str]:
    """Each error in the server's log: its message, and for a traceback its last line too."""
    lines, found = text.splitlines(), []
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = next((j for j in range(i + 1, len(lines)) if not lines[j].startswith(" ")), len(lines) - 1)
            found.append(f"{lines[i - 1][:160] if i else ''} -> {lines[end][:200]}")
        elif " ERROR " in line or " CRITICAL " in line:
            found.append(line[:200])
    return found


def counted(messages: list[str], most: int = 8) -> str:
    distinct = {m: messages.count(m) for m in messages}
    return "".join(f"\n   {n} x {m}" for m, n in sorted(distinct.items(), key=lambda x: -x[1])[:most])


def run(args) -> dict:
    """Serve a copy of the database, set the team and the REST load on it, and collect what they saw."""
    ready = args.home or (ROOT if (ROOT / "data" / "fraud.duckdb").exists() else None)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        prepare_home(ready, home)
        users_file, users = add_users(home, args.sessions)
        token = secrets.token_urlsafe(32)
        server, port = serve(home, users_file, token)
        log = home / "serve.log"
        spawn = multiprocessing.get_context("spawn")
        stop, out = spawn.Event(), spawn.Queue()
        loader = spawn.Process(target=rest_load, args=(port, token, args.rate, stop, out))
        loader.start()
        try:
            opens, team, logged = asyncio.run(team_at_work(f"http://127.0.0.1:{port}/", users, args.seconds,
                                                           args.pause, lambda: cpu_seconds(server.pid),
                                                           lambda: loop_lag(port, token), log,
                                                           chromium(home, args.browsers_nice)))
        finally:
            stop.set()
            results = out.get(timeout=120)
            loader.join()
            memory = peak_rss(server.pid)
            server.terminate()
            server.wait(30)
        raw = log.read_bytes()
        if args.log:
            shutil.copy(log, args.log)
    return dict(opens=opens, team=team, results=results, memory=memory,
                problems=server_problems(raw[:logged].decode(errors="replace")),
                at_close=server_problems(raw[logged:].decode(errors="replace")))


def report(args, opens, team, results, memory, problems, at_close, load_before) -> bool:
    print(f"\n{args.sessions} sessions (browsers at nice {args.browsers_nice}), {args.pause:g} s on each view; "
          f"{args.rate:g} REST req/s; "
          f"{args.seconds:g} s measured after the warm-up\n\nwarm-up: sign-in and first open of each view (s)")
    views_report(opens, "first")
    print("\nmeasured window: each open, from the click to the view's content (s)")
    views_met = views_report(opens, "loop")
    print()
    rest_met = rest_report(results, team.start, team.until)
    lag_report(team.lags)
    (server0, machine0), (server1, machine1) = team.cpu_used
    print(f"CPU in the window: the server {100 * (server1 - server0) / args.seconds:.0f}% of a core, the machine "
          f"{100 * (machine1 - machine0) / args.seconds / os.cpu_count():.0f}% of its {os.cpu_count()} cores "
          f"(load average {load_before:.1f} before the start, {os.getloadavg()[0]:.1f} at the end)")
    print(f"server: peak memory {memory:.2f} GB; {len(problems)} errors in its log while the sessions worked "
          f"({len(at_close)} more as the browsers closed)" + counted(problems))
    print(f"browsers: {len(team.errors)} console errors, page errors or failed requests" + counted(team.errors))
    ok = views_met and rest_met and not problems and not team.errors
    print(f"\ntargets (each view within {TARGET_VIEW:g} s, p95 and max; REST p99 within {TARGET_P99 * 1000:g} ms; "
          f"no errors): {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="a fraud_app home with a generated, trained and scored database")
    parser.add_argument("--seconds", type=float, default=120, help="the measured window, after the warm-up")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100, help="REST requests a second")
    parser.add_argument("--pause", type=float, default=5.0, help="seconds a session looks at a view before the next")
    parser.add_argument("--browsers-nice", type=int, default=10,
                        help="CPU priority of the browsers (nice); they stand in for other computers")
    parser.add_argument("--log", type=Path, help="keep the server's log in this file")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]  # others' work on the machine, for the conditions line
    return 0 if report(args, **run(args), load_before=load_before) else 1


if __name__ == "__main__":
    sys.exit(main())
