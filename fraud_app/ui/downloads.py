"""CSV downloads of what a table shows. The frame is built when the analyst clicks, never before, so a
download always holds the current filters' rows and costs nothing until asked for."""
from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd
import panel as pn
import pyarrow as pa

from ..store import write_table_file


def csv_bytes(frame: pd.DataFrame) -> io.BytesIO:
    """The same CSV dialect as the CLI's files (DuckDB writes both)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.csv"
        write_table_file(pa.Table.from_pandas(frame, preserve_index=False), path)
        return io.BytesIO(path.read_bytes())


def csv_download(frame: Callable[[], pd.DataFrame], filename: str, label: str = "Download CSV",
                 width: int = 150) -> pn.widgets.FileDownload:
    return pn.widgets.FileDownload(callback=lambda: csv_bytes(frame()), filename=filename, label=label,
                                   button_type="light", width=width, embed=False)
