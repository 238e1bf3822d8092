"""Behavioural features, declared once and computed two ways.

`FEATURES` is the single list. `batch_features` turns it into DuckDB window SQL over the stored table
(training, bulk scoring); `OnlineFeatures` computes the same values for one new transaction from
in-memory history (REST scoring). tests/test_features.py replays transactions through both and
requires equal values.

Semantics shared by both ways, for a transaction at time t:
- "history" is the card's (or terminal's) transactions with timestamp in [t - window, t): strictly
  earlier, so two payments at the same instant never see each other;
- a fraud label counts from `known_at` = label_time (or timestamp + label delay when absent), never
  before the transaction itself, and only when known_at < t. No feature sees a label earlier.
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from .store import Store, queries

HOUR, DAY = 3600, 86_400
SMALL_AMOUNT = 5.0  # card testers probe with amounts below this
MIN_SPREAD = 0.01   # below this a mean or std is treated as missing, so ratios stay finite
US = 1_000_000


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str
    window: int = 0  # seconds; 0 where the kind has none
    text: str = ""   # reason in business words; {v} is the value


def _windows(kind: str, seconds: Iterable[int], suffixes: Iterable[str], text: str) -> list[Feature]:
    def words(suffix: str, adjective: bool) -> str:
        number, unit = suffix[:-1], {"h": "hour", "d": "day"}[suffix[-1]]
        return f"{number}-{unit}" if adjective else f"{number} {unit}{'' if number == '1' else 's'}"

    return [Feature(f"{kind}_{s}", kind, w, text.replace("{w}", words(s, False)).replace("{wa}", words(s, True)))
            for w, s in zip(seconds, suffixes)]


FEATURES: list[Feature] = [
    Feature("amount", "amount", text="amount {v:,.2f}"),
    Feature("hour", "hour", text="at {v:.0f}h"),
    Feature("weekend", "weekend", text="on a weekend"),
    Feature("night", "night", text="at night (0-6h)"),
    Feature("is_online", "is_online", text="card not present (online)"),
    Feature("is_atm", "is_atm", text="cash withdrawal"),
    *_windows("cust_count", (HOUR, DAY, 7 * DAY, 30 * DAY), ("1h", "1d", "7d", "30d"),
              "{v:.0f} earlier payments on this card in {w}"),
    *_windows("cust_mean", (DAY, 7 * DAY, 30 * DAY), ("1d", "7d", "30d"), "card's {wa} average {v:,.2f}"),
    *_windows("cust_std", (DAY, 7 * DAY, 30 * DAY), ("1d", "7d", "30d"), "card's {wa} amount spread {v:,.2f}"),
    *_windows("amount_ratio", (DAY, 7 * DAY, 30 * DAY), ("1d", "7d", "30d"),
              "amount {v:.2g}x this card's {wa} average"),  # 0.037x, not 0.0x
    *_windows("amount_z", (7 * DAY, 30 * DAY), ("7d", "30d"), "amount {v:+.1f} std from this card's {wa} norm"),
    *_windows("cust_distinct_terminals", (DAY, 7 * DAY, 30 * DAY), ("1d", "7d", "30d"),
              "card used at {v:.0f} different terminals in {w}"),
    *_windows("cust_online_share", (DAY, 7 * DAY, 30 * DAY), ("1d", "7d", "30d"),
              "{v:.0%} of the card's {wa} payments were online"),
    *_windows("cust_small_count", (HOUR, DAY), ("1h", "1d"),
              "{v:.0f} payments under 5 on this card in {w} (card testing)"),
    Feature("seconds_since_prev", "seconds_since_prev", 30 * DAY, "{v} since the card's previous payment"),
    Feature("seconds_since_terminal", "seconds_since_terminal", 30 * DAY,
            "{v} since the card last paid at this terminal"),
    Feature("country_share_30d", "country_share", 30 * DAY,
            "only {v:.0%} of the card's 30-day payments were in this country"),
    *_windows("cust_known_frauds", (7 * DAY, 30 * DAY), ("7d", "30d"), "frauds reported on this card in {w}: {v:.0f}"),
    *_windows("term_count", (DAY, 7 * DAY, 30 * DAY), ("1d", "7d", "30d"), "{v:.0f} payments at this terminal in {w}"),
    Feature("cust_fraud_age", "cust_fraud_age", 30 * DAY,
            "the card's latest reported fraud was {v} before this payment"),
    Feature("term_fraud_age", "term_fraud_age", 30 * DAY,
            "the latest reported fraud at this terminal was {v} before this payment"),
    *_windows("term_known_frauds", (DAY, 7 * DAY, 30 * DAY), ("1d", "7d", "30d"),
              "frauds reported at this terminal in {w}: {v:.0f}"),
    *_windows("term_risk", (DAY, 7 * DAY, 30 * DAY), ("1d", "7d", "30d"),
              "{v:.0%} of this terminal's payments reported as fraud ({wa} rate)"),
]
FEATURE_NAMES = [f.name for f in FEATURES]
BY_NAME = {f.name: f for f in FEATURES}
MAX_WINDOW = max(f.window for f in FEATURES)

# Each feature in plain words, for screens and files people read; {w} is the feature's window.
_KIND_WORDS = {
    "amount": "Amount", "hour": "Hour of day", "weekend": "On a weekend", "night": "At night (0-6h)",
    "is_online": "Online (card not present)", "is_atm": "Cash withdrawal",
    "cust_count": "Payments on the card, {w}", "cust_mean": "Card's average amount, {w}",
    "cust_std": "Card's amount spread, {w}", "amount_ratio": "Amount against the card's average, {w}",
    "amount_z": "Amount in std from the card's norm, {w}", "cust_distinct_terminals": "Terminals the card used, {w}",
    "cust_online_share": "Card's share of online payments, {w}", "cust_small_count": "Card's payments under 5, {w}",
    "seconds_since_prev": "Time since the card's previous payment",
    "seconds_since_terminal": "Time since the card last paid here",
    "country_share": "Card's share in this country, {w}", "cust_known_frauds": "Frauds reported on the card, {w}",
    "term_count": "Payments at the terminal, {w}", "cust_fraud_age": "Time since the card's latest reported fraud",
    "term_fraud_age": "Time since the terminal's latest reported fraud",
    "term_known_frauds": "Frauds reported at the terminal, {w}", "term_risk": "Terminal's fraud rate, {w}",
}
_SPANS = {"1h": "last hour", "1d": "last day", "7d": "last 7 days", "30d": "last 30 days"}
FEATURE_WORDS = {f.name: _KIND_WORDS[f.kind].format(w=_SPANS.get(f.name.rsplit("_", 1)[-1], "")) for f in FEATURES}


def _duration(seconds: float) -> str:
    for unit, size in (("days", DAY), ("h", HOUR), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def reason_text(name: str, value: float) -> str:
    feature = BY_NAME.get(name)
    if feature is None:
        return f"{name} = {value}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{name.replace('_', ' ')}: not available (no history yet, or not given)"
    if feature.kind.startswith("seconds_since") or feature.kind.endswith("fraud_age"):
        value = _duration(value)
    try:
        return feature.text.format(v=value)
    except (ValueError, TypeError):
        return f"{name} = {value}"


# -- batch: DuckDB window SQL -----------------------------------------------------------------------

def _earlier(w: int) -> str:
    """History frame: rows in [t - w, t), excluding rows at t itself (EXCLUDE GROUP)."""
    return f"ORDER BY t RANGE BETWEEN INTERVAL {w} SECOND PRECEDING AND CURRENT ROW EXCLUDE GROUP"


def _sql(f: Feature, delay: int) -> str:
    """The SQL for one feature over `main` (one row per wanted transaction, window columns alongside)."""
    w, suffix = f.window, f.name.rsplit("_", 1)[-1]
    card, term = "PARTITION BY customer_id", "PARTITION BY terminal_id"
    ratio = lambda num, den: f"CASE WHEN {den} >= {MIN_SPREAD} THEN {num} / {den} END"  # noqa: E731
    return {
        "amount": "amount",
        "hour": "hour(t)",
        "weekend": "(isodow(t) >= 6)::INT",
        "night": "(hour(t) < 6)::INT",
        "is_online": "coalesce(channel = 'online', false)::INT",
        "is_atm": "coalesce(channel = 'atm', false)::INT",
        "cust_count": f"count(*) OVER ({card} {_earlier(w)})",
        "cust_mean": f"avg(amount) OVER ({card} {_earlier(w)})",
        "cust_std": f"stddev_pop(amount) OVER ({card} {_earlier(w)})",
        "cust_online_share": f"avg(coalesce(channel = 'online', false)::INT) OVER ({card} {_earlier(w)})",
        "cust_small_count": f"count(*) FILTER (amount < {SMALL_AMOUNT}) OVER ({card} {_earlier(w)})",
        "seconds_since_prev": f"(epoch_us(t) - epoch_us(max(t) OVER ({card} {_earlier(w)}))) / 1e6",
        "seconds_since_terminal":
            f"(epoch_us(t) - epoch_us(max(t) OVER ({card}, terminal_id {_earlier(w)}))) / 1e6",
        "country_share": f"CASE WHEN country IS NOT NULL THEN count(*) OVER ({card}, country {_earlier(w)}) END",
        "term_count": f"count(*) OVER ({term} {_earlier(w)})",
        # Terminal risk's denominator: payments old enough that their labels are normally known.
        "term_risk": f"count(*) OVER ({term} ORDER BY t RANGE BETWEEN INTERVAL {w + delay} SECOND PRECEDING "
                     f"AND INTERVAL {delay} SECOND PRECEDING)",
        "amount_ratio": ratio("amount", f"cust_mean_{suffix}"),
        "amount_z": ratio(f"(amount - cust_mean_{suffix})", f"cust_std_{suffix}"),
    }.get(f.kind, "NULL")


# Kinds computed outside the plain windows: terminal spans as an event stream, label arrivals by a join.
_CARD_LABEL_KINDS = {"cust_known_frauds", "cust_fraud_age"}
_TERM_LABEL_KINDS = {"term_known_frauds", "term_fraud_age"}
_STREAM_KINDS = {"cust_distinct_terminals"} | _CARD_LABEL_KINDS | _TERM_LABEL_KINDS
_DERIVED_KINDS = {"amount_ratio", "amount_z"}


def _label_counts(features: list[Feature], key: str) -> str:
    """Fraud labels on the same card (or terminal) that became known in [t - w, t): how many, and how long
    before t the latest of their payments was. Labels are few, so a range join is cheaper than another
    window over every row."""
    widest = max(f.window for f in features)

    def col(f: Feature) -> str:
        recent = f"l.t >= h.t - INTERVAL {f.window} SECOND"
        if f.kind.endswith("fraud_age"):
            return f"(epoch_us(h.t) - epoch_us(max(l.paid) FILTER ({recent}))) / 1e6 AS {f.name}"
        return f"count(*) FILTER ({recent}) AS {f.name}"

    cols = ", ".join(col(f) for f in features)
    return (f"SELECT h.rid, {cols} FROM hist h JOIN label_events l ON h.{key} = l.{key} "
            f"AND l.t < h.t AND l.t >= h.t - INTERVAL {widest} SECOND GROUP BY h.rid, h.t")


def _known_at(delay: int) -> str:
    """When a stored label became known: its label_time, else `delay` seconds after the payment; never before it."""
    return f"greatest(coalesce(label_time, timestamp + INTERVAL {delay} SECOND), timestamp)"


def _batch_sql(delay: int) -> str:
    of_kind = lambda *kinds: [f for f in FEATURES if f.kind in kinds]  # noqa: E731
    windowed = [f for f in FEATURES if f.kind not in _STREAM_KINDS | _DERIVED_KINDS]
    spans = of_kind("cust_distinct_terminals")
    raw = ", ".join(f"CAST({_sql(f, delay)} AS DOUBLE) AS {f.name}" for f in windowed)
    # Distinct terminals in [t-w, t): each use of a (card, terminal) pair at s adds one over (s, end], where
    # end = min(next use of the pair, s + w). Summing these +1/-1 events at earlier times counts pairs.
    starts = ", ".join(f"1 AS d{i}" for i in range(len(spans)))
    ends = " ".join(
        f"UNION ALL SELECT NULL, customer_id, least(nxt, t + INTERVAL {f.window} SECOND), "
        + ", ".join("-1" if g is f else "0" for g in spans) + " FROM hist" for f in spans)
    span_cols = ", ".join(f"CAST(coalesce(sum(d{i}) OVER (PARTITION BY customer_id ORDER BY t RANGE BETWEEN "
                          f"UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP), 0) AS DOUBLE) AS {f.name}"
                          for i, f in enumerate(spans))
    finals = []
    for f in FEATURES:
        if f.kind in _DERIVED_KINDS:
            finals.append(f"CAST({_sql(f, delay)} AS DOUBLE) AS {f.name}")
        elif f.kind == "country_share":
            finals.append(f"CASE WHEN cust_count_30d > 0 THEN {f.name} / cust_count_30d END AS {f.name}")
        elif f.kind == "term_risk":
            known = f.name.replace("term_risk", "term_known_frauds")
            finals.append(f"CASE WHEN {f.name} > 0 THEN coalesce({known}, 0) / {f.name} END AS {f.name}")
        elif f.kind in ("cust_fraud_age", "term_fraud_age"):
            finals.append(f"CAST({f.name} AS DOUBLE) AS {f.name}")
        elif f.kind in ("cust_known_frauds", "term_known_frauds"):
            finals.append(f"CAST(coalesce({f.name}, 0) AS DOUBLE) AS {f.name}")
        else:
            finals.append(f.name)
    known_at = _known_at(delay)
    return f"""
WITH hist AS MATERIALIZED (
    SELECT rowid AS rid, transaction_id, timestamp AS t, customer_id, terminal_id, amount, channel, country,
           is_fraud, {known_at} AS known_at,
           lead(timestamp) OVER (PARTITION BY customer_id, terminal_id ORDER BY timestamp) AS nxt
    FROM transactions WHERE timestamp >= $lookback AND timestamp < $end
),
label_events AS MATERIALIZED (
    SELECT customer_id, terminal_id, {known_at} AS t, timestamp AS paid FROM transactions
    WHERE is_fraud AND {known_at} >= $label_from AND {known_at} < $end
),
main AS (
    SELECT rid, transaction_id, t, customer_id, terminal_id, is_fraud, known_at, amount, {raw} FROM hist
),
spans AS (
    SELECT * FROM (
        SELECT rid, {span_cols} FROM (SELECT rid, customer_id, t, {starts} FROM hist {ends})
    ) WHERE rid IS NOT NULL
),
card_labels AS ({_label_counts(of_kind(*_CARD_LABEL_KINDS), "customer_id")}),
term_labels AS ({_label_counts(of_kind(*_TERM_LABEL_KINDS), "terminal_id")})
SELECT transaction_id, t AS timestamp, customer_id, terminal_id, is_fraud, known_at,
       {", ".join(f"coalesce({f.name}, 'NaN'::DOUBLE) AS {f.name}" for f in FEATURES)}
FROM (
    SELECT transaction_id, t, customer_id, terminal_id, is_fraud, known_at, {", ".join(finals)}
    FROM main JOIN spans USING (rid) LEFT JOIN card_labels USING (rid) LEFT JOIN term_labels USING (rid)
    WHERE t >= $start
)
"""


def _day_start(day: dt.date | dt.datetime) -> dt.datetime:
    return day if isinstance(day, dt.datetime) else dt.datetime.combine(day, dt.time())


def batch_features(store: Store, start: dt.date | dt.datetime | None = None,
                   end: dt.date | dt.datetime | None = None, *, label_delay_days: int = 7) -> pa.Table:
    """Features of every stored transaction in [start, end] (dates: both days whole), computed from the full
    stored history. Columns: transaction_id, timestamp, customer_id, terminal_id, is_fraud, known_at, then
    FEATURE_NAMES. In no particular order."""
    delay = label_delay_days * DAY
    start = _day_start(start) if start else dt.datetime(1900, 1, 1)
    if end is None:
        end = dt.datetime(9999, 1, 1)
    elif not isinstance(end, dt.datetime):
        end = _day_start(end + dt.timedelta(days=1))
    params = {"lookback": start - dt.timedelta(seconds=MAX_WINDOW + delay), "start": start, "end": end,
              "label_from": start - dt.timedelta(seconds=MAX_WINDOW)}
    cur = store.new_cursor()  # its own cursor: a long query must not hold this thread's shared one
    try:
        return cur.sql(_batch_sql(delay), params=params).to_arrow_table()
    finally:
        cur.close()


def feature_matrix(table: pa.Table) -> np.ndarray:
    """The FEATURE_NAMES columns as a float64 matrix, NaN where a value is undefined (the SQL writes NaN,
    not NULL, so each column converts without a copy; the stacking is the one copy)."""
    if not table.num_rows:
        return np.empty((0, len(FEATURE_NAMES)))
    out = np.empty((table.num_rows, len(FEATURE_NAMES)))
    for j, name in enumerate(FEATURE_NAMES):
        column = table.column(name)
        for chunk_start, chunk in zip(np.cumsum([0] + [len(c) for c in column.chunks[:-1]]), column.chunks):
            out[chunk_start:chunk_start + len(chunk), j] = chunk.to_numpy(zero_copy_only=False)
    return out


# -- online: one transaction at a time, from in-memory history -------------------------------------------

def to_us(value) -> int:
    """Microseconds since the epoch for a naive-UTC datetime, a pandas Timestamp, or an int already in us."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, pd.Timestamp):
        return int(value.value // 1000)
    delta = value - dt.datetime(1970, 1, 1)
    return (delta.days * DAY + delta.seconds) * US + delta.microseconds


class _Card:
    __slots__ = ("ts", "amount", "terminal", "online", "country", "labels", "paid")

    def __init__(self):
        self.ts, self.amount, self.terminal, self.online, self.country = [], [], [], [], []
        self.labels, self.paid = [], []  # when each fraud label became known, and when that payment was made


class _Terminal:
    __slots__ = ("ts", "labels", "paid")

    def __init__(self):
        self.ts, self.labels, self.paid = [], [], []


def _put(lists, ts_list, t, values) -> None:
    i = len(ts_list) if not ts_list or ts_list[-1] <= t else bisect.bisect_right(ts_list, t)
    ts_list.insert(i, t)
    for target, value in zip(lists, values):
        target.insert(i, value)


def _window_count(ts: list[int], t: int, w: int) -> int:
    return bisect.bisect_left(ts, t) - bisect.bisect_left(ts, t - w * US)


class OnlineFeatures:
    """History in memory, per card and per terminal, for features of one new transaction in microseconds.
    Not thread-safe: the caller serialises add/compute (scoring holds one lock)."""

    def __init__(self, label_delay_days: int = 7):
        self.delay = label_delay_days * DAY
        self.cards: dict[str, _Card] = defaultdict(_Card)
        self.terminals: dict[str, _Terminal] = defaultdict(_Terminal)

    def add(self, tx: Mapping) -> None:
        """Make a transaction history for the ones after it. Its label, if any, goes in through add_label."""
        t = to_us(tx["timestamp"])
        card = self.cards[tx["customer_id"]]
        _put((card.amount, card.terminal, card.online, card.country), card.ts, t,
             (float(tx["amount"]), tx["terminal_id"], int(tx.get("channel") == "online"), tx.get("country")))
        terminal = self.terminals[tx["terminal_id"]]
        _put((), terminal.ts, t, ())

    def remove(self, tx: Mapping) -> None:
        """Undo add(tx), for a payment whose write failed after its features were taken."""
        t = to_us(tx["timestamp"])
        card = self.cards.get(tx["customer_id"])
        if card is not None:
            for i in range(bisect.bisect_left(card.ts, t), bisect.bisect_right(card.ts, t)):
                if card.terminal[i] == tx["terminal_id"] and card.amount[i] == float(tx["amount"]):
                    for column in (card.ts, card.amount, card.terminal, card.online, card.country):
                        del column[i]
                    break
        terminal = self.terminals.get(tx["terminal_id"])
        if terminal is not None:
            i = bisect.bisect_left(terminal.ts, t)
            if i < len(terminal.ts) and terminal.ts[i] == t:
                del terminal.ts[i]

    def add_label(self, customer_id: str, terminal_id: str, known_at, paid_at) -> None:
        """A fraud label on a payment made at paid_at that becomes known at known_at (>= paid_at)."""
        known, paid = to_us(known_at), to_us(paid_at)
        for holder in (self.cards[customer_id], self.terminals[terminal_id]):
            _put((holder.paid,), holder.labels, known, (paid,))

    def compute(self, tx: Mapping) -> list[float]:
        """FEATURE_NAMES values for tx; NaN where undefined (a first-seen card or terminal)."""
        t = to_us(tx["timestamp"])
        card = self.cards.get(tx["customer_id"]) or _Card()
        terminal = self.terminals.get(tx["terminal_id"]) or _Terminal()
        amount, channel, country = float(tx["amount"]), tx.get("channel"), tx.get("country")
        hour = (t // (HOUR * US)) % 24
        end = bisect.bisect_left(card.ts, t)
        values: dict[str, float] = {}
        nan = math.nan
        for f in FEATURES:
            k, w = f.kind, f.window
            start = bisect.bisect_left(card.ts, t - w * US) if w else end
            n = end - start
            if k == "amount":
                v = amount
            elif k == "hour":
                v = float(hour)
            elif k == "weekend":
                v = float(((t // (DAY * US)) + 3) % 7 >= 5)
            elif k == "night":
                v = float(hour < 6)
            elif k == "is_online":
                v = float(channel == "online")
            elif k == "is_atm":
                v = float(channel == "atm")
            elif k == "cust_count":
                v = float(n)
            elif k == "cust_mean":
                v = math.fsum(card.amount[start:end]) / n if n else nan
            elif k == "cust_std":
                if n:
                    xs = card.amount[start:end]
                    mean = math.fsum(xs) / n
                    v = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / n)
                else:
                    v = nan
            elif k == "cust_online_share":
                v = sum(card.online[start:end]) / n if n else nan
            elif k == "cust_small_count":
                v = float(sum(1 for x in card.amount[start:end] if x < SMALL_AMOUNT))
            elif k == "cust_distinct_terminals":
                v = float(len(set(card.terminal[start:end])))
            elif k == "seconds_since_prev":
                v = (t - card.ts[end - 1]) / 1e6 if n else nan
            elif k == "seconds_since_terminal":
                v = nan
                for j in range(end - 1, start - 1, -1):
                    if card.terminal[j] == tx["terminal_id"]:
                        v = (t - card.ts[j]) / 1e6
                        break
            elif k == "country_share":
                v = (sum(1 for c in card.country[start:end] if c == country) / n
                     if n and country is not None else nan)
            elif k == "cust_known_frauds":
                v = float(_window_count(card.labels, t, w))
            elif k == "term_count":
                v = float(_window_count(terminal.ts, t, w))
            elif k in ("cust_fraud_age", "term_fraud_age"):
                holder = card if k == "cust_fraud_age" else terminal
                lo, hi = bisect.bisect_left(holder.labels, t - w * US), bisect.bisect_left(holder.labels, t)
                v = (t - max(holder.paid[lo:hi])) / 1e6 if hi > lo else nan
            elif k == "term_known_frauds":
                v = float(_window_count(terminal.labels, t, w))
            elif k == "term_risk":
                lo = bisect.bisect_left(terminal.ts, t - (self.delay + w) * US)
                denominator = bisect.bisect_right(terminal.ts, t - self.delay * US) - lo
                v = _window_count(terminal.labels, t, w) / denominator if denominator else nan
            elif k in ("amount_ratio", "amount_z"):
                suffix = f.name.rsplit("_", 1)[1]
                mean = values[f"cust_mean_{suffix}"]
                if k == "amount_ratio":
                    v = amount / mean if mean >= MIN_SPREAD else nan
                else:
                    std = values[f"cust_std_{suffix}"]
                    v = (amount - mean) / std if std >= MIN_SPREAD else nan
            else:  # pragma: no cover - a new kind must be taught to both ways
                raise KeyError(f"feature kind {k!r} has no online definition")
            values[f.name] = v
        return [values[name] for name in FEATURE_NAMES]


# -- the handbook's 15 baseline features, for benchmarks against it -----------------------------------------

HANDBOOK_FEATURES = ["TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT",
                     *[f"CUSTOMER_ID_{k}_{w}DAY_WINDOW" for w in (1, 7, 30) for k in ("NB_TX", "AVG_AMOUNT")],
                     *[f"TERMINAL_ID_{k}_{w}DAY_WINDOW" for w in (1, 7, 30) for k in ("NB_TX", "RISK")]]


def handbook_features(store: Store, start: dt.date, end: dt.date, delay_days: int = 7) -> pa.Table:
    """The handbook's baseline features, as it defines them: customer windows include the payment itself,
    terminal windows end `delay_days` before it and count every fraud in them, whether or not its label
    had arrived (on data with late labels this favours the baseline)."""
    card = "PARTITION BY customer_id ORDER BY timestamp RANGE BETWEEN INTERVAL {w} DAY PRECEDING AND CURRENT ROW"
    term = (f"PARTITION BY terminal_id ORDER BY timestamp RANGE BETWEEN INTERVAL ({{w}} + {delay_days}) DAY "
            f"PRECEDING AND INTERVAL {delay_days} DAY PRECEDING")
    cols = []
    for w in (1, 7, 30):
        cols += [f"CAST(count(*) OVER ({card.format(w=w)}) AS DOUBLE) AS CUSTOMER_ID_NB_TX_{w}DAY_WINDOW",
                 f"avg(amount) OVER ({card.format(w=w)}) AS CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"]
    for w in (1, 7, 30):
        cols += [f"CAST(count(*) OVER ({term.format(w=w)}) AS DOUBLE) AS TERMINAL_ID_NB_TX_{w}DAY_WINDOW",
                 f"coalesce(sum(coalesce(is_fraud, false)::INT) OVER ({term.format(w=w)}) / "
                 f"nullif(count(*) OVER ({term.format(w=w)}), 0), 0) AS TERMINAL_ID_RISK_{w}DAY_WINDOW"]
    sql = f"""
SELECT * FROM (
    SELECT transaction_id, timestamp, customer_id, is_fraud, amount AS TX_AMOUNT,
           CAST(isodow(timestamp) >= 6 AS DOUBLE) AS TX_DURING_WEEKEND,
           CAST(hour(timestamp) <= 6 AS DOUBLE) AS TX_DURING_NIGHT, {", ".join(cols)}
    FROM transactions WHERE timestamp >= $lookback AND timestamp < $end
) WHERE timestamp >= $start ORDER BY timestamp, transaction_id"""
    start_ts = _day_start(start)
    params = {"lookback": start_ts - dt.timedelta(days=30 + delay_days + 1), "start": start_ts,
              "end": _day_start(end + dt.timedelta(days=1))}
    cur = store.new_cursor()
    try:
        return cur.sql(sql, params=params).to_arrow_table()
    finally:
        cur.close()


def _groups(keys: pa.ChunkedArray) -> list[tuple[str, int, int]]:
    """(key, start, end) of each run of equal keys in a sorted column."""
    values = keys.to_numpy(zero_copy_only=False)
    if not len(values):
        return []
    cuts = [0, *(np.flatnonzero(values[1:] != values[:-1]) + 1).tolist(), len(values)]
    return [(values[a], a, b) for a, b in zip(cuts[:-1], cuts[1:])]


def load_online(store: Store, label_delay_days: int = 7) -> OnlineFeatures:
    """An online engine holding the history that a new payment's features can reach: for each card the
    payments in the MAX_WINDOW + delay (+ a day) before its own latest payment, for each terminal likewise,
    and for all of them the same window before the end of the bulk of the data (queries.usual_span). So no
    single payment, however far off its time, narrows what any card or terminal keeps. Fraud labels
    likewise, by when they became known."""
    delay = label_delay_days * DAY
    engine = OnlineFeatures(label_delay_days)
    last_day = queries.usual_span(store)[1]
    if last_day is None:
        return engine
    known_at = _known_at(delay)
    cur = store.new_cursor()
    try:
        rows = cur.sql(f"""
            WITH cards AS (SELECT customer_id, max(timestamp) AS latest FROM transactions GROUP BY ALL),
            terminals AS (SELECT terminal_id, max(timestamp) AS latest FROM transactions GROUP BY ALL),
            dated AS (
                SELECT t.rowid AS rid, t.timestamp, t.customer_id, t.terminal_id, t.amount, t.channel, t.country,
                       coalesce(t.is_fraud, false) AS is_fraud, {known_at} AS known,
                       least(c.latest, m.latest, $end) - $window AS since
                FROM transactions t JOIN cards c USING (customer_id) JOIN terminals m USING (terminal_id))
            SELECT epoch_us(timestamp) AS t, customer_id, terminal_id, amount,
                   coalesce(channel = 'online', false)::INT AS online, country, epoch_us(known) AS known,
                   timestamp >= since AS payment, is_fraud AND known >= since AS label
            FROM dated WHERE timestamp >= since OR (is_fraud AND known >= since)
            ORDER BY customer_id, t, rid""",
                       params={"end": dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time()),
                               "window": dt.timedelta(seconds=MAX_WINDOW + delay + DAY)}).to_arrow_table()
    finally:
        cur.close()
    # Whole lists per card and per terminal, sliced from sorted columns rather than added row by row.
    payments = rows.filter(rows.column("payment"))
    ts, amount, terminal, online, country = (payments.column(c).to_pylist()
                                             for c in ("t", "amount", "terminal_id", "online", "country"))
    for customer, a, b in _groups(payments.column("customer_id")):
        card = engine.cards[customer]
        card.ts, card.amount, card.terminal, card.online, card.country = (
            ts[a:b], amount[a:b], terminal[a:b], online[a:b], country[a:b])
    by_terminal = payments.select(["terminal_id", "t"]).sort_by([("terminal_id", "ascending"), ("t", "ascending")])
    ts = by_terminal.column("t").to_pylist()
    for terminal_id, a, b in _groups(by_terminal.column("terminal_id")):
        engine.terminals[terminal_id].ts = ts[a:b]
    labels = rows.filter(rows.column("label")).sort_by([("known", "ascending"), ("t", "ascending")])
    for customer, terminal_id, known, paid in zip(*(labels.column(c).to_pylist()
                                                    for c in ("customer_id", "terminal_id", "known", "t"))):
        engine.add_label(customer, terminal_id, known, paid)
    return engine
