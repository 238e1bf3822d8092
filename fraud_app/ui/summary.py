"""What is in the database: counts, time span and where the rows came from; importing a file; backing up."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import panel as pn
import param

from ..access import Forbidden, name_of
from ..importer import ImportFileError
from .downloads import csv_download
from ..jobs import BusyError
from .jobs import JobStatus
from .safe import plain
from .upload import Upload, size_text
from .view import View

LOAD_WIDTHS = {"import": 85, "finished": 160, "by": 90, "status": 90, "rows": 95, "rejected": 90}


class SummaryView(View):
    follows = ("version",)
    error = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self.status = JobStatus(data_store=self.data_store)
        self._file = Upload(accept=".csv,.parquet,.pq", max_bytes=self.data_store.settings.upload_max_bytes,
                            width=320)
        self._import = pn.widgets.Button(name="Import", button_type="primary", width=110, align="end", disabled=True)
        self._import.on_click(self._start_import)
        self._file.param.watch(self._received, ["filename", "refused"])
        self._backup = pn.widgets.Button(name="Back up now", button_type="default", width=130, align="center")
        self._backup.on_click(self._start_backup)

    def _received(self, *_) -> None:
        self._import.disabled = not self._file.filename
        self.error = self._file.refused

    def _start_import(self, *_) -> None:
        if self._file.file is None:
            self.error = "Choose a CSV or Parquet file first."
            return
        name, content = self._file.file
        name = Path(name).name
        if name in ("", ".", ".."):
            name = "upload.csv"
        app, who = self.data_store.app, self.data_store.actor
        try:
            app.allow(who, "import")  # refused now, in words, rather than as a failed job
        except Forbidden as exc:
            self.error = f"Cannot import: {exc}"
            return

        def work(progress):
            # The file exists only while the job runs: a refused start, a failure or a success leaves nothing.
            with tempfile.TemporaryDirectory(prefix="fraud_app-import-") as folder:
                path = Path(folder) / name  # its suffix tells its type; the load history shows only `name`
                path.write_bytes(content)
                try:
                    report = app.import_file(path, actor=who, progress=progress, source=name)
                except ImportFileError as exc:  # its words, without the command line's way out
                    raise ValueError(f"{exc.reason}. Rename the file's columns to the field names, or import it "
                                     "at the command line with --map") from None
            if report.rejected:  # nothing was imported; the job's error lists where and why
                raise ValueError(f"nothing imported from {name}: {report.rejected:,} of {report.rows_read:,} rows "
                                 "are invalid. " + " · ".join(report.lines(5)))
            return report

        try:
            app.jobs.start(f"Importing {name}", name_of(who), work)
        except BusyError as exc:  # the file stays chosen: Import again once the job is done
            self.error = f"Cannot import now: {exc}"
            return
        self._file.clear()
        self.error = ""
        self.status.watch()

    def _start_backup(self, *_) -> None:
        app, who = self.data_store.app, self.data_store.actor
        try:
            app.allow(who, "backup")  # refused now, in words, rather than as a failed job
            app.jobs.start("Backing up", name_of(who), lambda progress: app.backup(who, progress=progress))
        except Forbidden as exc:
            self.error = f"Cannot back up: {exc}"
            return
        except BusyError as exc:
            self.error = f"Cannot back up now: {exc}"
            return
        self.error = ""
        self.status.watch()

    def _backups(self, version: int) -> pn.viewable.Viewable:
        s = self.data_store.settings
        every = (f"every {s.backup_every_hours:g} hours" if s.backup_every_hours else "only when asked")
        newest = self.data_store.app.newest_backup()
        last = (f"The newest was taken {newest[0]:%Y-%m-%d %H:%M} UTC: {plain(newest[1])}." if newest
                else "There is none yet.")
        return pn.pane.Markdown(f"Backups go to {plain(s.backups_path)}, {every}, and are kept "
                                f"{s.backup_keep_days:g} days. {last}", styles={"color": "#555"}, width=520)

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
                             columns=["import", "finished", "source", "by", "status", "rows", "rejected", "reason"])
        return pn.Column(
            pn.Row(pn.pane.Markdown("### Loads"), pn.HSpacer(), csv_download(lambda: frame, "loads.csv", width=130)),
            # The source and the reason wrap: Tabulator's textarea formatter escapes the text it shows, as the other
            # cells' does. The short columns have fixed widths and those two share the rest, so at 1280 px the
            # reason no longer runs off the side.
            pn.widgets.Tabulator(frame, show_index=False, disabled=True, sizing_mode="stretch_width", height=240,
                                 layout="fit_columns", widths=LOAD_WIDTHS,
                                 formatters={"source": {"type": "textarea"}, "reason": {"type": "textarea"}}),
            sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        version = self.param.drawn
        limit = size_text(self.data_store.settings.upload_max_bytes)
        return pn.Column(
            pn.pane.Markdown("## Data"),
            pn.Row(self._file, self._import,
                   pn.pane.Markdown(f"Import transactions from a CSV or Parquet file of up to {limit} (bigger "
                                    "files: `fraud-app import` on the server). A file with any invalid row is "
                                    "refused whole, with the lines and fields named; new rows are scored at once.",
                                    styles={"color": "#555"}, width=420)),
            pn.Row(self._backup, pn.bind(self._backups, version)),
            pn.pane.Markdown(pn.bind(lambda e: f"<span style='color:#c62828'>{plain(e)}</span>" if e else "",
                                     self.param.error)),
            self.status,
            pn.bind(self._cards, version),
            pn.bind(self._imports, version),
            sizing_mode="stretch_width",
        )
