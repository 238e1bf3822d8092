"""Review queue: open alerts, paged and filtered in SQL, with decisions (one or many) that write the case,
its label and an audit entry."""
from __future__ import annotations

import json

import pandas as pd
import panel as pn
import param

from ..access import Forbidden
from ..features import reason_text
from ..scoring import reason_line
from ..store import cases
from .view import View
from .downloads import csv_download
from .safe import plain
from .tables import Table

PAGE_SIZE = 25
# What an analyst decides on comes first; where it happened after.
COLUMNS = ["transaction_id", "timestamp", "amount", "score", "decision", "top reason", "customer_id", "terminal_id",
           "channel", "status", "analyst"]
FILTERS = ["dates", "status", "sort", "min_score", "min_amount", "channel", "customer_id", "terminal_id"]
ACTIONS = {"Confirm fraud": ("confirmed_fraud", "danger"), "Mark legitimate": ("legitimate", "success"),
           "Escalate": ("escalated", "warning")}


def _top_reason(raw: str | None) -> str:
    reasons = json.loads(raw) if raw else []
    if not reasons:
        return ""
    r = reasons[0]
    return reason_text(r["feature"], float("nan") if r["value"] is None else r["value"])


class ReviewView(View):
    follows = ("version", "model_version")
    page = param.Integer(default=1, bounds=(1, None))
    dates = param.DateRange(default=None, doc="Alerts on these days, both inclusive.")
    status = param.Selector(default="undecided", objects=list(cases.STATUSES))
    sort = param.Selector(default="score", objects=list(cases.SORTS))
    order = param.Tuple(default=None, length=2, allow_None=True,
                        doc="The column header the analyst sorted by and its direction; None: `sort` decides.")
    min_score = param.Number(default=0.0, bounds=(0, 1))
    min_amount = param.Number(default=0.0, bounds=(0, None))
    channel = param.Selector(default="", objects={"all": "", "pos": "pos", "online": "online", "atm": "atm"})
    customer_id = param.String(default="")
    terminal_id = param.String(default="")
    message = param.String(default="")
    total = param.Integer(default=-1, doc="Alerts matching the filters, over all pages (-1 until counted).")

    def __init__(self, **params):
        super().__init__(**params)
        # A header click sorts the whole queue in SQL (_sorted); Tabulator's own sort of the page it holds then
        # agrees with it. The first click puts the largest amounts and scores and the newest payments first.
        self._table = Table(show_index=False, disabled=True, selectable="checkbox", sizing_mode="stretch_width",
                            height=720, page_size=PAGE_SIZE, widths={"top reason": 360},
                            sortable={"top reason": False},
                            configuration={"columnDefaults": {"headerSortStartingDir": "desc"}},
                            formatters={"score": {"type": "progress", "max": 1, "color": "#c62828", "legend": True},
                                        "amount": {"type": "money", "precision": 2}})
        self.dates = self.data_store.period
        self.param.watch(self._filtered, [*FILTERS, "order"])
        self.param.watch(self._load, ["page", *FILTERS, "order"])
        self.param.watch(self._load, "drawn")
        self.param.watch(self._chosen, "sort")
        self._table.on_sort(self._sorted)
        # A click on an id opens it in Investigate; the checkboxes still select rows for a decision.
        self._table.on_click(lambda event: self.data_store.investigate(event.value), column="transaction_id")
        self._note = pn.widgets.TextInput(placeholder="note for the decision (optional)", sizing_mode="stretch_width")
        self._load()

    def _query(self, page: int, size: int) -> tuple[pd.DataFrame, int]:
        ds = self.data_store
        start, end = self.dates or (None, None)
        return cases.alert_page(
            ds.store, ds.model_version, status=self.status, start=start, end=end, min_score=self.min_score,
            min_amount=self.min_amount, channel=self.channel or None, customer_id=self.customer_id or None,
            terminal_id=self.terminal_id or None, sort=self.sort, order=self.order, page=page, size=size)

    def _sorted(self, sorters: list[dict]) -> None:
        """A column header clicked: the queue is sorted by that column, from its first page."""
        first = sorters[0] if sorters else {}
        wanted = (first.get("field"), first.get("dir"))
        self.order = wanted if wanted[0] in cases.COLUMN_SORTS and wanted[1] in cases.DIRECTIONS else None

    def _chosen(self, *_) -> None:
        """A sort chosen from the list replaces the header's."""
        self.order = None
        self._table.unsort()

    def _filtered(self, *_) -> None:
        """Other alerts now: back to the first page, and the last decision's line no longer speaks of them."""
        self.page, self.message = 1, ""

    def _load(self, *_) -> None:
        self.later(self._fetch, self._show)

    def _fetch(self) -> tuple[pd.DataFrame, int]:
        """This page of alerts and how many match (in a worker thread)."""
        if self.data_store.model_version is None:
            return pd.DataFrame(), 0
        frame, total = self._query(self.page, PAGE_SIZE)
        frame["top reason"] = [_top_reason(r) for r in frame.pop("reasons")]
        return frame[[c for c in COLUMNS if c in frame]], total

    def _show(self, found: tuple[pd.DataFrame, int]) -> None:
        self._table.value, self.total = found
        self._table.selection = []

    def filtered(self) -> pd.DataFrame:
        """Every alert the filters match, all pages, with its reasons in words (the CSV download)."""
        if self.data_store.model_version is None:
            return pd.DataFrame()
        frame, _ = self._query(1, max(self.total, 1))
        frame["reasons"] = [reason_line(json.loads(r or "[]")) for r in frame["reasons"]]
        return frame

    def flagged_cases(self) -> pd.DataFrame:
        """What `fraud-app export --status flagged` writes, for the chosen days."""
        start, end = self.dates or (None, None)
        return self.data_store.app.case_rows("flagged", start, end)

    def _decide(self, status: str) -> None:
        rows = self._table.selection
        if not rows:
            self.message = "Select one or more alerts first."
            return
        ids = self._table.value.iloc[rows]["transaction_id"].tolist()
        try:
            n = self.data_store.app.decide_cases(ids, status, self.data_store.actor, self._note.value or None)
        except Forbidden as exc:
            self.message = f"Not decided: {exc}."
            return
        self._note.value = ""
        self.message = f"{n} alert{'s' if n > 1 else ''} marked {status.replace('_', ' ')}."
        self.data_store.refresh()

    def _pager(self) -> pn.viewable.Viewable:
        prev = pn.widgets.Button(name="◀ Previous", width=110)
        nxt = pn.widgets.Button(name="Next ▶", width=110)
        prev.on_click(lambda e: setattr(self, "page", max(1, self.page - 1)))
        nxt.on_click(lambda e: setattr(self, "page", min(self.page + 1, max(1, -(-self.total // PAGE_SIZE)))))

        def label(page: int, total: int) -> pn.pane.Markdown:
            if total < 0:
                return pn.pane.Markdown("Counting the alerts…", margin=(8, 10))
            pages = max(1, -(-total // PAGE_SIZE))
            return pn.pane.Markdown(f"Page {page} of {pages:,} · {total:,} alert{'' if total == 1 else 's'}",
                                    margin=(8, 10))

        return pn.Row(prev, pn.bind(label, self.param.page, self.param.total), nxt)

    def __panel__(self) -> pn.viewable.Viewable:
        bounds = self.data_store.bounds or (None, None)
        filters = pn.Param(self.param, parameters=FILTERS,
                           widgets={"dates": {"type": pn.widgets.DateRangePicker, "name": "Days", "width": 230,
                                              "start": bounds[0], "end": bounds[1]},
                                    "status": {"width": 160}, "sort": {"width": 120}, "channel": {"width": 110},
                                    "min_score": {"type": pn.widgets.FloatSlider, "step": 0.01, "width": 180},
                                    "min_amount": {"width": 130},
                                    "customer_id": {"type": pn.widgets.TextInput, "name": "Card", "width": 130},
                                    "terminal_id": {"type": pn.widgets.TextInput, "name": "Terminal", "width": 130}},
                           show_name=False, default_layout=pn.FlexBox, sizing_mode="stretch_width")
        buttons = []
        for label, (status, kind) in ACTIONS.items():
            button = pn.widgets.Button(name=label, button_type=kind, width=150)
            button.on_click(lambda e, s=status: self._decide(s))
            buttons.append(button)
        return pn.Column(
            pn.Row(pn.pane.Markdown("## Review queue"), pn.HSpacer(),
                   csv_download(self.filtered, "alerts.csv", "Download these alerts", width=190),
                   csv_download(self.flagged_cases, "flagged_cases.csv", "Export flagged cases", width=190)),
            filters,
            pn.Row(*buttons, self._note, sizing_mode="stretch_width"),
            pn.pane.Markdown(pn.bind(plain, self.param.message)),  # a refusal names the user
            self._table.slot,
            self._pager(),
            sizing_mode="stretch_width",
        )
