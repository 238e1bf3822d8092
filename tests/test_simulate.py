import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from fraud_app import simulate

SMALL = dict(customers=300, terminals=600, days=40, seed=3)


@pytest.fixture(scope="module")
def small():
    return simulate.generate(**SMALL).to_pandas()


def test_same_seed_same_data_other_seed_other_data():
    a, b = simulate.generate(**SMALL), simulate.generate(**SMALL)
    assert a.equals(b)
    c = simulate.generate(**{**SMALL, "seed": 4})
    assert not a.equals(c)


def test_schema_and_value_ranges(small):
    table = simulate.generate(customers=20, terminals=40, days=3)
    assert table.column_names == ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount",
                                  "currency", "merchant_category", "channel", "country", "is_fraud",
                                  "label_time", "fraud_scenario"]
    assert table.schema.field("timestamp").type == pa.timestamp("us")
    df = small
    assert df.transaction_id.tolist() == [str(i) for i in range(len(df))]
    assert df.timestamp.is_monotonic_increasing
    assert df.timestamp.min() >= pd_ts("2018-04-01") and df.timestamp.max() < pd_ts("2018-05-11")
    assert (df.amount > 0).all() and (df.amount == df.amount.round(2)).all()
    assert set(df.channel) == {"pos", "online", "atm"}
    assert df.customer_id.str.fullmatch(r"C\d{5}").all() and df.terminal_id.str.fullmatch(r"T\d{5}").all()
    assert set(df.country) <= set(simulate.COUNTRIES) and (df.currency == "EUR").all()
    atm = df[df.channel == "atm"]
    assert (atm.merchant_category == "cash_withdrawal").all()


def pd_ts(text):
    import pandas as pd
    return pd.Timestamp(text)


def test_every_pattern_present_and_labels_consistent(small):
    df = small
    assert set(df.fraud_scenario) == {""} | set(simulate.SCENARIOS)
    fraud = df.is_fraud == 1
    assert (fraud == (df.fraud_scenario != "")).all()
    assert df.label_time[~fraud].isna().all()
    delay = (df.label_time[fraud] - df.timestamp[fraud]).dt.total_seconds() / 86400
    assert delay.min() >= 1 and delay.max() <= 60 and 3 < delay.median() < 15


def test_default_size_and_fraud_rate_match_the_handbook():
    table = simulate.generate()
    rate = np.asarray(table.column("is_fraud")).mean()
    assert 1_600_000 <= table.num_rows <= 1_950_000
    assert 0.006 <= rate <= 0.011


def test_pattern_signatures(small):
    df = small
    by = df.groupby("fraud_scenario")
    # Card testing: tiny online amounts.
    ct = by.get_group("card_testing")
    assert (ct.amount <= 3).all() and (ct.channel == "online").all()
    # Compromised cards spend online.
    assert (by.get_group("compromised_card_cnp").channel == "online").all()
    # Skimmed terminals are physical and every payment there during the compromise is fraud.
    skim = by.get_group("compromised_terminal")
    assert (skim.channel != "online").all()
    # Account takeover happens away from the card's usual country.
    home = df[df.is_fraud == 0].groupby("customer_id").country.agg(lambda s: s.mode().iat[0])
    ato = by.get_group("account_takeover")
    assert (ato.country != ato.customer_id.map(home)).mean() > 0.8
    # Large amounts dwarf the genuine ones.
    assert by.get_group("large_amount").amount.min() >= 250
    assert df[df.is_fraud == 0].amount.quantile(0.99) < 250


def test_progress_reported_in_order():
    seen = []
    simulate.generate(customers=10, terminals=10, days=2, progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_tiny_worlds_still_work():
    table = simulate.generate(customers=1, terminals=1, days=1)
    assert table.num_rows >= 1
    assert simulate.generate(start=dt.date(2020, 1, 1), customers=5, terminals=5, days=1) \
        .column("timestamp")[0].as_py().date() == dt.date(2020, 1, 1)


@pytest.mark.parametrize("kwargs, field", [
    (dict(customers=0), "customers"), (dict(terminals=-1), "terminals"), (dict(days=1.5), "days"),
    (dict(start="April"), "start"), (dict(seed=-2), "seed"), (dict(customers=True), "customers"),
])
def test_bad_arguments_name_the_argument(kwargs, field):
    with pytest.raises(ValueError, match=rf"^{field} "):
        simulate.generate(**kwargs)
