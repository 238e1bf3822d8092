"""The DuckDB store: schema, migrations, cursors and every query the app runs (with `features`)."""
from .db import SchemaTooNewError, Store, StoreError, StoreLockedError
from .ingest import Reject, Staging, insert_table, write_table_file
from .schema import ALERT_DECISIONS, CHANNELS, LATEST_VERSION, TRANSACTION_FIELDS
from . import analytics, audit, backtests, card_cases, cases, investigate, labels, limits, models, monitoring, queries, scores

__all__ = ["Store", "StoreError", "StoreLockedError", "SchemaTooNewError", "Staging", "Reject", "insert_table",
           "write_table_file", "TRANSACTION_FIELDS", "ALERT_DECISIONS", "CHANNELS", "LATEST_VERSION", "analytics", "audit",
           "backtests", "card_cases", "cases", "investigate", "labels", "limits", "models", "monitoring", "queries", "scores"]
