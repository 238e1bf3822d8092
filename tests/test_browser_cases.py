"""Cases in the browser: two analysts work the queue (the second is refused on the first's case), a lead gives
a case to someone, a viewer may not take one, an alert is decided from Investigate, and a case is confirmed
with the keyboard alone. Each writes its label and audit rows."""
import re

import pytest

from conftest import QUEUE_ROWS, note_box, open_first_case, scored_server, users_file
from fraud_app.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "a long enough password"
USERS = {"ana": "analyst", "bo": "analyst", "lee": "lead", "vic": "viewer"}
WAIT = 120_000


@pytest.fixture(scope="module")
def team(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cases")
    users = users_file(tmp, USERS, PASSWORD)
    with scored_server(trained, tmp, "login", FRAUD_APP_UI_USERS=str(users)) as srv:
        srv.seen = {}  # what the tests did, for the last one to find in the database
        yield srv


def signed_in(browser, url: str, user: str):
    """A page of its own (cookies and all) for `user`, signed in."""
    page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    page.goto(url)
    page.get_by_placeholder("user name").fill(user)
    page.get_by_placeholder("password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {user}").wait_for(timeout=WAIT)
    return page


def _case_title(page) -> str:
    return page.get_by_role("heading", name=re.compile(r"^Case .*: card ")).filter(visible=True).inner_text(
        timeout=WAIT)


def test_two_analysts_a_lead_and_a_viewer_work_cases(team, browser):
    ana, bo = signed_in(browser, team.url, "ana"), signed_in(browser, team.url, "bo")
    open_first_case(ana, timeout=WAIT)
    case = _case_title(ana).split()[1].rstrip(":")
    ana.get_by_role("button", name="Take").click()
    ana.get_by_text(f"Case {case} is now yours.").wait_for(timeout=WAIT)

    # bo opens the same case: held by ana, he may not take or decide it, and is told who holds it.
    open_first_case(bo, timeout=WAIT)
    assert _case_title(bo).split()[1].rstrip(":") == case
    bo.get_by_text("held by ana since").wait_for(timeout=WAIT)
    bo.get_by_role("button", name="Take").click()
    bo.get_by_text(f"case {case} is held by ana since").wait_for(timeout=WAIT)
    assert bo.get_by_role("button", name="Confirm fraud").is_disabled()

    # ana decides the whole case with a note; the hold ends and the note is on the thread.
    note_box(ana).fill("same skimmer on every payment")
    ana.get_by_role("button", name="Confirm fraud").click()
    ana.get_by_text(f"Case {case}: ").filter(has_text="marked confirmed fraud.").wait_for(timeout=WAIT)
    ana.get_by_text("same skimmer on every payment").filter(visible=True).first.wait_for(timeout=WAIT)

    # "My cases": ana holds none now; the lead gives the next case to bo, who then finds it under his.
    ana.get_by_role("button", name="◀ Back to the queue").click()
    ana.get_by_role("button", name="My cases").click()
    ana.get_by_text("Page 1 of 1 · 0 cases").wait_for(timeout=WAIT)
    lee = signed_in(browser, team.url, "lee")
    open_first_case(lee, timeout=WAIT)
    given = _case_title(lee).split()[1].rstrip(":")
    assert given != case
    lee.get_by_placeholder("give it to (user name)").fill("bo")
    lee.get_by_role("button", name="Assign").click()
    lee.get_by_text(f"Case {given} is now bo's.").wait_for(timeout=WAIT)

    # A viewer may look, not take.
    vic = signed_in(browser, team.url, "vic")
    open_first_case(vic, timeout=WAIT)
    vic.get_by_role("button", name="Take").click()
    vic.get_by_text("vic (viewer) may not decide cases").wait_for(timeout=WAIT)

    team.seen |= {"taken": case, "given": given}


def test_an_alert_is_decided_from_investigate(team, browser):
    page = signed_in(browser, team.url, "ana")
    tid = team.seen["taken"]  # the first alert of the case ana confirmed: she changes her mind on it
    page.get_by_role("button", name="Investigate", exact=True).click()
    box = page.get_by_placeholder("id, then Enter")
    box.fill(tid)
    box.press("Enter")
    page.get_by_text(f"Transaction {tid}").first.wait_for(timeout=WAIT)
    note_box(page).fill("customer confirmed it")
    page.get_by_role("button", name="Mark legitimate").click()
    page.get_by_text(f"Transaction {tid} marked legitimate.").wait_for(timeout=WAIT)


def test_the_keyboard_alone_confirms_a_case(team, browser):
    page = signed_in(browser, team.url, "bo")
    page.get_by_role("button", name="Review queue", exact=True).click()
    page.get_by_text("Click a case to open it").wait_for(timeout=WAIT)
    page.locator(QUEUE_ROWS).first.wait_for(timeout=WAIT)
    page.locator("body").click(position={"x": 5, "y": 500})  # the page has the keys, not a text box
    page.keyboard.press("?")
    page.get_by_text("open the case").wait_for(timeout=WAIT)
    page.keyboard.press("m")  # my cases: the one the lead gave bo
    page.get_by_text("Page 1 of 1 · 1 case").wait_for(timeout=WAIT)
    page.keyboard.press("Enter")
    page.get_by_text("Decisions apply to the ticked alerts").wait_for(timeout=WAIT)
    case = _case_title(page).split()[1].rstrip(":")
    assert case == team.seen["given"]
    page.keyboard.press("t")  # his already: it stays so
    page.get_by_text(f"Case {case} is now yours.").wait_for(timeout=WAIT)
    page.keyboard.press("j")
    page.keyboard.press("c")
    page.get_by_text(f"Case {case}: ").filter(has_text="marked confirmed fraud.").wait_for(timeout=WAIT)
    page.keyboard.press("Escape")
    page.get_by_text("Page 1 of 1 · 0 cases").wait_for(timeout=WAIT)  # decided, it is no longer his


def test_the_database_has_each_decision_hold_and_audit_row(team, browser_name):
    # browser_name keeps this test after the browser tests above (see test_browser_roles.py)
    log = team.stop()
    assert "Traceback" not in log
    seen = team.seen
    with Store(team.db) as store:
        def rows(sql: str, *params) -> list[tuple]:
            return store.cursor().execute(sql, list(params)).fetchall()

        assert rows("SELECT actor, action, entity_id, old_value, new_value FROM audit_log WHERE action IN "
                    "('take', 'assign', 'release') ORDER BY audit_id") == [
            ("ana", "take", seen["taken"], None, "ana"), ("lee", "assign", seen["given"], None, "bo")]
        assert ("vic", "decide") in rows("SELECT actor, entity FROM audit_log WHERE action = 'refused'")
        assert rows("SELECT case_id, analyst FROM case_holds") == []  # both cases decided
        tid = seen["taken"]  # confirmed with its case, then marked legitimate from Investigate
        ana = rows("SELECT DISTINCT status, note FROM cases WHERE analyst = 'ana' AND transaction_id <> ?", tid)
        assert set(ana) <= {("confirmed_fraud", "same skimmer on every payment")}
        assert rows("SELECT text FROM case_notes WHERE case_id = ?", tid) == [("same skimmer on every payment",)]
        assert rows("SELECT status, analyst, note FROM cases WHERE transaction_id = ?", tid) == [
            ("legitimate", "ana", "customer confirmed it")]
        assert rows("SELECT is_fraud, source, actor FROM labels WHERE transaction_id = ? ORDER BY label_id",
                    tid) == [(True, "analyst", "ana"), (False, "analyst", "ana")]
        assert rows("SELECT actor, old_value, new_value, note FROM audit_log WHERE action = 'case' AND entity_id = ? "
                    "ORDER BY audit_id", tid) == [("ana", "open", "confirmed_fraud", "same skimmer on every payment"),
                                                 ("ana", "confirmed_fraud", "legitimate", "customer confirmed it")]
        bo = rows("SELECT count(*), min(status), max(status) FROM cases WHERE analyst = 'bo'")[0]
        assert bo[0] >= 1 and bo[1] == bo[2] == "confirmed_fraud"
