"""Every view, a case and a transaction of the default database in Chromium at 1280 and 1600 px wide, saved
whole to build/screenshots/WIDTH/NAME.png, to look at for clipped labels and columns (the checkout's
data/fraud.duckdb, made first if there is none; --home names another ready home; the server runs on a copy).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from team import ROOT  # noqa: E402
from ui_browser import ALERTS, QUEUE, VIEWS, WAIT, drawn, served, until  # noqa: E402

OUT = ROOT / "build" / "screenshots"
WIDTHS = (1280, 1600)
# How tall the window must be to show everything: the lowest bottom of any element's whole scroll height (from
# where the element starts), shadow roots included. The template scrolls inside its main area, below the header,
# so a window of the main area's scroll height alone cut the view's bottom off.
TALLEST = """() => {
  let tallest = 0;
  const walk = root => root.querySelectorAll('*').forEach(e => {
    tallest = Math.max(tallest, e.getBoundingClientRect().top + window.scrollY + e.scrollHeight);
    if (e.shadowRoot) walk(e.shadowRoot);
  });
  walk(document);
  return tallest;
}"""


async def shoot(page, width: int, name: str) -> None:
    await drawn(page)
    for _ in range(2):  # a taller window can lay the view out taller again
        height = await page.evaluate(TALLEST)
        await page.set_viewport_size({"width": width, "height": min(max(int(height) + 20, 900), 4000)})
        await page.wait_for_timeout(500)  # the layout follows the new size
        await drawn(page)
    (OUT / str(width)).mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(OUT / str(width) / f"{name}.png"), full_page=True)
    await page.set_viewport_size({"width": width, "height": 900})


async def every_view(url: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        for width in WIDTHS:
            page = await (await browser.new_context(viewport={"width": width, "height": 900})).new_page()
            await page.goto(url)
            await until(page, VIEWS["Overview"])
            await shoot(page, width, "overview")
            await page.get_by_role("button", name="Review queue", exact=True).click()
            await until(page, VIEWS["Review queue"])
            await shoot(page, width, "review-queue")
            await page.locator(f"{QUEUE} [tabulator-field=Card]").first.click()
            await page.locator(ALERTS).first.wait_for(timeout=WAIT)
            await shoot(page, width, "case")
            await page.locator(ALERTS).first.click()
            await until(page, ["payments, newest first"])
            await shoot(page, width, "investigate")
            for view, name in (("Model", "model"), ("Monitoring", "monitoring"), ("Data", "data")):
                await page.get_by_role("button", name=view, exact=True).click()
                await until(page, VIEWS[view])
                await shoot(page, width, name)
            await page.context.close()
        await browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="a fraud_app home with a generated, trained and scored database")
    args = parser.parse_args()
    with served(args.home) as url:
        asyncio.run(every_view(url))
    print(f"saved to {OUT}/{{{','.join(map(str, WIDTHS))}}}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
