"""The DuckDB schema as an ordered list of migrations. Append new ones; never edit a released one."""
from __future__ import annotations

from .limits import CHANNELS, MAX_ID_LENGTH, MAX_TEXT_LENGTH  # noqa: F401  (also importable from here)

# CONTRACTS §1: canonical transaction fields and whether a file must carry them.
TRANSACTION_FIELDS: dict[str, bool] = {
    "transaction_id": True,
    "timestamp": True,
    "customer_id": True,
    "terminal_id": True,
    "amount": True,
    "currency": False,
    "merchant_category": False,
    "channel": False,
    "country": False,
    "is_fraud": False,
    "label_time": False,
}

# transactions.is_fraud / label_time hold the current label; `labels` keeps every later change
# (chargeback feeds, analysts) so the history of what was known when is never lost.
_V1 = """
CREATE TABLE transactions (
    transaction_id    VARCHAR PRIMARY KEY,
    timestamp         TIMESTAMP NOT NULL,
    customer_id       VARCHAR NOT NULL,
    terminal_id       VARCHAR NOT NULL,
    amount            DOUBLE NOT NULL,
    currency          VARCHAR NOT NULL,
    merchant_category VARCHAR,
    channel           VARCHAR,
    country           VARCHAR,
    is_fraud          BOOLEAN,
    label_time        TIMESTAMP
);
CREATE SEQUENCE labels_seq;
CREATE TABLE labels (
    label_id       BIGINT PRIMARY KEY DEFAULT nextval('labels_seq'),
    transaction_id VARCHAR NOT NULL,
    is_fraud       BOOLEAN NOT NULL,
    label_time     TIMESTAMP NOT NULL,
    source         VARCHAR NOT NULL,
    actor          VARCHAR,
    recorded_at    TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP)
);
CREATE TABLE scores (
    transaction_id    VARCHAR NOT NULL,
    model_version     VARCHAR NOT NULL,
    fraud_probability DOUBLE NOT NULL,
    risk_score        SMALLINT NOT NULL,
    risk_level        VARCHAR NOT NULL,
    decision          VARCHAR NOT NULL,
    reasons           JSON,
    scored_at         TIMESTAMP NOT NULL
);
CREATE TABLE model_versions (
    version          VARCHAR PRIMARY KEY,
    created_at       TIMESTAMP NOT NULL,
    train_start      DATE,
    train_end        DATE,
    params           JSON,
    features         JSON,
    metrics          JSON,
    thresholds       JSON,
    library_versions JSON,
    sha256           VARCHAR NOT NULL,
    path             VARCHAR NOT NULL,
    status           VARCHAR NOT NULL DEFAULT 'candidate',
    promoted_at      TIMESTAMP
);
CREATE SEQUENCE audit_seq;
CREATE TABLE audit_log (
    audit_id  BIGINT PRIMARY KEY DEFAULT nextval('audit_seq'),
    logged_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP),
    actor     VARCHAR,
    action    VARCHAR NOT NULL,
    entity    VARCHAR,
    entity_id VARCHAR,
    old_value VARCHAR,
    new_value VARCHAR,
    note      VARCHAR
);
"""

# v2: every import or generated load is recorded, so an analyst can tell where rows came from.
_V2 = """
CREATE SEQUENCE imports_seq;
CREATE TABLE imports (
    import_id     BIGINT PRIMARY KEY DEFAULT nextval('imports_seq'),
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP NOT NULL,
    source        VARCHAR NOT NULL,
    actor         VARCHAR,
    rows_imported BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL
);
"""

# v3: the analyst's decision on each alert (the review queue). Labels and the audit log record the history;
# this table holds where each case stands now.
_V3 = """
CREATE TABLE cases (
    transaction_id VARCHAR PRIMARY KEY,
    status         VARCHAR NOT NULL,
    analyst        VARCHAR,
    note           VARCHAR,
    decided_at     TIMESTAMP NOT NULL
);
"""

# v4: each model version's scores on its own test window, so its curves and the threshold simulator need
# no re-scoring. Amounts and labels come from `transactions`, so later labels count.
_V4 = """
CREATE TABLE backtests (
    model_version     VARCHAR NOT NULL,
    transaction_id    VARCHAR NOT NULL,
    fraud_probability DOUBLE NOT NULL
);
"""

MIGRATIONS: list[tuple[int, str]] = [(1, _V1), (2, _V2), (3, _V3), (4, _V4)]
LATEST_VERSION = MIGRATIONS[-1][0]
