"""Who may do what: the roles of people and the scopes of API tokens, checked by the application object.

A person has one role, and each role may do what the one before it may, and more:

- viewer: read every view and download CSV files;
- analyst: also take and decide cases, write notes and labels, and score payments;
- lead: also import, train, promote and roll back, change thresholds, take backups, manage tokens and users,
  and assign or release cases others hold.

An API token has scopes instead: `score`, `label` and `admin` (everything a lead may do). A plain name instead
of an Actor is the machine's own user at the command line, or the app itself: it may do everything.
"""
from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "analyst", "lead")
NEEDS = {  # action: the least role that may do it
    "view": "viewer", "download": "viewer",
    "decide": "analyst", "label": "analyst", "score": "analyst",
    "import": "lead", "train": "lead", "promote": "lead", "rollback": "lead", "thresholds": "lead",
    "backup": "lead", "tokens": "lead", "users": "lead", "assign": "lead",
}
SCOPES = {"score": {"view", "score"}, "label": {"view", "label"}, "admin": set(NEEDS)}
WORDS = {"view": "view this", "download": "download this", "decide": "decide cases", "label": "label payments",
         "score": "score payments", "import": "import files", "train": "train models",
         "promote": "put a model version in use", "rollback": "roll back the model", "thresholds":
         "change thresholds", "backup": "take backups", "tokens": "manage API tokens", "users": "manage users",
         "assign": "give or take away cases others hold"}


@dataclass(frozen=True)
class Actor:
    """A signed-in person (name and role), or an API token (its name and scopes)."""

    name: str
    role: str | None = None
    scopes: frozenset[str] | None = None

    def __post_init__(self):
        if self.scopes is None and self.role not in ROLES:
            raise ValueError(f"role: {self.role!r} is not one of {', '.join(ROLES)}")
        if self.scopes is not None and not self.scopes <= set(SCOPES):
            raise ValueError(f"scopes: {', '.join(sorted(self.scopes - set(SCOPES)))} unknown; "
                             f"use {', '.join(SCOPES)}")

    def may(self, action: str) -> bool:
        if self.scopes is not None:
            return any(action in SCOPES[scope] for scope in self.scopes)
        return ROLES.index(self.role) >= ROLES.index(NEEDS[action])

    @property
    def title(self) -> str:
        """How the audit log and messages name it: `ana (analyst)`, `token nightly-batch (score)`."""
        if self.scopes is not None:
            return f"token {self.name} ({', '.join(sorted(self.scopes))})"
        return f"{self.name} ({self.role})"


class Forbidden(PermissionError):
    """An actor tried what their role or scopes do not allow. The message says what and why."""

    def __init__(self, actor: Actor, action: str):
        self.actor, self.action = actor, action
        need = (f"a token with the {' or '.join(s for s in SCOPES if action in SCOPES[s])} scope"
                if actor.scopes is not None else f"the {NEEDS[action]} role")
        super().__init__(f"{actor.title} may not {WORDS[action]}: that needs {need}")


def name_of(actor: Actor | str | None) -> str | None:
    return actor.name if isinstance(actor, Actor) else actor
