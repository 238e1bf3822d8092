"""CSV and Parquet import: all-or-nothing by default, every bad row reported by line and field."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import duckdb

from . import fields
from .fields import FieldError  # noqa: F401  (raised by parse_record; callers catch it from here)
from .store import Reject, Staging, Store, TRANSACTION_FIELDS
from .store.ingest import record_refused

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (missing column, bad --map, unreadable file). `reason` says why
    in words any face can show; the text of the error adds what to do at the command line, if anything."""

    def __init__(self, reason: str, command_line: str | None = None):
        super().__init__(f"{reason} ({command_line})" if command_line else reason)
        self.reason = reason


@dataclass
class ImportReport:
    source: str
    rows_read: int
    imported: int
    rejected: int
    sample: list[Reject] = field(default_factory=list)
    import_id: int | None = None
    rejects_file: Path | None = None
    where: str = "line"

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    def refusal(self, limit: int = 3) -> str:
        """Why the file was refused, in words: how many rows are invalid, and the first reasons."""
        shown = self.sample[:limit]
        more = len(self.sample) > limit or self.rejected > len({r.line for r in shown})
        return (f"{self.rejected:,} of {self.rows_read:,} rows are invalid: "
                + "; ".join(f"{self.where} {r.line}: {r}" for r in shown) + ("; …" if more else ""))

    def lines(self, limit: int = 20) -> list[str]:
        out = [f"{self.where} {r.line}: {r}" for r in self.sample[:limit]]
        if self.rejected > len(self.sample[:limit]):
            hint = f"; all are in {self.rejects_file}" if self.rejects_file else "; use --rejects FILE for all"
            out.append(f"... {self.rejected} rows rejected in all{hint}")
        return out


def parse_mapping(items: Sequence[str] | None) -> dict[str, str]:
    """['TX_AMOUNT=amount', ...] -> {'amount': 'TX_AMOUNT'} (canonical field -> source column)."""
    mapping: dict[str, str] = {}
    for item in items or ():
        source, sep, target = item.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source or not target:
            raise ImportFileError(f"--map {item!r}: expected SOURCE=field, e.g. TX_AMOUNT=amount")
        if target not in TRANSACTION_FIELDS:
            raise ImportFileError(f"--map {item!r}: {target!r} is not a transaction field "
                               f"(fields: {', '.join(TRANSACTION_FIELDS)})")
        if target in mapping:
            raise ImportFileError(f"--map: field {target!r} is mapped twice")
        mapping[target] = source
    return mapping


def resolve_columns(columns: Sequence[str], mapping: Mapping[str, str]) -> dict[str, str | None]:
    """Which file column feeds each field: --map first, then the field's own name, any case."""
    by_lower = {c.lower(): c for c in columns}
    resolved: dict[str, str | None] = {}
    for name in TRANSACTION_FIELDS:
        if name in mapping:
            if mapping[name] not in columns:
                raise ImportFileError(f"--map {mapping[name]}={name}: the file has no column {mapping[name]!r} "
                                   f"(columns: {', '.join(columns)})")
            resolved[name] = mapping[name]
        else:
            resolved[name] = name if name in columns else by_lower.get(name)
    missing = [n for n, required in TRANSACTION_FIELDS.items() if required and not resolved[n]]
    if missing:
        raise ImportFileError(f"missing required column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                              f"the file has: {', '.join(columns)}", "use --map SOURCE=field")
    return resolved


def file_kind(path: Path, source: str | None = None) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise ImportFileError(f"{source or path}: unsupported file type; use .csv or .parquet")


def import_file(store: Store, path: Path | str, mapping: Mapping[str, str] | None = None, *,
                currency: str = "EUR", skip_invalid: bool = False, rejects_path: Path | None = None,
                actor: str | None = None, progress: Progress | None = None, source: str | None = None) -> ImportReport:
    """Validate the whole file, then insert it in one transaction (only the valid rows with skip_invalid).
    `source` names the file in the load history and in errors (default: its path). A file found but refused is
    recorded as a refused load, with why."""
    path = Path(path)
    source = source or str(path)
    if not path.is_file():
        raise ImportFileError(f"{source}: no such file")
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    try:
        report = _import(store, path, source, mapping, currency, skip_invalid, rejects_path, actor, started,
                         progress or (lambda fraction, message: None))
    except ImportFileError as exc:
        record_refused(store, source, actor, started, 0, exc.reason)  # the Data view shows it
        raise
    if report.import_id is None:  # refused for its invalid rows
        record_refused(store, source, actor, started, report.rejected, report.refusal())
    return report


def _import(store: Store, path: Path, source: str, mapping: Mapping[str, str] | None, currency: str,
            skip_invalid: bool, rejects_path: Path | None, actor: str | None, started: dt.datetime,
            step: Progress) -> ImportReport:
    if path.stat().st_size == 0:
        raise ImportFileError(f"{source}: the file is empty")
    kind = file_kind(path, source)
    with Staging(store) as staging:
        step(0.0, "reading file")
        try:
            columns = list(staging.load(path, kind))
        except duckdb.Error as exc:
            raise ImportFileError(f"{source}: cannot read as {kind}: {str(exc).splitlines()[0]}") from None
        resolved = resolve_columns(columns, mapping or {})
        step(0.4, "checking rows")
        staging.check(resolved, currency)
        valid, rejected, sample = staging.summary()
        report = ImportReport(source, valid + rejected, 0, rejected, sample,
                              where="line" if kind == "csv" else "row")
        if report.rows_read == 0:
            raise ImportFileError(f"{source}: the file has a header but no rows")
        if rejected and rejects_path:
            staging.write_rejects(Path(rejects_path))
            report.rejects_file = Path(rejects_path)
        if rejected and not skip_invalid:
            log.info("import of %s refused: %d invalid rows", source, rejected)
            return report
        step(0.7, "writing rows")
        report.import_id, report.imported = staging.commit(source, actor, started, rejected)
        step(1.0, "done")
    log.info("imported %d rows from %s (%d rejected)", report.imported, source, rejected)
    return report


# -- single records (REST) ----------------------------------------------------------------------------


def parse_record(record, currency: str) -> dict:
    """One transaction as posted (docs/schema.md) -> canonical values, or FieldError naming the field. The
    checks are the declarations in fields.py, which the OpenAPI description is made from too."""
    parsed = fields.parse(fields.TRANSACTION, record, "transaction")
    parsed["currency"] = parsed["currency"] or currency
    return parsed
