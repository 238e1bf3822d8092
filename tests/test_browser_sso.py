"""Single sign-on: a real OpenID Connect provider (oidc-provider-mock) on loopback, the app signing in through
it with Panel's generic OAuth provider, and the role taken from the provider's claim."""
import pytest
from oidc_provider_mock import User, run_server_in_thread

from conftest import confirm_first_alert, scored_server
from fraud_app.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PEOPLE = [User(sub="ana", claims={"email": "ana@example.org", "groups": ["staff", "fraud-analyst"]}),
          User(sub="vic", claims={"email": "vic@example.org", "groups": ["staff"]})]


@pytest.fixture(scope="module")
def provider():
    with run_server_in_thread(user_claims=PEOPLE) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def app(trained, tmp_path_factory, provider):
    tmp = tmp_path_factory.mktemp("sso")
    with scored_server(trained, tmp, FRAUD_APP_OIDC_ISSUER=provider, FRAUD_APP_OIDC_CLIENT_ID="fraud-app",
                       FRAUD_APP_OIDC_CLIENT_SECRET="a-client-secret", FRAUD_APP_OIDC_ROLE_PREFIX="fraud-") as srv:
        yield srv


def sign_in(page, url: str, who: str) -> None:
    page.context.clear_cookies()
    page.goto(url)
    page.get_by_role("button", name=who, exact=True).click()  # the provider's page: a predefined user
    page.get_by_text(f"Signed in as {who}@example.org").wait_for(timeout=120_000)


def test_sign_in_through_the_provider_with_the_claimed_role(app, page):
    sign_in(page, app.url, "ana")
    confirm_first_alert(page)
    page.get_by_text("1 alert marked confirmed fraud.").wait_for(timeout=60_000)

    sign_in(page, app.url, "vic")  # no fraud- group: a viewer
    confirm_first_alert(page)
    page.get_by_text("vic@example.org (viewer) may not decide cases").wait_for(timeout=60_000)
    app.stop()
    with Store(app.db) as store:
        rows = store.cursor().execute("SELECT actor, action, new_value FROM audit_log WHERE action IN "
                                      "('sign_in', 'case', 'refused') ORDER BY audit_id").fetchall()
    assert ("ana@example.org", "sign_in", "analyst") in rows and ("vic@example.org", "sign_in", "viewer") in rows
    assert any(actor == "ana@example.org" and action == "case" for actor, action, _ in rows)
    assert any(actor == "vic@example.org" and action == "refused" for actor, action, _ in rows)
