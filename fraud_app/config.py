"""One settings object. Precedence: defaults < .env < FRAUD_APP_* environment < CLI flags."""
from __future__ import annotations

import dataclasses
import logging
import logging.handlers
import os
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
    ui_users: Path | None = None    # or a JSON file of {"user": "password"}, so decisions carry real names
    cookie_secret: str | None = None  # signs login cookies; unset: a new one each start (logins end on restart)
    address: str = "127.0.0.1"
    port: int = 5006
    currency: str = "EUR"
    demo_customers: int = 5000
    demo_terminals: int = 10000
    demo_days: int = 183
    alert_budget: int = 100      # alerts per day the review team can work; sets the review threshold
    review_cost: float = 5.0     # cost of reviewing one alert, in currency units, for the backtest's cost
    rate_limit: float = 2000.0   # API requests a second per client (bursts to twice that); 0 turns it off
    max_body_bytes: int = 2_000_000
    upload_max_bytes: int = 10_000_000  # the largest file the Data view takes; bigger ones go through the CLI
    allowed_origins: str | None = None  # comma separated: web origins, besides our own, whose pages may call the API
    idle_timeout: float = 30.0   # seconds a connection may sit idle or take to send its request headers
    body_timeout: float = 60.0   # seconds a request may take to send its body
    auth_window: float = 60.0    # seconds over which failed sign-ins and API tokens are counted per client
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
        return self.home / "data" / "logs"


def _coerce(name: str, raw: Any, kind: type) -> Any:
    if raw is None or raw == "":
        return None
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
          "alert_budget": int, "review_cost": float, "rate_limit": float, "max_body_bytes": int,
          "upload_max_bytes": int, "idle_timeout": float, "body_timeout": float, "auth_window": float,
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
    if s.ui_password and s.ui_users:
        raise ConfigError("ui_password and ui_users: set one or the other, not both")
    if s.ui_users and not Path(s.ui_users).is_file():
        raise ConfigError(f"ui_users: {s.ui_users} is not a file (expected JSON: {{\"user\": \"password\"}})")
    for name in ("backup_every_hours", "backup_keep_days"):
        if not 0 <= getattr(s, name) < float("inf"):
            raise ConfigError(f"{name}: {getattr(s, name)} must be a number of {name.rpartition('_')[2]}, 0 or more")
    if s.review_cost < 0:
        raise ConfigError(f"review_cost: {s.review_cost} must not be negative")
    for name in ("demo_customers", "demo_terminals", "demo_days", "alert_budget"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{name}: must be at least 1")


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
