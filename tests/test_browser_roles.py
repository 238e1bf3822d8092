"""Roles in the browser: each role signs in and tries every action the page offers. What it may do works, and
the audit log names who did it; what it may not is refused in words in the page, and the audit log has the
refusal. API tokens and users are managed at the command line only: the page offers neither.

The tests share one served app and run in order: the lead's promote and rollback need the version the lead
trains, and the last test stops the server to read its audit log."""
import re

import pytest
from playwright.sync_api import expect

from conftest import CASE_ROWS, HEADER, note_box, open_first_case, scored_server, users_file
from fraud_app.access import Actor, Forbidden
from fraud_app.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "a long enough password"
VIEWER = "<i>vic</i>"  # a name that is markup: shown as it is, never rendered
USERS = {VIEWER: "viewer", "ana": "analyst", "lee": "lead"}
VIEWS = {  # nav button: the view's heading, and something only that view shows
    "Overview": ("Overview", "Fraud amount caught"),
    "Review queue": ("Review queue", "Click a case to open it"),
    "Investigate": ("Investigate", "Type a transaction id above"),
    "Model": ("Model and retraining", "Threshold simulator"),
    "Monitoring": ("Monitoring", "REST API latency"),
    "Data": ("Data", "Labelled fraud"),
}
DECISIONS = {"ana": ("Confirm fraud", "card reported stolen", "confirmed fraud"),  # button, note, result
             "lee": ("Mark legitimate", "customer confirmed the payment", "legitimate")}
LEAD_ONLY = ("import", "backup", "thresholds", "train", "promote", "rollback")
SAYS = {"decide": "Not decided", "import": "Cannot import", "backup": "Cannot back up", "thresholds": "Not saved",
        "train": "Cannot train", "promote": "Cannot promote", "rollback": "Cannot roll back"}
WAIT = 60_000
JOB_WAIT = 300_000  # training and re-scoring on a busy two-core machine


@pytest.fixture(scope="module")
def team(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("team")
    users = users_file(tmp, USERS, PASSWORD)
    with scored_server(trained, tmp, "login", FRAUD_APP_UI_USERS=str(users)) as srv:
        yield srv


def sign_in(page, url: str, user: str) -> None:
    page.context.clear_cookies()
    page.goto(url)
    page.get_by_placeholder("user name").fill(user)
    page.get_by_placeholder("password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {user}").wait_for(timeout=120_000)


def refusal(user: str, action: str) -> str:
    """What the page says when `user` tries `action`: the view's words, then the application's reason."""
    return f"{SAYS[action]}: {Forbidden(Actor(user, USERS[user]), action)}"


def open_view(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    heading, text = VIEWS[name]
    page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=WAIT)
    page.get_by_text(text).first.wait_for(timeout=WAIT)


def download(page, button: str, filename: str) -> list[str]:
    """The lines of the CSV file a button gives."""
    with page.expect_download(timeout=WAIT) as info:
        page.get_by_role("button", name=button).click()
    assert info.value.suggested_filename == filename
    with open(info.value.path()) as f:
        return f.read().splitlines()


def decide(page, button: str, note: str) -> None:
    """The first case opened, its first alert ticked, a note written, the decision pressed."""
    open_first_case(page, timeout=WAIT)
    page.locator(CASE_ROWS).first.locator("input[type=checkbox]").check(timeout=WAIT)
    note_box(page).fill(note)
    page.get_by_role("button", name=button).click()


def import_file(page, path) -> None:
    open_view(page, "Data")
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).click(timeout=WAIT)  # enabled once the file is in


def confirm(page, button: str) -> None:
    page.get_by_role("button", name=button).click()
    page.get_by_role("button", name="Yes, go ahead").click(timeout=WAIT)


@pytest.mark.parametrize("user", USERS)
def test_each_role_opens_every_view_downloads_and_decides_if_allowed(team, page, user):
    sign_in(page, team.url, user)
    for name in VIEWS:
        open_view(page, name)

    loads = download(page, "Download CSV", "loads.csv")  # the Data view, open last
    assert loads[0].startswith("import,") and any("generate" in line for line in loads[1:])
    open_view(page, "Review queue")
    cases = download(page, "Download these cases", "cases.csv")
    assert cases[0].startswith("Case,Card,") and len(cases) > 1

    if user in DECISIONS:
        button, note, result = DECISIONS[user]
        decide(page, button, note)
        page.get_by_text(f"1 alert marked {result}.").wait_for(timeout=WAIT)
    else:
        decide(page, "Confirm fraud", "looks stolen")
        page.get_by_text(refusal(user, "decide") + ".").wait_for(timeout=WAIT)


@pytest.mark.parametrize("user", [VIEWER, "ana"])
def test_what_only_a_lead_may_do_is_refused_in_words(team, page, tmp_path, user):
    sign_in(page, team.url, user)
    csv = tmp_path / "mine.csv"
    csv.write_text(HEADER + "\nmine-1,2018-05-15 10:00:00,C1,T1,12.5\n")
    import_file(page, csv)
    page.get_by_text(refusal(user, "import")).wait_for(timeout=WAIT)
    page.get_by_role("button", name="Back up now").click()
    page.get_by_text(refusal(user, "backup")).wait_for(timeout=WAIT)

    open_view(page, "Model")
    page.get_by_role("button", name="Save as review threshold").click()
    page.get_by_text(refusal(user, "thresholds") + ".").wait_for(timeout=WAIT)
    page.get_by_role("button", name="Train new version").click()
    page.get_by_text(refusal(user, "train")).wait_for(timeout=WAIT)
    confirm(page, "Promote")
    page.get_by_text(refusal(user, "promote")).wait_for(timeout=WAIT)
    confirm(page, "Roll back")
    page.get_by_text(refusal(user, "rollback")).wait_for(timeout=WAIT)


def test_the_lead_imports_backs_up_sets_thresholds_trains_promotes_and_rolls_back(team, page, tmp_path):
    sign_in(page, team.url, "lee")
    csv = tmp_path / "roles.csv"
    csv.write_text(HEADER + "\n" + "".join(f"roles-{i},2018-05-15 10:0{i}:00,C1,T1,{i + 10}\n" for i in range(3)))
    import_file(page, csv)
    page.get_by_text(re.compile(r"Importing roles\.csv finished in .*: 3 rows imported")).wait_for(timeout=JOB_WAIT)
    page.get_by_role("button", name="Back up now").click()
    page.get_by_text(re.compile("Backing up finished in")).wait_for(timeout=JOB_WAIT)
    page.get_by_text("The newest was taken").wait_for(timeout=WAIT)

    open_view(page, "Model")
    page.get_by_role("button", name="Save as review threshold").click()
    page.get_by_text("Saved: v1 now sends scores").wait_for(timeout=WAIT)
    page.get_by_role("button", name="Train new version").click()
    page.get_by_text("(lee)").first.wait_for(timeout=WAIT)  # the job runs under lee's name
    page.get_by_text(re.compile(r"Training on .* finished in")).wait_for(timeout=JOB_WAIT)
    page.locator(".tabulator-cell[tabulator-field=version]", has_text="v2").wait_for(timeout=WAIT)
    expect(page.get_by_label("Version", exact=True)).to_have_value("v2", timeout=WAIT)  # the new one, chosen
    expect(page.locator("progress:visible")).to_have_count(0, timeout=WAIT)  # the bar goes with the job

    confirm(page, "Promote")
    page.get_by_text("v2 is in use (was v1); live scoring switched.").wait_for(timeout=WAIT)
    page.get_by_text(re.compile("Scoring stored transactions with v2 finished in")).wait_for(timeout=JOB_WAIT)
    confirm(page, "Promote")  # again: it is in use already
    page.get_by_text("v2 is already in use; nothing changed.").wait_for(timeout=WAIT)
    confirm(page, "Roll back")
    page.get_by_text("Rolled back: v1 is in use again; live scoring switched.").wait_for(timeout=WAIT)


def test_the_audit_log_names_who_did_each_action_and_who_was_refused(team, browser_name):
    # browser_name parametrizes this test as the browser tests above are: pytest then keeps it after them
    # (it moves tests with the same session-scoped parameter together, which put this one first in a full run).
    log = team.stop()
    assert "Traceback" not in log
    with Store(team.db) as store:
        rows = store.cursor().execute("SELECT actor, action, entity, entity_id, new_value, note FROM audit_log "
                                      "ORDER BY audit_id").fetchall()
        versions = store.cursor().execute("SELECT version, status FROM model_versions ORDER BY version").fetchall()
    actions = [action for _, action, *_ in rows]
    assert "sign_in" in actions, "the tests above sign in first"
    rows = rows[actions.index("sign_in"):]  # what the served app wrote
    signed_in = {(actor, role) for actor, action, _, _, role, _ in rows if action == "sign_in"}
    assert signed_in == set(USERS.items())  # viewing: each session is logged with its role

    refused = [(actor, entity, note) for actor, action, entity, _, _, note in rows if action == "refused"]
    assert {(actor, entity) for actor, entity, _ in refused} == {
        (VIEWER, "decide"), *{(user, action) for user in (VIEWER, "ana") for action in LEAD_ONLY}}
    assert all(note == str(Forbidden(Actor(actor, USERS[actor]), entity)) for actor, entity, note in refused)

    decided = {(actor, new, note) for actor, action, _, _, new, note in rows if action == "case"}
    assert decided == {("ana", "confirmed_fraud", "card reported stolen"),
                       ("lee", "legitimate", "customer confirmed the payment")}
    done = {(actor, action, entity_id) for actor, action, _, entity_id, _, _ in rows
            if action in ("train", "promote", "rollback", "thresholds")}
    assert done == {("lee", "thresholds", "v1"), ("lee", "train", "v2"), ("lee", "promote", "v2"),
                    ("lee", "rollback", "v1")}
    assert [action for _, action, *_ in rows].count("promote") == 1  # promoting it again changed nothing
    assert any(actor == "lee" and action == "import" and note.endswith("roles.csv")
               for actor, action, _, _, _, note in rows)
    assert any(actor == "lee" and action == "backup" for actor, action, *_ in rows)
    assert versions == [("v1", "active"), ("v2", "rolled_back")]
