"""The overview's aggregates agree with the rows they summarise."""
import datetime as dt

import pytest

from conftest import copy_of, run_cli
from fraud_app.store import Store, analytics


@pytest.fixture(scope="module")
def scored(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analytics")
    db = copy_of(trained, tmp)
    assert run_cli(tmp, "--db", str(db), "score").returncode == 0
    return db


def test_kpis_daily_and_top_lists_agree(scored):
    start, end = dt.date(2018, 5, 1), dt.date(2018, 5, 31)
    with Store(scored) as store:
        version = analytics.scored_version(store)
        k = analytics.kpis(store, version, start, end)
        day = analytics.daily(store, version, start, end)
        hist = analytics.score_histogram(store, version, start, end)
        top = analytics.top_risky(store, version, start, end, "terminal_id", limit=5)
        n, frauds = store.cursor().execute(
            "SELECT count(*), count(*) FILTER (is_fraud) FROM transactions "
            "WHERE timestamp >= '2018-05-01' AND timestamp < '2018-06-01'").fetchall()[0]
    assert version == "v1"
    assert (k["transactions"], k["frauds"]) == (n, frauds) and 0 < k["alerts"] < n
    assert k["fraud_caught"] > k["fraud_missed"] >= 0 and k["alert_rate"] == k["alerts"] / n
    assert len(day) == 31 and day.transactions.sum() == n and day.alerts.sum() == k["alerts"]
    assert hist.n.sum() == n and hist.bin.between(0, 1).all()
    assert len(top) == 5 and top.alerts.is_monotonic_decreasing and top.alerts.iloc[0] > 0
    with pytest.raises(ValueError, match="by must be"):
        analytics.top_risky(store, version, start, end, "amount")
