"""One case opened from the Review queue: its alerts, who holds it, the decision, the notes, the card's payments."""
from __future__ import annotations

import json

import pandas as pd
import panel as pn
import param

from ..access import Forbidden
from ..features import reason_text
from ..store import card_cases, investigate
from ..store.cases import CaseError
from .charts import CardChart
from .decide import KEYS as DECISION_KEYS, WORDS, DecisionBar
from .keys import help_card
from .safe import plain
from .tables import Table, fitted
from .view import View

ALERT_COLUMNS = {"transaction_id": "Transaction", "timestamp": "Time", "amount": "Amount",
                 "fraud_probability": "Fraud probability (%)", "decided": "Decision so far",
                 "terminal_id": "Terminal", "channel": "Channel", "top reason": "Top reason"}
STATE = {None: "undecided", "confirmed_fraud": "confirmed fraud", "legitimate": "legitimate",
         "escalated": "escalated"}
# The short columns' widths (tables.fitted): the reason takes the rest.
WIDTHS = {"Transaction": 110, "Time": 155, "Amount": 85, "Fraud probability (%)": 100, "Decision so far": 120,
          "Terminal": 90, "Channel": 85}
SHORTCUTS = {"j / ↓": "next alert", "k / ↑": "previous alert", "x": "tick or untick the alert",
             "c": "confirm fraud (the ticked alerts, or every undecided one)", "l": "mark legitimate",
             "e": "escalate", "t": "take the case", "r": "release it", "Esc": "back to the queue",
             "?": "show or hide these keys"}


def top_reason(raw: str | None) -> str:
    reasons = json.loads(raw) if raw else []
    if not reasons:
        return ""
    r = reasons[0]
    return reason_text(r["feature"], float("nan") if r["value"] is None else r["value"])


def alerts_frame(alerts: pd.DataFrame) -> pd.DataFrame:
    # The probability stays a number (in percent), so sorting by its header sorts numbers, not texts.
    frame = alerts.assign(fraud_probability=(100 * alerts["fraud_probability"]).round(1),
                          decided=[STATE.get(s, s) if isinstance(s, str) else "undecided" for s in alerts["status"]],
                          **{"top reason": [top_reason(r) for r in alerts["reasons"]]})
    return frame[list(ALERT_COLUMNS)].rename(columns=ALERT_COLUMNS)


class CasePanel(View):
    follows = ("version", "model_version")
    case_id = param.String(default=None, allow_None=True, doc="The case shown; None: none is open.")
    cursor = param.Integer(default=0, doc="The alert the keys act on.")
    holder = param.String(default=None, allow_None=True)
    shown = param.String(default=None, allow_None=True, doc="The case whose alerts are on screen.")

    def __init__(self, **params):
        super().__init__(**params)
        self.decision = DecisionBar(self._decide)
        self._title = pn.pane.Markdown(margin=(0, 10))
        self._facts = pn.pane.Markdown(margin=(0, 10))
        self._take = pn.widgets.Button(name="Take", button_type="primary", width=110, description="shortcut: t")
        self._release = pn.widgets.Button(name="Release", button_type="light", width=110, description="shortcut: r")
        self._assignee = pn.widgets.TextInput(placeholder="give it to (user name)", width=190)
        self._assign = pn.widgets.Button(name="Assign", button_type="light", width=90)
        self._assignee.visible = self._assign.visible = self.data_store.may("assign")  # a lead's
        self._take.on_click(lambda e: self.take())
        self._release.on_click(lambda e: self.release())
        self._assign.on_click(lambda e: self.assign())
        self._alerts = Table(show_index=False, disabled=True, selectable="checkbox", sizing_mode="stretch_width",
                             **fitted(WIDTHS),
                             formatters={"Amount": {"type": "money", "precision": 2},
                                         "Fraud probability (%)": {"type": "money", "precision": 1}})
        self._alerts.on_click(lambda e: self.data_store.investigate(self._alerts.value["Transaction"].iloc[e.row]),
                              column="Transaction")
        self._alerts.style_cursor(lambda: self.cursor)
        self._thread = pn.pane.HTML(sizing_mode="stretch_width", margin=(0, 10))
        self._note = pn.widgets.TextInput(placeholder="add a note to the case", sizing_mode="stretch_width")
        add = pn.widgets.Button(name="Add note", width=110)
        add.on_click(lambda e: self.add_note())
        self._card = CardChart()
        self._help = help_card("Keys in a case", SHORTCUTS)
        self._body = pn.Column(
            pn.Row(self._title, pn.HSpacer(), self._take, self._release, self._assignee, self._assign,
                   sizing_mode="stretch_width"),
            self._facts, self.decision, self._alerts.slot,
            pn.pane.Markdown("#### Notes", margin=(0, 10)), self._thread,
            pn.Row(self._note, add, sizing_mode="stretch_width"),
            pn.pane.Bokeh(self._card.figure, sizing_mode="stretch_width"), self._help,
            sizing_mode="stretch_width")
        self.param.watch(self._load, ["case_id", "drawn"])

    # -- loading -----------------------------------------------------------------------------------------
    def _load(self, event=None) -> None:
        if event is not None and event.name == "case_id":
            self.cursor, self.decision.message = 0, ""  # another case: the last one's line goes
            self.shown = None
        if self.case_id:
            self.later(lambda: self._fetch(self.case_id), self._show)

    def _fetch(self, case_id: str) -> dict:
        ds, app = self.data_store, self.data_store.app
        version, window = ds.model_version, app.settings.case_window_days
        alerts = card_cases.case_alerts(ds.store, version, window, case_id) if version else pd.DataFrame()
        if alerts.empty:
            return {"case_id": case_id, "alerts": None}
        card = alerts["customer_id"].iloc[0]
        history = investigate.card_history(ds.store, card, version)
        return {"case_id": case_id, "alerts": alerts, "holder": card_cases.holder_of(ds.store, case_id),
                "notes": card_cases.thread(ds.store, version, window, case_id),
                "card": CardChart.prepare(history, case_id, card)}

    def _show(self, found: dict) -> None:
        if found["case_id"] != self.case_id:
            return
        # On screen first, then filled: a table first drawn out of sight is drawn without its rows.
        self.shown = found["case_id"]
        alerts = found["alerts"]
        if alerts is None:
            self._title.object = f"### No case {plain(found['case_id'])} under the scores shown"
            self._facts.object, self.holder = "", None
            return
        holder = found["holder"]
        self.holder = holder[0] if holder else None
        waiting = alerts["status"].isna() | (alerts["status"] == "escalated")
        card = alerts["customer_id"].iloc[0]
        self._title.object = f"### Case {plain(found['case_id'])}: card {plain(card)}"
        held = (f"held by **{plain(holder[0])}** since {holder[1]:%Y-%m-%d %H:%M}" if holder else "held by nobody")
        self._facts.object = (f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}, {int(waiting.sum())} "
                              f"undecided · highest fraud probability {alerts['fraud_probability'].max():.1%} · "
                              f"{alerts.loc[waiting, 'amount'].sum():,.2f} at risk · {held}. Decisions apply to "
                              "the ticked alerts, or to every undecided one when none is ticked.")
        me = self._me()
        self._take.disabled = bool(holder and holder[0] == me) or not waiting.any()
        self._release.disabled = not holder
        self.decision.enabled = not holder or holder[0] == me
        self.cursor = min(self.cursor, len(alerts) - 1)
        self._alerts.fill(alerts_frame(alerts))
        self._alerts.selection = []
        self._thread.object = self._notes_html(found["notes"])
        self._card.show(found["card"])

    @staticmethod
    def _notes_html(notes: pd.DataFrame) -> str:
        if notes.empty:
            return "<i style='color:#607d8b'>No notes yet.</i>"
        return "".join(f"<p style='margin:4px 0'><b>{plain(r.author)}</b> <span style='color:#607d8b'>"
                       f"{r.written_at:%Y-%m-%d %H:%M}</span><br>{plain(r.text)}</p>" for r in notes.itertuples())

    # -- actions -----------------------------------------------------------------------------------------
    def _me(self) -> str:
        actor = self.data_store.actor
        return getattr(actor, "name", actor)

    def _try(self, act) -> bool:
        try:
            act()
        except (Forbidden, CaseError) as exc:
            self.decision.message = f"{exc}."
            return False
        self.data_store.refresh()
        return True

    def take(self, to: str | None = None) -> None:
        ds = self.data_store
        if self._try(lambda: ds.app.take_case(self.case_id, ds.actor, to=to)):
            whose = f"{to}'s" if to else "yours"
            self.decision.message = f"Case {self.case_id} is now {whose}."

    def assign(self) -> None:
        to = self._assignee.value.strip()
        if not to:
            self.decision.message = "Write the name of the user to give the case to."
            return
        self.take(to)

    def release(self) -> None:
        ds = self.data_store
        if self._try(lambda: ds.app.release_case(self.case_id, ds.actor)):
            self.decision.message = f"Case {self.case_id} released."

    def add_note(self) -> None:
        ds, text = self.data_store, self._note.value
        if self._try(lambda: ds.app.note_case(self.case_id, text, ds.actor)):
            self._note.value = ""
            self.decision.message = "Note added."

    def _decide(self, status: str, note: str | None) -> str:
        ds, rows = self.data_store, self._alerts.selection
        ticked = self._alerts.value["Transaction"].iloc[rows].tolist() if rows else None
        ids = ds.app.decide_case(self.case_id, status, ds.actor, note, ticked)
        ds.refresh()
        n = len(ids)
        return f"Case {self.case_id}: {n} alert{'s' if n != 1 else ''} marked {WORDS[status]}."

    KEYS = ("j", "k", "ArrowDown", "ArrowUp", "x", *DECISION_KEYS, "t", "r", "Escape", "?")  # what key() takes

    def key(self, key: str) -> None:
        rows = len(self._alerts.value)
        if key in ("j", "ArrowDown", "k", "ArrowUp") and rows:
            step = 1 if key in ("j", "ArrowDown") else -1
            self.cursor = max(0, min(rows - 1, self.cursor + step))
            ticked = self._alerts.selection
            self._alerts.fill(self._alerts.value)  # the outline moves with the styles
            self._alerts.selection = ticked
        elif key == "x" and rows:
            ticked = set(self._alerts.selection) ^ {self.cursor}
            self._alerts.selection = sorted(ticked)
        elif key in DECISION_KEYS:
            self.decision.decide(DECISION_KEYS[key])
        elif key == "t":
            self.take()
        elif key == "r":
            self.release()
        elif key == "?":
            self._help.collapsed = not self._help.collapsed
        elif key == "Escape":
            self.case_id = None

    def __panel__(self) -> pn.viewable.Viewable:
        return self._body
