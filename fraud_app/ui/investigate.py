"""Investigate: one transaction in full (fields, score, reasons in words), its card's payments over time, its
terminal's days, and where it sits among all transactions."""
from __future__ import annotations

import json
from functools import partial

import pandas as pd
import panel as pn
import param

from ..features import reason_text
from ..registry import ModelError
from ..store import ALERT_DECISIONS, card_cases, investigate, models
from .charts import GREY, GREEN, ORANGE, RED, AllChart, CardChart, ReasonsChart, TerminalChart
from .decide import KEYS as DECISION_KEYS, WORDS, DecisionBar
from .downloads import csv_download
from .safe import plain
from .tables import Table, fitted, rows_styled
from .view import HIDDEN, SHOWN, View

# A decision in words, and its colour.
DECIDED = {"approve": ("approved", GREEN), "review": ("sent to review", ORANGE), "decline": ("declined", RED)}
PAGE_SIZE = 10
# The card's payments in words, as a case's alerts are (ui/case.py); its CSV download has the same columns.
CARD_COLUMNS = {"transaction_id": "Transaction", "timestamp": "Time", "terminal_id": "Terminal", "amount": "Amount",
                "channel": "Channel", "country": "Country", "score": "Fraud probability (%)", "decision": "Decision",
                "alert": "Alert", "fraud": "Fraud"}
# The short columns' widths (tables.fitted): the probability's bar takes the rest.
CARD_WIDTHS = {"Transaction": 110, "Time": 150, "Terminal": 90, "Amount": 85, "Channel": 85, "Country": 85,
               "Decision": 110, "Alert": 70, "Fraud": 70}
CURRENT = "background-color: #dbe7f5; color: #0d2c54; font-weight: 600"  # the transaction shown, in its card's table
HINT = "Type a transaction id above, or open a case in the Review queue and click one of its alerts."


def _badge(text: str, colour: str) -> str:
    return (f'<span style="background:{colour};color:white;border-radius:4px;padding:2px 8px;'
            f'font-size:11pt;margin-left:8px">{plain(text)}</span>')


def _label(row: dict) -> str:
    if row["is_fraud"] is None:
        return "not labelled"
    source = f" by {row['label_source']}" if row["label_source"] else ""
    when = f" on {row['label_time']:%Y-%m-%d}" if row["label_time"] is not None else ""
    return ("fraud" if row["is_fraud"] else "genuine") + source + when


def _decision(row: dict) -> str | None:
    """The decision in words, with the thresholds that made it (the levels are named by them, not by a scale)."""
    if row["decision"] is None:
        return None
    words = DECIDED.get(row["decision"], (row["decision"], GREY))[0]
    t = row.get("thresholds") or {}
    if "review" in t and "decline" in t:
        words += f" (this model reviews from {t['review']:.1%} and declines from {t['decline']:.1%})"
    return words


def card_rows(card: pd.DataFrame) -> pd.DataFrame:
    """The card's payments as its table shows them: the probability in percent, to three significant digits as
    stored (a tiny one stays readable), and the decision in words."""
    return card.assign(score=[float(f"{100 * p:.3g}") if pd.notna(p) else None for p in card["score"]],
                       decision=[DECIDED.get(d, (d, None))[0] for d in card["decision"]],
                       )[list(CARD_COLUMNS)].rename(columns=CARD_COLUMNS)


def _fields(row: dict) -> str:
    p = row["fraud_probability"]
    case = row["case_status"] or ("open" if row["decision"] in ALERT_DECISIONS else None)  # alerts only
    if case:
        case = case.replace("_", " ")
    if row["analyst"]:
        case += f" ({row['analyst']}, {row['decided_at']:%Y-%m-%d %H:%M})"
    if row.get("case_id"):
        case += f"; in case {row['case_id']}" + (f", held by {row['holder']}" if row.get("holder") else "")
    items = [("Time", f"{row['timestamp']:%Y-%m-%d %H:%M:%S}"), ("Card", row["customer_id"]),
             ("Terminal", row["terminal_id"]), ("Amount", f"{row['amount']:,.2f} {row['currency']}"),
             ("Channel", row["channel"]), ("Merchant category", row["merchant_category"]),
             ("Country", row["country"]),
             ("Fraud probability", "not scored" if p is None else f"{p:.2%}"),
             ("Decision", _decision(row)), ("Model", row["model_version"]), ("Label", _label(row)),
             ("Decision on the alert", case), ("Note", row["note"])]
    cells = "".join(f'<tr><td style="color:#607d8b;padding:3px 16px 3px 0">{k}</td>'
                    f'<td style="padding:3px 0">{plain(v)}</td></tr>' for k, v in items if v is not None)
    return f'<table style="font-size:10.5pt;border-collapse:collapse">{cells}</table>'


class InvestigateView(View):
    follows = ("version", "model_version")
    transaction_id = param.String(default="", doc="The transaction shown.")

    def __init__(self, **params):
        super().__init__(**params)
        self._search = pn.widgets.TextInput(label="Transaction id", placeholder="id, then Enter", width=220)
        self._notice = pn.pane.Alert(HINT, alert_type="info")
        self._opening = pn.pane.Markdown(margin=(0, 10), styles=HIDDEN)  # while a new transaction is fetched
        self._shown: str | None = None  # the transaction the page shows
        self._title = pn.pane.Markdown(margin=(0, 10))
        self._fields = pn.pane.HTML(width=420, margin=(0, 10))
        self._why, self._card_plot, self._terminal_plot = ReasonsChart(), CardChart(), TerminalChart()
        self._card_title = pn.pane.Markdown(margin=(0, 10))
        self._card_table = Table(
            show_index=False, disabled=True, selectable=False, sizing_mode="stretch_width",
            pagination="local", page_size=PAGE_SIZE, **fitted(CARD_WIDTHS),
            formatters={"Fraud probability (%)": {"type": "progress", "max": 100, "color": RED, "legend": True},
                        "Amount": {"type": "money", "precision": 2},
                        "Fraud": {"type": "tickCross", "crossElement": False},
                        "Alert": {"type": "tickCross", "crossElement": False}})
        # An alert is decided here too, as in the queue (c, l and e as there).
        self.decision = DecisionBar(self._decide)
        self._decide_row = pn.Column(self.decision, visible=False, sizing_mode="stretch_width")
        self._decided_on: str | None = None  # the transaction the decision line speaks of
        self._detail = pn.Column(
            self._title, self._decide_row,
            pn.Row(self._fields, pn.pane.Bokeh(self._why.figure, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            pn.Row(pn.pane.Bokeh(self._card_plot.figure, sizing_mode="stretch_width"),
                   pn.pane.Bokeh(self._terminal_plot.figure, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            pn.Row(self._card_title, pn.HSpacer(),
                   csv_download(lambda: self._card_table.value, "card_payments.csv", width=130)),
            self._card_table.slot, visible=False, sizing_mode="stretch_width")
        self._all = AllChart()
        self._all_slot = pn.Column(sizing_mode="stretch_width")  # the chart, once it has its first image
        self.transaction_id = self._search.value = self.data_store.focus or ""
        self._search.param.watch(self._searched, "value")
        self._card_table.on_click(self._clicked)
        self._card_table.style_rows(self._current_rows)
        self.data_store.param.watch(self._follow, "focus")
        self.param.watch(self._load, "drawn")
        self.param.watch(self._load, "transaction_id")
        self._load()

    def _follow(self, event) -> None:
        if event.new:  # investigate() passes through None so the same id twice still navigates
            if event.new == self.transaction_id and event.new != self._shown:
                self._load()  # the same one again after it could not be shown: param sends no change
            self.transaction_id = event.new
            self._search.value = event.new

    def _searched(self, event) -> None:
        wanted = event.new.strip()
        if wanted and wanted != self.transaction_id:
            self.data_store.investigate(wanted)

    def _current_rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        return rows_styled(frame, frame["Transaction"] == self.transaction_id, CURRENT)

    def _clicked(self, event) -> None:
        self.data_store.investigate(self._card_table.value["Transaction"].iloc[event.row])

    KEYS = tuple(DECISION_KEYS)  # what key() takes

    def key(self, key: str) -> None:
        """c, l or e decide the alert shown, as in a case: not one still being fetched, nor one not shown."""
        if self._decide_row.visible and self._shown == self.transaction_id and key in DECISION_KEYS:
            self.decision.decide(DECISION_KEYS[key])

    def _decide(self, status: str, note: str | None) -> str:
        ds = self.data_store
        ds.app.decide_cases([self.transaction_id], status, ds.actor, note)
        ds.refresh()
        return f"Transaction {self.transaction_id} marked {WORDS[status]}."

    def _case_of(self, row: dict) -> dict:
        """The row with its model's thresholds, and for an alert its case and who holds it."""
        store, version = self.data_store.store, row["model_version"]
        kept = models.get_version(store, version) if version else None
        row = {**row, "thresholds": (kept or {}).get("thresholds")}
        if row["decision"] in ALERT_DECISIONS:
            window = self.data_store.settings.case_window_days
            case_id = card_cases.cases_of(store, version, window, [row["transaction_id"]]).get(row["transaction_id"])
            holder = card_cases.holder_of(store, case_id) if case_id else None
            row |= {"case_id": case_id, "holder": holder[0] if holder else None}
        return row

    def _reasons(self, row: dict) -> list[dict]:
        stored = json.loads(row["reasons"] or "[]")
        if stored:
            return [{**r, "text": reason_text(r["feature"], float("nan") if r["value"] is None else r["value"])}
                    for r in stored]
        try:
            return self.data_store.app.explain(row["transaction_id"], version=row["model_version"])
        except ModelError:  # no model to explain with yet: the fields say "not scored"
            return []

    def _load(self, *_) -> None:
        tid = self.transaction_id
        if tid and tid != self._shown:
            # The last transaction goes at once: shown with the view and then drawn again with the new one, it
            # cost the browser a second layout and paint of every plot, a quarter of its work for each open.
            self._opening.object = f"Opening **{plain(tid)}**…"  # not "Transaction …", which the title says
            self._opening.styles, self._detail.styles, self._all_slot.styles = SHOWN, HIDDEN, HIDDEN
        self.later(lambda: self._fetch(self.transaction_id, self.data_store.model_version), self._show)

    def failed(self, error: Exception, lane: str) -> None:
        if lane:  # the chart of every payment: the transaction is shown without it
            return
        tid, self._shown = self.transaction_id, None  # the same transaction again is fetched again
        self._notice.object = f"Could not open **{plain(tid)}**; the server's log has the error. Try it again."
        self._notice.alert_type, self._notice.visible, self._detail.visible = "danger", True, False
        self._opening.styles = HIDDEN

    def _fetch(self, tid: str, version: str | None) -> dict:
        """Everything the view shows about `tid`, queried and made ready to draw (in a worker thread)."""
        app = self.data_store.app
        row = investigate.transaction(app.store, tid, version) if tid else None
        found = {"tid": tid, "row": row, "version": version}
        if row is None:
            return found
        found["row"] = row = self._case_of(row)
        card = investigate.card_history(app.store, row["customer_id"], version)
        days = investigate.terminal_daily(app.store, row["terminal_id"], version)
        shown = card.iloc[::-1].reset_index(drop=True)  # newest first, as a statement reads
        at = shown.index[shown["transaction_id"] == tid]
        return found | {"reasons": ReasonsChart.prepare(self._reasons(row)),
                        "card": CardChart.prepare(card, tid, row["customer_id"]),
                        "days": TerminalChart.prepare(days, row), "table": card_rows(shown),
                        "page": int(at[0]) // PAGE_SIZE + 1 if len(at) else 1}

    def _fetch_all(self, version: str | None, row: dict | None) -> dict:
        return self._all.prepare(self.data_store.app.score_points(version) if version else None, row)

    def _show_all(self, data: dict) -> None:
        # Put on the page with its first image, not with the view: building it and laying it out held up the
        # first transaction a page opened. Filled first: it goes to the browser as it is when added.
        self._all.show(data)
        if not self._all_slot.objects:
            self._all_slot.objects = [pn.pane.Bokeh(self._all.figure, sizing_mode="stretch_width")]

    def _show(self, found: dict) -> None:
        tid, row = found["tid"], found["row"]
        self._shown = tid
        self._opening.styles, self._detail.styles, self._all_slot.styles = HIDDEN, SHOWN, SHOWN
        self._all.mark(row)  # with the rest, when the chart is already drawn (most opens)
        # Every payment's chart, at the page's foot, comes after the transaction: binning them all for a new
        # page took longer than all the transaction's own queries.
        self.later(partial(self._fetch_all, found["version"], row), self._show_all, lane="all")
        if row is None:
            self._notice.object = f"No transaction with id **{plain(tid)}**. {HINT}" if tid else HINT
            self._notice.alert_type = "warning" if tid else "info"
            self._notice.visible, self._detail.visible = True, False
            self._decide_row.visible = False
            return
        # Shown before it is filled: Tabulator drops row styles it receives while hidden.
        self._notice.visible, self._detail.visible = False, True
        decided = DECIDED.get(row["decision"])
        self._title.object = f"### Transaction {plain(tid)} " + (
            _badge(f"{row['fraud_probability']:.1%} fraud probability · {decided[0]}", decided[1]) if decided else "")
        self._fields.object = _fields(row)
        if tid != self._decided_on:  # another transaction: the last one's line goes
            self._decided_on, self.decision.message = tid, ""
        self._decide_row.visible = row["decision"] in ALERT_DECISIONS
        self._why.show(found["reasons"])
        self._card_plot.show(found["card"])
        self._terminal_plot.show(found["days"])
        self._card_title.object = (f"#### Card {plain(row['customer_id'])}: payments, newest first "
                                   "(click one to open it)")
        self._card_table.fill(found["table"], found["page"])

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(pn.pane.Markdown("## Investigate"), pn.HSpacer(), self._search),
                         self._notice, self._opening, self._detail, self._all_slot,
                         sizing_mode="stretch_width")
