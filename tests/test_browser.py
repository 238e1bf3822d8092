"""The app in a real browser (Debian's Chromium through Playwright)."""
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import CASE_ROWS, QUEUE_ROWS, Server, confirm_first_alert, copy_of, open_first_case, run_cli

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"


@pytest.fixture(scope="module")
def app(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    db = copy_of(trained, tmp)
    assert run_cli(tmp, "--db", str(db), "score").returncode == 0
    srv = Server(tmp, db)
    srv.wait()
    yield srv
    srv.stop()


# The tallest scroll height on the page, shadow roots included (Panel renders each component in one).
TALLEST = """() => {
  let tallest = 0;
  const walk = root => root.querySelectorAll('*').forEach(e => {
    tallest = Math.max(tallest, e.scrollHeight);
    if (e.shadowRoot) walk(e.shadowRoot);
  });
  walk(document);
  return tallest;
}"""


def shot(page, name: str) -> None:
    """The whole view: the template scrolls inside its main area, so the window grows to fit it first."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for _ in range(2):  # a taller window can lay the view out taller again
        height = page.evaluate(TALLEST)
        page.set_viewport_size({"width": 1400, "height": min(max(height, 900), 4000)})
        page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def test_investigate_is_built_out_of_sight_once_the_page_is_ready(app, page):
    page.goto(app.url)
    page.get_by_text("Cards with the most alerts").first.wait_for(timeout=60_000)
    hint = page.get_by_text("Type a transaction id above").first
    hint.wait_for(state="attached", timeout=60_000)  # on the page before anyone opens Investigate
    assert not hint.is_visible() and page.get_by_text("Cards with the most alerts").first.is_visible()
    page.get_by_role("button", name="Investigate").click()
    hint.wait_for(state="visible", timeout=60_000)


def test_every_view_loads_with_no_console_errors(app, watched):
    page, errors = watched
    page.goto(app.url)
    assert page.title() == "fraud_app"
    # Overview first. Panel renders into shadow roots; Playwright's text locators look inside them.
    for text in ("Fraud amount caught", "Terminals with the most alerts", "Cards with the most alerts"):
        page.get_by_text(text).first.wait_for(timeout=30_000)
    page.wait_for_load_state("networkidle")
    assert page.locator("canvas").count() >= 2  # the two plots (Bokeh draws titles inside the canvas)
    shot(page, "overview")
    page.get_by_role("button", name="Review queue").click()
    page.get_by_text("Page 1 of").wait_for(timeout=30_000)
    shot(page, "review")
    first_id = open_first_case(page)
    page.get_by_text("Notes").first.wait_for(timeout=20_000)
    shot(page, "case")
    page.locator(CASE_ROWS).first.locator("[tabulator-field=Transaction]").click()  # the alert's link
    page.get_by_text(f"Transaction {first_id}").first.wait_for(timeout=30_000)
    page.get_by_text("payments, newest first").first.wait_for(timeout=20_000)
    page.wait_for_timeout(1500)
    shot(page, "investigate")
    page.get_by_role("button", name="Model").click()
    page.get_by_text("Threshold simulator").first.wait_for(timeout=20_000)
    page.get_by_role("button", name="Train new version").wait_for(timeout=20_000)
    page.wait_for_timeout(1500)  # the curves are drawn on canvas
    shot(page, "model")
    page.get_by_role("button", name="Monitoring").click()
    page.get_by_text("Score PSI").first.wait_for(timeout=60_000)  # drift computes in the background
    page.get_by_text("REST API latency").first.wait_for(timeout=10_000)
    page.wait_for_timeout(1500)
    shot(page, "monitoring")
    page.get_by_role("button", name="Data").click()
    page.get_by_text("generate --seed 0").first.wait_for(timeout=10_000)  # the load, from the database
    assert page.get_by_text("Labelled fraud").count() >= 1
    shot(page, "data")
    assert errors == []


# Every style rule on the page: the document's and each shadow root's own and adopted stylesheets.
STYLE_RULES = """() => {
  const roots = [document];
  for (let i = 0; i < roots.length; i++)
    roots[i].querySelectorAll('*').forEach(e => { if (e.shadowRoot) roots.push(e.shadowRoot); });
  const rules = [];
  for (const root of roots)
    for (const sheet of [...(root.styleSheets || []), ...(root.adoptedStyleSheets || [])])
      for (const rule of sheet.cssRules) rules.push(rule.cssText);
  return rules.join("\\n");
}"""


def test_plots_skip_the_css_lookup_and_no_css_sets_a_plot_visual(app, watched):
    """ui/plots_css.py answers BokehJS's lookups of `--bk-*` variables with nothing: that is only right while
    no stylesheet on the page sets one."""
    page, errors = watched
    page.goto(app.url)
    page.get_by_text("Cards with the most alerts").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Monitoring").click()  # the view with the most plots
    page.get_by_text("REST API latency").first.wait_for(timeout=60_000)
    rules = page.evaluate(STYLE_RULES)
    assert "tabulator" in rules and ":host" in rules  # the walk reached the components' own stylesheets
    assert re.findall(r"--bk-[\w-]+", rules) == []
    skipped = "() => Bokeh.require('core/visuals/visual').VisualProperties.prototype._get_css_value('line-color')"
    assert page.evaluate(skipped) == ""
    # Each plot keeps its font size: the page's, as the cascade gives it.
    sizes = page.evaluate("""() => {
      const PlotView = Bokeh.require("models/plots/plot_canvas").PlotView;
      return [...Bokeh.index.query((view) => view instanceof PlotView)]
        .map((view) => [view.base_font_size, view.__font_size, getComputedStyle(view.el).fontSize]);
    }""")
    assert len(sizes) >= 5 and all(kept == again and f"{kept}px" == css for kept, again, css in sizes), sizes
    assert errors == []


# What the browser holds of the all-transactions chart: its title, and the rows of its image's source.
ALL_CHART = """() => {
  for (const doc of Bokeh.documents)
    for (const model of doc.all_models)
      if (model.type === "GlyphRenderer" && model.glyph.type === "Image" && model.data_source.get_length() > 0)
        for (const plot of doc.all_models)
          if (plot.type === "Figure" && plot.renderers.includes(model))
            return plot.title.text;
  return null;
}"""


def test_a_transaction_from_a_case_shows_every_payment_behind_it(app, watched):
    """The all-transactions chart joins Investigate after the transaction's own details, with its image."""
    page, errors = watched
    page.goto(app.url)
    first_id = open_first_case(page)
    page.locator(CASE_ROWS).first.locator("[tabulator-field=Transaction]").click()
    page.get_by_text(f"Transaction {first_id}").first.wait_for(timeout=30_000)
    page.wait_for_function(ALL_CHART, timeout=30_000)
    assert re.match(r"All [\d,]+ scored transactions", page.evaluate(ALL_CHART))
    assert errors == []


def test_the_model_view_draws_its_curves_and_the_simulator_follows_the_slider(app, watched):
    page, errors = watched
    page.goto(app.url)
    page.get_by_role("button", name="Model").click()
    threshold = page.get_by_text("Review threshold", exact=True).first.locator("xpath=..")
    threshold.wait_for(timeout=30_000)
    before = threshold.inner_text()
    page.locator(".noUi-handle").first.focus()  # the alert budget's slider
    for _ in range(6):
        page.keyboard.press("ArrowLeft")
    page.get_by_text("Alert budget (a day): 70").wait_for(timeout=10_000)
    page.wait_for_function("""([element, before]) => element.innerText !== before""",
                           arg=[threshold.element_handle(), before], timeout=30_000)
    assert float(threshold.inner_text().split()[-1]) > float(before.split()[-1])  # fewer alerts: a higher bar
    alerts = page.locator("div[style*='font-size: 10pt']", has_text="Alerts a day").locator("xpath=..")
    expect(alerts).to_have_text(re.compile(r"Alerts a day\s*70$"), timeout=10_000)
    assert page.locator("canvas").count() >= 3  # the curves and the sweep (Bokeh draws titles inside the canvas)
    assert not any(notice.is_visible() for notice in page.get_by_text("No test window").all())
    assert errors == []


def test_a_review_decision_in_the_browser_is_stored_with_its_audit(trained, tmp_path, watched):
    from fraud_app.store import Store

    page, errors = watched
    db = copy_of(trained, tmp_path)
    assert run_cli(tmp_path, "--db", str(db), "score").returncode == 0
    srv = Server(tmp_path, db)
    try:
        srv.wait()
        page.goto(srv.url)
        first_id = confirm_first_alert(page, "card reported stolen")
        page.get_by_text("1 alert marked confirmed fraud.").wait_for(timeout=60_000)
    finally:
        srv.stop()
    with Store(db) as store:
        case = store.cursor().execute("SELECT status, note FROM cases WHERE transaction_id = ?", [first_id]).fetchall()
        audit = store.cursor().execute("SELECT old_value, new_value, note FROM audit_log WHERE action = 'case' "
                                       "AND entity_id = ?", [first_id]).fetchall()
        label = store.cursor().execute("SELECT is_fraud, source FROM labels WHERE transaction_id = ?",
                                       [first_id]).fetchall()
    assert case == [("confirmed_fraud", "card reported stolen")]
    assert audit == [("open", "confirmed_fraud", "card reported stolen")] and label == [(True, "analyst")]
    assert errors == []


def settled(pager, unlike: int | None = None) -> int:
    """The pager's case count once it has stopped changing (and differs from `unlike`)."""
    seen, since = None, 0.0
    for _ in range(300):
        text = pager.inner_text(timeout=30_000)
        total = int(text.split("·")[1].split()[0].replace(",", "")) if "·" in text else None
        if total is not None and total == seen and total != unlike and total > 0:
            since += 0.2
            if since >= 1.0:
                return total
        else:
            seen, since = total, 0.0
        pager.page.wait_for_timeout(200)
    raise AssertionError(f"the pager never settled: {text}")


def _csv(download) -> list[dict]:
    import csv

    with open(download.path(), newline="") as f:
        return list(csv.DictReader(f))


def test_csv_downloads_hold_the_filtered_cases_and_the_flagged_alerts(app, watched, tmp_path):
    page, errors = watched
    page.goto(app.url)
    page.get_by_role("button", name="Review queue").click()
    pager = page.get_by_text("Page 1 of")
    everything = settled(pager)
    page.get_by_label("Least amount at risk").fill("100")  # a filter, so the download must follow it
    page.get_by_label("Least amount at risk").press("Enter")
    total = settled(pager, unlike=everything)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download these cases").click()
    rows = _csv(info.value)
    assert len(rows) == total > 0 and all(float(r["Amount at risk"]) >= 100 for r in rows)
    assert all(r["Top reason"] for r in rows) and all(r["Case"] for r in rows)  # reasons in words, case ids
    with page.expect_download() as info:
        page.get_by_role("button", name="Export flagged alerts").click()
    flagged = _csv(info.value)
    assert {"fraud_probability", "decision", "reasons", "analyst", "note"} <= set(flagged[0])
    assert {r["decision"] for r in flagged} <= {"review", "decline"} and len(flagged) >= total
    assert errors == []


def test_training_from_the_ui_creates_a_new_version(trained, tmp_path, watched):
    from fraud_app.store import Store

    page, errors = watched
    db = copy_of(trained, tmp_path)
    srv = Server(tmp_path, db)
    try:
        srv.wait()
        page.goto(srv.url)
        page.get_by_role("button", name="Model").click()
        page.get_by_role("button", name="Train new version").click()
        page.get_by_text("finished in").wait_for(timeout=120_000)
        page.locator(".tabulator-cell[tabulator-field=version]", has_text="v2").wait_for(timeout=10_000)
        shot(page, "model")
    finally:
        srv.stop()
    with Store(db) as store:
        versions = store.cursor().execute("SELECT version, status FROM model_versions ORDER BY version").fetchall()
        backtest = store.cursor().execute("SELECT count(*) FROM backtests WHERE model_version = 'v2'").fetchone()[0]
    assert versions == [("v1", "active"), ("v2", "candidate")] and backtest > 0
    assert errors == []


def test_importing_a_file_from_the_data_view(trained, tmp_path, watched):
    from playwright.sync_api import expect

    from fraud_app.store import Store

    page, errors = watched
    db = copy_of(trained, tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("transaction_id,timestamp,customer_id,terminal_id,amount\nu-1,2018-06-15 10:00:00,C1,T1,abc\n")
    good = tmp_path / "good.csv"
    good.write_text("transaction_id,timestamp,customer_id,terminal_id,amount\n"
                    + "".join(f"u-{i},2018-06-15 10:{i:02d}:00,C1,T1,{i + 1}\n" for i in range(5)))
    srv = Server(tmp_path, db)
    try:
        srv.wait()
        page.goto(srv.url)
        page.get_by_role("button", name="Data").click()
        page.locator("input[type=file]").set_input_files(str(bad))
        page.get_by_role("button", name="Import", exact=True).click()
        page.get_by_text("line 2: amount").first.wait_for(timeout=60_000)  # refused whole, line and field named
        page.locator("input[type=file]").set_input_files(str(good))
        page.get_by_role("button", name="Import", exact=True).click()
        page.get_by_text("5 rows imported").wait_for(timeout=60_000)
        page.get_by_text("good.csv").first.wait_for(timeout=10_000)  # in the load history
        loads = page.locator(".tabulator-row").filter(has=page.locator("[tabulator-field=status]"))
        expect(loads.locator("[tabulator-field=source]", has_text="csv")).to_have_text(["good.csv", "bad.csv"],
                                                                                       timeout=10_000)
        refused = loads.filter(has=page.locator("[tabulator-field=source]", has_text="bad.csv"))
        expect(refused.locator("[tabulator-field=status]")).to_have_text("refused")
        expect(refused.locator("[tabulator-field=rows]")).to_have_text("0")
        expect(refused.locator("[tabulator-field=reason]")).to_have_text(
            "1 of 1 rows are invalid: line 2: amount: is not a number (got 'abc')")
        expect(loads.filter(has=page.locator("[tabulator-field=source]", has_text="good.csv"))
               .locator("[tabulator-field=status]")).to_have_text("imported")
    finally:
        srv.stop()
    with Store(db) as store:
        rows = store.cursor().execute("SELECT count(*) FROM transactions WHERE transaction_id LIKE 'u-%'").fetchone()
        scored = store.cursor().execute("SELECT count(*) FROM scores WHERE transaction_id LIKE 'u-%'").fetchone()
    assert rows == (5,) and scored == (5,)
    assert errors == []


def _queue_amounts(db) -> list[float]:
    """The amount at risk of every case in the Review queue as it opens (undecided cases of the last 30 days of
    data), largest first (the cases as the store groups them; tests/test_card_cases.py checks that grouping)."""
    import datetime as dt

    from fraud_app.store import Store, analytics, card_cases, queries

    with Store(db) as store:
        first, last = queries.usual_span(store)
        frame, _ = card_cases.case_page(store, analytics.scored_version(store), 7, sort="amount", size=100_000,
                                        start=max(first, last - dt.timedelta(days=29)), end=last)
    return frame["at_risk"].round(2).tolist()


def test_a_header_click_sorts_the_whole_queue_and_paging_follows(trained, tmp_path, watched):
    from playwright.sync_api import expect

    page, errors = watched
    db = copy_of(trained, tmp_path)
    assert run_cli(tmp_path, "--db", str(db), "score").returncode == 0
    amounts = _queue_amounts(db)
    srv = Server(tmp_path, db)
    try:
        srv.wait()
        page.goto(srv.url)
        page.get_by_role("button", name="Review queue").click()
        pager = page.get_by_text("Page 1 of")
        assert settled(pager) == len(amounts) > 2 * 25  # more than two pages of cases
        cells = page.locator(f"{QUEUE_ROWS} [tabulator-field='Amount at risk']")
        shown = [float(t.replace(",", "")) for t in cells.all_inner_texts()]
        assert len(shown) == 25 and shown != amounts[:25]  # by probability first, not by amount
        header = page.locator(".tabulator-col[tabulator-field='Amount at risk']")
        header.locator(".tabulator-col-title").click()
        expect(cells.first).to_have_text(f"{amounts[0]:,.2f}", timeout=60_000)  # the most of the whole queue
        expect(cells).to_have_text([f"{a:,.2f}" for a in amounts[:25]], timeout=60_000)
        page.get_by_role("button", name="Next ▶").click()  # paging goes on in the same order
        expect(cells).to_have_text([f"{a:,.2f}" for a in amounts[25:50]], timeout=60_000)
        header.locator(".tabulator-col-title").click()  # the other way
        expect(cells.first).to_have_text(f"{amounts[-1]:,.2f}", timeout=60_000)
        page.get_by_label("Sort").select_option(label="oldest")  # the list's sort replaces the header's
        expect(header).to_have_attribute("aria-sort", "none", timeout=60_000)
        times = page.locator(f"{QUEUE_ROWS} [tabulator-field='First alert']")
        expect(cells.first).not_to_have_text(f"{amounts[-1]:,.2f}", timeout=60_000)
        shown = times.all_inner_texts()
        assert len(shown) == 25 and shown == sorted(shown), shown
    finally:
        srv.stop()
    assert errors == []
