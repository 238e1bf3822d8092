"""First start: an empty database gets demo data, a first model and its scores, so a new user sees a
working app at once."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from . import simulate
from .config import Settings
from .store import Store, insert_table, models, queries

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
_lock = threading.Lock()


def _part(step: Progress, lo: float, hi: float) -> Progress:
    return lambda fraction, message: step(lo + (hi - lo) * fraction, message)


def ensure_demo_data(store: Store, settings: Settings, progress: Progress | None = None) -> bool:
    """Generate and load the demo data set if the database holds no transactions. True if it did."""
    step = progress or (lambda fraction, message: None)
    with _lock:
        if queries.transaction_count(store):
            return False
        log.info("empty database %s: generating demo data (%d customers, %d terminals, %d days)",
                 store.path, settings.demo_customers, settings.demo_terminals, settings.demo_days)
        table = simulate.generate(customers=settings.demo_customers, terminals=settings.demo_terminals,
                                  days=settings.demo_days, progress=_part(step, 0, 0.8))
        step(0.85, "loading into the database")
        insert_table(store, table, source="demo data (generated)", actor="fraud-app")
        step(1.0, f"{table.num_rows:,} demo transactions loaded")
        return True


def ensure_model(store: Store, settings: Settings, progress: Progress | None = None) -> str | None:
    """Train, promote and score with a first model when there is data but no model in use.
    Returns the new version, or None if a model was already in use or the data cannot train one."""
    from .scoring import score_stored
    from .training import TrainingError, train

    step = progress or (lambda fraction, message: None)
    with _lock:
        if models.active_version(store) is not None or not queries.transaction_count(store):
            return None
        log.info("no model in use: training a first one")
        try:
            result = train(store, models_dir=settings.models_dir, label_delay_days=settings.label_delay_days,
                           alert_budget=settings.alert_budget, review_cost=settings.review_cost, promote=True,
                           actor="fraud-app", progress=_part(step, 0, 0.7))
        except TrainingError as exc:
            log.warning("no first model: %s", exc)
            return None
        score_stored(store, models_dir=settings.models_dir, label_delay_days=settings.label_delay_days,
                     actor="fraud-app", progress=_part(step, 0.7, 1.0))
        log.info("first model %s in use (test AP %.3f)", result["model_version"],
                 result.get("average_precision") or 0.0)
        return result["model_version"]
