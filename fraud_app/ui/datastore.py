"""The per-session DataStore: the views' one door to the database (Panel's DataStore pattern).

It holds no table in memory; every view asks it for aggregates or pages, computed in SQL by `store`.
"""
from __future__ import annotations

import param

from ..store import Store, queries


class DataStore(param.Parameterized):
    store = param.ClassSelector(class_=Store, constant=True, doc="The process's shared database.")
    version = param.Integer(default=0, doc="Bumped after a write, so views re-query.")

    def refresh(self) -> None:
        self.version += 1

    @param.depends("version")
    def summary(self) -> queries.Summary:
        return queries.summary(self.store)

    @param.depends("version")
    def imports(self) -> list[tuple]:
        return queries.imports(self.store)
