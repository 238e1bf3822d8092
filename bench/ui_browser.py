"""What one analyst waits for in Chromium, on the default 1.75M-transaction database (the checkout's
data/fraud.duckdb, made first if there is none; --home names another ready home). The server runs on a copy,
without sign-in, as an analyst at their own computer runs it.

Timed from the analyst's action to what they came for on screen:
- first page: `goto` to the Overview's numbers and both plots drawn;
- each view from the sidebar: the click to its heading and its own content (plots drawn where it has them);
- a case: a row of the Review queue clicked, to its alerts and facts;
- a transaction: an alert of that case clicked, to Investigate's title and the card's payments;
- both again, with another case: the first of a session builds Investigate, later ones only fill it;
- the queue: a filter changed (the least amount at risk), and the next page, to the new page count or rows.

Each is measured --repeats times (the first page on a new page each time; the views round after round). The
page is checked every 25 ms for what it waits for (bench/seen.py), not at Playwright's waits' intervals.

Targets on this 2-core machine: first page <= 2 s, every view <= 1.5 s, a case or a transaction <= 1 s, a queue
filter or page <= 0.5 s (the median of the repeats, and the worst is printed beside it).
"""
from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seen import seen, text  # noqa: E402
from team import BIN, ROOT, env_of, free_port, prepare_home, wait_up  # noqa: E402

# view: texts only its drawn content holds
VIEWS = {"Overview": ["Fraud amount missed", "Cards with the most alerts"],
         "Review queue": ["Click a case to open it", "Page 1 of"],
         "Investigate": ["payments, newest first"],  # the transaction opened from a case before
         "Model": ["Threshold simulator", "Train new version"],
         "Monitoring": ["Score PSI", "REST API latency"],
         "Data": ["Labelled fraud", "Loads"]}
TARGETS = {"first page": 2.0, "view": 1.5, "case": 1.0, "transaction": 1.0, "filter": 0.5, "page": 0.5}
QUEUE = ".tabulator-row:has([tabulator-field=Undecided])"
ALERTS = ".tabulator-row:has([tabulator-field='Decision so far']) [tabulator-field=Transaction]"
WAIT = 120_000


async def until(page, texts: list[str], *more: dict) -> None:
    """Every text visible (in the view on screen), and every further spec of seen() holds."""
    await seen(page, *map(text, texts), *more, timeout=WAIT / 1000)


async def timed(action, *waits) -> float:
    started = time.perf_counter()
    await action()
    for wait in waits:
        await wait()
    return time.perf_counter() - started


async def drawn(page) -> None:
    """Bokeh has painted every visible canvas once (no plot still waiting for its first frame)."""
    await page.wait_for_function("""() => {
      const found = [];
      const walk = root => root.querySelectorAll('*').forEach(e => {
        if (e.localName === 'canvas' && e.offsetParent !== null) found.push(e);
        if (e.shadowRoot) walk(e.shadowRoot);
      });
      walk(document);
      return found.every(c => c.width > 0 && c.height > 0);
    }""", timeout=WAIT)


async def measure(url: str, repeats: int) -> dict[str, list[float]]:
    from playwright.async_api import async_playwright

    got: dict[str, list[float]] = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        for _ in range(repeats):
            context = await browser.new_context(viewport={"width": 1440, "height": 900})
            page = await context.new_page()
            got.setdefault("first page", []).append(await timed(
                lambda: page.goto(url), lambda: until(page, VIEWS["Overview"]), lambda: drawn(page)))
            for view in [*VIEWS, "Overview"][1:]:
                nav = page.get_by_role("button", name=view, exact=True)
                got.setdefault(f"view: {view}", []).append(await timed(
                    nav.click, lambda v=view: until(page, VIEWS[v]), lambda: drawn(page)))
                if view == "Review queue":
                    await queue_and_case(page, got, len(got["first page"]))
                    await page.get_by_role("button", name="Review queue", exact=True).click()
                    await page.get_by_role("button", name="◀ Back to the queue").click()
            await context.close()
        await browser.close()
    return got


async def queue_and_case(page, got: dict[str, list[float]], turn: int) -> None:
    """The queue's filter and next page, then a case and one of its alerts (Investigate)."""
    pager = page.get_by_text("Page 1 of").filter(visible=True)
    await pager.first.wait_for(timeout=WAIT)
    before = " ".join((await pager.first.inner_text()).split())
    box = page.get_by_label("Least amount at risk")
    await box.fill(str(10 * turn))  # another value each time, so each is a change
    got.setdefault("filter: least amount at risk", []).append(await timed(
        lambda: box.press("Enter"), lambda: until(page, [], text("Page 1 of", "^Page 1 of") | {"not": before})))
    first = f"{QUEUE} [tabulator-field=Card]"
    shown = " ".join((await page.locator(first).first.inner_text()).split())
    got.setdefault("page: next", []).append(await timed(
        page.get_by_role("button", name="Next ▶").click,
        lambda: until(page, [], text("Page 2 of", "^Page 2 of"), {"css": first, "not": shown})))
    for again in (False, True):  # the session's first case and transaction, then another
        if again:
            await page.get_by_role("button", name="Review queue", exact=True).click()
            await page.get_by_role("button", name="◀ Back to the queue").click()
            await until(page, ["Click a case to open it"])
        row = page.locator(f"{QUEUE} [tabulator-field=Card]").nth((turn + again) % 10)
        card = await row.inner_text()
        got.setdefault("case" + ", again" * again, []).append(await timed(
            row.click, lambda: until(page, ["Decisions apply to the ticked alerts"], {"css": ALERTS},
                                     text(f": card {card}", rf": card {re.escape(card)}$"))))
        alert = page.locator(ALERTS).nth(0)
        tid = await alert.inner_text()
        got.setdefault("transaction" + ", again" * again, []).append(await timed(
            alert.click, lambda: until(page, ["payments, newest first"],
                                       text(f"Transaction {tid}", rf"^Transaction {re.escape(tid)}(?!\d)")), lambda: drawn(page)))


def report(got: dict[str, list[float]]) -> bool:
    print("| measure | median s | worst s | target s |\n|---|---|---|---|")
    met = True
    for name, times in got.items():
        target = TARGETS[name.split(":")[0].split(",")[0]]
        median = statistics.median(times)
        met = met and median <= target
        print(f"| {name} | {median:.2f} | {max(times):.2f} | {target:g} |", " ".join(f"{t:.2f}" for t in times))
    print("targets met" if met else "targets NOT met")
    return met


@contextmanager
def served(home: Path | None) -> Iterator[str]:
    """`fraud-app serve` without sign-in on a copy of the ready home (default: the checkout's, made first if
    there is none); its URL while the block runs."""
    ready = home or (ROOT if (ROOT / "data" / "fraud.duckdb").exists() else None)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        prepare_home(ready, home)
        port = free_port()
        with open(home / "serve.log", "w") as log:
            server = subprocess.Popen([str(BIN / "fraud-app"), "serve", "--port", str(port), "--no-show"],
                                      env=env_of(home), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_up(port, "/api/v1/health", server)
            yield f"http://127.0.0.1:{port}/"
        finally:
            server.terminate()
            server.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="a fraud_app home with a generated, trained and scored database")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with served(args.home) as url:
        got = asyncio.run(measure(url, args.repeats))
    return 0 if report(got) else 1


if __name__ == "__main__":
    sys.exit(main())
