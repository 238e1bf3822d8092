"""Roles: the application object allows each use case by the actor's role, refuses the rest with a message
that says why, and writes both to the audit log. The users file keeps password hashes and roles."""
from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from conftest import BIN, app_of, cli_env, one_line_error, run_cli
from fraud_app.access import NEEDS, ROLES, Actor, Forbidden
from fraud_app.users import UsersFileError, add, check_password, load

ALLOWED = {  # role: the actions it may take
    "viewer": {"view", "download"},
    "analyst": {"view", "download", "decide", "label", "score"},
    "lead": set(NEEDS),
}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_its_actions_and_nothing_more(role):
    actor = Actor("ana", role)
    assert {action for action in NEEDS if actor.may(action)} == ALLOWED[role]


def test_scopes_replace_roles_for_tokens():
    batch = Actor("nightly", scopes=frozenset({"score"}))
    assert batch.may("score") and not batch.may("label") and not batch.may("train")
    assert Actor("ops", scopes=frozenset({"admin"})).may("backup")
    with pytest.raises(ValueError, match="scopes: delete unknown"):
        Actor("x", scopes=frozenset({"delete"}))
    with pytest.raises(ValueError, match="role: 'boss'"):
        Actor("x", "boss")


def test_the_message_says_who_what_and_what_it_needs():
    assert str(Forbidden(Actor("ana", "viewer"), "decide")) == \
        "ana (viewer) may not decide cases: that needs the analyst role"
    assert str(Forbidden(Actor("nightly", scopes=frozenset({"score"})), "label")) == \
        "token nightly (score) may not label payments: that needs a token with the label or admin scope"


def _refusals(app) -> list[tuple]:
    return app.store.cursor().execute(
        "SELECT actor, entity, note FROM audit_log WHERE action = 'refused' ORDER BY audit_id").fetchall()


def test_the_application_object_refuses_and_audits(trained, tmp_path):
    app = app_of(trained, tmp_path)
    try:
        tx = app.store.cursor().execute("SELECT transaction_id FROM transactions LIMIT 1").fetchone()[0]
        version = app.store.cursor().execute("SELECT version FROM model_versions LIMIT 1").fetchone()[0]
        attempts = {  # action: the use case that takes it, for an actor
            "decide": lambda who: app.decide_cases([tx], "confirmed_fraud", who, None),
            "label": lambda who: app.label(tx, True, "analyst", who),
            "train": lambda who: app.train(actor=who),
            "promote": lambda who: app.promote(version, who),
            "rollback": lambda who: app.rollback(who),
            "thresholds": lambda who: app.set_thresholds(version, 0.5, 0.9, who),
            "import": lambda who: app.import_file(tmp_path / "none.csv", actor=who),
        }
        for role in ("viewer", "analyst"):
            for action, attempt in attempts.items():
                if Actor("x", role).may(action):
                    continue
                with pytest.raises(Forbidden, match="may not"):
                    attempt(Actor(f"{role}-user", role))
        refused = _refusals(app)
        assert {(a, e) for a, e, _ in refused} == {
            ("viewer-user", "decide"), ("viewer-user", "label"),
            *{(f"{r}-user", a) for r in ("viewer", "analyst") for a in ("train", "promote", "rollback",
                                                                         "thresholds", "import")}}
        assert all("may not" in note for *_, note in refused)

        # Allowed: an analyst decides and labels, and the audit names them.
        assert app.decide_cases([tx], "confirmed_fraud", Actor("ana", "analyst"), "stolen card") == 1
        assert app.store.cursor().execute("SELECT actor FROM audit_log WHERE action = 'case' AND entity_id = ?",
                                          [tx]).fetchone() == ("ana",)
        assert len(_refusals(app)) == len(refused)  # nothing new was refused
    finally:
        app.close()


def test_the_users_file_keeps_hashes_and_roles(tmp_path):
    path = tmp_path / "users.json"
    assert add(path, "ana", "correct horse", "analyst") is True
    assert add(path, "ana", "battery staple", "lead") is False  # replaced
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    raw = path.read_text()
    assert "battery" not in raw and "correct" not in raw
    ana = load(path)["ana"]
    assert ana.role == "lead" and check_password("battery staple", ana.password)
    assert not check_password("correct horse", ana.password)
    for bad, field in ((("", "x" * 8, "lead"), "name"), (("bo", "short", "lead"), "password"),
                       (("bo", "x" * 8, "boss"), "role")):
        with pytest.raises(UsersFileError, match=field):
            add(path, *bad)


def test_an_older_users_file_still_signs_in_as_lead(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"ana": "s3cret-pw"}))
    ana = load(path)["ana"]
    assert ana.role == "lead" and check_password("s3cret-pw", ana.password) and not check_password("x", ana.password)
    add(path, "bo", "new-password", "viewer")  # adding keeps the older entry as it was
    assert load(path)["ana"].password == "s3cret-pw" and load(path)["bo"].role == "viewer"
    path.write_text(json.dumps({"ana": {"password": "x"}}))
    with pytest.raises(UsersFileError, match="user 'ana' needs"):
        load(path)


def test_user_add_on_the_command_line(tmp_path):
    users = tmp_path / "team.json"
    result = subprocess_user_add(tmp_path, users, "ana", "analyst", "a good password\n")
    assert result.returncode == 0 and f"added ana (analyst) in {users}" in result.stdout
    assert load(users)["ana"].role == "analyst"
    assert "password: use at least 8" in one_line_error(subprocess_user_add(tmp_path, users, "bo", "lead", "short\n"))
    missing = run_cli(tmp_path, "serve", "--no-show", FRAUD_APP_UI_USERS=str(tmp_path / "nope.json"))
    assert "does not exist: add users with `fraud-app user add" in one_line_error(missing)


def subprocess_user_add(tmp_path, users, name, role, stdin):
    return subprocess.run([str(BIN / "fraud-app"), "user", "add", name, "--role", role, "--password-stdin",
                           "--file", str(users)], input=stdin, capture_output=True, text=True, timeout=120,
                          env=cli_env(tmp_path), cwd=tmp_path)


def test_the_claimed_role_is_the_highest_named():
    from fraud_app.users import claimed_role

    assert claimed_role(["staff", "fraud-analyst", "fraud-lead"], "fraud-") == "lead"
    assert claimed_role("analyst") == "analyst"
    assert claimed_role(["staff", "lead"], "fraud-") == "viewer"  # without the prefix it names nothing
    assert claimed_role(None) == "viewer" and claimed_role([1, {"x": 2}]) == "viewer"


def test_single_sign_on_needs_its_client_and_excludes_passwords(tmp_path):
    from fraud_app.config import ConfigError, load_settings

    env = {"FRAUD_APP_HOME": str(tmp_path), "FRAUD_APP_OIDC_ISSUER": "https://id.example.org"}
    with pytest.raises(ConfigError, match="oidc_client_id and oidc_client_secret"):
        load_settings(environ=env)
    with pytest.raises(ConfigError, match="set one of them"):
        load_settings(environ={**env, "FRAUD_APP_UI_PASSWORD": "x", "FRAUD_APP_OIDC_CLIENT_ID": "a",
                               "FRAUD_APP_OIDC_CLIENT_SECRET": "b"})


def test_a_shared_password_makes_everyone_a_lead(trained, tmp_path):
    # ours (FRAUD_APP_UI_PASSWORD), or Panel's own --basic-auth under `panel serve`, which sets neither
    for settings in ({"ui_password": "one shared password"}, {}):
        app = app_of(trained, tmp_path / str(len(settings)), **settings)
        try:
            assert app.role_of("whoever") == "lead"
        finally:
            app.close()
