"""A Tabulator made with its first rows."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import panel as pn


CURSOR = "background-color: #dbe7f5; font-weight: 600"  # the row the keys act on


def fitted(widths: dict[str, int], **column_defaults) -> dict:
    """Table options that fit a page 1280 px wide: the short columns at fixed `widths`, the others sharing the
    rest, headers wrapping, so no column hides off the side. `column_defaults`: more Tabulator column defaults."""
    return {"layout": "fit_columns", "widths": widths,
            "configuration": {"columnDefaults": {"headerWordWrap": True, **column_defaults}}}


def rows_styled(frame: pd.DataFrame, rows, css: str) -> pd.DataFrame:
    """A style for Table.style_rows: `css` on every cell of the rows where `rows` (booleans) is true."""
    marked = np.broadcast_to(np.asarray(rows, dtype=bool)[:, None], frame.shape)
    return pd.DataFrame(np.where(marked, css, ""), index=frame.index, columns=frame.columns)


class Table:
    """A Tabulator made when its first frame arrives, in a slot on the page. Made empty and filled later, a
    table sets its columns again in the browser, and with ten analysts on one server that sometimes came while
    the page was still laying the table out: an error in the page, and no table."""

    def __init__(self, **options):
        self.options = options
        self.widget: pn.widgets.Tabulator | None = None
        self.slot = pn.Column(sizing_mode="stretch_width", margin=0)
        self._clicks: list[tuple[Callable, str | None]] = []
        self._styles: list[Callable] = []
        self._sorts: list[Callable] = []

    def on_click(self, callback: Callable, column: str | None = None) -> None:
        self._clicks.append((callback, column))
        if self.widget is not None:
            self.widget.on_click(callback, column=column)

    def on_sort(self, callback: Callable[[list[dict]], None]) -> None:
        """callback(sorters) when the analyst sorts by a column header: Panel's `sorters`, [{"field", "dir"}]."""
        self._sorts.append(callback)
        if self.widget is not None:
            self.widget.param.watch(lambda event: callback(event.new), "sorters")

    def unsort(self) -> None:
        """No column header sorts any more."""
        if self.widget is not None:
            self.widget.sorters = []

    def style_rows(self, style: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
        """style(frame) gives each cell's CSS ("" for none) in a frame like it; kept through every new frame.
        One call for the whole frame: pandas calling a style once per row took 50 ms for a card's few hundred
        payments, on the event loop that every page and the REST API share."""
        self._styles.append(style)
        if self.widget is not None:
            self.widget.style.apply(style, axis=None)

    def style_cursor(self, at: Callable[[], int]) -> None:
        """The row at position at() of the rows given, outlined as the one the keys act on."""
        def style(frame: pd.DataFrame) -> pd.DataFrame:
            value, row = self.value, at()
            label = value.index[row] if 0 <= row < len(value) else None
            return rows_styled(frame, frame.index == label, CURSOR)

        self.style_rows(style)

    @property
    def value(self) -> pd.DataFrame:
        return self.widget.value if self.widget is not None else pd.DataFrame()

    @value.setter
    def value(self, frame: pd.DataFrame) -> None:
        self.fill(frame)

    def fill(self, frame: pd.DataFrame, page: int | None = None) -> None:
        """New rows, and the page to show (a table being made takes it as it is made: the browser failed on
        a page set just after)."""
        if self.widget is not None:
            self.widget.value = frame
            if page is not None:
                self.widget.page = page
            return
        self.widget = pn.widgets.Tabulator(frame, **self.options, **({"page": page} if page else {}))
        for callback, column in self._clicks:
            self.widget.on_click(callback, column=column)
        for style in self._styles:
            self.widget.style.apply(style, axis=None)
        for sorted_by in self._sorts:
            self.widget.param.watch(lambda event, callback=sorted_by: callback(event.new), "sorters")
        self.slot.objects = [self.widget]

    def refill(self, frame: pd.DataFrame) -> None:
        """New rows that may have other columns: with other columns, a new table made with them (the browser
        would set the columns again, as for a table made empty)."""
        if self.widget is not None and list(frame.columns) != list(self.widget.value.columns):
            self.widget = None
        self.fill(frame)

    @property
    def selection(self) -> list[int]:
        return self.widget.selection if self.widget is not None else []

    @selection.setter
    def selection(self, rows: list[int]) -> None:
        if self.widget is not None:
            self.widget.selection = rows

    @property
    def page(self) -> int:
        return self.widget.page if self.widget is not None else 1

    @page.setter
    def page(self, number: int) -> None:
        if self.widget is not None:
            self.widget.page = number
