"""One feature definition, two computations: the batch SQL and the online engine must agree exactly."""
import datetime as dt

import numpy as np
import pytest

from fraud_app import features, simulate
from fraud_app.store import Store, insert_table

DELAY = 7
COLS = ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount", "channel", "country"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """~35k simulated payments, edited to cover the awkward cases: labels with no label_time (known after the
    delay), a label_time before its payment, payments at the very same instant, and missing channel/country."""
    path = tmp_path_factory.mktemp("features") / "f.duckdb"
    with Store(path) as store:
        insert_table(store, simulate.generate(customers=600, terminals=1200, days=30, seed=1), "test")
        cur = store.cursor()
        cur.execute("UPDATE transactions SET label_time = NULL WHERE is_fraud AND hash(transaction_id) % 2 = 0")
        cur.execute("UPDATE transactions SET label_time = timestamp - INTERVAL 1 DAY "
                    "WHERE is_fraud AND hash(transaction_id) % 7 = 0")
        cur.execute("UPDATE transactions SET channel = NULL, country = NULL WHERE hash(transaction_id) % 13 = 0")
        # Same instant, same card: a second payment 0 us after another one.
        cur.execute("INSERT INTO transactions SELECT 'twin-' || transaction_id, timestamp, customer_id, 'T00001', "
                    "amount + 1, currency, merchant_category, channel, country, false, NULL "
                    "FROM transactions WHERE hash(transaction_id) % 50 = 0")
    return path


def batch_frame(store, **kw):
    frame = features.batch_features(store, label_delay_days=DELAY, **kw).to_pandas()
    return frame.sort_values(["timestamp", "transaction_id"]).reset_index(drop=True)


def replay(store, engine=None, since=dt.datetime(1900, 1, 1)) -> tuple[list[str], np.ndarray]:
    """Each stored payment from `since` on, in time order: features first, then it joins the history."""
    rows = store.cursor().execute(
        f"SELECT {', '.join(COLS)}, is_fraud, greatest(coalesce(label_time, timestamp + INTERVAL {DELAY} DAY), "
        "timestamp) FROM transactions WHERE timestamp >= ? ORDER BY timestamp, transaction_id", [since]).fetchall()
    engine = engine or features.OnlineFeatures(DELAY)
    ids, out = [], []
    for row in rows:
        tx = dict(zip(COLS, row))
        ids.append(tx["transaction_id"])
        out.append(engine.compute(tx))
        engine.add(tx)
        if row[len(COLS)]:
            engine.add_label(tx["customer_id"], tx["terminal_id"], row[len(COLS) + 1], tx["timestamp"])
    return ids, np.array(out, dtype=float)


def assert_same(x: np.ndarray, y: np.ndarray, ids: list[str]) -> None:
    """Equal within 1e-9, NaN matching NaN (parallel window sums may round in another order)."""
    for j, name in enumerate(features.FEATURE_NAMES):
        a, b = x[:, j], y[:, j]
        same = (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=1e-9, atol=1e-9)
        assert same.all(), f"{name}: first mismatch at {ids[np.flatnonzero(~same)[0]]}: {a[~same][0]} vs {b[~same][0]}"


def test_online_replay_equals_batch(db):
    with Store(db) as store:
        batch = batch_frame(store)
        ids, online = replay(store)
    assert len(ids) >= 20_000
    assert batch.transaction_id.tolist() == ids
    matrix = batch[features.FEATURE_NAMES].to_numpy(dtype=float)
    assert_same(matrix, online, ids)
    # The replay is not trivially all-NaN or all-zero: the risky signals do fire.
    for name in ("term_known_frauds_7d", "cust_known_frauds_30d", "cust_distinct_terminals_7d", "amount_ratio_30d"):
        assert np.nanmax(matrix[:, features.FEATURE_NAMES.index(name)]) > 0, name


def test_engine_loaded_from_the_store_continues_where_it_ends(db, tmp_path):
    """The server starts from stored history: payments after it get the same features as in batch."""
    since = dt.datetime(2018, 4, 29)
    copy = tmp_path / "history.duckdb"
    copy.write_bytes(db.read_bytes())
    with Store(copy) as store:
        store.cursor().execute("DELETE FROM transactions WHERE timestamp >= ?", [since])
        engine = features.load_online(store, DELAY)
    with Store(db) as store:
        batch = batch_frame(store, start=since)
        ids, online = replay(store, engine, since)
    assert len(ids) > 1000 and batch.transaction_id.tolist() == ids
    assert_same(batch[features.FEATURE_NAMES].to_numpy(dtype=float), online, ids)


def test_first_seen_card_and_terminal(db):
    engine = features.OnlineFeatures(DELAY)
    values = dict(zip(features.FEATURE_NAMES, engine.compute(
        {"timestamp": dt.datetime(2018, 4, 7, 23, 30), "customer_id": "new", "terminal_id": "new",
         "amount": 12.5, "channel": "online", "country": "PT"})))
    assert values["amount"] == 12.5 and values["hour"] == 23 and values["weekend"] == 1 and values["is_online"] == 1
    assert values["cust_count_30d"] == 0 and values["term_count_7d"] == 0
    assert np.isnan(values["cust_mean_30d"]) and np.isnan(values["amount_ratio_30d"])
    assert np.isnan(values["seconds_since_prev"]) and np.isnan(values["term_risk_7d"])


def test_no_feature_sees_a_label_before_it_is_known(db, tmp_path):
    """Changing every label that becomes known after T leaves all features before T unchanged."""
    cutoff = dt.datetime(2018, 4, 20)
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(db.read_bytes())
    with Store(db) as store:
        before = batch_frame(store, end=cutoff)
    with Store(copy) as store:
        store.cursor().execute(
            f"UPDATE transactions SET is_fraud = NOT coalesce(is_fraud, false), label_time = ? "
            f"WHERE greatest(coalesce(label_time, timestamp + INTERVAL {DELAY} DAY), timestamp) >= ? "
            "OR NOT is_fraud", [dt.datetime(2018, 4, 25), cutoff])
        after = batch_frame(store, end=cutoff)
        changed = store.cursor().execute("SELECT count(*) FROM transactions WHERE is_fraud").fetchone()[0]
    assert changed > 1000
    assert len(before) > 10_000 and before.transaction_id.equals(after.transaction_id)
    assert_same(before[features.FEATURE_NAMES].to_numpy(float), after[features.FEATURE_NAMES].to_numpy(float),
                before.transaction_id.tolist())


def test_reason_texts_read_as_business_words():
    assert features.reason_text("amount_ratio_30d", 5.23) == "amount 5.2x this card's 30-day average"
    assert features.reason_text("amount_ratio_30d", 0.037) == "amount 0.037x this card's 30-day average"
    assert features.reason_text("term_known_frauds_7d", 3.0) == "frauds reported at this terminal in 7 days: 3"
    assert "not available" in features.reason_text("amount_ratio_30d", float("nan"))



def test_every_feature_has_plain_words():
    words = features.FEATURE_WORDS
    assert list(words) == features.FEATURE_NAMES  # every feature, in the model's order, and nothing else
    for name, text in words.items():
        assert text.strip() == text and len(text) >= 5 and text[0].isupper(), (name, text)
        assert "_" not in text and "{" not in text, (name, text)  # no column names or unfilled windows
    assert len(set(words.values())) == len(words)  # a chart's categories and a selector's options must differ
    assert words["cust_fraud_age"] == "Time since the card's latest reported fraud"
    assert words["term_count_7d"] == "Payments at the terminal, last 7 days"
