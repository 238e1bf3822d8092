"""Cases per card: which alerts form a case, taking and releasing, deciding all or some, notes, and the holds
the application object enforces for every role."""
import datetime as dt

import pytest

from fraud_app.access import Actor, Forbidden
from fraud_app.application import FraudApp
from fraud_app.config import Settings
from fraud_app.store import Store, card_cases, cases

T0 = dt.datetime(2026, 3, 1, 9)
ANA, BO, LEA, VIC = Actor("ana", "analyst"), Actor("bo", "analyst"), Actor("lea", "lead"), Actor("vic", "viewer")
# transaction id: card, days after T0, fraud probability (>= 0.5 is an alert here)
PAYMENTS = {"a1": ("C1", 0, 0.9), "a2": ("C1", 3, 0.7), "a3": ("C1", 9, 0.8),  # a3 is 6 days after a2: same case
            "a4": ("C1", 20, 0.95),  # 11 days after a3: a case of its own
            "a5": ("C1", 1, 0.1),  # not an alert: in no case
            "b1": ("C2", 2, 0.6), "b2": ("C2", 2.5, 0.99)}


def _fill(store: Store) -> None:
    cur = store.cursor()
    for tid, (card, days, p) in PAYMENTS.items():
        when = T0 + dt.timedelta(days=days)
        cur.execute("INSERT INTO transactions (transaction_id, timestamp, customer_id, terminal_id, amount, currency) "
                    "VALUES (?, ?, ?, 'T1', ?, 'EUR')", [tid, when, card, 100 * p])
        cur.execute("INSERT INTO scores VALUES (?, 'v1', ?, ?, ?, ?, '[]', ?)",
                    [tid, p, int(99 * p), "high" if p >= 0.5 else "low", "review" if p >= 0.5 else "approve", when])


@pytest.fixture
def app(tmp_path):
    settings = Settings(home=tmp_path, db=tmp_path / "c.duckdb")
    store = Store(settings.db_path)
    _fill(store)
    app = FraudApp(settings, store=store)
    yield app
    app.close()


def _audit(app, action):
    return app.store.cursor().execute("SELECT actor, entity_id, old_value, new_value FROM audit_log "
                                      "WHERE action = ? ORDER BY audit_id", [action]).fetchall()


def test_a_cards_alerts_within_the_window_form_one_case(app):
    frame, total = card_cases.case_page(app.store, "v1", 7, sort="age")
    assert total == 3
    assert frame["case_id"].tolist() == ["a1", "b1", "a4"]
    assert frame["alerts"].tolist() == [3, 2, 1]
    assert frame["top_score"].tolist() == [0.9, 0.99, 0.95]
    assert frame["at_risk"].round(2).tolist() == [240.0, 159.0, 95.0]
    # A wider window joins the card's fourth alert to its first case.
    frame, total = card_cases.case_page(app.store, "v1", 14, sort="age")
    assert total == 2 and frame["alerts"].tolist() == [4, 2]
    assert card_cases.case_alerts(app.store, "v1", 7, "a1")["transaction_id"].tolist() == ["a1", "a2", "a3"]


def test_filters_sorts_and_pages(app):
    assert card_cases.case_page(app.store, "v1", 7, sort="score")[0]["case_id"].tolist() == ["b1", "a4", "a1"]
    assert card_cases.case_page(app.store, "v1", 7, sort="amount")[0]["case_id"].tolist() == ["a1", "b1", "a4"]
    assert card_cases.case_page(app.store, "v1", 7, customer_id="C2")[0]["case_id"].tolist() == ["b1"]
    assert card_cases.case_page(app.store, "v1", 7, min_score=0.96)[1] == 1
    assert card_cases.case_page(app.store, "v1", 7, start=dt.date(2026, 3, 15))[0]["case_id"].tolist() == ["a4"]
    page, total = card_cases.case_page(app.store, "v1", 7, size=2, page=2, sort="age")
    assert page["case_id"].tolist() == ["a4"] and total == 3
    assert card_cases.case_page(app.store, "v1", 7, size=2, page=9) [1] == 3
    with pytest.raises(cases.CaseError, match="sort must be one of"):
        card_cases.case_page(app.store, "v1", 7, sort="amount; DROP TABLE cases")


def test_a_held_case_is_refused_to_others_and_names_its_holder(app):
    assert app.take_case("a1", ANA) is None
    with pytest.raises(cases.CaseError, match="held by ana"):
        app.take_case("a1", BO)
    with pytest.raises(cases.CaseError, match="held by ana"):
        app.decide_case("a1", "confirmed_fraud", BO)
    with pytest.raises(cases.CaseError, match="a2 is in case a1, held by ana"):
        app.decide_cases(["a2"], "legitimate", BO, None)  # one alert at a time, e.g. from Investigate
    with pytest.raises(Forbidden, match="may not give or take away cases others hold"):
        app.release_case("a1", BO)
    assert card_cases.case_page(app.store, "v1", 7, holder="ana")[0]["case_id"].tolist() == ["a1"]
    assert card_cases.case_page(app.store, "v1", 7, holder="bo")[1] == 0
    assert cases.case_of(app.store, "a2") is None  # nothing decided by the refusals
    assert _audit(app, "take") == [("ana", "a1", None, "ana")]


def test_deciding_a_case_labels_its_alerts_and_ends_the_hold(app):
    app.take_case("a1", ANA)
    assert app.decide_case("a1", "confirmed_fraud", ANA, "card skimmed") == ["a1", "a2", "a3"]
    labels = app.store.cursor().execute("SELECT transaction_id, is_fraud FROM transactions "
                                        "WHERE customer_id = 'C1' ORDER BY 1").fetchall()
    assert labels == [("a1", True), ("a2", True), ("a3", True), ("a4", None), ("a5", None)]
    assert card_cases.holder_of(app.store, "a1") is None
    assert card_cases.case_page(app.store, "v1", 7, status="decided")[0]["case_id"].tolist() == ["a1"]
    assert card_cases.thread(app.store, "v1", 7, "a1")["text"].tolist() == ["card skimmed"]
    assert [r[1] for r in _audit(app, "case")] == ["a1", "a2", "a3"]


def test_deciding_only_the_ticked_alerts_keeps_the_case_open(app):
    app.take_case("a1", ANA)
    assert app.decide_case("a1", "legitimate", ANA, None, ["a2"]) == ["a2"]
    assert card_cases.holder_of(app.store, "a1")[0] == "ana"
    frame, _ = card_cases.case_page(app.store, "v1", 7, customer_id="C1", sort="age")
    assert frame["undecided"].tolist()[0] == 2 and frame["state"].tolist()[0] == "open"
    with pytest.raises(cases.CaseError, match="b1 is not an alert of case a1"):
        app.decide_case("a1", "legitimate", ANA, None, ["b1"])


def test_leads_assign_and_release_others_cases_and_viewers_do_nothing(app):
    app.take_case("a1", ANA)
    with pytest.raises(Forbidden):
        app.take_case("b1", ANA, to="bo")  # an analyst takes for themselves only
    assert app.take_case("a1", LEA, to="bo") == "ana"
    assert card_cases.holder_of(app.store, "a1")[0] == "bo"
    assert app.release_case("a1", LEA) == "bo"
    with pytest.raises(Forbidden):
        app.take_case("b1", VIC)
    with pytest.raises(Forbidden):
        app.note_case("b1", "looks fine", VIC)
    assert _audit(app, "assign") == [("lea", "a1", "ana", "bo")]
    assert _audit(app, "release") == [("lea", "a1", "bo", None)]
    assert app.store.cursor().execute("SELECT count(*) FROM audit_log WHERE action = 'refused'").fetchone()[0] == 3


def test_notes_form_a_thread_with_earlier_single_alert_decisions(app):
    cases.decide(app.store, ["a2"], "escalated", "bo", "asked the bank")  # as before cases existed
    app.note_case("a1", "customer called back", ANA)
    with pytest.raises(cases.CaseError, match="note: write something"):
        app.note_case("a1", "   ", ANA)
    with pytest.raises(cases.CaseError, match="no case 'zz'"):
        app.note_case("zz", "hello", ANA)
    notes = card_cases.thread(app.store, "v1", 7, "a1")
    assert notes[["author", "text"]].values.tolist() == [["bo", "asked the bank"], ["ana", "customer called back"]]
    frame, _ = card_cases.case_page(app.store, "v1", 7, customer_id="C1", sort="age")
    assert frame["undecided"].tolist() == [3, 1]  # an escalated alert still waits for a decision


def test_a_decided_case_cannot_be_taken(app):
    app.decide_case("b1", "legitimate", ANA)
    with pytest.raises(cases.CaseError, match="is decided"):
        app.take_case("b1", BO)
