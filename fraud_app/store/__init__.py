"""The DuckDB store: schema, migrations, cursors and every query the app runs (with `features`)."""
from .db import SchemaTooNewError, Store, StoreError, StoreLockedError, open_shared
from .ingest import Reject, Staging, insert_table, write_table_file
from .schema import CHANNELS, LATEST_VERSION, TRANSACTION_FIELDS
from . import analytics, backtests, cases, investigate, labels, limits, models, monitoring, queries, scores

__all__ = ["Store", "open_shared", "StoreError", "StoreLockedError", "SchemaTooNewError", "Staging", "Reject",
           "insert_table", "write_table_file", "TRANSACTION_FIELDS", "CHANNELS", "LATEST_VERSION", "analytics", "backtests",
           "cases", "investigate", "labels", "limits", "models", "monitoring", "queries", "scores"]
