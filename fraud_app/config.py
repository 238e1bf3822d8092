"""One settings object. Precedence: defaults < .env < FRAUD_APP_* environment < CLI flags."""
from __future__ import annotations

import dataclasses
import logging
import logging.handlers
import os
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from dotenv import dotenv_values

ENV_PREFIX = "FRAUD_APP_"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the setting."""


def in_source_checkout() -> bool:
    return not getattr(sys, "frozen", False) and (SOURCE_ROOT / "pyproject.toml").exists()


def default_home() -> Path:
    # A checkout keeps its data beside the code; an installed or frozen app uses the user's data dir.
    if in_source_checkout():
        return SOURCE_ROOT
    from platformdirs import user_data_path

    return user_data_path("fraud_app", appauthor=False)


@dataclass(frozen=True)
class Settings:
    home: Path = dataclasses.field(default_factory=default_home)
    db: Path | None = None  # None: <home>/data/fraud.duckdb
    label_delay_days: int = 7
    log_level: str = "INFO"
    api_token: str | None = None
    ui_password: str | None = None  # one shared password for the UI (Panel's basic auth)
    ui_users: Path | None = None    # or a users file with password hashes and roles (fraud_app/users.py)
    oidc_issuer: str | None = None  # single sign-on: an OpenID Connect provider's issuer URL (instead of passwords)
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_uri: str | None = None  # unset: http://ADDRESS:PORT/login; behind a proxy, the public URL of /login
    oidc_user_claim: str = "email"  # the claim that names the user in the app and its audit log
    oidc_role_claim: str = "groups"  # the claim holding the role: viewer, analyst or lead (or a list with one)
    oidc_role_prefix: str = ""  # with groups like fraud-lead: the prefix to strip, here "fraud-"
    cookie_secret: str | None = None  # signs login cookies; unset: a new one each start (logins end on restart)
    address: str = "127.0.0.1"
    port: int = 5006
    currency: str = "EUR"
    demo_customers: int = 5000
    demo_terminals: int = 10000
    demo_days: int = 183
    alert_budget: int = 100      # alerts per day the review team can work; sets the review threshold
    review_cost: float = 5.0     # cost of reviewing one alert, in currency units, for the backtest's cost
    case_window_days: int = 7    # a card's alerts at most this many days apart form one case
    rate_limit: float = 2000.0   # API requests a second per client (bursts to twice that); 0 turns it off
    max_body_bytes: int = 2_000_000
    upload_max_bytes: int = 10_000_000  # the largest file the Data view takes; bigger ones go through the CLI
    allowed_origins: str | None = None  # comma separated: web origins, besides our own, whose pages may call the API
    idle_timeout: float = 30.0   # seconds a connection may sit idle or take to send its request headers
    body_timeout: float = 60.0   # seconds a request may take to send its body
    auth_window: float = 60.0    # seconds over which failed sign-ins and API tokens are counted per client
    prefix: str | None = None    # URL path the app is served under, e.g. /fraud behind a proxy; None: the root
    behind_proxy: bool = False   # take the client's address and scheme from the proxy's X-Real-IP/X-Forwarded-*
    logs: Path | None = None     # folder of the log file; None: <home>/data/logs
    backup_dir: Path | None = None  # None: <home>/backups
    backup_every_hours: float = 24.0  # a server backs up when the newest backup is this old; 0 turns it off
    backup_keep_days: float = 7.0     # after a backup, older ones in backup_dir are deleted (never the newest)

    @property
    def db_path(self) -> Path:
        return Path(self.db) if self.db else self.home / "data" / "fraud.duckdb"

    @property
    def models_root(self) -> Path:
        """Each database keeps its model files in a folder of its own under this one (FraudApp.models_dir)."""
        return self.home / "models"

    @property
    def backups_path(self) -> Path:
        return Path(self.backup_dir) if self.backup_dir else self.home / "backups"

    @property
    def log_dir(self) -> Path:
        return Path(self.logs) if self.logs else self.home / "data" / "logs"

    @property
    def path_prefix(self) -> str:
        """The prefix as the server's routes use it: '/fraud', or '' at the root."""
        return "/" + self.prefix.strip("/") if self.prefix and self.prefix.strip("/") else ""


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _coerce(name: str, raw: Any, kind: type) -> Any:
    if raw is None or raw == "":
        return None
    if kind is bool:
        if str(raw).strip().lower() in _TRUE + _FALSE:
            return str(raw).strip().lower() in _TRUE
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected 1 or 0 (or true/false, yes/no, on/off), got {raw!r}")
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw).expanduser()
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected {kind.__name__}, got {raw!r}") from None


_KINDS = {"home": Path, "db": Path, "ui_users": Path, "label_delay_days": int, "port": int,
          "demo_customers": int, "demo_terminals": int, "demo_days": int,
          "alert_budget": int, "review_cost": float, "case_window_days": int, "rate_limit": float, "max_body_bytes": int,
          "upload_max_bytes": int, "idle_timeout": float, "body_timeout": float, "auth_window": float,
          "behind_proxy": bool, "logs": Path,
          "backup_dir": Path, "backup_every_hours": float, "backup_keep_days": float}


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None,
                  dotenv_file: Path | None = None) -> Settings:
    """Merge the four layers. `overrides` are CLI flags; None values mean 'not given'."""
    environ = os.environ if environ is None else environ
    dotenv_file = dotenv_file or Path(environ.get(f"{ENV_PREFIX}ENV_FILE", ".env"))
    layers = [dotenv_values(dotenv_file) if dotenv_file.is_file() else {}, environ]
    values: dict[str, Any] = {}
    for field in fields(Settings):
        key = f"{ENV_PREFIX}{field.name.upper()}"
        for layer in layers:
            if layer.get(key) not in (None, ""):
                values[field.name] = _coerce(field.name, layer[key], _KINDS.get(field.name, str))
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    if not 0 <= s.port <= 65535:
        raise ConfigError(f"port: {s.port} is not a TCP port (0-65535)")
    if not 0 <= s.label_delay_days <= 365:
        raise ConfigError(f"label_delay_days: {s.label_delay_days} is outside 0-365")
    if s.log_level.upper() not in logging.getLevelNamesMapping():
        raise ConfigError(f"log_level: unknown level {s.log_level!r}")
    if len(s.currency) != 3 or not s.currency.isalpha():
        raise ConfigError(f"currency: {s.currency!r} is not a 3-letter code")
    if s.rate_limit < 0:
        raise ConfigError(f"rate_limit: {s.rate_limit} must not be negative (0 turns it off)")
    if s.max_body_bytes < 1000:
        raise ConfigError(f"max_body_bytes: {s.max_body_bytes} is below 1000")
    for name in ("idle_timeout", "body_timeout", "auth_window"):
        if not 0 < getattr(s, name) < float("inf"):
            raise ConfigError(f"{name}: {getattr(s, name)} must be a number of seconds above 0")
    if sum(map(bool, (s.ui_password, s.ui_users, s.oidc_issuer))) > 1:
        raise ConfigError("ui_password, ui_users and oidc_issuer: set one of them, not more")
    if s.oidc_issuer and not (s.oidc_client_id and s.oidc_client_secret):
        raise ConfigError("oidc_issuer: set oidc_client_id and oidc_client_secret too (from the provider)")
    if s.ui_users and Path(s.ui_users).exists() and not Path(s.ui_users).is_file():
        # (a file not made yet is fine here: `fraud-app user add` makes it, and `serve` refuses to start without it)
        raise ConfigError(f"ui_users: {s.ui_users} is not a file (a JSON file that `fraud-app user add` writes)")
    for name in ("backup_every_hours", "backup_keep_days"):
        if not 0 <= getattr(s, name) < float("inf"):
            raise ConfigError(f"{name}: {getattr(s, name)} must be a number of {name.rpartition('_')[2]}, 0 or more")
    if not 1 <= s.case_window_days <= 365:
        raise ConfigError(f"case_window_days: {s.case_window_days} is outside 1-365")
    if s.review_cost < 0:
        raise ConfigError(f"review_cost: {s.review_cost} must not be negative")
    for name in ("demo_customers", "demo_terminals", "demo_days", "alert_budget"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{name}: must be at least 1")
    if s.prefix and s.prefix != "/" and not _PREFIX.fullmatch(s.prefix):
        raise ConfigError(f"prefix: {s.prefix!r} is not a URL path like /fraud (letters, digits, . _ ~ - and /)")


# Path segments of URL-safe characters; none of them only dots, which would climb out of the path.
_SEGMENT = r"(?!\.+(?:/|$))[A-Za-z0-9._~-]+"
_PREFIX = re.compile(rf"/?{_SEGMENT}(?:/{_SEGMENT})*/?")


class _BriefFormatter(logging.Formatter):
    """Console lines without tracebacks: those go to the log file only."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info = record.exc_text = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text = saved


def setup_logging(settings: Settings, console_level: str | None = None) -> Path:
    """Console plus a rotating file under <home>/data/logs. A second call replaces the first."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_file = settings.log_dir / "fraud_app.log"
    root = logging.getLogger("fraud_app")
    root.setLevel(settings.log_level.upper())
    # Our lines reach the console through our handler only: `panel serve` gives the root logger a console handler
    # of its own (Bokeh's logging.basicConfig), which would print each of them a second time.
    root.propagate = False
    for old in [h for h in root.handlers if getattr(h, "_fraud_app", False)]:
        root.removeHandler(old)
        old.close()
    file_handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=5,
                                                        encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    console = logging.StreamHandler()
    console.setFormatter(_BriefFormatter(LOG_FORMAT))
    console.setLevel(console_level or settings.log_level.upper())
    for handler in (file_handler, console):
        handler._fraud_app = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    return log_file
