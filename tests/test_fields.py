"""The request field declarations (fraud_app/fields.py): the JSON schemas the OpenAPI description shows accept
exactly the values the server's checks accept, judged by jsonschema_rs (ECMA-262 regexes), the validator the
Schemathesis fuzzer judges responses and generated data with (it comes with it)."""
import datetime as dt
import re
import sys

import jsonschema_rs
import pytest

from conftest import nullable_as_type
from fraud_app import fields
from fraud_app.fields import FieldError

PAYMENT = {"transaction_id": "f-1", "timestamp": "2018-06-20T12:00:00Z", "customer_id": "C1", "terminal_id": "T1",
           "amount": 12.5}
LABEL = {"transaction_id": "f-1", "is_fraud": True}
PROBES = [
    None, "", " ", "\t", "\u3000", "a", " a ", "\u2028a", "a\u0000", "A" * 64, "A" * 65, " " + "A" * 64,
    "pos", "POS", "Online", "atm ", "fax", "EUR", "eur", "EURO", "E1R", "PT", "pt", "P1", "P", "api", "x" * 64,
    "2018-06-20T12:00:00Z", "2018-06-20", "2018-06-20 12:00", "2018-06-20t12:00:00.123456789+05:30",
    "2018-02-29T12:00:00", "2016-02-29T12:00:00", "2018-06-20T12:00:00Z\n", "2018-06-20T24:00:00",
    "1970-01-01T05:00:00+01:00", "1970-01-01T05:00:00-00:00", "2099-12-31T23:59:59.999999z",
    "2100-01-01T00:30:00+01:00", "20180620T120000", "2018-06-20T12:00:00+0100",
    0, -1, 1, 42, 2**63 - 1, 2**63, 0.0, 1.5, -0.0, 999_999_999.99, 1e9, 1e300, True, False, [], {}, ["a"],
]


def accepted(declared, record) -> bool:
    try:
        fields.parse(declared, record, "record")
    except FieldError:
        return False
    return True


@pytest.mark.parametrize("declared, good", [(fields.TRANSACTION, PAYMENT), (fields.LABEL, LABEL)],
                         ids=["transaction", "label"])
def test_the_schema_accepts_what_the_checks_accept(declared, good):
    validator = jsonschema_rs.Draft4Validator(nullable_as_type(fields.object_schema(declared)))
    assert validator.is_valid(good) and accepted(declared, good)
    cases = [{**good, "unknown": 1}, [good], "x"] + [{k: v for k, v in good.items() if k != name} for name in good]
    cases += [{**good, f.name: value} for f in declared for value in PROBES]
    disagree = [case for case in cases if validator.is_valid(case) != accepted(declared, case)]
    assert not disagree
    assert sum(map(validator.is_valid, cases)) > len(PROBES)  # a probe set that also passes, not only fails


def test_whitespace_is_what_str_strip_drops():
    assert set(fields.WHITESPACE) == {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}


def _rule(text: str) -> bool:
    """The timestamp rule, computed with datetime instead of the pattern."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)(?:[Tt ](\d\d):(\d\d)(?::(\d\d)(?:\.\d{1,9})?)?"
                     r"(?:[Zz]|([+-])(\d\d):(\d\d))?)?", text, re.ASCII)
    if not m:
        return False
    year, month, day, hour, minute, second, sign, off_h, off_m = m.groups()
    try:
        written = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return False
    if sign and (int(off_h) > 23 or int(off_m) > 59):
        return False
    first, last = dt.date(1970, 1, 1), dt.date(2099, 12, 31)
    offset = bool(sign) and (off_h, off_m) != ("00", "00")
    return first <= written.date() <= last and not (offset and written.date() in (first, last))


def test_the_timestamp_pattern_is_the_rule():
    pattern = re.compile(fields.TIMESTAMP)
    ecma = jsonschema_rs.Draft4Validator({"type": "string", "pattern": fields.TIMESTAMP})
    years = [*range(1966, 1975), *range(1996, 2003), *range(2094, 2104), 1980, 2050, 2092, 2096]
    tails = ["", "Z", "+01:00", "T00:00:00", " 23:59:59.999999999", "T12:00+01:00", "t05:30-00:00", "T23:59:59Z",
             "T00:00:00+00:00", "T00:00+23:59", "T24:00:00", "T12:60:00", "T12:00:60", "T10:00+24:00", "T10:00z",
             "T10:00:00.", "T10:00:00.1234567890", "T10:00:00Z\n"]
    checked = 0
    for year in years:
        for month in range(0, 14):
            for day in range(0, 33):
                for tail in tails:
                    text = f"{year:04d}-{month:02d}-{day:02d}{tail}"
                    expected = _rule(text)
                    assert bool(pattern.fullmatch(text)) == expected, text
                    if day in (0, 1, 28, 29, 30, 31, 32) or year in (1970, 2099):
                        assert ecma.is_valid(text) == expected, text
                    checked += 1
    assert checked > 200_000


@pytest.mark.parametrize("text, stored", [
    ("2018-06-20", dt.datetime(2018, 6, 20)),
    ("2018-06-20T12:30:00.1234569+02:00", dt.datetime(2018, 6, 20, 10, 30, 0, 123456)),
    ("2018-06-20 12:30-01:30", dt.datetime(2018, 6, 20, 14, 0)),
    ("1970-01-02T00:30:00+01:00", dt.datetime(1970, 1, 1, 23, 30)),
    ("2099-12-31T23:59:59.999999999Z", dt.datetime(2099, 12, 31, 23, 59, 59, 999999)),
])
def test_timestamps_are_stored_in_utc(text, stored):
    assert fields.parse(fields.TRANSACTION, {**PAYMENT, "timestamp": text}, "t")["timestamp"] \
        == stored
