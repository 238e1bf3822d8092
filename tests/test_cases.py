"""Review decisions: status, implied label and audit trail land together, or not at all."""
import datetime as dt

import pytest

from conftest import count
from fraud_app.store import Store, cases, insert_table
from fraud_app import simulate


@pytest.fixture
def db(store):
    insert_table(store, simulate.generate(customers=20, terminals=40, days=3), "test")
    return store


def test_bulk_decision_records_case_label_and_audit(db):
    now = dt.datetime(2026, 1, 2, 3, 4, 5)
    assert cases.decide(db, ["1", "2", "2"], "confirmed_fraud", "ana", "same skimmer", now=now) == 2
    assert cases.case_of(db, "1")["status"] == "confirmed_fraud" and cases.case_of(db, "2")["analyst"] == "ana"
    rows = db.cursor().execute("SELECT transaction_id, is_fraud, label_time FROM transactions "
                               "WHERE transaction_id IN ('1', '2') ORDER BY 1").fetchall()
    assert rows == [("1", True, now), ("2", True, now)]
    assert db.cursor().execute("SELECT count(*) FROM labels WHERE source = 'analyst' AND actor = 'ana'").fetchone()[0] == 2
    # Changing one's mind is recorded as old -> new.
    cases.decide(db, ["1"], "legitimate", "bo", "refund was ours")
    audit = db.cursor().execute("SELECT actor, entity_id, old_value, new_value, note FROM audit_log "
                                "WHERE action = 'case' ORDER BY audit_id").fetchall()
    assert audit == [("ana", "1", "open", "confirmed_fraud", "same skimmer"),
                     ("ana", "2", "open", "confirmed_fraud", "same skimmer"),
                     ("bo", "1", "confirmed_fraud", "legitimate", "refund was ours")]
    assert db.cursor().execute("SELECT is_fraud FROM transactions WHERE transaction_id = '1'").fetchone()[0] is False


def test_escalation_leaves_the_label_alone(db):
    before = db.cursor().execute("SELECT is_fraud, label_time FROM transactions WHERE transaction_id = '3'").fetchall()
    cases.decide(db, ["3"], "escalated", "ana", "needs a second look")
    after = db.cursor().execute("SELECT is_fraud, label_time FROM transactions WHERE transaction_id = '3'").fetchall()
    assert before == after and cases.case_of(db, "3")["status"] == "escalated" and count(db, "labels") == 0


def test_bad_decisions_change_nothing(db):
    with pytest.raises(cases.CaseError, match="status must be one of"):
        cases.decide(db, ["1"], "maybe", "ana")
    with pytest.raises(cases.CaseError, match="no stored transaction 'nope'"):
        cases.decide(db, ["1", "nope"], "confirmed_fraud", "ana")
    with pytest.raises(cases.CaseError, match="no transactions selected"):
        cases.decide(db, [], "legitimate", "ana")
    assert count(db, "cases") == 0 and count(db, "labels") == 0
    assert db.cursor().execute("SELECT count(*) FROM audit_log WHERE action = 'case'").fetchone()[0] == 0


def test_alert_pages_filter_sort_and_hide_decided_cases(trained, tmp_path):
    from conftest import copy_of, run_cli
    from fraud_app.store import analytics

    db = copy_of(trained, tmp_path)
    assert run_cli(tmp_path, "--db", str(db), "score").returncode == 0
    with Store(db) as store:
        version = analytics.scored_version(store)
        first, total = cases.alert_page(store, version, size=10)
        assert total > 20 and len(first) == 10 and first.score.is_monotonic_decreasing
        second, _ = cases.alert_page(store, version, size=10, page=2)
        assert not set(first.transaction_id) & set(second.transaction_id)
        assert second.score.max() <= first.score.min()
        online, n_online = cases.alert_page(store, version, channel="online", sort="amount", size=5)
        assert (online.channel == "online").all() and online.amount.is_monotonic_decreasing and n_online <= total
        cases.decide(store, first.transaction_id[:3].tolist(), "legitimate", "ana")
        cases.decide(store, first.transaction_id[3:4].tolist(), "escalated", "ana")
        after, remaining = cases.alert_page(store, version, size=10)
        assert remaining == total - 3 and first.transaction_id.iloc[3] in set(after.transaction_id)
        decided, n = cases.alert_page(store, version, status="legitimate")
        assert n == 3 and set(decided.analyst) == {"ana"}
        with pytest.raises(cases.CaseError, match="sort must be"):
            cases.alert_page(store, version, sort="random")


def test_a_column_order_sorts_every_page_of_the_queue_in_sql(trained, tmp_path):
    from conftest import copy_of, run_cli
    from fraud_app.store import analytics

    db = copy_of(trained, tmp_path)
    assert run_cli(tmp_path, "--db", str(db), "score").returncode == 0
    with Store(db) as store:
        version = analytics.scored_version(store)
        amounts = [r[0] for r in store.cursor().execute(
            "SELECT t.amount FROM scores s JOIN transactions t USING (transaction_id) WHERE s.model_version = ? "
            "AND s.decision IN ('review', 'decline') ORDER BY t.amount DESC", [version]).fetchall()]
        assert len(amounts) > 50
        first, total = cases.alert_page(store, version, order=("amount", "desc"), size=25)
        second, _ = cases.alert_page(store, version, order=("amount", "desc"), size=25, page=2)
        assert total == len(amounts)
        assert first.amount.tolist() + second.amount.tolist() == amounts[:50]
        lowest, _ = cases.alert_page(store, version, sort="score", order=("amount", "asc"), size=5)
        assert lowest.amount.tolist() == sorted(amounts)[:5]
        newest, _ = cases.alert_page(store, version, order=("timestamp", "desc"), size=25)
        assert newest.timestamp.is_monotonic_decreasing
        for bad in [("top reason", "desc"), ("amount; DROP TABLE cases", "desc"), ("amount", "up"), ("amount",),
                    "amount"]:
            with pytest.raises(cases.CaseError, match="order must be one of"):
                cases.alert_page(store, version, order=bad)
