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
from .tables import Table
from .upload import Upload, size_text
from .view import View

LOAD_COLUMNS = ["import", "finished", "source", "by", "status", "rows", "rejected", "reason"]
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
        self._backups = pn.pane.Markdown(styles={"color": "#555"}, width=520)
        self._cards = {name: pn.indicators.Number(name=name, value=0, format=fmt, font_size="28pt", title_size="11pt")
                       for name, fmt in (("Transactions", "{value:,}"), ("Customers", "{value:,}"),
                                         ("Terminals", "{value:,}"), ("Labelled fraud", "{value:,}"),
                                         ("Fraud rate", "{value:.2f}%"))}
        self._span = pn.pane.Markdown()
        # The source and the reason wrap: Tabulator's textarea formatter escapes the text it shows, as the other
        # cells' does. The short columns have fixed widths and those two share the rest, so at 1280 px the
        # reason no longer runs off the side.
        self._loads = Table(show_index=False, disabled=True, sizing_mode="stretch_width", height=240,
                            layout="fit_columns", widths=LOAD_WIDTHS,
                            formatters={"source": {"type": "textarea"}, "reason": {"type": "textarea"}})
        self.param.watch(self._load, "drawn")
        self._load()

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

    # -- loading: the queries in a worker thread, then onto the page ------------------------------------------
    def _load(self, *_) -> None:
        self.later(self._fetch, self._show)

    def _fetch(self) -> dict:
        ds = self.data_store
        return {"summary": ds.summary(), "loads": ds.imports(), "backup": ds.app.newest_backup()}

    def _show(self, found: dict) -> None:
        s = found["summary"]
        for key, value in (("Transactions", s.transactions), ("Customers", s.customers), ("Terminals", s.terminals),
                           ("Labelled fraud", s.labelled_fraud),
                           ("Fraud rate", 100 * s.labelled_fraud / s.transactions if s.transactions else 0.0)):
            self._cards[key].value = value
        span = f"{s.first:%Y-%m-%d} to {s.last:%Y-%m-%d}" if s.first else "no data yet"
        self._span.object = f"**Period:** {span} &nbsp; **Volume:** {s.total_amount:,.2f}"
        self._loads.fill(pd.DataFrame(found["loads"], columns=LOAD_COLUMNS))
        settings, newest = self.data_store.settings, found["backup"]
        every = f"every {settings.backup_every_hours:g} hours" if settings.backup_every_hours else "only when asked"
        last = (f"The newest was taken {newest[0]:%Y-%m-%d %H:%M} UTC: {plain(newest[1])}." if newest
                else "There is none yet.")
        self._backups.object = (f"Backups go to {plain(settings.backups_path)}, {every}, and are kept "
                                f"{settings.backup_keep_days:g} days. {last}")

    def __panel__(self) -> pn.viewable.Viewable:
        limit = size_text(self.data_store.settings.upload_max_bytes)
        return pn.Column(
            pn.pane.Markdown("## Data"),
            pn.Row(self._file, self._import,
                   pn.pane.Markdown(f"Import transactions from a CSV or Parquet file of up to {limit} (bigger "
                                    "files: `fraud-app import` on the server). A file with any invalid row is "
                                    "refused whole, with the lines and fields named; new rows are scored at once.",
                                    styles={"color": "#555"}, width=420)),
            pn.Row(self._backup, self._backups),
            pn.pane.Markdown(pn.bind(lambda e: f"<span style='color:#c62828'>{plain(e)}</span>" if e else "",
                                     self.param.error)),
            self.status,
            pn.FlexBox(*self._cards.values(), gap="24px"), self._span,
            pn.Row(pn.pane.Markdown("### Loads"), pn.HSpacer(),
                   csv_download(lambda: self._loads.value, "loads.csv", width=130)),
            self._loads.slot,
            sizing_mode="stretch_width",
        )
