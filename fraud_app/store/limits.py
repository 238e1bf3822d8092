"""What a stored transaction may hold, defined once. The REST API (importer.parse_record), the file importer's
SQL checks (store.ingest) and the OpenAPI description all read these, so they accept exactly the same values."""
from __future__ import annotations

import datetime as dt

# Timestamps, in UTC (naive means UTC): from EARLIEST up to, not including, END. Far enough apart for
# any real payment, and inside every datetime type on the way (Python, DuckDB, numpy's ns, JavaScript).
# A timestamp is accepted by its date as written, EARLIEST's day to LATEST's, and on those two days only in
# UTC (fields.TIMESTAMP, store.ingest), so every accepted one lies in this range once in UTC.
EARLIEST = dt.datetime(1970, 1, 1)
END = dt.datetime(2100, 1, 1)
LATEST = END - dt.timedelta(seconds=1)  # the last whole second accepted, for messages and documents
TIMESTAMP_RANGE = f"{EARLIEST:%Y-%m-%dT%H:%M:%S} to {LATEST:%Y-%m-%dT%H:%M:%S} UTC"

MAX_ID_LENGTH = 64    # transaction, card and terminal ids (as posted; a file's cells once trimmed)
MAX_TEXT_LENGTH = 64  # merchant_category, and a label's source
MIN_AMOUNT = 0.0      # inclusive
MAX_AMOUNT = 1e9      # exclusive
MAX_AMOUNT_TEXT = f"{MAX_AMOUNT:.0e}".replace("e+0", "e")  # 1e9, as people write it
CURRENCY_LETTERS = 3  # ISO 4217 style: three ASCII letters, stored upper case
COUNTRY_LETTERS = 2   # ISO 3166 style: two ASCII letters, stored upper case
CHANNELS = ("pos", "online", "atm")
MAX_BATCH = 1000      # transactions in one scoring request

NUL = "\x00"


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored, or None. DuckDB refuses text that is not valid Unicode (a lone UTF-16
    surrogate, which JSON can carry as "\\ud800"). A NUL character it would store, but no real id or name
    holds one, and text tools take a CSV file holding one for binary."""
    if NUL in text:
        return "must not contain a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds an unpaired UTF-16 surrogate)"
    return None
