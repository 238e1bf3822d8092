"""The UI's sign-in: Panel's basic auth, with passwords compared in constant time and failed sign-ins
throttled per client address (guard.Throttle)."""
from __future__ import annotations

import json
import logging
import secrets
import urllib.request
from pathlib import Path

from panel.auth import BasicAuthProvider, BasicLoginHandler
from tornado.escape import url_escape
from tornado.ioloop import IOLoop

from fraud_app.guard import Throttle, retry_after
from fraud_app.users import UsersFileError, check_password, hash_password, load

log = logging.getLogger(__name__)
DECOY = hash_password("a password no one has")  # checked for names not in the file
MAX_FAILURES = 5  # failed sign-ins from one address within the window before it must wait


class ThrottledLoginHandler(BasicLoginHandler):
    """Panel's login page and form; ThrottledAuthProvider makes a subclass carrying the credentials."""

    password: str | None = None
    users_file: Path | None = None
    throttle: Throttle

    async def post(self) -> None:
        address = self.request.remote_ip or "?"
        wait = self.throttle.wait(address)
        if wait:
            message = f"Too many failed sign-ins: try again in {retry_after(wait)} s."
            self.redirect(self.request.uri + "?error=" + url_escape(message))
            return
        # A password's hash takes 30 ms of CPU: in a worker thread, not on the event loop that every page and
        # the REST API share (ten analysts signing in held it for a third of a second).
        self._checked = await IOLoop.current().run_in_executor(
            None, self._check, self.get_argument("username", ""), self.get_argument("password", ""))
        if not self._checked:
            self.throttle.fail(address)
        super().post()  # Panel's: the cookie and the way on, or back to the form with the error

    def _validate(self, username: str, password: str) -> bool:
        """Panel's post asks this; post checked the password just before."""
        return self._checked

    def _check(self, username: str, password: str) -> bool:
        if self.users_file is not None:
            try:  # read at each sign-in, so edits to the file apply without a restart
                user = load(self.users_file).get(username)
            except UsersFileError as exc:
                log.error("cannot use the UI users file: %s", exc)
                user = None
            # An unknown name is checked against a hash too, so the time taken does not tell names apart.
            return check_password(password, user.password if user else DECOY) and user is not None
        return self.password is not None and check_password(password, self.password)


def oidc_options(settings) -> dict:
    """pn.serve's options for single sign-on with an OpenID Connect provider, its endpoints read from the
    issuer's discovery document."""
    from fraud_app.config import ConfigError

    url = settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            found = json.loads(reply.read())
        endpoints = {key: found[name] for key, name in (("AUTHORIZE_URL", "authorization_endpoint"),
                                                         ("TOKEN_URL", "token_endpoint"),
                                                         ("USER_URL", "userinfo_endpoint"))}
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"oidc_issuer: cannot read {url}: {exc}") from None
    return {"oauth_provider": "generic", "oauth_key": settings.oidc_client_id,
            "oauth_secret": settings.oidc_client_secret,
            "oauth_redirect_uri": settings.oidc_redirect_uri or f"http://{settings.address}:{settings.port}/login",
            "oauth_extra_params": {**endpoints, "USER_KEY": settings.oidc_user_claim,
                                   "scope": ["openid", "email", "profile"]},
            "cookie_secret": settings.cookie_secret or secrets.token_urlsafe(32)}


class ThrottledAuthProvider(BasicAuthProvider):
    """Pass to pn.serve as auth_provider= (instead of basic_auth=): one shared `password`, or a
    `users_file` of password hashes and roles (fraud_app/users.py)."""

    def __init__(self, password: str | None = None, users_file: Path | None = None, window: float = 60.0,
                 login_template: str | None = None):
        self._credentials = {"password": password, "users_file": users_file,
                             "throttle": Throttle(MAX_FAILURES, window)}
        self._handler: type[ThrottledLoginHandler] | None = None
        super().__init__(login_template=login_template)

    @property
    def login_handler(self) -> type[ThrottledLoginHandler]:
        # A class of its own, rather than Panel's way of setting attributes on BasicLoginHandler itself.
        if self._handler is None:
            self._handler = type("LoginHandler", (ThrottledLoginHandler,), {
                **self._credentials, "_login_endpoint": self._login_endpoint,
                "_login_template": self._login_template})
        return self._handler
