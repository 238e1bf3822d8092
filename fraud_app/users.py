"""The users file (FRAUD_APP_UI_USERS): who may sign in to the UI, each with a password hash and a role.

    {"ana": {"password": "scrypt$16384$8$1$<salt>$<hash>", "role": "analyst"}}

`fraud-app user add NAME --role ROLE` writes it. Passwords are kept only as scrypt hashes (the standard
library's, so nothing to install), slow enough that a stolen file does not give them away cheaply. A file of the
older form, {"ana": "password"}, still signs in, every user as a lead, until its users are added again.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from .access import ROLES
from .local import write_private

log = logging.getLogger(__name__)
N, R, P = 2 ** 14, 8, 1  # scrypt's cost: about 50 ms and 16 MB a check
MAX_NAME = 64


class UsersFileError(ValueError):
    """The users file or a name, role or password given for it is unusable; the message says which."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password: str  # a hash, or for a file of the older form the password itself


def claimed_role(claim, prefix: str = "") -> str:
    """The highest role a single sign-on claim names: a string or a list of them, each a role's name after
    `prefix` (groups like fraud-analyst with prefix fraud-). Viewer when it names none."""
    values = claim if isinstance(claim, list) else [claim]
    named = {v[len(prefix):] for v in values if isinstance(v, str) and v.startswith(prefix)}
    return max((r for r in ROLES if r in named), key=ROLES.index, default="viewer")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P)
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """True if `password` matches the stored hash (or, for the older form, the stored password)."""
    if not stored.startswith("scrypt$"):
        return hmac.compare_digest(password.encode(), stored.encode())
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        log.error("a password hash in the users file is not in the scrypt$n$r$p$salt$hash form")
        return False
    return hmac.compare_digest(actual, expected)


def load(path: Path) -> dict[str, User]:
    """Every user in the file. Raises UsersFileError naming the file and the entry that is wrong."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsersFileError(f"{path} does not exist: add users with `fraud-app user add NAME --role ROLE`") from None
    except (OSError, ValueError) as exc:
        raise UsersFileError(f"{path} is not a readable JSON users file: {exc}") from None
    if not isinstance(raw, dict):
        raise UsersFileError(f"{path}: expected an object of users, e.g. {{\"ana\": {{\"password\": …, \"role\": …}}}}")
    users = {}
    for name, entry in raw.items():
        if isinstance(entry, str):  # the older form: a password, and every user a lead
            users[name] = User(name, "lead", entry)
        elif isinstance(entry, dict) and isinstance(entry.get("password"), str) and entry.get("role") in ROLES:
            users[name] = User(name, entry["role"], entry["password"])
        else:
            raise UsersFileError(f"{path}: user {name!r} needs a \"password\" hash and a \"role\" "
                                 f"({', '.join(ROLES)})")
    return users


def add(path: Path, name: str, password: str, role: str) -> bool:
    """Add a user, or replace their password and role. True if the user is new. The file is written whole,
    readable by its owner only."""
    if not name or len(name) > MAX_NAME or not name.isprintable() or name != name.strip():
        raise UsersFileError(f"name: {name!r} must be 1 to {MAX_NAME} printable characters, no outer spaces")
    if role not in ROLES:
        raise UsersFileError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise UsersFileError("password: use at least 8 characters")
    path = Path(path)
    users = load(path) if path.exists() else {}
    entries = {u.name: ({"password": u.password, "role": u.role} if u.password.startswith("scrypt$")
                        else u.password) for u in users.values()}  # an older entry stays as it was
    entries[name] = {"password": hash_password(password), "role": role}
    write_private(path, json.dumps(entries, indent=2))
    return name not in users
