"""The decision buttons and note, the same in an opened case and in Investigate."""
from __future__ import annotations

from typing import Callable

import panel as pn
import param
from panel.viewable import Viewer

from ..access import Forbidden
from ..store.cases import CaseError
from .safe import plain

ACTIONS = {"Confirm fraud": ("confirmed_fraud", "danger", "c"), "Mark legitimate": ("legitimate", "success", "l"),
           "Escalate": ("escalated", "warning", "e")}
WORDS = {"confirmed_fraud": "confirmed fraud", "legitimate": "legitimate", "escalated": "escalated"}
KEYS = {key: status for status, _, key in ACTIONS.values()}


class DecisionBar(Viewer):
    """`act(status, note)` decides and returns the line to show; a refusal (role, or a case someone else holds)
    is shown in words instead, and the note is kept for another try."""

    message = param.String(default="")
    enabled = param.Boolean(default=True)

    def __init__(self, act: Callable[[str, str | None], str], **params):
        super().__init__(**params)
        self._act = act
        self.note = pn.widgets.TextInput(placeholder="note for the decision (optional)", sizing_mode="stretch_width")
        self._buttons = []
        for label, (status, kind, key) in ACTIONS.items():
            button = pn.widgets.Button(name=label, button_type=kind, width=150, description=f"shortcut: {key}")
            button.on_click(lambda e, s=status: self.decide(s))
            self._buttons.append(button)
        self.param.watch(lambda e: [setattr(b, "disabled", not e.new) for b in self._buttons], "enabled")

    def decide(self, status: str) -> None:
        if not self.enabled:
            return
        try:
            self.message = self._act(status, self.note.value.strip() or None)
        except (Forbidden, CaseError) as exc:
            self.message = f"Not decided: {exc}."
            return
        self.note.value = ""

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(*self._buttons, self.note, sizing_mode="stretch_width"),
                         pn.pane.Markdown(pn.bind(plain, self.param.message), margin=(0, 10)),  # names people
                         sizing_mode="stretch_width")
