"""First start: an empty database gets demo data, so a new user sees a working app at once."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from . import simulate
from .config import Settings
from .store import Store, insert_table, queries

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
_lock = threading.Lock()


def ensure_demo_data(store: Store, settings: Settings, progress: Progress | None = None) -> bool:
    """Generate and load the demo data set if the database holds no transactions. True if it did."""
    step = progress or (lambda fraction, message: None)
    with _lock:
        if queries.transaction_count(store):
            return False
        log.info("empty database %s: generating demo data (%d customers, %d terminals, %d days)",
                 store.path, settings.demo_customers, settings.demo_terminals, settings.demo_days)
        table = simulate.generate(customers=settings.demo_customers, terminals=settings.demo_terminals,
                                  days=settings.demo_days, progress=lambda f, m: step(0.8 * f, m))
        step(0.85, "loading into the database")
        insert_table(store, table, source="demo data (generated)", actor="fraud-app")
        step(1.0, f"{table.num_rows:,} demo transactions loaded")
        return True
