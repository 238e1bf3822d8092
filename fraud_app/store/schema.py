"""The DuckDB schema as an ordered list of migrations. Append new ones; never edit a released one."""
from __future__ import annotations

from .limits import CHANNELS, MAX_ID_LENGTH, MAX_TEXT_LENGTH  # noqa: F401  (also importable from here)

# The transaction fields (docs/schema.md) and whether a file must carry them.
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

# What a calibrated fraud probability means. Each decision after the first has a threshold of its name; a
# probability at or above it gets that decision and the risk level beside it. An alert is any decision
# but the first. Live scoring, bulk scoring and the SQL that re-decides stored scores all use these.
DECISIONS = ("approve", "review", "decline")
RISK_LEVELS = ("low", "medium", "high")
ALERT_DECISIONS = DECISIONS[1:]


def alert_sql(column: str = "decision") -> str:
    """SQL: is this stored decision an alert?"""
    return f"{column} IN ({', '.join(repr(d) for d in ALERT_DECISIONS)})"


def score_sql(probability: str) -> str:
    """SQL: a probability to 3 significant digits, for a table to show. To 3 decimals, most payments' scores (far
    below 0.0005) would be 0, and a table's score bar shows no figure for 0: an empty cell."""
    return (f"CASE WHEN {probability} > 0 THEN round({probability}, 2 - CAST(floor(log10({probability})) AS INTEGER)) "
            f"ELSE {probability} END")


def decision_sql(probability: str, labels: tuple[str, ...] = DECISIONS) -> str:
    """SQL: the decision (or, with labels=RISK_LEVELS, the risk level) of a probability, given the thresholds
    as named parameters $review and $decline."""
    steps = " ".join(f"WHEN {probability} >= ${name} THEN '{label}'"
                     for name, label in reversed(list(zip(DECISIONS[1:], labels[1:]))))
    return f"CASE {steps} ELSE '{labels[0]}' END"

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

# v5: a random id of this database, so its model files live in a folder of their own and two databases
# under one home never overwrite each other's versions.
_V5 = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
INSERT INTO meta VALUES ('database_id', replace(uuid()::VARCHAR, '-', ''));
"""

# v6: named API tokens with scopes. Only each secret's sha256 is kept; a revoked token's row stays, so its name
# keeps meaning one token in the audit log.
_V6 = """
CREATE TABLE api_tokens (
    name       VARCHAR PRIMARY KEY,
    sha256     VARCHAR NOT NULL,
    scopes     VARCHAR[] NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by VARCHAR,
    revoked_at TIMESTAMP
);
"""

# v7: a refused import is a load too: its status and, in words, why it was refused (it wrote no transactions).
# Every earlier load imported its rows.
_V7 = """
ALTER TABLE imports ADD COLUMN status VARCHAR NOT NULL DEFAULT 'imported';
ALTER TABLE imports ADD COLUMN error VARCHAR;
"""

# v8: cases per card (store/card_cases.py). Which alerts form a case is worked out from the alerts themselves,
# so only who holds a case and the notes on it are stored; each alert's decision stays in `cases`.
_V8 = """
CREATE TABLE case_holds (
    case_id     VARCHAR PRIMARY KEY,
    customer_id VARCHAR NOT NULL,
    analyst     VARCHAR NOT NULL,
    taken_at    TIMESTAMP NOT NULL
);
CREATE SEQUENCE case_notes_seq;
CREATE TABLE case_notes (
    note_id     BIGINT PRIMARY KEY DEFAULT nextval('case_notes_seq'),
    case_id     VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    author      VARCHAR NOT NULL,
    written_at  TIMESTAMP NOT NULL,
    text        VARCHAR NOT NULL
);
"""

MIGRATIONS: list[tuple[int, str]] = [(1, _V1), (2, _V2), (3, _V3), (4, _V4), (5, _V5), (6, _V6), (7, _V7), (8, _V8)]
LATEST_VERSION = MIGRATIONS[-1][0]
