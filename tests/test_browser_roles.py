"""Roles in the browser: each role signs in, what it may do works, what it may not is refused in words, and the
audit log has both."""
import subprocess

import pytest

from conftest import BIN, cli_env, confirm_first_alert, scored_server
from fraud_app.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "a long enough password"
VIEWER = "<i>vic</i>"  # a name that is markup: shown as it is, never rendered


@pytest.fixture(scope="module")
def team(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("team")
    users = tmp / "users.json"
    for name, role in ((VIEWER, "viewer"), ("ana", "analyst"), ("lee", "lead")):
        subprocess.run([str(BIN / "fraud-app"), "user", "add", name, "--role", role, "--password-stdin", "--file",
                        str(users)], input=PASSWORD + "\n", text=True, check=True, env=cli_env(tmp), cwd=tmp,
                       capture_output=True)
    with scored_server(trained, tmp, "login", FRAUD_APP_UI_USERS=str(users)) as srv:
        yield srv


def sign_in(page, url: str, user: str) -> None:
    page.context.clear_cookies()
    page.goto(url)
    page.get_by_placeholder("user name").fill(user)
    page.get_by_placeholder("password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {user}").wait_for(timeout=120_000)


def train(page) -> None:
    page.get_by_role("button", name="Model", exact=True).click()
    page.get_by_role("button", name="Train new version").click()


def test_each_role_in_the_browser(team, page):
    sign_in(page, team.url, VIEWER)
    confirm_first_alert(page)
    page.get_by_text(f"Not decided: {VIEWER} (viewer) may not decide cases: that needs the analyst role").wait_for(
        timeout=60_000)

    sign_in(page, team.url, "ana")
    confirm_first_alert(page)
    page.get_by_text("1 alert marked confirmed fraud.").wait_for(timeout=60_000)
    train(page)
    page.get_by_text("Cannot train: ana (analyst) may not train models: that needs the lead role").wait_for(
        timeout=60_000)

    sign_in(page, team.url, "lee")
    train(page)
    page.get_by_text("Training on").first.wait_for(timeout=60_000)  # the job started, under lee's name
    page.get_by_text("(lee)").first.wait_for(timeout=60_000)
    team.stop()
    with Store(team.db) as store:
        rows = store.cursor().execute("SELECT actor, action, entity FROM audit_log WHERE action IN "
                                      "('refused', 'case') ORDER BY audit_id").fetchall()
    assert (VIEWER, "refused", "decide") in rows and ("ana", "refused", "train") in rows
    assert any(actor == "ana" and action == "case" for actor, action, _ in rows)
    assert not any(actor == "lee" and action == "refused" for actor, action, _ in rows)
