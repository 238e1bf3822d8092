"""A card-payment simulator in the spirit of the "Reproducible ML for Credit Card Fraud Detection"
handbook, extended with channels, countries and two more fraud patterns.

Everything is drawn with numpy in whole arrays, so the default 1.75M transactions take about a second.
The same seed always gives the same table.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

import numpy as np
import pyarrow as pa

SCENARIOS = ("large_amount", "compromised_terminal", "compromised_card_cnp", "card_testing", "account_takeover")
CHANNELS = ("pos", "online", "atm")
CATEGORIES = {
    "pos": (("grocery", 0.30), ("restaurant", 0.20), ("fuel", 0.15), ("retail", 0.20),
            ("pharmacy", 0.07), ("electronics", 0.05), ("travel", 0.03)),
    "online": (("ecommerce", 0.55), ("digital_goods", 0.20), ("subscriptions", 0.10), ("travel", 0.15)),
    "atm": (("cash_withdrawal", 1.0),),
}
# A 4x4 grid of countries over the 100x100 plane, so distance from home means crossing borders.
COUNTRIES = ("PT", "ES", "FR", "IT", "IE", "GB", "BE", "CH", "NL", "DE", "AT", "SI", "DK", "PL", "CZ", "HR")
PLANE = 100.0
LOCAL_RADIUS = 5.0
SECONDS_PER_DAY = 86_400
MAX_CUSTOMERS = 1_000_000
MAX_TERMINALS = 1_000_000
MAX_DAYS = 3_660

Progress = Callable[[float, str], None]


def _check(customers: int, terminals: int, days: int, start, seed: int) -> dt.date:
    for name, value, top in (("customers", customers, MAX_CUSTOMERS), ("terminals", terminals, MAX_TERMINALS),
                             ("days", days, MAX_DAYS)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= top:
            raise ValueError(f"{name} must be a whole number from 1 to {top:,} (got {value!r})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0 (got {seed!r})")
    if isinstance(start, dt.datetime):
        return start.date()
    if isinstance(start, dt.date):
        return start
    try:
        return dt.date.fromisoformat(str(start))
    except ValueError:
        raise ValueError(f"start must be a date like 2018-04-01 (got {start!r})") from None


def _cell(xy: np.ndarray, side: int) -> np.ndarray:
    g = np.minimum((xy // (PLANE / side)).astype(np.int64), side - 1)
    return g[:, 0] * side + g[:, 1]


def _country(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    cell = PLANE / 4
    return (np.minimum(y // cell, 3) * 4 + np.minimum(x // cell, 3)).astype(np.int64)


class _World:
    """Customers and terminals: who lives where, spends what, and shops where."""

    def __init__(self, rng: np.random.Generator, customers: int, terminals: int):
        # Terminals: a mix of shops, web merchants and cash machines.
        self.t_xy = rng.uniform(0, PLANE, (terminals, 2))
        channel = rng.choice(3, size=terminals, p=[0.80, 0.12, 0.08])
        if terminals >= 2 and not (channel == 1).any():
            channel[rng.integers(terminals)] = 1
        self.t_channel = channel
        self.t_category = np.empty(terminals, dtype=object)
        for code, name in enumerate(CHANNELS):
            names, weights = zip(*CATEGORIES[name])
            where = np.flatnonzero(channel == code)
            self.t_category[where] = np.asarray(names, dtype=object)[rng.choice(len(names), where.size, p=weights)]
        self.t_country = _country(self.t_xy[:, 0], self.t_xy[:, 1])
        self.online = np.flatnonzero(channel == 1)
        if self.online.size == 0:
            self.online = np.arange(terminals)
        self.physical = np.flatnonzero(channel != 1)
        if self.physical.size == 0:
            self.physical = np.arange(terminals)
        # Web merchants are not equally popular: a few big ones take most of the traffic.
        popularity = 1.0 / np.arange(1, self.online.size + 1) ** 0.8
        self.online_p = rng.permutation(popularity / popularity.sum())

        # Customers: a home, a spending profile, an activity rate and active hours.
        self.c_xy = rng.uniform(0, PLANE, (customers, 2))
        self.c_mean = rng.uniform(5, 100, customers)
        self.c_std = self.c_mean / 2
        self.c_rate = rng.uniform(0, 3.9, customers)
        self.c_online = rng.beta(1.2, 8, customers)  # share of purchases made online, mostly small
        self.c_peak = rng.uniform(10, 17, customers) * 3600
        self.c_spread = rng.uniform(3, 5.5, customers) * 3600
        self.c_country = _country(self.c_xy[:, 0], self.c_xy[:, 1])
        self.local_ptr, self.local = self._local_terminals()

    def _local_terminals(self) -> tuple[np.ndarray, np.ndarray]:
        """Physical terminals within LOCAL_RADIUS of each home (the nearest one if none), as CSR arrays.
        A grid of radius-sized cells keeps this to the 3x3 cells around each home."""
        side = int(PLANE // LOCAL_RADIUS)
        t_xy = self.t_xy[self.physical]
        t_cell = _cell(t_xy, side)
        t_order = np.argsort(t_cell, kind="stable")
        t_bounds = np.searchsorted(t_cell[t_order], np.arange(side * side + 1))
        c_cell = _cell(self.c_xy, side)
        c_order = np.argsort(c_cell, kind="stable")
        c_bounds = np.searchsorted(c_cell[c_order], np.arange(side * side + 1))
        rows, cols = [], []
        for cell in np.flatnonzero(np.diff(c_bounds)):
            who = c_order[c_bounds[cell]:c_bounds[cell + 1]]
            gx, gy = divmod(int(cell), side)
            pool = np.concatenate([t_order[t_bounds[i * side + j]:t_bounds[i * side + j + 1]]
                                   for i in range(max(gx - 1, 0), min(gx + 2, side))
                                   for j in range(max(gy - 1, 0), min(gy + 2, side))])
            d2 = ((self.c_xy[who, None, :] - t_xy[None, pool, :]) ** 2).sum(axis=2)
            r, c = np.nonzero(d2 <= LOCAL_RADIUS ** 2)
            rows.append(who[r])
            cols.append(pool[c])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        lonely = np.setdiff1d(np.arange(len(self.c_xy)), rows)
        if lonely.size:
            d2 = ((self.c_xy[lonely, None, :] - t_xy[None, :, :]) ** 2).sum(axis=2)
            rows, cols = np.concatenate([rows, lonely]), np.concatenate([cols, d2.argmin(axis=1)])
        order = np.lexsort((cols, rows))
        ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(self.c_xy)))])
        return ptr, self.physical[cols[order]]

    def local_terminal(self, rng: np.random.Generator, customer: np.ndarray) -> np.ndarray:
        deg = self.local_ptr[customer + 1] - self.local_ptr[customer]
        return self.local[self.local_ptr[customer] + (rng.random(customer.size) * deg).astype(np.int64)]

    def online_terminal(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.online[rng.choice(self.online.size, size=n, p=self.online_p)]


class _Transactions:
    """Columns under construction, as numpy arrays of equal length."""

    def __init__(self, customer, terminal, day, second, amount, scenario):
        self.customer, self.terminal, self.day = customer, terminal, day
        self.second, self.amount, self.scenario = second, amount, scenario

    def extend(self, other: "_Transactions") -> None:
        for name in vars(self):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))

    def __len__(self) -> int:
        return self.customer.size


def _events(rng: np.random.Generator, per_day: float, days: int) -> int:
    """How many times a pattern starts over the period; at least once, so small sets show every pattern."""
    return max(1, int(rng.poisson(per_day * days)))


def _genuine(rng: np.random.Generator, w: _World, days: int) -> _Transactions:
    counts = rng.poisson(np.repeat(w.c_rate, days)).astype(np.int64)
    cd = np.repeat(np.arange(counts.size), counts)
    customer, day = cd // days, cd % days
    second = rng.normal(w.c_peak[customer], w.c_spread[customer])
    keep = (second >= 0) & (second < SECONDS_PER_DAY)  # handbook: activity outside the day is dropped
    customer, day, second = customer[keep], day[keep], second[keep].astype(np.int64)
    n = customer.size
    online = rng.random(n) < w.c_online[customer]
    terminal = w.local_terminal(rng, customer)
    terminal[online] = w.online_terminal(rng, int(online.sum()))
    amount = rng.normal(w.c_mean[customer], w.c_std[customer])
    negative = amount <= 0
    amount[negative] = rng.uniform(0, 2 * w.c_mean[customer[negative]])
    cash = w.t_channel[terminal] == 2
    amount[cash] = np.maximum(10.0, np.round(amount[cash] / 10) * 10)  # ATMs pay out round sums
    return _Transactions(customer, terminal, day, second, amount, np.zeros(n, np.int8))


def _compromised_terminals(rng, w: _World, tx: _Transactions, days: int, n_terminals: int) -> None:
    """Skimmers: a shop or ATM is compromised from the next day for 28 days; every payment there is fraud."""
    n = _events(rng, 1.2 * n_terminals / 10_000, days)
    hit = np.zeros((n_terminals, days + 29), dtype=bool)
    for t, d in zip(w.physical[rng.integers(w.physical.size, size=n)], rng.integers(days, size=n)):
        hit[t, d + 1:d + 29] = True
    fraud = hit[tx.terminal, tx.day] & (tx.scenario == 0)
    tx.scenario[fraud] = SCENARIOS.index("compromised_terminal") + 1


def _compromised_cards(rng, w: _World, tx: _Transactions, days: int, n_customers: int) -> None:
    """Stolen card details: for 14 days a third of the card's payments are fraudsters' online purchases,
    several times the usual amount."""
    n = _events(rng, 3 * n_customers / 5_000, days)
    hit = np.zeros((n_customers, days + 15), dtype=bool)
    for c, d in zip(rng.integers(n_customers, size=n), rng.integers(days, size=n)):
        hit[c, d + 1:d + 15] = True
    fraud = np.flatnonzero(hit[tx.customer, tx.day] & (tx.scenario == 0))
    fraud = fraud[rng.random(fraud.size) < 1 / 3]
    tx.terminal[fraud] = w.online_terminal(rng, fraud.size)
    tx.amount[fraud] *= rng.uniform(3, 6, fraud.size)
    tx.scenario[fraud] = SCENARIOS.index("compromised_card_cnp") + 1


def _card_testing(rng, w: _World, days: int, n_customers: int) -> _Transactions:
    """Bursts of 5-20 tiny online payments at different merchants within half an hour, probing a card."""
    n = _events(rng, 0.8 * n_customers / 5_000, days)
    size = rng.integers(5, 21, n)
    customer = np.repeat(rng.integers(n_customers, size=n), size)
    day = np.repeat(rng.integers(days, size=n), size)
    start = np.repeat(rng.integers(0, SECONDS_PER_DAY - 1800, n), size)
    second = start + rng.integers(0, 1800, size.sum())
    terminal = np.concatenate([w.online[rng.choice(w.online.size, k, replace=k > w.online.size)] for k in size])
    amount = rng.uniform(0.5, 3.0, size.sum())
    return _Transactions(customer, terminal, day, second, amount,
                         np.full(size.sum(), SCENARIOS.index("card_testing") + 1, np.int8))


def _account_takeover(rng, w: _World, days: int, n_customers: int) -> _Transactions:
    """A taken-over account spends 2-6 times its usual amounts, at any hour, in a country far from home."""
    n = _events(rng, n_customers / 5_000, days)
    size = rng.integers(2, 7, n)
    who = rng.integers(n_customers, size=n)
    # The fraudster's base: a physical terminal far from the card's home (the farthest of 16 tries).
    tries = w.physical[rng.integers(w.physical.size, size=(n, 16))]
    dist = np.linalg.norm(w.t_xy[tries] - w.c_xy[who][:, None, :], axis=2)
    base = tries[np.arange(n), dist.argmax(axis=1)]
    same_country = [np.flatnonzero(w.t_country[w.physical] == w.t_country[b]) for b in base]
    terminal = np.concatenate([w.physical[pool[rng.integers(pool.size, size=k)]]
                               for pool, k in zip(same_country, size)])
    customer = np.repeat(who, size)
    day = np.repeat(rng.integers(days, size=n), size) + rng.integers(0, 2, size.sum())
    second = rng.integers(0, SECONDS_PER_DAY, size.sum())
    amount = w.c_mean[customer] * rng.uniform(2, 6, size.sum())
    keep = day < days
    return _Transactions(customer[keep], terminal[keep], day[keep], second[keep], amount[keep],
                         np.full(int(keep.sum()), SCENARIOS.index("account_takeover") + 1, np.int8))


def _large_amounts(rng, tx: _Transactions) -> None:
    """Rare single payments far above anything the card usually spends."""
    n = max(1, int(rng.binomial(len(tx), 0.0005)))
    pick = rng.choice(len(tx), size=n, replace=False)
    pick = pick[tx.scenario[pick] == 0]
    tx.amount[pick] = rng.uniform(250, 2500, pick.size)
    tx.scenario[pick] = SCENARIOS.index("large_amount") + 1


def _lookup(values, codes: np.ndarray) -> pa.Array:
    return pa.array(list(values), pa.string()).take(pa.array(codes))


def _ids(prefix: str, n: int) -> pa.Array:
    width = max(5, len(str(n - 1)))
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(n)], pa.string())


def generate(customers: int = 5000, terminals: int = 10000, days: int = 183, start="2018-04-01",
             seed: int = 0, progress: Progress | None = None) -> pa.Table:
    """Simulated transactions with labels, in time order, as an Arrow table of the transaction fields (docs/schema.md)
    plus `fraud_scenario` (the pattern's name, empty for genuine payments)."""
    first_day = _check(customers, terminals, days, start, seed)
    step = progress or (lambda fraction, message: None)
    rng = np.random.default_rng(seed)

    step(0.0, "building customers and terminals")
    world = _World(rng, customers, terminals)
    step(0.25, "drawing genuine payments")
    tx = _genuine(rng, world, days)
    step(0.55, "injecting fraud")
    _compromised_cards(rng, world, tx, days, customers)
    _compromised_terminals(rng, world, tx, days, terminals)
    _large_amounts(rng, tx)
    tx.extend(_card_testing(rng, world, days, customers))
    tx.extend(_account_takeover(rng, world, days, customers))

    step(0.75, "labelling and sorting")
    epoch = np.datetime64(first_day, "us").astype(np.int64)
    micros = epoch + (tx.day * SECONDS_PER_DAY + tx.second) * 1_000_000
    order = np.lexsort((tx.customer, micros))
    micros, customer, terminal = micros[order], tx.customer[order], tx.terminal[order]
    amount = np.maximum(np.round(tx.amount[order], 2), 0.01)
    scenario = tx.scenario[order]
    is_fraud = (scenario > 0).astype(np.int8)
    # Chargebacks arrive days to weeks later: 1 day at least, a week typically, 60 days at most.
    delay = np.minimum(1 + rng.gamma(1.5, 6.0, micros.size), 60) * SECONDS_PER_DAY * 1_000_000
    label_us = np.where(is_fraud == 1, micros + delay.astype(np.int64), 0)

    step(0.85, "building the table")
    n = micros.size
    channel = world.t_channel[terminal]
    ts_type = pa.timestamp("us")
    table = pa.table({
        "transaction_id": pa.array(np.arange(n, dtype=np.int64)).cast(pa.string()),
        "timestamp": pa.array(micros, ts_type),
        "customer_id": _ids("C", customers).take(pa.array(customer)),
        "terminal_id": _ids("T", terminals).take(pa.array(terminal)),
        "amount": pa.array(amount, pa.float64()),
        "currency": _lookup(["EUR"], np.zeros(n, np.int64)),
        "merchant_category": _lookup(world.t_category, terminal),
        "channel": _lookup(CHANNELS, channel),
        "country": _lookup(COUNTRIES, world.t_country[terminal]),
        "is_fraud": pa.array(is_fraud, pa.int8()),
        "label_time": pa.array(label_us, ts_type, mask=is_fraud == 0),
        "fraud_scenario": _lookup(("",) + SCENARIOS, scenario),
    })
    step(1.0, f"{n:,} transactions, {int(is_fraud.sum()):,} fraudulent")
    return table
