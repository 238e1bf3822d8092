"""Live scoring (the path REST uses): validation, idempotency, velocity, durability, labels."""
import datetime as dt
import math

import pytest

from conftest import app_of, count
from fraud_app.features import FEATURE_NAMES
from fraud_app.importer import FieldError, parse_record
from fraud_app.live import ConflictError
from fraud_app.store import journal


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def record(i: int, **over) -> dict:
    base = {"transaction_id": f"live-{i}", "timestamp": f"2018-06-15T10:{i % 60:02d}:00", "customer_id": "C00007",
            "terminal_id": "T00042", "amount": 25.0 + i, "channel": "online", "country": "pt"}
    return parse_record({**base, **over}, "EUR")


@pytest.fixture
def app(trained, tmp_path):
    app = app_of(trained, tmp_path)
    app.start()
    yield app
    app.close()


@pytest.fixture
def live(app):
    return app.store, app.live


def stored(scorer, table: str = "transactions") -> int:
    scorer.flush()  # an answered payment reaches the database a moment after its journal (store/journal.py)
    return count(scorer.store, table)


def test_scores_and_journals_before_returning_then_stores(live):
    store, scorer = live
    before = stored(scorer)
    [result] = scorer.score([record(1)])
    # Durable on return: in the journal, or already in the database (which holds it before the journal empties).
    assert b'"live-1"' in journal.path_of(store.path).read_bytes() or count(store) == before + 1
    assert set(result) == {"transaction_id", "fraud_probability", "risk_score", "risk_level", "decision", "reasons",
                           "model_version", "scored_at"}
    assert 0 <= result["fraud_probability"] <= 1 and 0 <= result["risk_score"] <= 99
    assert result["model_version"] == "v1" and len(result["reasons"]) == 3
    assert all(r["feature"] in FEATURE_NAMES and r["text"] for r in result["reasons"])
    assert stored(scorer) == before + 1
    row = store.cursor().execute("SELECT country, currency, fraud_probability FROM transactions JOIN scores "
                                 "USING (transaction_id) WHERE transaction_id = 'live-1'").fetchall()
    assert row == [("PT", "EUR", result["fraud_probability"])]


def test_posting_again_returns_the_stored_result_and_stores_nothing(live):
    store, scorer = live
    first = scorer.score([record(2)])[0]
    n, s = stored(scorer), stored(scorer, "scores")
    assert scorer.score([record(2)]) == [first]
    assert (stored(scorer), stored(scorer, "scores")) == (n, s)


def test_a_stored_id_with_other_content_or_twice_in_a_batch_is_a_conflict(live):
    store, scorer = live
    first = scorer.score([record(2)])[0]
    n = stored(scorer)
    with pytest.raises(ConflictError) as caught:
        scorer.score([record(5), record(2, amount=999.0)])
    assert caught.value.index == 1 and caught.value.stored == first
    with pytest.raises(ConflictError) as caught:
        scorer.score([record(3), record(3)])
    assert caught.value.index == 1 and caught.value.transaction_id == "live-3"
    assert stored(scorer) == n  # a refused request stores nothing, not even its good items


def test_each_payment_is_history_for_the_next(live):
    _, scorer = live
    probe = record(99, timestamp="2018-06-15T10:59:59")
    seen = dict(zip(FEATURE_NAMES, scorer.engine.compute(probe)))["cust_count_1h"]
    scorer.score([record(i) for i in range(10, 15)])
    after = dict(zip(FEATURE_NAMES, scorer.engine.compute(probe)))
    assert after["cust_count_1h"] == seen + 5
    assert after["cust_distinct_terminals_1d"] >= 1


def test_a_fraud_label_counts_from_when_it_is_recorded(live):
    store, scorer = live
    scorer.score([record(20)])
    june = record(22, timestamp="2018-06-15T11:00:00")
    june_before = dict(zip(FEATURE_NAMES, scorer.engine.compute(june)))
    assert scorer.add_label("live-20", True, "chargeback", "feed") is True
    assert scorer.add_label("no-such-id", True, "chargeback", "feed") is False
    row = store.cursor().execute("SELECT is_fraud, label_time FROM transactions WHERE transaction_id = 'live-20'")
    is_fraud, label_time = row.fetchall()[0]
    assert is_fraud is True and abs(label_time - utcnow()) < dt.timedelta(minutes=1)
    assert stored(scorer, "labels") == 1
    assert store.cursor().execute("SELECT action, entity_id, new_value, note FROM audit_log "
                                  "WHERE action = 'label'").fetchall() == [("label", "live-20", "true", "chargeback")]
    # The label is known from now on: a payment now at that terminal sees it, one in June does not.
    now = dict(zip(FEATURE_NAMES, scorer.engine.compute(record(21, timestamp=utcnow().isoformat()))))
    june_after = dict(zip(FEATURE_NAMES, scorer.engine.compute(june)))
    assert now["term_known_frauds_1d"] == 1 and now["cust_known_frauds_7d"] == 1
    assert june_after["term_known_frauds_30d"] == june_before["term_known_frauds_30d"]
    assert math.isnan(june_after["term_fraud_age"]) == math.isnan(june_before["term_fraud_age"])


@pytest.mark.parametrize("change, field", [
    ({"transaction_id": None}, "transaction_id"), ({"transaction_id": "x" * 65}, "transaction_id"),
    ({"transaction_id": True}, "transaction_id"), ({"timestamp": "yesterday"}, "timestamp"),
    ({"timestamp": 12}, "timestamp"), ({"amount": -1}, "amount"), ({"amount": "12"}, "amount"),
    ({"amount": float("nan")}, "amount"), ({"amount": 1e9}, "amount"), ({"customer_id": ""}, "customer_id"),
    ({"terminal_id": []}, "terminal_id"), ({"currency": "EURO"}, "currency"), ({"channel": "phone"}, "channel"),
    ({"country": "P1"}, "country"), ({"merchant_category": 5}, "merchant_category"),
    ({"transaction_id": 2**63}, "transaction_id"),
    ({"customer_id": " \t"}, "customer_id"), ({"timestamp": "2018-02-29T10:00:00"}, "timestamp"),
    ({"timestamp": "2018-06-15T10:00:00+0200"}, "timestamp"), ({"timestamp": "1969-12-31T23:30:00-01:00"}, "timestamp"),
])
def test_bad_fields_are_named(change, field):
    good = {"transaction_id": 1, "timestamp": "2018-06-15T10:00:00+02:00", "customer_id": 7, "terminal_id": "T",
            "amount": 3, "is_fraud": True, "label_time": None}  # labels are ignored here
    parsed = parse_record(good, "EUR")
    assert parsed["transaction_id"] == "1" and parsed["timestamp"] == dt.datetime(2018, 6, 15, 8)
    with pytest.raises(FieldError) as caught:
        parse_record({**good, **change}, "EUR")
    assert caught.value.field == field


def test_unknown_fields_are_ignored_and_not_stored():
    good = {"transaction_id": "u1", "timestamp": "2018-06-15T10:00:00", "customer_id": "C", "terminal_id": "T",
            "amount": 3}
    assert parse_record({**good, "unknown_extra": {"kept": "out"}}, "EUR") == parse_record(good, "EUR")


def test_a_stored_but_unscored_transaction_is_scored_as_posted_and_not_stored_again(live):
    store, scorer = live
    n, s = stored(scorer), stored(scorer, "scores")
    existing = store.cursor().execute("SELECT transaction_id, timestamp, customer_id, terminal_id, amount "
                                      "FROM transactions LIMIT 1").fetchall()[0]
    posted = parse_record(dict(zip(("transaction_id", "timestamp", "customer_id", "terminal_id", "amount"),
                                   (existing[0], existing[1].isoformat(), *existing[2:]))), "EUR")
    [result] = scorer.score([posted])
    assert result["transaction_id"] == existing[0] and len(result["reasons"]) == 3
    assert (stored(scorer), stored(scorer, "scores")) == (n, s)


def test_a_review_decision_reaches_live_history_at_once(app, live):
    store, scorer = live
    scorer.score([record(30, terminal_id="T-review")])
    later = (utcnow() + dt.timedelta(minutes=1)).isoformat()  # a payment just after the decision
    probe = record(31, terminal_id="T-review", customer_id="C-other", timestamp=later)
    assert dict(zip(FEATURE_NAMES, scorer.engine.compute(probe)))["term_known_frauds_1d"] == 0
    assert app.decide_cases(["live-30"], "confirmed_fraud", "ana", None) == 1
    assert dict(zip(FEATURE_NAMES, scorer.engine.compute(probe)))["term_known_frauds_1d"] == 1
