"""Authentication for a served app: the UI behind Panel's basic auth, the REST API behind its token, and
no non-loopback bind without both."""
import json
from urllib.parse import urlparse

import requests

from conftest import Server, copy_of, one_line_error, run_cli

TOKEN = "t0ken-for-tests-long-enough-0123456789"


def test_a_non_loopback_bind_needs_ui_auth_as_well_as_the_token(tmp_path):
    result = run_cli(tmp_path, "--db", str(tmp_path / "x.duckdb"), "serve", "--address", "0.0.0.0", "--no-show",
                     FRAUD_APP_API_TOKEN=TOKEN)
    line = one_line_error(result)
    assert "refusing to serve on 0.0.0.0" in line and "FRAUD_APP_UI_PASSWORD" in line
    assert "FRAUD_APP_API_TOKEN" not in line


def test_ui_needs_a_login_and_the_api_keeps_its_token(trained, tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"ana": "s3cret"}))
    srv = Server(tmp_path, copy_of(trained, tmp_path), FRAUD_APP_UI_USERS=str(users), FRAUD_APP_API_TOKEN=TOKEN)
    try:
        srv.wait("api/v1/health")
        anonymous = requests.get(srv.url, timeout=10)
        assert urlparse(anonymous.url).path == "/login" and "Sign in" in anonymous.text
        assert "cdn" not in anonymous.text.lower()  # the login page loads nothing from the internet
        with requests.Session() as browser:
            wrong = browser.post(srv.url + "login", data={"username": "ana", "password": "nope"}, timeout=10)
            assert "Sign in" in wrong.text and urlparse(browser.get(srv.url, timeout=10).url).path == "/login"
            browser.post(srv.url + "login", data={"username": "ana", "password": "s3cret"}, timeout=10)
            page = browser.get(srv.url, timeout=30)
            assert page.status_code == 200 and "<title>fraud_app</title>" in page.text and "Sign in" not in page.text
        assert requests.get(srv.url + "api/v1/health", timeout=10).status_code == 401
        assert requests.get(srv.url + "api/v1/health", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=10).status_code == 200
    finally:
        srv.stop()
