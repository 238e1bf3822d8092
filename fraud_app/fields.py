"""The fields the REST API takes, each declared once. The checks of a posted transaction (importer.parse_record)
and of a posted label, and the JSON schemas of the OpenAPI description (openapi.py), are both made from these
declarations, so what the description allows is exactly what the server accepts.

Every value a pattern describes is checked with that same pattern (fullmatch), so each pattern keeps to the
part of regular expressions that Python and ECMA-262 (JSON Schema's dialect) read alike: explicit classes,
no \\d, \\s, \\w or dot."""
from __future__ import annotations

import calendar
import datetime as dt
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .store import TRANSACTION_FIELDS, limits


class FieldError(ValueError):
    """One field of one record is invalid; `field` names it (with its position in a batch)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class _Invalid(ValueError):
    """A value's problem, before the field's name is known."""


@dataclass(frozen=True)
class Field:
    """One field of a request body: its JSON schema, and `parse`, which turns a posted value into the stored
    one or raises _Invalid. A missing field, or null, is `default` (or refused when `required`)."""
    name: str
    schema: dict
    parse: Callable[[Any], Any]
    required: bool = False
    default: Any = None
    stored: bool = True  # False: accepted and ignored


# -- text ---------------------------------------------------------------------------------------------------

# What str.strip() drops around an id (the characters str.isspace() is true for).
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
              "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _class_escape(chars: str) -> str:
    """`chars` as the inside of a character class, each as a \\uXXXX escape (the same in Python and ECMA)."""
    return "".join(f"\\u{ord(c):04x}" for c in chars)


NO_NUL = "^[^\\u0000]*$"
# At least one character that is not whitespace; no NUL anywhere.
ID_TEXT = f"^[^\\u0000]*[^\\u0000{_class_escape(WHITESPACE)}][^\\u0000]*$"
_ID_TEXT = re.compile(ID_TEXT)
MAX_INTEGER_ID = 2**63 - 1  # a whole-number id: 0 to the largest signed 64-bit integer
_STORABLE = "valid Unicode text (no unpaired UTF-16 surrogate) without NUL characters"


def _storable(text: str) -> None:
    problem = limits.text_problem(text)
    if problem:
        raise _Invalid(problem)


def _parse_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Invalid("must be a string or a whole number")
    if isinstance(value, int):
        if not 0 <= value <= MAX_INTEGER_ID:
            raise _Invalid(f"as a number, must be a whole number from 0 to {MAX_INTEGER_ID} (send larger ids as text)")
        return str(value)
    if not 1 <= len(value) <= limits.MAX_ID_LENGTH:
        raise _Invalid(f"must be 1 to {limits.MAX_ID_LENGTH} characters")
    _storable(value)
    if not _ID_TEXT.fullmatch(value):
        raise _Invalid("must not be only whitespace")
    return value.strip(WHITESPACE)


def identifier(name: str, what: str) -> Field:
    text = {"type": "string", "minLength": 1, "maxLength": limits.MAX_ID_LENGTH, "pattern": ID_TEXT,
            "description": f"1 to {limits.MAX_ID_LENGTH} characters of {_STORABLE}, not only whitespace; "
                           "surrounding whitespace is dropped"}
    number = {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER_ID,
              "description": "stored as its decimal text"}
    return Field(name, {"description": what, "oneOf": [text, number]}, _parse_id, required=True)


def text(name: str, what: str, least: int, default: str | None = None) -> Field:
    """Optional text of `least` to MAX_TEXT_LENGTH characters; missing or null is `default`, and so is an empty
    string when `least` is 0."""
    most = limits.MAX_TEXT_LENGTH

    def parse(value: Any) -> str | None:
        if not isinstance(value, str) or not least <= len(value) <= most:
            raise _Invalid(f"must be a string of {least} to {most} characters")
        _storable(value)
        return value or default

    schema = {"type": "string", "nullable": True, "minLength": least, "maxLength": most, "pattern": NO_NUL,
              "description": f"{what}; {_STORABLE}" + ("" if default is None else f"; missing or null: {default!r}")}
    if default is not None:
        schema["default"] = default
    return Field(name, schema, parse, default=default)


def code(name: str, letters: int, what: str) -> Field:
    """An optional code of ASCII letters in any case, stored in upper case; missing, null or "" is none."""
    pattern = f"^(?:[A-Za-z]{{{letters}}})?$"
    compiled = re.compile(pattern)

    def parse(value: Any) -> str | None:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise _Invalid(f"must be a {letters}-letter {what}")
        return value.upper() or None

    return Field(name, {"type": "string", "nullable": True, "pattern": pattern,
                        "description": f"{letters} letters ({what}), any case, stored in upper case; "
                                       "empty or null: none"}, parse)


def choice(name: str, options: tuple[str, ...]) -> Field:
    """One of `options`, in any case, stored in lower case; missing, null or "" is none."""
    spelled = "|".join("".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in o) for o in options)
    pattern = f"^(?:{spelled})?$"
    listed = f"{', '.join(options[:-1])} or {options[-1]}"
    compiled = re.compile(pattern)

    def parse(value: Any) -> str | None:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise _Invalid(f"must be one of {', '.join(options)}")
        return value.lower() or None

    return Field(name, {"type": "string", "nullable": True, "pattern": pattern,
                        "description": f"{listed}, in any case, stored in lower case; empty or null: not known"},
                 parse)


# -- numbers and flags ----------------------------------------------------------------------------------------

def _parse_amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid("must be a number")
    if not limits.MIN_AMOUNT <= value < limits.MAX_AMOUNT:  # also refuses NaN and infinities
        raise _Invalid(f"must be at least {limits.MIN_AMOUNT:g} and below {limits.MAX_AMOUNT_TEXT}")
    return float(value)


AMOUNT = Field("amount", {"type": "number", "minimum": limits.MIN_AMOUNT, "maximum": limits.MAX_AMOUNT,
                          "exclusiveMaximum": True,
                          "description": f"at least {limits.MIN_AMOUNT:g} and below {limits.MAX_AMOUNT_TEXT}"},
               _parse_amount, required=True)


def _parse_flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("must be true or false")
    return value


def _ignored(name: str, why: str) -> Field:
    return Field(name, {"description": f"any value, ignored: {why}"}, lambda value: None, stored=False)


# -- timestamps -------------------------------------------------------------------------------------------------
# The date as written runs from limits.EARLIEST's day to limits.LATEST's. On those two days the time must be
# in UTC (no offset, Z or +00:00), so that every accepted timestamp, once in UTC, lies in the limits too, while
# the rule stays one a pattern can state: a pattern can name days, not compare a time with an offset.

def _two_digits(low: int, high: int) -> str:
    """A regex for the zero-padded two-digit numbers low..high."""
    parts, full = [], []  # full: runs of tens digits whose units are all of 0-9
    for tens in range(low // 10, high // 10 + 1):
        first, last = max(low, tens * 10) % 10, min(high, tens * 10 + 9) % 10
        if (first, last) == (0, 9):
            if full and full[-1][1] == tens - 1:
                full[-1][1] = tens
            else:
                full.append([tens, tens])
                parts.append(full[-1])
        else:
            parts.append(f"{tens}{first}" if first == last else f"{tens}[{first}-{last}]")
    spelled = [p if isinstance(p, str) else f"{p[0]}[0-9]" if p[0] == p[1] else f"[{p[0]}-{p[1]}][0-9]"
               for p in parts]
    return spelled[0] if len(spelled) == 1 else "(?:" + "|".join(spelled) + ")"


def _days(year_is_leap: bool, first_day: int = 1, last_day: int | None = None) -> str:
    """MM-DD for every day of a year, from `first_day` of January to `last_day` of December; months with the
    same days share one alternative."""
    months: dict[tuple[int, int], list[str]] = {}
    for month in range(1, 13):
        days = calendar.monthrange(2000 if year_is_leap else 2001, month)[1]
        low = first_day if month == 1 else 1
        high = last_day if month == 12 and last_day else days
        months.setdefault((low, high), []).append(f"{month:02d}")
    return "(?:" + "|".join(f"(?:{'|'.join(names)})-{_two_digits(low, high)}"
                            for (low, high), names in months.items()) + ")"


def _years(low: int, high: int, leap_only: bool = False) -> str:
    """A regex for the years low..high (only the leap years among them with `leap_only`)."""
    parts = []
    for century in range(low // 100, high // 100 + 1):
        first, last = max(low, century * 100) % 100, min(high, century * 100 + 99) % 100
        if not leap_only:
            parts.append(f"{century}{_two_digits(first, last)}")
            continue
        by_tens: dict[int, str] = {}
        for yy in range(first, last + 1):
            if calendar.isleap(century * 100 + yy):
                by_tens[yy // 10] = by_tens.get(yy // 10, "") + str(yy % 10)
        parts.append(f"{century}(?:" + "|".join(f"{t}[{units}]" for t, units in by_tens.items()) + ")")
    return "(?:" + "|".join(parts) + ")"


def _timestamp_pattern() -> str:
    first, last = limits.EARLIEST, limits.LATEST
    assert (first.month, first.day, last.month, last.day) == (1, 1, 12, 31) and first.year < last.year - 1
    inner = "|".join([
        f"{_years(first.year + 1, last.year - 1)}-{_days(False)}",
        f"{_years(first.year + 1, last.year - 1, leap_only=True)}-02-29",
        f"{first.year}-{_days(calendar.isleap(first.year), first_day=2)}",
        f"{last.year}-{_days(calendar.isleap(last.year), last_day=30)}"])
    hours, minutes = _two_digits(0, 23), _two_digits(0, 59)
    time = f"{hours}:{minutes}(?::{minutes}(?:\\.[0-9]{{1,9}})?)?"
    edges = f"{first:%Y-%m-%d}|{last:%Y-%m-%d}"
    return (f"^(?:(?:{inner})(?:[Tt ]{time}(?:[Zz]|[+-]{hours}:{minutes})?)?"
            f"|(?:{edges})(?:[Tt ]{time}(?:[Zz]|[+-]00:00)?)?)$")


TIMESTAMP = _timestamp_pattern()
_TIMESTAMP = re.compile(TIMESTAMP)
# The same shape with any digits, to tell a malformed value from one out of range.
_SHAPE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]([0-9]{2}):([0-9]{2})"
                    r"(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))?)?")
TIMESTAMP_RULE = (f"the date as written from {limits.EARLIEST:%Y-%m-%d} to {limits.LATEST:%Y-%m-%d}; on those "
                  "two days, in UTC (no offset, Z or ±00:00)")


def _parse_timestamp(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise _Invalid("must be an ISO 8601 date-time string")
    shape = _SHAPE.fullmatch(value)
    if not shape:
        raise _Invalid(f"{value[:40]!r} is not an ISO 8601 date-time such as 2018-09-01T12:00:00Z")
    year, month, day, hour, minute, second, fraction, sign, off_hours, off_minutes = shape.groups()
    try:
        written = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                              int((fraction or "0")[:6].ljust(6, "0")))
        offset = dt.timedelta(hours=int(off_hours), minutes=int(off_minutes)) if sign else dt.timedelta()
        if offset >= dt.timedelta(days=1) or int(off_minutes or 0) > 59:
            raise ValueError
    except ValueError:
        raise _Invalid(f"{value[:40]!r} is not a valid date and time") from None
    if not _TIMESTAMP.fullmatch(value):
        raise _Invalid(f"must be {TIMESTAMP_RULE}")
    return written - offset if sign == "+" else written + offset


def timestamp(name: str) -> Field:
    return Field(name, {"type": "string", "pattern": TIMESTAMP, "example": "2018-09-01T12:00:00Z", "description": (
        "ISO 8601: YYYY-MM-DD (alone: midnight), or that, then T or a space, then hh:mm, optionally :ss and a "
        "fraction of up to 9 digits (kept to the microsecond), then optionally Z or ±hh:mm (none means UTC); "
        f"{TIMESTAMP_RULE}. So every timestamp is from {limits.TIMESTAMP_RANGE}.")},
        _parse_timestamp, required=True)


# -- the bodies ---------------------------------------------------------------------------------------------

TRANSACTION = (
    identifier("transaction_id", "the payment's id, and the idempotency key"),
    timestamp("timestamp"),
    identifier("customer_id", "the card (or customer)"),
    identifier("terminal_id", "the terminal (or merchant)"),
    AMOUNT,
    code("currency", limits.CURRENCY_LETTERS, "currency code"),
    text("merchant_category", "the merchant's category", 0),
    choice("channel", limits.CHANNELS),
    code("country", limits.COUNTRY_LETTERS, "country code"),
    _ignored("is_fraud", "labels are posted to /api/v1/labels"),
    _ignored("label_time", "labels are posted to /api/v1/labels"),
)
LABEL = (
    identifier("transaction_id", "a stored transaction's id"),
    Field("is_fraud", {"type": "boolean"}, _parse_flag, required=True),
    text("source", "where the label comes from, e.g. chargeback or analyst", 1, default="api"),
)
BATCH_KEY = "transactions"


# -- the command line's work (POST /api/v1/jobs/...) ------------------------------------------------------------

DATE = (f"^(?:{_years(limits.EARLIEST.year, limits.LATEST.year)}-{_days(False)}"
        f"|{_years(limits.EARLIEST.year, limits.LATEST.year, leap_only=True)}-02-29)$")
_DATE = re.compile(DATE)
DATE_RULE = f"a date YYYY-MM-DD from {limits.EARLIEST:%Y-%m-%d} to {limits.LATEST:%Y-%m-%d}"
# An absolute path on the server's own system: the server reads the file where it runs.
ABSOLUTE = "^(?:[A-Za-z]:[\\\\/]|[\\\\/]{2})[^\\u0000]*$" if os.name == "nt" else "^/[^\\u0000]*$"
_ABSOLUTE = re.compile(ABSOLUTE)
MAX_PATH_LENGTH = 4096
MAX_COLUMN_LENGTH = 256
MAX_DAYS = 50_000  # more days than any stored span (limits.EARLIEST to LATEST)
MAX_SEED = 2**31 - 1


def date(name: str, what: str) -> Field:
    def parse(value: Any) -> dt.date:
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise _Invalid(f"must be {DATE_RULE}")
        return dt.date.fromisoformat(value)

    return Field(name, {"type": "string", "nullable": True, "pattern": DATE, "example": "2018-08-01",
                        "description": f"{what}: {DATE_RULE}"}, parse)


def whole(name: str, least: int, most: int, default: int, what: str) -> Field:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
            raise _Invalid(f"must be a whole number from {least} to {most}")
        return value

    return Field(name, {"type": "integer", "nullable": True, "minimum": least, "maximum": most, "default": default,
                        "description": what}, parse, default=default)


def flag(name: str, what: str) -> Field:
    return Field(name, {"type": "boolean", "nullable": True, "default": False, "description": what}, _parse_flag,
                 default=False)


def one_of(name: str, options: tuple[str, ...], default: str | None, what: str) -> Field:
    """Exactly one of `options`; missing or null is `default` (required when there is none)."""
    def parse(value: Any) -> str:
        if value not in options:  # also refuses a value that is not a string
            raise _Invalid(f"must be one of {', '.join(options)}")
        return value

    schema = {"type": "string", "enum": list(options), "description": what}
    if default is not None:  # OpenAPI 3.0: null is allowed only when the enum lists it too
        schema |= {"nullable": True, "enum": [*options, None], "default": default}
    return Field(name, schema, parse, required=default is None, default=default)


def _parse_path(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_PATH_LENGTH:
        raise _Invalid(f"must be a string of 1 to {MAX_PATH_LENGTH} characters")
    _storable(value)
    if not _ABSOLUTE.fullmatch(value):
        raise _Invalid("must be an absolute path on the server's host")
    return value


def absolute_path(name: str, what: str, required: bool) -> Field:
    """A path on the server's host, which the server reads or writes as its own OS user."""
    schema = {"type": "string", "minLength": 1, "maxLength": MAX_PATH_LENGTH, "pattern": ABSOLUTE,
              "description": f"{what}: an absolute path on the server's host, used as the server's own user; "
                             f"{_STORABLE}"}
    return Field(name, schema if required else {**schema, "nullable": True}, _parse_path, required=required)


PATH = absolute_path("path", "the file to import", required=True)


def _parse_mapping(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _Invalid("must be an object of field: file column")
    out = {}
    for field, column in value.items():
        if field not in TRANSACTION_FIELDS:
            raise _Invalid(f"{field!r} is not a transaction field (fields: {', '.join(TRANSACTION_FIELDS)})")
        if not isinstance(column, str) or not 1 <= len(column) <= MAX_COLUMN_LENGTH:
            raise _Invalid(f"{field}: must be a column name of 1 to {MAX_COLUMN_LENGTH} characters")
        _storable(column)
        if not _ID_TEXT.fullmatch(column):
            raise _Invalid(f"{field}: must not be only whitespace")
        out[field] = column.strip(WHITESPACE)
    return out


MAPPING = Field("map", {
    "type": "object", "nullable": True, "additionalProperties": False, "default": {},
    "description": "file columns that feed differently named transaction fields, as `import --map SOURCE=field` "
                   "gives them: {field: column}",
    "properties": {name: {"type": "string", "minLength": 1, "maxLength": MAX_COLUMN_LENGTH, "pattern": ID_TEXT}
                   for name in TRANSACTION_FIELDS}}, _parse_mapping, default={})
FILE_KINDS = ("csv", "parquet")

TRAIN_JOB = (
    date("train_start", "first training day; missing or null: 3 months (91 days) before train_end"),
    date("train_end", "last training day; missing or null: so that the test ends on the last stored day"),
    whole("delay_days", 0, MAX_DAYS, 7, "whole days between training and test"),
    whole("test_days", 1, MAX_DAYS, 7, "test days"),
    whole("seed", 0, MAX_SEED, 0, "seed for sampling and the trees"),
    flag("promote", "put the new version in use (the first version is put in use anyway)"),
)
SCORE_JOB = (
    date("start", "first day; missing or null: the first stored"),
    date("end", "last day, inclusive; missing or null: the last stored"),
    Field("file", {"type": "string", "enum": [*FILE_KINDS, None], "nullable": True, "description": (
        "write the scores, each row explained, to a file of this kind, fetched from GET /api/v1/job/file; "
        "missing or null: store them in the database")}, one_of("file", FILE_KINDS, None, "").parse),
)
EXPORT_JOB = (
    one_of("status", ("flagged", "fraud", "all"), "flagged", "flagged: decision review or decline; fraud: "
           "labelled fraud; all: either, or with an analyst's decision"),
    date("start", "first day; missing or null: the first stored"),
    date("end", "last day, inclusive; missing or null: the last stored"),
    one_of("file", FILE_KINDS, "csv", "the kind of file, fetched from GET /api/v1/job/file"),
)
IMPORT_JOB = (
    PATH,
    MAPPING,
    flag("skip_invalid", "import the valid rows and report the rest (default: all or nothing)"),
    flag("rejects", "write every rejected row to a CSV file, fetched from GET /api/v1/job/file"),
)
BACKUP_JOB = (
    absolute_path("out", "the folder to put the backup in (only with the command line's secret); missing or null: "
                  "the server's backup folder (FRAUD_APP_BACKUP_DIR)", required=False),
)
JOB_ID = "^[0-9a-f]{16}$"


def parse(fields: tuple[Field, ...], record: Any, what: str) -> dict:
    """A posted object -> {name: stored value} for its stored fields, or FieldError naming the first field at
    fault (`what` when the record is not an object). Fields the declarations do not list are ignored: a
    client may send more than this version reads, as a file may carry more columns."""
    if not isinstance(record, Mapping):
        raise FieldError(what, "must be a JSON object")
    out = {}
    for f in fields:
        value = record.get(f.name)
        if value is None:
            if f.required:
                raise FieldError(f.name, "is required")
            parsed = f.default
        else:
            try:
                parsed = f.parse(value)
            except _Invalid as exc:
                raise FieldError(f.name, str(exc)) from None
        if f.stored:
            out[f.name] = parsed
    return out


def object_schema(fields: tuple[Field, ...], batch_key: bool = False) -> dict:
    """The JSON schema (OpenAPI 3.0) of an object of `fields`; other properties are ignored. With
    `batch_key`, the object may not hold BATCH_KEY: a body that does is a batch."""
    required = [f.name for f in fields if f.required]
    schema = {"type": "object", **({"required": required} if required else {}),  # OpenAPI 3.0: never empty
              "properties": {f.name: f.schema for f in fields}, "description": "Other properties are ignored."}
    if batch_key:
        schema["not"] = {"required": [BATCH_KEY]}
        schema["description"] += f" A body with a {BATCH_KEY!r} property is a batch."
    return schema


def batch_schema(item: dict) -> dict:
    return {"type": "object", "required": [BATCH_KEY], "description": "Other properties are ignored.",
            "properties": {BATCH_KEY: {"type": "array", "minItems": 1, "maxItems": limits.MAX_BATCH, "items": item}}}
