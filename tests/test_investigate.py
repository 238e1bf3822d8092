"""Investigate: one transaction in full, its card and terminal, the all-transactions columns, and reasons
explained on demand for the rows bulk scoring stores without them. A real scored database throughout."""
import csv
import datetime as dt
import json
import re
import shutil
from fractions import Fraction

import numpy as np
import panel as pn
import pytest
from bokeh.events import RangesUpdate
from bokeh.models import ColorBar, LogColorMapper
from playwright.sync_api import expect

from conftest import CASE_ROWS, Server, copy_of, open_first_case, run_cli
from fraud_app import application, features, registry, scoring
from fraud_app.application import FraudApp
from fraud_app.config import Settings
from fraud_app.store import Store, cases, investigate, scores
from fraud_app.ui import investigate as view_module
from fraud_app.ui.datastore import DataStore
from fraud_app.ui.charts import AllChart, ReasonsChart, bin_scores
from fraud_app.ui.investigate import InvestigateView
from fraud_app.ui.review import PAGE_SIZE as QUEUE_PAGE, ReviewView
from fraud_app.ui.view import HIDDEN, SHOWN


@pytest.fixture(scope="module")
def scored(trained, tmp_path_factory):
    """A scored copy (home, db) and `score --out` of every row, reasons included."""
    home = tmp_path_factory.mktemp("investigate")
    db = copy_of(trained, home)
    assert run_cli(home, "--db", str(db), "score").returncode == 0
    out = home / "all.csv"
    result = run_cli(home, "--db", str(db), "score", "--out", str(out))
    assert result.returncode == 0, result.stderr
    with open(out, newline="") as f:
        written = {row["transaction_id"]: row for row in csv.DictReader(f)}
    return home, db, written


@pytest.fixture(scope="module")
def app(scored):
    app = FraudApp(Settings(home=scored[0], db=scored[1]))
    yield app
    app.close()


@pytest.fixture(scope="module")
def store(app):
    return app.store


def one(store: Store, sql: str, *params):
    return store.cursor().execute(sql, list(params)).fetchall()


def approved_id(store: Store) -> str:
    return one(store, "SELECT transaction_id FROM scores WHERE decision = 'approve' AND reasons = '[]' "
                      "ORDER BY transaction_id LIMIT 1")[0][0]


def flagged_id(store: Store) -> str:
    return one(store, "SELECT transaction_id FROM scores WHERE decision <> 'approve' ORDER BY transaction_id "
                      "LIMIT 1")[0][0]


def test_a_transaction_comes_with_its_score_case_and_label(scored, tmp_path):
    db = tmp_path / "e.duckdb"
    shutil.copy(scored[1], db)
    with Store(db) as store:
        tid = flagged_id(store)
        cases.decide(store, [tid], "confirmed_fraud", "ana", "card stolen")
        row = investigate.transaction(store, tid, "v1")
        stored = one(store, "SELECT fraud_probability, decision, reasons FROM scores WHERE transaction_id = ?", tid)
        assert (row["fraud_probability"], row["decision"], row["reasons"]) == stored[0]
        paid = one(store, "SELECT timestamp, customer_id, terminal_id, amount FROM transactions "
                          "WHERE transaction_id = ?", tid)[0]
        assert (row["timestamp"], row["customer_id"], row["terminal_id"], row["amount"]) == paid
        assert (row["case_status"], row["analyst"], row["note"]) == ("confirmed_fraud", "ana", "card stolen")
        assert row["is_fraud"] is True and row["label_source"] == "analyst"
        assert investigate.transaction(store, "no such id") is None


def test_a_cards_payments_and_a_terminals_days_match_sql(store):
    tid = flagged_id(store)
    row = investigate.transaction(store, tid, "v1")
    card = investigate.card_history(store, row["customer_id"], "v1")
    n, alerts, frauds = one(store, "SELECT count(*), count(*) FILTER (s.decision <> 'approve'), "
                                   "count(*) FILTER (t.is_fraud) FROM transactions t JOIN scores s "
                                   "USING (transaction_id) WHERE t.customer_id = ?", row["customer_id"])[0]
    assert (len(card), card["alert"].sum(), card["fraud"].sum()) == (n, alerts, frauds)
    assert card["timestamp"].is_monotonic_increasing and tid in set(card["transaction_id"])
    days = investigate.terminal_daily(store, row["terminal_id"], "v1")
    n, alerts, frauds, first, last = one(
        store, "SELECT count(*), count(*) FILTER (s.decision <> 'approve'), count(*) FILTER (t.is_fraud), "
               "min(t.timestamp)::DATE, max(t.timestamp)::DATE FROM transactions t JOIN scores s "
               "USING (transaction_id) WHERE t.terminal_id = ?", row["terminal_id"])[0]
    assert (days["transactions"].sum(), days["alerts"].sum(), days["frauds"].sum()) == (n, alerts, frauds)
    assert len(days) == (last - first).days + 1  # quiet days too, one row each
    assert days["fraud_share_30d"].between(0, 1).all()


def test_a_cards_tiny_scores_keep_three_significant_digits(store):
    customer, lowest = one(store, "SELECT t.customer_id, s.fraud_probability FROM transactions t JOIN scores s "
                                  "USING (transaction_id) WHERE s.model_version = 'v1' ORDER BY 2 LIMIT 1")[0]
    assert lowest < 0.0005  # 0 to three decimals
    card = investigate.card_history(store, customer, "v1")
    stored = dict(one(store, "SELECT t.transaction_id, s.fraud_probability FROM transactions t JOIN scores s "
                             "USING (transaction_id) WHERE s.model_version = 'v1' AND t.customer_id = ?", customer))
    for tid, score in zip(card["transaction_id"], card["score"]):
        assert score > 0 and score == pytest.approx(float(f"{stored[tid]:.3g}"), rel=1e-9)


def test_the_raster_columns_are_every_scored_payment(store):
    points = investigate.score_points(store, "v1")
    n, total = one(store, "SELECT count(*), sum(t.amount) FROM transactions t JOIN scores s USING (transaction_id) "
                          "WHERE s.model_version = 'v1'")[0]
    assert set(points) == {"time", "amount", "score"} and len(points["time"]) == n
    assert points["amount"].sum() == pytest.approx(total) and points["time"].dtype.kind == "M"


def test_the_raster_cache_is_one_per_process_and_follows_new_scores_after_a_minute(scored, tmp_path):
    db = tmp_path / "e.duckdb"
    shutil.copy(scored[1], db)
    app = FraudApp(Settings(home=scored[0], db=db))
    with app.store as store:
        first = app.score_points("v1")
        assert app.score_points("v1") is first  # a second session reuses it
        now = dt.datetime(2030, 1, 1)
        scores.insert_scored(store, [("new", now, "C1", "T1", 12.5, "EUR", None, "pos", None)],
                             [("new", "v1", 0.5, 50, "medium", "review", "[]", now)])
        assert app.score_points("v1") is first  # within its minute: new scores wait
        first.attrs["loaded"] -= application.POINTS_FRESH  # a minute on
        again = app.score_points("v1")
        assert again is not first and len(again) + again.attrs["left_out"] == len(first) + 1
        assert again.attrs["left_out"] == 1  # 2030, years after the rest: counted, not drawn
        assert len(app._points) == 1


def _brute_bins(x, y, score, x_range, y_range, rows, cols):
    """Each point tested against each cell's edges in exact arithmetic: [lower, upper), the last cell's upper
    edge included."""
    def within(v, lo, hi, i, n):
        a, b = lo + Fraction(hi - lo) * i / n, lo + Fraction(hi - lo) * (i + 1) / n
        return a <= Fraction(v) < b or (i == n - 1 and Fraction(v) == b)

    counts, sums = np.zeros((rows, cols), int), np.zeros((rows, cols))
    for xv, yv, s in zip(x.tolist(), y.tolist(), score.tolist()):
        for r in range(rows):
            for c in range(cols):
                if within(xv, *x_range, c, cols) and within(yv, *y_range, r, rows):
                    counts[r, c] += 1
                    sums[r, c] += s
    with np.errstate(invalid="ignore"):
        return counts, sums / counts


def test_binning_counts_and_averages_each_cell_as_a_brute_force_does():
    rng = np.random.default_rng(7)
    t0 = 1_522_540_800_000_000  # microseconds, as the view bins times
    x_range, y_range, (rows, cols) = (t0, t0 + 10_000), (0.0, 8.0), (4, 5)  # cells 2,000 wide and 2 high
    x = np.concatenate([rng.integers(t0 - 2_000, t0 + 12_000, 600),
                        t0 + np.array([0, 2_000, 4_000, 10_000, 10_000, 0, -1, 10_001, 5_000, 5_000])])
    y = np.concatenate([np.round(rng.uniform(-1, 9, 600), 2), [0, 2, 4, 8, 0, 8, 3, 3, 8.01, -0.01]])
    score = rng.uniform(0, 1, len(x))
    counts, means = bin_scores(x, y, score, x_range, y_range, (rows, cols))
    want_counts, want_means = _brute_bins(x, y, score, x_range, y_range, rows, cols)
    assert counts.shape == (rows, cols) and np.array_equal(counts, want_counts)
    np.testing.assert_allclose(means, want_means, rtol=1e-12)  # NaN where both are empty
    inside = (x >= x_range[0]) & (x <= x_range[1]) & (y >= y_range[0]) & (y <= y_range[1])
    assert counts.sum() == inside.sum() and 0 < inside.sum() < len(x)


def test_binning_puts_points_on_edges_in_the_cell_above_and_the_range_ends_inside():
    t0, x_range, y_range = 1_000_000, (1_000_000, 1_000_040), (0.0, 4.0)  # 4 columns of 10, 2 rows of 2
    x = np.array([t0, t0 + 10, t0 + 40, t0 + 40, t0 - 1, t0 + 41, t0 + 20])
    y = np.array([0.0, 2.0, 4.0, 1.0, 1.0, 1.0, 4.5])
    score = np.array([0.1, 0.2, 0.3, 0.5, 0.9, 0.9, 0.9])
    counts, means = bin_scores(x, y, score, x_range, y_range, (2, 4))
    assert counts.tolist() == [[1, 0, 0, 1], [0, 1, 0, 1]]  # the last three lie outside
    assert (means[0, 0], means[1, 1], means[0, 3], means[1, 3]) == (0.1, 0.2, 0.5, 0.3)


def test_binning_nothing_gives_empty_cells():
    for x, y in ((np.array([], np.int64), np.array([])), (np.array([5, 6]), np.array([1.0, 2.0]))):
        counts, means = bin_scores(x, y, np.full(len(x), 0.5), (100, 200), (0.0, 10.0), (3, 4))
        assert counts.shape == means.shape == (3, 4)
        assert not counts.any() and np.isnan(means).all()


def test_the_all_transactions_view_bins_the_payments_again_when_zoomed(app, store):
    points = app.score_points("v1")
    top = points.attrs["top"]
    chart = AllChart()
    chart.show(chart.prepare(points, None))
    source = chart.source

    def drawn() -> tuple[int, float]:
        payments, means = (source.data[name][0].astype(np.float64) for name in ("payments", "image"))
        return int(payments.sum()), float(np.nansum(payments * means) / payments.sum())

    sql = ("SELECT count(*), avg(s.fraud_probability) FROM transactions t JOIN scores s USING (transaction_id) "
           "WHERE s.model_version = 'v1' AND t.amount BETWEEN ? AND ? AND t.timestamp BETWEEN ? AND ?")
    n, mean = one(store, sql, 0, top, dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1))[0]
    assert drawn() == (n, pytest.approx(mean))  # at first: every payment up to the amount axis' top
    day = points["time"].iloc[len(points) // 2].normalize()
    ms = day.value // 1_000_000  # Bokeh's time axis counts milliseconds
    chart.figure._trigger_event(RangesUpdate(chart.figure, x0=ms, x1=ms + 86_400_000, y0=10.0, y1=100.0))
    n, mean = one(store, sql, 10.0, 100.0, day.to_pydatetime(), (day + dt.timedelta(days=1)).to_pydatetime())[0]
    assert 0 < n < len(points) and drawn() == (n, pytest.approx(mean))
    assert source.data["x"][0] == ms and source.data["dh"][0] == 90.0  # the cells span the view


def _bulk(store: Store, models_dir, tid: str) -> tuple[list, list, list]:
    """The bulk path for tid's day: every payment's features from the whole store, all rows explained."""
    day = investigate.transaction(store, tid)["timestamp"].date()
    table = features.batch_features(store, day, day)
    version, detector = registry.load(store, models_dir)
    result = scoring.score_matrix(detector, version, table.column("transaction_id"),
                                  features.feature_matrix(table), explain_all=True)
    at = table.column("transaction_id").to_pylist().index(tid)
    cols = [[result.column(f"reason{i}_{part}")[at].as_py() for i in (1, 2, 3)]
            for part in ("feature", "value", "contribution")]
    return cols[0], cols[1], cols[2]


def test_an_approved_row_is_explained_on_demand_as_the_bulk_path_would(scored, app, store):
    written = scored[2]
    tid = approved_id(store)
    reasons = app.explain(tid)
    assert len(reasons) == 3 and all(set(r) == {"feature", "value", "contribution", "text"} for r in reasons)
    names, values, contributions = _bulk(store, app.models_dir, tid)
    assert [r["feature"] for r in reasons] == names
    assert [r["value"] for r in reasons] == pytest.approx(values, abs=1e-9, nan_ok=True)
    assert [r["contribution"] for r in reasons] == pytest.approx(contributions, abs=1e-9)
    assert scoring.reason_line(reasons) == written[tid]["reasons"]  # as `score --out` wrote it


def test_a_flagged_row_explained_again_matches_its_stored_reasons(app, store):
    tid = flagged_id(store)
    stored = json.loads(one(store, "SELECT reasons FROM scores WHERE transaction_id = ?", tid)[0][0])
    again = app.explain(tid, version="v1")
    assert [r["feature"] for r in again] == [r["feature"] for r in stored]
    assert [r["contribution"] for r in again] == pytest.approx([r["contribution"] for r in stored], abs=1e-9)
    with pytest.raises(ValueError, match="no stored transaction"):
        app.explain("no such id")


CARD_ROWS = ".tabulator-row:has([tabulator-field=Country])"  # the card's payments in Investigate


def _texts(root) -> str:
    return " ".join(str(getattr(model, "text", "") or "") for model in root.references())


def styled_rows(table) -> list[int]:
    """The rows the browser is told to style, every cell of each."""
    styles = table.widget._get_style_data()["data"]
    assert all(len(cells) == len(table.value.columns) for cells in styles.values())
    return sorted(styles)


def test_the_view_builds_and_follows_the_focus(app, store):
    data = DataStore(app=app)
    view = InvestigateView(data_store=data)
    root = pn.panel(view).get_root()
    assert "open a case in the Review queue and click one of its alerts" in _texts(root)
    tid = approved_id(store)
    data.investigate(tid)  # what a click in the review queue does
    row = investigate.transaction(store, tid)
    assert view.transaction_id == tid
    shown = _texts(root)
    assert f"Transaction {tid}" in shown and row["customer_id"] in shown and row["terminal_id"] in shown
    reasons = app.explain(tid)
    assert list(view._why.source.data["text"]) == [r["text"] for r in reasons][::-1]  # top reason drawn on top
    table = view._card_table
    at = list(table.value["Transaction"]).index(tid)
    assert table.page == at // view_module.PAGE_SIZE + 1  # the page that holds it, where it is highlighted
    assert styled_rows(table) == [at]
    assert view._opening.styles == HIDDEN and view._detail.styles == view._all_slot.styles == SHOWN
    assert list(view._all.here.data["y"]) == [row["amount"]]  # marked among all the payments
    other = table.value["Transaction"].iloc[0]
    data.investigate(other)
    assert view.transaction_id == other and f"Transaction {other}" in _texts(root)
    assert styled_rows(table) == [0]  # the highlight moves with the transaction
    assert list(view._all.here.data["y"]) == [investigate.transaction(store, other)["amount"]]  # and the marker
    data.investigate("no such id")
    assert "No transaction with id" in _texts(root)


def test_a_transaction_that_could_not_be_fetched_says_so(app, store):
    data = DataStore(app=app)
    view = InvestigateView(data_store=data)
    root = pn.panel(view).get_root()
    tid = approved_id(store)
    data.investigate(tid)
    view.failed(RuntimeError("the chart's points"), "all")  # every payment's chart: the transaction stays
    assert f"Transaction {tid}" in _texts(root) and view._detail.visible
    view.failed(RuntimeError("the transaction's queries"), "")
    assert "Could not open" in _texts(root) and not view._detail.visible and view._notice.visible
    assert view._opening.styles == HIDDEN
    data.investigate(tid)  # asked again, it is fetched again
    assert f"Transaction {tid}" in _texts(root) and view._detail.visible and not view._notice.visible
    flagged = flagged_id(store)
    data.investigate(flagged)
    assert view._decide_row.visible
    view.failed(RuntimeError("the transaction's queries"), "")
    view.key("c")  # the alert is not on screen: no decision
    assert view.decision.message == "" and investigate.transaction(store, flagged)["case_status"] is None


def test_the_cards_table_and_its_download_speak_in_words(app, store):
    data = DataStore(app=app)
    view = InvestigateView(data_store=data)
    pn.panel(view).get_root()
    tid = flagged_id(store)
    data.investigate(tid)
    words = ["Transaction", "Time", "Terminal", "Amount", "Channel", "Country", "Fraud probability (%)", "Decision",
             "Alert", "Fraud"]
    shown = view._card_table.value
    assert list(shown.columns) == words
    row = shown.set_index("Transaction").loc[tid]
    p, decision = one(store, "SELECT fraud_probability, decision FROM scores WHERE transaction_id = ?", tid)[0]
    assert row["Fraud probability (%)"] == pytest.approx(100 * p, rel=5e-3)
    assert row["Decision"] == {"review": "sent to review", "decline": "declined"}[decision]
    download, = view._detail.select(pn.widgets.FileDownload)
    saved = list(csv.DictReader(download.callback().read().decode().splitlines()))
    assert list(saved[0]) == words and len(saved) == len(shown)
    assert [r["Transaction"] for r in saved] == list(shown["Transaction"])


def test_a_long_reason_is_drawn_on_short_lines_and_hovered_whole():
    long = "the latest reported fraud at this terminal was 12 days before this payment"
    drawn = ReasonsChart.prepare([{"text": long, "contribution": 1.5}, {"text": "amount 2.92", "contribution": -0.2}])
    assert drawn["text"] == ["amount 2.92", long]  # the hover's, whole
    lines = drawn["label"][1].split("\n")
    assert " ".join(lines) == long and len(lines) == 2 and max(map(len, lines)) <= 40
    assert drawn["label"][0] == "amount 2.92"


def test_the_all_transactions_colour_bar_reads_round_probabilities_evenly_spaced():
    bar, = AllChart().figure.select(type=ColorBar)
    ticks = list(bar.ticker.ticks)
    assert [bar.major_label_overrides[t] for t in ticks] == ["0.01%", "0.1%", "1%", "10%", "100%"]
    # A log scale from the first tick to the last: the powers of ten lie evenly along the bar.
    assert isinstance(bar.color_mapper, LogColorMapper)
    assert (bar.color_mapper.low, bar.color_mapper.high) == (ticks[0], ticks[-1])
    assert np.diff(np.log10(ticks)) == pytest.approx(np.ones(len(ticks) - 1))


def test_the_review_queue_counts_1_case_and_an_opened_case_starts_without_the_last_ones_line(app, store):
    data = DataStore(app=app)
    view = ReviewView(data_store=data)
    root = pn.panel(view).get_root()
    card = one(store, "SELECT t.customer_id FROM transactions t JOIN scores s USING (transaction_id) "
                      "WHERE s.model_version = 'v1' AND s.decision IN ('review', 'decline') "
                      "GROUP BY 1 HAVING count(*) = 1 ORDER BY 1 LIMIT 1")[0][0]
    view.dates, view.customer_id = data.bounds, card
    assert view.total == 1 and "Page 1 of 1 · 1 case" in _texts(root) and "1 cases" not in _texts(root)
    assert styled_rows(view._table) == [0]  # the keys' row
    view.customer_id = ""
    view.key("j")
    assert styled_rows(view._table) == [1]
    view.customer_id = card
    view.open(0)
    assert view.case.case_id is not None and f"card {card}" in _texts(root)
    assert view._case_slot.visible and not view._list.visible and view.case.shown == view.case.case_id
    view.case.decision.decide("escalated")
    assert view.case.decision.message.endswith("1 alert marked escalated.")
    view.case.key("Escape")  # back to the queue, and into another case
    assert view._list.visible and not view._case_slot.visible and view.case.shown is None
    view.customer_id = ""
    view.open(1)
    assert view.case.decision.message == ""


@pytest.mark.browser
@pytest.mark.slow
def test_in_the_browser_a_review_click_opens_the_transaction_and_its_card_rows_move_the_focus(scored, tmp_path,
                                                                                               page):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    local = ("http://127.0.0.1", "ws://127.0.0.1", "blob:http://127.0.0.1", "data:")
    page.on("request", lambda request: None if request.url.startswith(local)
            else errors.append(f"outside request: {request.url}"))
    db = tmp_path / "e.duckdb"
    shutil.copy(scored[1], db)
    shutil.copytree(scored[0] / "models", tmp_path / "models")
    srv = Server(tmp_path, db)
    try:
        srv.wait()
        page.goto(srv.url)
        first_id = open_first_case(page)
        page.locator(CASE_ROWS).first.locator("[tabulator-field=Transaction]").click()
        page.get_by_text(f"Transaction {first_id}").first.wait_for(timeout=30_000)
        page.get_by_text("payments, newest first").first.wait_for(timeout=10_000)
        rows = page.locator(CARD_ROWS)
        row = next(rows.nth(i) for i in range(3)
                   if rows.nth(i).locator("[tabulator-field=Transaction]").inner_text() != first_id)
        other = row.locator("[tabulator-field=Transaction]").inner_text()
        row.locator("[tabulator-field=Amount]").click()
        page.get_by_text(f"Transaction {other}").first.wait_for(timeout=30_000)
        # The title and the input are separate models; the input may follow a moment later.
        expect(page.get_by_placeholder("id, then Enter")).to_have_value(other, timeout=10_000)
    finally:
        srv.stop()
    assert errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_a_queue_click_opens_investigate_with_every_card_score_shown_and_no_bokeh_warning(scored, tmp_path, page):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    db = tmp_path / "e.duckdb"
    shutil.copy(scored[1], db)
    shutil.copytree(scored[0] / "models", tmp_path / "models")
    with Store(db) as store:
        low_id, low = one(store, "SELECT transaction_id, fraud_probability FROM scores ORDER BY 2 LIMIT 1")[0]
    assert low < 0.0005  # 0 to three decimals
    srv = Server(tmp_path, db)
    try:
        srv.wait()
        page.goto(srv.url)
        first_id = open_first_case(page)
        page.locator(CASE_ROWS).first.locator("[tabulator-field=Transaction]").click()  # the first message about
        # a table that arrived after the page loaded
        page.get_by_text(f"Transaction {first_id}").first.wait_for(timeout=30_000)
        page.get_by_text("payments, newest first").first.wait_for(timeout=10_000)
        box = page.get_by_placeholder("id, then Enter")
        box.fill(low_id)
        box.press("Enter")
        page.get_by_text(f"Transaction {low_id}").first.wait_for(timeout=30_000)
        rows = page.locator(CARD_ROWS)
        expect(rows.locator("[tabulator-field=Transaction]", has_text=re.compile(f"^{re.escape(low_id)}$"))
               ).to_have_count(1, timeout=10_000)  # its card's rows, not the last card's
        shown = dict(zip(rows.locator("[tabulator-field=Transaction]").all_inner_texts(),
                         rows.locator("[tabulator-field='Fraud probability (%)']").all_inner_texts()))
        assert float(shown[low_id]) == pytest.approx(100 * low, rel=5e-3)  # e.g. 0.00172 (%)
        assert len(shown) > 1 and all(float(text) > 0 for text in shown.values()), shown  # no empty cell
    finally:
        printed = srv.stop()
    assert "reference already known" not in printed
    assert errors == []


def test_the_queue_pager_changes_its_text_in_place(app, store):
    # A new pane at every page would make Bokeh walk the whole page's models again; the one pane's text changes.
    view = ReviewView(data_store=DataStore(app=app))
    root = pn.panel(view).get_root()
    view.dates = view.data_store.bounds
    pages = -(-view.total // QUEUE_PAGE)
    assert pages > 1

    def pager() -> list:
        return [m for m in root.references() if str(getattr(m, "text", "")).find(" · ") > 0
                and "Page " in str(m.text)]

    [before] = pager()
    view.key("n")
    [after] = pager()
    assert after is before and f"Page 2 of {pages:,}" in after.text
