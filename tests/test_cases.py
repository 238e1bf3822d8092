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
