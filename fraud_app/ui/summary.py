"""What is in the database: counts, time span and where the rows came from."""
from __future__ import annotations

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from .datastore import DataStore


class SummaryView(Viewer):
    data_store = param.ClassSelector(class_=DataStore)

    def _cards(self, version: int) -> pn.viewable.Viewable:
        s = self.data_store.summary()
        span = f"{s.first:%Y-%m-%d} to {s.last:%Y-%m-%d}" if s.first else "no data yet"
        rate = 100 * s.labelled_fraud / s.transactions if s.transactions else 0.0
        cards = [
            pn.indicators.Number(name="Transactions", value=s.transactions, format="{value:,}"),
            pn.indicators.Number(name="Customers", value=s.customers, format="{value:,}"),
            pn.indicators.Number(name="Terminals", value=s.terminals, format="{value:,}"),
            pn.indicators.Number(name="Labelled fraud", value=s.labelled_fraud, format="{value:,}"),
            pn.indicators.Number(name="Fraud rate", value=rate, format="{value:.2f}%"),
        ]
        for card in cards:
            card.font_size = "28pt"
            card.title_size = "11pt"
        return pn.Column(pn.FlexBox(*cards, gap="24px"),
                         pn.pane.Markdown(f"**Period:** {span} &nbsp; **Volume:** {s.total_amount:,.2f}"))

    def _imports(self, version: int) -> pn.viewable.Viewable:
        frame = pd.DataFrame(self.data_store.imports(),
                             columns=["import", "finished", "source", "by", "rows", "rejected"])
        return pn.widgets.Tabulator(frame, show_index=False, disabled=True, sizing_mode="stretch_width",
                                    height=240, name="Imports")

    def __panel__(self) -> pn.viewable.Viewable:
        version = self.data_store.param.version
        return pn.Column(
            pn.pane.Markdown("## Data"),
            pn.bind(self._cards, version),
            pn.pane.Markdown("### Loads"),
            pn.bind(self._imports, version),
            sizing_mode="stretch_width",
        )
