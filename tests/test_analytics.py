"""The overview's aggregates agree with the rows they summarise."""
import datetime as dt
from contextlib import contextmanager

import panel as pn
import pytest

from conftest import copy_of, run_cli
from fraud_app.store import Store, analytics


@pytest.fixture(scope="module")
def scored(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analytics")
    db = copy_of(trained, tmp)
    assert run_cli(tmp, "--db", str(db), "score").returncode == 0
    return db


@contextmanager
def overview(scored, tmp_path):
    """The Overview view on the scored database, with its DataStore and its Bokeh root."""
    from fraud_app.application import FraudApp
    from fraud_app.config import Settings
    from fraud_app.ui.datastore import DataStore
    from fraud_app.ui.overview import OverviewView

    app = FraudApp(Settings(home=tmp_path, db=scored))
    with app.store:
        data = DataStore(app=app)
        view = OverviewView(data_store=data)
        yield data, view, pn.panel(view).get_root()


def test_kpis_daily_and_top_lists_agree(scored):
    start, end = dt.date(2018, 5, 1), dt.date(2018, 5, 31)
    with Store(scored) as store:
        version = analytics.scored_version(store)
        scored = analytics.period(store, version, start, end)
        k, day, hist = scored.kpis, scored.daily, scored.histogram
        top = scored.top_risky("terminal_id", limit=5)
        by_hand = store.cursor().execute(
            "SELECT t.terminal_id, count(*) FILTER (s.decision <> 'approve') AS alerts FROM transactions t "
            "JOIN scores s USING (transaction_id) WHERE t.timestamp >= '2018-05-01' AND t.timestamp < '2018-06-01' "
            "GROUP BY ALL ORDER BY alerts DESC, t.terminal_id LIMIT 1").fetchone()
        n, frauds = store.cursor().execute(
            "SELECT count(*), count(*) FILTER (is_fraud) FROM transactions "
            "WHERE timestamp >= '2018-05-01' AND timestamp < '2018-06-01'").fetchall()[0]
    assert version == "v1"
    assert (k["transactions"], k["frauds"]) == (n, frauds) and 0 < k["alerts"] < n
    assert k["fraud_caught"] > k["fraud_missed"] >= 0 and k["alert_rate"] == k["alerts"] / n
    assert len(day) == 31 and day.transactions.sum() == n and day.alerts.sum() == k["alerts"]
    assert hist.n.sum() == n and hist.bin.between(0, 1).all()
    assert len(top) == 5 and top.alerts.is_monotonic_decreasing and top.alerts.iloc[0] > 0
    assert top.alerts.iloc[0] == by_hand[1]
    with pytest.raises(ValueError, match="by must be"):
        scored.top_risky("amount")


def test_a_hidden_view_redraws_only_when_shown_again(scored, tmp_path):
    with overview(scored, tmp_path) as (data, view, _):
        first = data.scored_period()
        view.on_screen = False
        data.period = (dt.date(2018, 5, 1), dt.date(2018, 5, 7))
        assert view.drawn == 0 and getattr(data, "_period_for", None)[2] != data.period  # nothing re-queried
        view.on_screen = True
        assert view.drawn == 1 and data.scored_period() is not first
        assert data.scored_period().kpis["transactions"] < first.kpis["transactions"]
        view.on_screen = False
        view.on_screen = True
        assert view.drawn == 1  # nothing changed meanwhile: no redraw


def test_the_overview_period_follows_a_period_chosen_elsewhere(scored, tmp_path):
    with overview(scored, tmp_path) as (data, view, root):
        data.period = (dt.date(2018, 5, 1), dt.date(2018, 5, 7))  # as the Monitoring view's picker sets it
        pickers = [m for m in root.references() if type(m).__name__ == "DateRangePicker"]
        assert len(pickers) == 1 and pickers[0].value == ("2018-05-01", "2018-05-07")


def test_the_overviews_top_tables_and_their_downloads_speak_in_words_and_percent(scored, tmp_path):
    import csv
    import io

    with overview(scored, tmp_path) as (data, view, _):
        top = data.scored_period().top_risky("customer_id")
        shown = view._tables["customer_id"].value
        download, = [w for w in view._content.select(pn.widgets.FileDownload) if w.filename == "top_cards.csv"]
        saved = list(csv.DictReader(io.StringIO(download.callback().getvalue().decode())))
    words = ["Card", "Payments", "Alerts", "Confirmed fraud", "Highest probability (%)", "Amount in alerts"]
    assert list(shown.columns) == words and list(saved[0]) == words
    assert shown["Highest probability (%)"].tolist() == pytest.approx((100 * top["top_score"]).round(1).tolist())
    assert [float(r["Highest probability (%)"]) for r in saved] == shown["Highest probability (%)"].tolist()


def test_the_data_view_counts_the_database_and_follows_a_change(scored, tmp_path):
    from fraud_app.application import FraudApp
    from fraud_app.config import Settings
    from fraud_app.ui.datastore import DataStore
    from fraud_app.ui.summary import SummaryView

    app = FraudApp(Settings(home=tmp_path, db=scored))
    with app.store:
        data = DataStore(app=app)
        view = SummaryView(data_store=data)
        pn.panel(view).get_root()
        cur = app.store.cursor()
        (count, cards, fraud), = cur.execute("SELECT count(*), count(DISTINCT customer_id), count(*) FILTER "
                                             "(WHERE is_fraud) FROM transactions").fetchall()
        shown = {name: card.value for name, card in view._cards.items()}
        assert (shown["Transactions"], shown["Customers"], shown["Labelled fraud"]) == (count, cards, fraud)
        assert shown["Fraud rate"] == pytest.approx(100 * fraud / count)
        assert "**Period:** 20" in view._span.object and "There is none yet." in view._backups.object
        loads = len(view._loads.value)
        app.backup("tester")
        data.refresh()  # what the Refresh button does: the view on screen reads the database again
        assert "The newest was taken" in view._backups.object and len(view._loads.value) == loads
