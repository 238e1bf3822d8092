"""Review queue: the open cases (a card's alerts together), paged, filtered and sorted in SQL. Opening one shows
its alerts, who holds it, the decision and its notes (ui/case.py)."""
from __future__ import annotations

import json

import pandas as pd
import panel as pn
import param

from ..scoring import reason_line
from ..store import card_cases, cases
from .case import CasePanel, top_reason
from .downloads import csv_download
from .keys import help_card
from .tables import Table, fitted
from .view import View

PAGE_SIZE = 25
COLUMNS = {"customer_id": "Card", "alerts": "Alerts", "undecided": "Undecided", "top_score": "Highest probability (%)",
           "at_risk": "Amount at risk", "first_alert": "First alert", "age": "Age (days)", "holder": "Held by",
           "top reason": "Top reason"}
STATES = {"undecided": "undecided (open or escalated)", "open": "open", "escalated": "escalated",
          "decided": "decided", "all": "all"}
SORTS = {"highest probability": "score", "amount at risk": "amount", "most alerts": "alerts", "oldest": "age",
         "newest": "newest"}
FILTERS = ["dates", "status", "sort", "mine", "min_score", "min_amount", "channel", "customer_id", "terminal_id"]
SHORTCUTS = {"j / ↓": "next case", "k / ↑": "previous case", "Enter or o": "open the case",
             "m": "my cases, or all again", "n / p": "next or previous page", "?": "show or hide these keys"}
HEADER_SORTS = {"Card": "customer_id", "Alerts": "alerts", "Undecided": "undecided",
                "Highest probability (%)": "top_score", "Amount at risk": "at_risk", "First alert": "first_alert",
                "Age (days)": "first_alert", "Held by": "holder"}
# The short columns' widths (tables.fitted): the reason takes the rest.
WIDTHS = {"Card": 80, "Alerts": 70, "Undecided": 100, "Highest probability (%)": 105, "Amount at risk": 110,
          "First alert": 155, "Age (days)": 75, "Held by": 90}


def cases_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The case rows in words, with the case id kept (hidden) for opening."""
    if frame.empty:
        return pd.DataFrame(columns=["case_id", *COLUMNS.values()])
    now = pd.Timestamp.now("UTC").tz_localize(None)
    # Numbers stay numbers (shown with a unit), so a header's sort of the page agrees with the query's.
    frame = frame.assign(age=(now - frame["first_alert"]).dt.days, top_score=(100 * frame["top_score"]).round(1),
                         holder=frame["holder"].fillna(""),
                         **{"top reason": [top_reason(r) for r in frame["reasons"]]})
    return frame[["case_id", *COLUMNS]].rename(columns=COLUMNS)


class ReviewView(View):
    follows = ("version", "model_version")
    page = param.Integer(default=1, bounds=(1, None))
    dates = param.DateRange(default=None, doc="Cases with an alert on these days, both inclusive.")
    status = param.Selector(default="undecided", objects={v: k for k, v in STATES.items()})
    sort = param.Selector(default="score", objects=SORTS)
    order = param.Tuple(default=None, length=2, allow_None=True,
                        doc="The column header sorted by, and its direction; None: `sort` decides.")
    mine = param.Boolean(default=False, doc="Only the cases I hold.")
    min_score = param.Number(default=0.0, bounds=(0, 1))
    min_amount = param.Number(default=0.0, bounds=(0, None))
    channel = param.Selector(default="", objects={"all": "", "pos": "pos", "online": "online", "atm": "atm"})
    customer_id = param.String(default="")
    terminal_id = param.String(default="")
    total = param.Integer(default=-1, doc="Cases matching the filters, over all pages (-1 until counted).")
    cursor = param.Integer(default=0, doc="The row the keys act on.")

    def __init__(self, **params):
        super().__init__(**params)
        # A header click sorts the whole queue in SQL (_sorted); Tabulator's own sort of the page it holds then
        # agrees with it. The first click puts the largest first.
        self._table = Table(show_index=False, disabled=True, selectable=False, sizing_mode="stretch_width",
                            height=720, page_size=PAGE_SIZE, hidden_columns=["case_id"],
                            sortable={"Top reason": False},
                            formatters={"Amount at risk": {"type": "money", "precision": 2},
                                        "Highest probability (%)": {"type": "money", "precision": 1}},
                            **fitted(WIDTHS, headerSortStartingDir="desc"))
        self._table.on_sort(self._sorted)
        self._table.on_click(lambda event: self.open(event.row))
        self._table.style_cursor(lambda: self.cursor)
        self.case = CasePanel(data_store=self.data_store)
        self.dates = self.data_store.period
        self.param.watch(self._filtered, [*FILTERS, "order"])
        self.param.watch(self._load, ["page", *FILTERS, "order"])
        self.param.watch(self._chosen, "sort")
        self.param.watch(self._load, "drawn")
        self.param.watch(self._moved_here, "on_screen")
        self.case.param.watch(self._case_changed, ["case_id", "shown"])
        self._help = help_card("Keys in the queue", SHORTCUTS)
        self._layout = self._build()
        self._load()

    def _query(self, page: int, size: int) -> tuple[pd.DataFrame, int]:
        ds = self.data_store
        start, end = self.dates or (None, None)
        actor = ds.actor
        return card_cases.case_page(
            ds.store, ds.model_version, ds.settings.case_window_days, status=self.status,
            holder=getattr(actor, "name", actor) if self.mine else None, start=start, end=end,
            min_score=self.min_score, min_amount=self.min_amount, channel=self.channel or None,
            customer_id=self.customer_id or None, terminal_id=self.terminal_id or None, sort=self.sort,
            order=self.order, page=page, size=size)

    def _sorted(self, sorters: list[dict]) -> None:
        """A column header clicked: the queue is sorted by that column, from its first page."""
        first = sorters[0] if sorters else {}
        column = HEADER_SORTS.get(first.get("field"))
        if column and first.get("dir") in cases.DIRECTIONS:
            # Older first is the larger age: "Age" sorts by the first alert the other way.
            flip = first["field"] == "Age (days)"
            self.order = (column, {"asc": "desc", "desc": "asc"}[first["dir"]] if flip else first["dir"])
        else:
            self.order = None

    def _chosen(self, *_) -> None:
        """A sort chosen from the list replaces the header's."""
        self.order = None
        self._table.unsort()

    def _filtered(self, *_) -> None:
        self.page, self.cursor = 1, 0

    def _load(self, *_) -> None:
        self.later(self._fetch, self._show)

    def _fetch(self) -> tuple[pd.DataFrame, int]:
        """This page of cases and how many match (in a worker thread)."""
        if self.data_store.model_version is None:
            return cases_frame(pd.DataFrame()), 0
        frame, total = self._query(self.page, PAGE_SIZE)
        return cases_frame(frame), total

    def _show(self, found: tuple[pd.DataFrame, int]) -> None:
        frame, self.total = found
        self.cursor = min(self.cursor, max(len(frame) - 1, 0))
        self._table.value = frame

    # -- moving between the queue and a case -------------------------------------------------------------
    def open(self, row: int) -> None:
        frame = self._table.value
        if 0 <= row < len(frame):
            self.cursor = row
            self.case.case_id = frame["case_id"].iloc[row]

    def _case_changed(self, event) -> None:
        # A case opened replaces the queue once its alerts are in, not before with the last case's: the
        # analyst never sees the wrong case, and the page lays the case out once.
        # Back in the queue, nothing to load again: a decision in the case refreshed the DataStore, which this
        # view follows, so the queue was reloaded then.
        case = self.case
        opened = case.case_id is not None and case.shown == case.case_id
        self._list.visible, self._case_slot.visible = not opened, opened

    def _moved_here(self, event) -> None:
        self.case.on_screen = event.new and self.case.case_id is not None

    KEYS = ("j", "k", "ArrowDown", "ArrowUp", "Enter", "o", "m", "n", "p", "?", *CasePanel.KEYS)  # what key() takes

    def key(self, key: str) -> None:
        """A shortcut, from the page's one key listener (ui/keys.py) while this view is on screen."""
        if self.case.case_id is not None:
            self.case.key(key)
            return
        rows = len(self._table.value)
        if key in ("j", "ArrowDown", "k", "ArrowUp") and rows:
            self.cursor = max(0, min(rows - 1, self.cursor + (1 if key in ("j", "ArrowDown") else -1)))
            self._table.value = self._table.value  # the outline moves with the styles
        elif key in ("Enter", "o"):
            self.open(self.cursor)
        elif key == "m":
            self.mine = not self.mine
        elif key == "n":
            self.page = min(self.page + 1, max(1, -(-self.total // PAGE_SIZE)))
        elif key == "p":
            self.page = max(1, self.page - 1)
        elif key == "?":
            self._help.collapsed = not self._help.collapsed

    # -- downloads ---------------------------------------------------------------------------------------
    def filtered(self) -> pd.DataFrame:
        """Every case the filters match, all pages, in words (the CSV download)."""
        if self.data_store.model_version is None:
            return pd.DataFrame()
        frame, _ = self._query(1, max(self.total, 1))
        shown = cases_frame(frame).rename(columns={"case_id": "Case"})
        shown["Top reason"] = [reason_line(json.loads(r or "[]")) for r in frame["reasons"]]
        return shown

    def flagged_cases(self) -> pd.DataFrame:
        """What `fraud-app export --status flagged` writes, for the chosen days."""
        start, end = self.dates or (None, None)
        return self.data_store.app.case_rows("flagged", start, end)

    def _pager(self) -> pn.viewable.Viewable:
        prev = pn.widgets.Button(name="◀ Previous", width=110)
        nxt = pn.widgets.Button(name="Next ▶", width=110)
        prev.on_click(lambda e: self.key("p"))
        nxt.on_click(lambda e: self.key("n"))

        def label(page: int, total: int) -> str:
            if total < 0:
                return "Counting the cases…"
            pages = max(1, -(-total // PAGE_SIZE))
            return f"Page {page} of {pages:,} · {total:,} case{'' if total == 1 else 's'}"

        # One pane whose text changes: a bound function in the row would put a new pane there at every page,
        # and Bokeh walks the whole page's models again whenever a layout's children change.
        return pn.Row(prev, pn.pane.Markdown(pn.bind(label, self.param.page, self.param.total), margin=(8, 10)), nxt)

    def _build(self) -> pn.viewable.Viewable:
        bounds = self.data_store.bounds or (None, None)
        filters = pn.Param(self.param, parameters=FILTERS,
                           widgets={"dates": {"type": pn.widgets.DateRangePicker, "name": "Days", "width": 230,
                                              "start": bounds[0], "end": bounds[1]},
                                    "status": {"width": 240, "name": "Cases"}, "sort": {"width": 170},
                                    "mine": {"type": pn.widgets.Toggle, "name": "My cases", "width": 110,
                                             "align": "end", "button_type": "primary", "button_style": "outline"},
                                    "channel": {"width": 110},
                                    "min_score": {"type": pn.widgets.FloatSlider, "step": 0.01, "width": 180,
                                                  "name": "Lowest probability"},
                                    "min_amount": {"width": 130, "name": "Least amount at risk"},
                                    "customer_id": {"type": pn.widgets.TextInput, "name": "Card", "width": 130},
                                    "terminal_id": {"type": pn.widgets.TextInput, "name": "Terminal", "width": 130}},
                           show_name=False, default_layout=pn.FlexBox, sizing_mode="stretch_width")
        back = pn.widgets.Button(name="◀ Back to the queue", width=170, description="shortcut: Esc")
        back.on_click(lambda e: setattr(self.case, "case_id", None))
        self._list = pn.Column(filters, pn.pane.Markdown("Click a case to open it.", margin=(0, 10)),
                               self._table.slot, self._pager(), self._help, sizing_mode="stretch_width")
        self._case_slot = pn.Column(back, self.case, visible=False, sizing_mode="stretch_width")
        return pn.Column(
            pn.Row(pn.pane.Markdown("## Review queue"), pn.HSpacer(),
                   csv_download(self.filtered, "cases.csv", "Download these cases", width=190),
                   csv_download(self.flagged_cases, "flagged_cases.csv", "Export flagged alerts", width=190)),
            self._list, self._case_slot, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout
