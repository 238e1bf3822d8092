"""The app in a real browser (Debian's Chromium through Playwright)."""
from pathlib import Path

import pytest

from conftest import Server, copy_of

SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"


@pytest.fixture(scope="module")
def app(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    srv = Server(tmp, copy_of(trained, tmp))
    srv.wait()
    yield srv
    srv.stop()


def test_the_page_loads_with_its_numbers_and_no_console_errors(app, page):
    errors = []
    page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(app.url)
    page.get_by_text("Transactions", exact=True).first.wait_for(timeout=30_000)
    page.wait_for_load_state("networkidle")
    assert page.title() == "fraud_app"
    # Panel renders into shadow roots; Playwright's text locators look inside them.
    page.get_by_text("generate --seed 0").first.wait_for(timeout=10_000)  # the load, from the database
    for text in ("Labelled fraud", "Loads"):
        assert page.get_by_text(text).count() >= 1, text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "summary.png"), full_page=True)
    assert errors == []
