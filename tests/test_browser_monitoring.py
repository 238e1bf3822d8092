"""The Monitoring view and the period calendar in a real browser (Debian's Chromium), at a laptop's 1440x900."""
import csv

import pytest

from conftest import scored_server
from fraud_app.features import FEATURE_WORDS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Whether the page shows the calendar at a point: the element there, looked for through every shadow root
# (Panel renders each component in one), is part of it. Clipped by a container or covered, it is not.
CALENDAR_AT = """([x, y]) => {
  let root = document, el = null;
  for (;;) {
    const found = root.elementFromPoint(x, y);
    if (!found || found === el) break;
    el = found;
    if (!el.shadowRoot) break;
    root = el.shadowRoot;
  }
  return !!(el && el.closest('.flatpickr-calendar'));
}"""


@pytest.fixture(scope="module")
def app(trained, tmp_path_factory):
    with scored_server(trained, tmp_path_factory.mktemp("monitoring-browser")) as srv:
        yield srv


def _open(page, url: str, view: str) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(url)
    page.get_by_text("Fraud amount caught").first.wait_for(timeout=60_000)
    if view != "Overview":
        page.get_by_role("button", name=view).click()
        page.get_by_text("Score PSI").first.wait_for(timeout=120_000)  # drift computes in the background


def _calendar(page):
    """Opens the period calendar of the view on screen; its box once it has settled."""
    inputs = page.locator("input.bk-input.form-control")  # the picker's visible input (flatpickr's own is hidden)
    shown = [inputs.nth(i) for i in range(inputs.count()) if inputs.nth(i).is_visible()]
    assert len(shown) == 1
    shown[0].click()
    calendar = page.locator(".flatpickr-calendar.open")
    calendar.wait_for(timeout=10_000)
    boxes = []
    for _ in range(50):  # it fades in and slides down a little
        boxes.append(calendar.bounding_box())
        if len(boxes) > 1 and boxes[-1] == boxes[-2]:
            return calendar, boxes[-1]
        page.wait_for_timeout(100)
    raise AssertionError(f"the calendar never settled: {boxes[-3:]}")


@pytest.mark.parametrize("view", ["Overview", "Monitoring"])
def test_the_period_calendar_opens_whole_inside_the_window(app, watched, view):
    page, errors = watched
    _open(page, app.url, view)
    _, box = _calendar(page)
    assert box["x"] >= 0 and box["y"] >= 0 and box["width"] > 250 and box["height"] > 250
    assert box["x"] + box["width"] <= 1440 and box["y"] + box["height"] <= 900, box
    for fx, fy in ((0.03, 0.03), (0.97, 0.03), (0.03, 0.97), (0.97, 0.97), (0.5, 0.5)):
        point = [box["x"] + fx * box["width"], box["y"] + fy * box["height"]]
        assert page.evaluate(CALENDAR_AT, point), f"the calendar is hidden at {point}"
    assert errors == []


def test_monitoring_speaks_of_features_in_words_and_follows_the_period(app, watched):
    page, errors = watched
    _open(page, app.url, "Monitoring")
    page.get_by_text("REST API latency").first.wait_for(timeout=30_000)
    picker = page.get_by_label("Feature")
    labels = picker.locator("option").all_inner_texts()
    assert sorted(labels) == sorted(FEATURE_WORDS.values())
    assert page.locator(".tabulator-cell[tabulator-field=Feature]", has_text=labels[0]).count() == 1
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    with open(info.value.path(), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["Feature"] for r in rows] == labels and list(rows[0]) == ["Feature", "PSI", "Status"]

    # A new period, picked in the calendar: the drift of its last 7 days is computed and shown.
    calendar, _ = _calendar(page)
    calendar.locator('.flatpickr-day[aria-label="May 1, 2018"]').click()
    calendar.locator('.flatpickr-day[aria-label="May 20, 2018"]').click()
    page.get_by_text("Compared with the 7 days 14 – 20 May 2018").first.wait_for(timeout=120_000)
    assert errors == []
