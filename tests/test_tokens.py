"""Named API tokens with scopes: the `fraud-app token` commands, each scope on each route over real HTTP, the
refusals in the audit log, revocation, the env token as admin, and what the database keeps of a token."""
import hashlib
import json
import re

import pytest
import requests

from conftest import BIN, Server, app_of, copy_of, nullable_as_type, one_line_error, run_cli
from fraud_app.access import Actor, Forbidden
from fraud_app.api import HANDLERS
from fraud_app.store import Store

ENV_TOKEN = "env-admin-token-0123456789-0123456789"
SECRET = re.compile(r"fa_[A-Za-z0-9_-]{43}")
POSTED = {"/api/v1/score": "score", "/api/v1/labels": "label"}
READS = [h.route for h in HANDLERS if h.SUPPORTED_METHODS == ("GET",) and h.action == "view"]


def tx(i, **over):
    return {"transaction_id": f"tok-{i}", "timestamp": "2018-06-20T12:00:00Z", "customer_id": "C00011",
            "terminal_id": "T00100", "amount": 40.0 + i, **over}


def create(tmp_path, db, name, *scopes) -> str:
    result = run_cli(tmp_path, "--db", str(db), "token", "create", name, *[a for s in scopes for a in ("--scope", s)])
    assert result.returncode == 0, result.stderr
    assert SECRET.fullmatch(result.stdout.strip()) and result.stdout.count("\n") == 1, result.stdout
    return result.stdout.strip()


def call(srv, route, secret=None, body=None):
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {secret}"} if secret else {})}
    method = "POST" if route in POSTED else "GET"
    return requests.request(method, srv.url + route.lstrip("/"), headers=headers, timeout=30,
                            data=None if body is None else json.dumps(body))


def error_of(response, status, code):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    return error["message"]


def serve_with_tokens(trained, tmp):
    """A served copy of the trained database with a token per scope, a revoked one and the env token."""
    db = copy_of(trained, tmp)
    secrets = {scope: create(tmp, db, f"{scope}-bot", scope) for scope in ("score", "label", "admin")}
    secrets["old"] = create(tmp, db, "old-bot", "score", "label")
    assert run_cli(tmp, "--db", str(db), "token", "revoke", "old-bot").returncode == 0
    srv = Server(tmp, db, FRAUD_APP_API_TOKEN=ENV_TOKEN, FRAUD_APP_RATE_LIMIT="0")
    srv.wait("api/v1/health")
    return srv, db, secrets


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    srv, db, secrets = serve_with_tokens(trained, tmp_path_factory.mktemp("tokens"))
    yield srv, db, secrets
    srv.stop()


def test_each_scope_on_each_route(trained, tmp_path):
    """Allowed works, refused is 403 naming the token and what it may not do, and every refusal is audited (read
    once the server has stopped: it holds the database)."""
    srv, db, secrets = serve_with_tokens(trained, tmp_path)
    call(srv, "/api/v1/score", ENV_TOKEN, tx(0))  # a stored transaction to label
    refused = []
    for scope in ("score", "label", "admin"):
        secret = secrets[scope]
        for route in READS:
            assert call(srv, route, secret).status_code == 200, (scope, route)
        for i, (route, action) in enumerate(POSTED.items()):
            body = tx(10 + i) if action == "score" else {"transaction_id": "tok-0", "is_fraud": True}
            response = call(srv, route, secret, body)
            if scope in (action, "admin"):
                assert response.status_code == 200, (scope, route, response.text)
            else:
                message = error_of(response, 403, "forbidden")
                words = "score payments" if action == "score" else "label payments"
                assert message == (f"token {scope}-bot ({scope}) may not {words}: that needs a token with the "
                                   f"{action} or admin scope"), message
                refused.append((f"{scope}-bot", action, message))
    srv.stop()  # the test's own server: the database can be read once it has stopped
    with Store(db) as store:
        audited = store.cursor().execute("SELECT actor, entity, note FROM audit_log WHERE action = 'refused' "
                                         "ORDER BY audit_id").fetchall()
        labelled = store.cursor().execute("SELECT actor FROM labels WHERE transaction_id = 'tok-0' "
                                          "ORDER BY label_id").fetchall()
    assert audited == refused and len(refused) == 2
    assert labelled == [("label-bot",), ("admin-bot",)]  # the token's name is the label's actor


def test_a_refusal_comes_before_the_body_is_read(server):
    srv, _, secrets = server
    response = requests.post(srv.url + "api/v1/labels", data=b"{not json", timeout=30,
                             headers={"Authorization": f"Bearer {secrets['score']}", "Content-Type": "text/plain"})
    error_of(response, 403, "forbidden")  # not 400 for the body, nor 415 for its type
    assert response.headers["Connection"] == "close"


def test_a_revoked_or_wrong_token_is_401(server):
    srv, _, secrets = server
    for route in (*READS, *POSTED):
        assert error_of(call(srv, route, secrets["old"], tx(20)), 401, "unauthorized") == \
            "the token 'old-bot' was revoked"
        assert error_of(call(srv, route, secrets["score"] + "x", tx(20)), 401, "unauthorized") == "wrong bearer token"
        assert error_of(call(srv, route, None, tx(20)), 401, "unauthorized") == "missing bearer token"


def test_the_env_token_is_an_admin_token(server):
    srv, _, _ = server
    assert call(srv, "/api/v1/score", ENV_TOKEN, tx(30)).status_code == 200
    label = call(srv, "/api/v1/labels", ENV_TOKEN, {"transaction_id": "tok-30", "is_fraud": False})
    assert label.status_code == 200, label.text
    for route in READS:
        assert call(srv, route, ENV_TOKEN).status_code == 200


def test_the_openapi_document_describes_the_403s(server):
    import jsonschema

    srv, _, secrets = server
    spec = call(srv, "/api/v1/openapi.json", secrets["label"]).json()
    for route, action in POSTED.items():
        operation = spec["paths"][route]["post"]
        schema = operation["responses"]["403"]["content"]["application/json"]["schema"]
        codes = schema["properties"]["error"]["properties"]["code"]["enum"]
        assert codes == ["forbidden_origin", "forbidden"] and f"`{action}` or `admin` scope" in operation["description"]
        other = "label" if action == "score" else "score"
        refused = call(srv, route, secrets[other], tx(50))
        assert refused.status_code == 403
        jsonschema.Draft4Validator(nullable_as_type({**schema, "components": spec["components"]})).validate(
            refused.json())
    for route in READS:  # every scope may read: no `forbidden` there
        codes = spec["paths"][route]["get"]["responses"]["403"]["content"]["application/json"]["schema"][
            "properties"]["error"]["properties"]["code"]["enum"]
        assert codes == ["forbidden_origin"]


def test_tokens_are_stored_only_as_hashes(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    secret = create(tmp_path, db, "batch", "score")
    files = [p for p in tmp_path.iterdir() if p.name.startswith(db.name)]
    data = b"".join(p.read_bytes() for p in files)
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in data  # the file does show such text as is
    assert secret.encode() not in data and secret[3:].encode() not in data


def test_token_commands_and_their_errors(trained, tmp_path):
    db = copy_of(trained, tmp_path)

    def cli(*args):
        return run_cli(tmp_path, "--db", str(db), "token", *args)

    assert cli("list").stdout == "no API tokens\n"
    first = create(tmp_path, db, "nightly", "score", "label", "score")
    assert create(tmp_path, db, "ops.admin", "admin") != first
    for args, words in [
        (("create", "nightly", "--scope", "score"), "a token named 'nightly' exists already"),
        (("create", "x", "--scope", "score", "--scope", "root"), "scopes: root unknown; use score, label, admin"),
        (("create", "two words", "--scope", "score"), "name: 'two words' is not 1 to 64 letters"),
        (("create", "a" * 65, "--scope", "score"), "is not 1 to 64 letters"),
        (("create", "api-token", "--scope", "admin"), "stands for FRAUD_APP_API_TOKEN"),
        (("revoke", "nobody"), "no token named 'nobody'"),
    ]:
        result = cli(*args)
        assert result.returncode == 1 and result.stdout == "", args
        assert words in one_line_error(result), (args, result.stderr)
    assert cli("create", "x").returncode == 2  # --scope is required: a usage error
    revoked = cli("revoke", "nightly")
    assert revoked.returncode == 0 and revoked.stdout == "token nightly revoked\n"
    assert "was revoked already" in one_line_error(cli("revoke", "nightly"))
    lines = cli("list").stdout.splitlines()
    assert lines[0].split() == ["name", "scopes", "created", "by", "revoked"] and len(lines) == 3
    assert re.fullmatch(r"nightly +label,score +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\S+ +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
                        lines[1]), lines[1]
    assert re.fullmatch(r"ops\.admin +admin +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\S+ +-", lines[2]), lines[2]
    with Store(db) as store:
        audit = store.cursor().execute("SELECT action, entity_id, new_value FROM audit_log "
                                       "WHERE entity = 'api_tokens' ORDER BY audit_id").fetchall()
    assert audit == [("token_create", "nightly", "label,score"), ("token_create", "ops.admin", "admin"),
                     ("token_revoke", "nightly", "revoked")]


def test_the_use_cases_need_the_tokens_permission(trained, tmp_path):
    app = app_of(trained, tmp_path)
    try:
        secret = app.create_token("lead-made", ["label"], Actor("lea", role="lead"))
        assert app.token_actor(secret) == Actor("lead-made", scopes=frozenset({"label"}))  # at once, no reload
        for actor in (Actor("ana", role="analyst"), Actor("label-bot", scopes=frozenset({"label"}))):
            with pytest.raises(Forbidden, match="may not manage API tokens"):
                app.create_token("more", ["admin"], actor)
            with pytest.raises(Forbidden, match="may not manage API tokens"):
                app.tokens(actor)
            with pytest.raises(Forbidden, match="may not manage API tokens"):
                app.revoke_token("lead-made", actor)
        assert [t["name"] for t in app.tokens(Actor("ops", scopes=frozenset({"admin"})))] == ["lead-made"]
        app.revoke_token("lead-made", Actor("lea", role="lead"))
        with pytest.raises(PermissionError, match="revoked"):
            app.token_actor(secret)
        assert not app.api_open  # revoking the last token does not open the API
        refusals = app.store.cursor().execute(
            "SELECT actor, entity FROM audit_log WHERE action = 'refused' ORDER BY audit_id").fetchall()
        created_by = app.store.cursor().execute("SELECT created_by FROM api_tokens").fetchall()
    finally:
        app.close()
    assert refusals == [("ana", "tokens")] * 3 + [("label-bot", "tokens")] * 3
    assert created_by == [("lea",)]


def test_token_create_while_the_server_runs_says_the_database_is_in_use(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    srv = Server(tmp_path, db)
    try:
        srv.wait("api/v1/health")
        result = run_cli(tmp_path, "--db", str(db), "token", "create", "late", "--scope", "score")
    finally:
        srv.stop()
    assert "is in use by process" in one_line_error(result) and result.stdout == ""


def test_a_non_loopback_bind_takes_a_named_token_instead_of_the_env_token(trained, tmp_path):
    db = copy_of(trained, tmp_path)
    serve = ("--db", str(db), "serve", "--address", "0.0.0.0", "--no-show")
    line = one_line_error(run_cli(tmp_path, *serve, FRAUD_APP_UI_PASSWORD="pw", timeout=60))
    assert "FRAUD_APP_API_TOKEN of at least 32 characters, or a named token (fraud-app token create)," in line
    secret = create(tmp_path, db, "only", "score")
    assert run_cli(tmp_path, "--db", str(db), "token", "revoke", "only").returncode == 0
    # A FRAUD_APP_API_TOKEN that is set is a way in too, so it must still be long.
    line = one_line_error(run_cli(tmp_path, *serve, FRAUD_APP_UI_PASSWORD="pw", FRAUD_APP_API_TOKEN="short",
                                  timeout=60))
    assert "FRAUD_APP_API_TOKEN of at least 32 characters for the REST API" in line
    # With a named token (here a revoked one: the API stays closed) the bind is allowed, and nothing gets in.
    srv = Server(tmp_path, db, argv=[str(BIN / "fraud-app"), *serve, "--port", "{port}"], FRAUD_APP_UI_PASSWORD="pw")
    try:
        error_of(srv.wait("api/v1/health"), 401, "unauthorized")
        error_of(call(srv, "/api/v1/score", secret, tx(40)), 401, "unauthorized")
    finally:
        srv.stop()
