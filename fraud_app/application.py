"""The application object: one per process. It owns the live state (the store, live scoring, the background
job, caches and metrics) and offers every use case. The faces (REST handlers, UI sessions, the CLI, the
desktop launcher) are handed it; none keeps live state of its own or works around it."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from . import __version__, backtest, importer, registry, scoring, simulate, training, users
from . import backup as backup_folders
from .access import SCOPES, Actor, Forbidden
from .config import Settings
from .detector import Detector
from .heap import Heap
from .importer import ImportReport
from .jobs import Jobs
from .live import LiveScorer, NoModelError
from .metrics import Metrics
from .monitoring import DriftJobs
from .store import (ALERT_DECISIONS, Store, analytics, audit, card_cases, cases, insert_table, investigate, journal,
                    labels, models, queries, write_table_file)
from .store import tokens as stored_tokens

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
POINTS_FRESH = 60.0  # seconds the all-transactions raster's points are used before new scores are looked for
ENV_TOKEN_NAME = "api-token"  # the actor FRAUD_APP_API_TOKEN stands for: an admin token
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def token_digest(secret: str) -> str:
    """What is kept of a token. A plain sha256 is enough: a token is 256 random bits, not a password to guess."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Unauthorized(PermissionError):
    """A request without a token, or with one that is wrong or revoked; the message says which."""


def _quiet(fraction: float, message: str) -> None:
    pass


def _part(step: Progress, lo: float, hi: float) -> Progress:
    return lambda fraction, message: step(lo + (hi - lo) * fraction, message)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class FraudApp:
    """Everything one process knows and can do with one database."""

    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        self.store = store or Store(settings.db_path)
        try:
            journal.replay(self.store)  # payments a stopped server answered and had not committed
        except BaseException:
            if store is None:
                self.store.close()
            raise
        self.models_dir: Path = settings.models_root / self.store.database_id
        self.jobs = Jobs()
        self.metrics = Metrics()
        self.drift = DriftJobs(self.store, settings.label_delay_days)
        self.live: LiveScorer | None = None  # started by a server; one-shot CLI commands need none
        self._starting = threading.Lock()  # demo data and live scoring are set up once
        self._lock = threading.Lock()  # the caches below
        self._explainers: dict[tuple[str, str], tuple[str, Detector]] = {}
        self._points: dict[str, pd.DataFrame] = {}
        self.heap = Heap()  # the garbage collector's view of the sessions' objects (serve only)
        self._token_table: tuple[dict[str, Actor], dict[str, str], bool] = ({}, {}, False)
        self._load_tokens()
        self._opened = time.monotonic()
        self._backing_up = threading.Lock()  # one backup at a time: the button's and the schedule's
        self._schedule: backup_folders.Schedule | None = None  # started by a server

    def close(self, wait: float = 60.0) -> None:
        """Stop cleanly: let the background job finish (up to `wait` seconds; past that, closing the database
        cancels it and its transaction rolls back), write every payment live scoring accepted, checkpoint and
        close the database, which releases its lock. A scheduled backup under way finishes first."""
        if self._schedule is not None:
            self._schedule.close(timeout=wait)
        try:
            self.jobs.wait(timeout=wait)
        except TimeoutError:
            log.warning("closing while %s still runs: it is cancelled", self.jobs.current.title)
        if self.live is not None:
            self.live.close(timeout=wait)
        self.jobs.discard_files()
        self.drift.close()
        self.store.close()
        log.info("closed %s", self.store.path)

    def allow(self, actor: Actor | str | None, action: str) -> str | None:
        """The actor's name, for the audit log, if they may do `action`. Otherwise the refusal is written to the
        audit log and Forbidden raised. A plain name (the command line's user, or the app) may do everything."""
        if not isinstance(actor, Actor):
            return actor
        if not actor.may(action):
            refused = Forbidden(actor, action)
            audit.record_refusal(self.store, actor.name, action, str(refused))
            log.warning("refused: %s", refused)
            raise refused
        return actor.name

    def opened(self, actor: Actor | str) -> None:
        """A UI session began: a signed-in user is written to the audit log with their role."""
        if isinstance(actor, Actor) and actor.role:
            audit.record_session(self.store, actor.name, actor.role)

    def role_of(self, name: str, claims: Mapping | None = None) -> str:
        """A signed-in user's role: from the users file, or with single sign-on from the provider's claims. With
        one shared password (ours, or Panel's own --basic-auth under `panel serve`), everyone is a lead. A name the
        file no longer has, or no role claimed: viewer."""
        s = self.settings
        if s.oidc_issuer:
            return users.claimed_role((claims or {}).get(s.oidc_role_claim), s.oidc_role_prefix)
        if s.ui_users:
            try:
                user = users.load(s.ui_users).get(name)
            except users.UsersFileError as exc:
                log.error("cannot read the users file: %s", exc)
                user = None
            return user.role if user else "viewer"
        return "lead"

    def status(self, actor: Actor | str | None = None) -> dict:
        """What `fraud-app status` shows: the database, its transactions, the model in use, the current (or
        last) job, and this process, its uptime and fraud_app's version."""
        self.allow(actor, "view")
        active = models.active_version(self.store)
        job = self.jobs.current
        return {"database": str(self.store.path.absolute()), "transactions": self.transaction_count(),
                "model_version": active["version"] if active else None, "job": job.describe() if job else None,
                "process": os.getpid(), "uptime_seconds": round(time.monotonic() - self._opened, 1),
                "version": __version__}

    def _written(self) -> None:
        """Live scoring answers once a payment is in its journal and stores it a moment later: whatever reads the
        database in full (a backup, an export, a count) first waits for every payment answered so far."""
        if self.live is not None:
            self.live.flush(timeout=60)

    def transaction_count(self) -> int:
        """Every transaction stored, with every payment answered so far."""
        self._written()
        return queries.transaction_count(self.store)

    @property
    def needs_setup(self) -> bool:
        """True while the database has no transactions or no model in use: start() will set them up."""
        return not queries.transaction_count(self.store) or models.active_version(self.store) is None

    # -- start-up ------------------------------------------------------------------------------------------
    def start(self, data_progress: Progress | None = None, model_progress: Progress | None = None) -> None:
        """For a server: demo data and a first model on an empty database, then live scoring."""
        self.ensure_demo_data(data_progress)
        self.ensure_model(model_progress)
        with self._starting:
            if self.live is None:
                self.live = LiveScorer(self.store, self.models_dir, self.settings.label_delay_days)
                log.info("live scoring ready (model %s)", self.live.version or "none yet")
            if self._schedule is None and self.settings.backup_every_hours > 0:
                self._schedule = backup_folders.Schedule(
                    self.settings.backup_every_hours, lambda: (self.newest_backup() or (None,))[0],
                    lambda: self.backup("fraud-app"))
                self._schedule.start()

    def ensure_demo_data(self, progress: Progress | None = None) -> bool:
        """Generate and load the demo data set if the database holds no transactions. True if it did."""
        step, s = progress or _quiet, self.settings
        with self._starting:
            if queries.transaction_count(self.store):
                return False
            log.info("empty database %s: generating demo data (%d customers, %d terminals, %d days)",
                     self.store.path, s.demo_customers, s.demo_terminals, s.demo_days)
            table = simulate.generate(customers=s.demo_customers, terminals=s.demo_terminals, days=s.demo_days,
                                      progress=_part(step, 0, 0.8))
            step(0.85, "loading into the database")
            insert_table(self.store, table, source="demo data (generated)", actor="fraud-app")
            step(1.0, f"{table.num_rows:,} demo transactions loaded")
            return True

    def ensure_model(self, progress: Progress | None = None) -> str | None:
        """Train, promote and score with a first model when there is data but no model in use. Returns the
        new version, or None if a model was already in use or the data cannot train one."""
        step = progress or _quiet
        if models.active_version(self.store) is not None or not queries.transaction_count(self.store):
            return None
        log.info("no model in use: training a first one")
        try:
            result = self.train(actor="fraud-app", progress=_part(step, 0, 0.7))
        except training.TrainingError as exc:
            log.warning("no first model: %s", exc)
            return None
        self.score_stored(actor="fraud-app", progress=_part(step, 0.7, 1.0))
        log.info("first model %s in use (test AP %.3f)", result["model_version"],
                 result.get("average_precision") or 0.0)
        return result["model_version"]

    # -- live scoring and labels -----------------------------------------------------------------------------
    @property
    def model_version(self) -> str | None:
        """The version live scoring uses; None before live scoring started or while there is no model."""
        return self.live.version if self.live is not None else None

    def _scorer(self) -> LiveScorer:
        if self.live is None:
            raise NoModelError("live scoring is not running in this process")
        return self.live

    def begin_scoring(self, records: list[dict], actor: Actor | str | None = None):
        """Score validated records now and queue their write: await the job's writes, then finish_scoring."""
        self.allow(actor, "score")
        return self._scorer().begin(records)

    def finish_scoring(self, job) -> list[dict]:
        results = self._scorer().finish(job)
        self.metrics.scores_total.inc(len(results))
        self.metrics.flagged_total.inc(sum(r["decision"] in ALERT_DECISIONS for r in results))
        return results

    def score(self, records: list[dict], actor: Actor | str | None = None) -> list[dict]:
        """begin_scoring and finish_scoring, blocking until the write is durable."""
        job = self.begin_scoring(records, actor)
        job.wait()
        return self.finish_scoring(job)

    def label(self, transaction_id: str, is_fraud: bool, source: str, actor: Actor | str | None) -> bool:
        """Record a label (with its audit entry); False if the transaction is unknown."""
        actor = self.allow(actor, "label")
        if self.live is not None:  # a fraud label becomes live history at once
            return self.live.add_label(transaction_id, is_fraud, source, actor)
        return labels.record_label(self.store, transaction_id, is_fraud, source, actor, _now()) is not None

    # -- API tokens --------------------------------------------------------------------------------------------
    def _load_tokens(self) -> None:
        # Built whole, then swapped in by one assignment: a request reading it meanwhile sees the old table or
        # the new one, never half of each.
        active: dict[str, Actor] = {}
        revoked: dict[str, str] = {}
        rows = stored_tokens.all_tokens(self.store)
        for row in rows:
            if row["revoked_at"] is None:
                active[row["sha256"]] = Actor(row["name"], scopes=frozenset(row["scopes"]))
            else:
                revoked[row["sha256"]] = row["name"]
        if self.settings.api_token:
            active[token_digest(self.settings.api_token)] = Actor(ENV_TOKEN_NAME, scopes=frozenset({"admin"}))
        self._token_table = (active, revoked, bool(rows) or bool(self.settings.api_token))

    @property
    def api_open(self) -> bool:
        """True when the REST API takes requests without a token: FRAUD_APP_API_TOKEN is unset and no named
        token was ever made (revoking every named token does not open the API again)."""
        return not self._token_table[2]

    def token_actor(self, secret: str | None) -> Actor:
        """The actor a bearer token stands for: a dict lookup by its sha256. Raises Unauthorized for a missing,
        wrong or revoked token."""
        if not secret:
            raise Unauthorized("missing bearer token")
        active, revoked, _ = self._token_table
        digest = token_digest(secret)
        actor = active.get(digest)
        if actor is None:
            name = revoked.get(digest)
            raise Unauthorized(f"the token {name!r} was revoked" if name else "wrong bearer token")
        return actor

    def create_token(self, name: str, scopes: list[str] | set[str], actor: Actor | str | None) -> str:
        """A new named token with these scopes. Returns its secret, which is shown this once: only its sha256
        is stored."""
        who = self.allow(actor, "tokens")
        if not isinstance(name, str) or not TOKEN_NAME.fullmatch(name):
            raise stored_tokens.TokenError(f"name: {name!r} is not 1 to 64 letters, digits, '.', '_' or '-' "
                                           "starting with a letter or digit")
        if name == ENV_TOKEN_NAME:
            raise stored_tokens.TokenError(f"name: {ENV_TOKEN_NAME!r} stands for FRAUD_APP_API_TOKEN; choose another")
        if not scopes:
            raise stored_tokens.TokenError(f"scopes: give at least one of {', '.join(SCOPES)}")
        scopes = sorted(Actor(name, scopes=frozenset(scopes)).scopes)  # raises ValueError naming an unknown scope
        secret = "fa_" + secrets.token_urlsafe(32)
        stored_tokens.add_token(self.store, name, token_digest(secret), scopes, who, _now())
        self._load_tokens()
        log.info("API token %s (%s) created by %s", name, ", ".join(scopes), who)
        return secret

    def tokens(self, actor: Actor | str | None = None) -> list[dict]:
        """Every named token without its secret: name, scopes, created_at, created_by, revoked_at."""
        self.allow(actor, "tokens")
        return [{k: v for k, v in row.items() if k != "sha256"} for row in stored_tokens.all_tokens(self.store)]

    def revoke_token(self, name: str, actor: Actor | str | None) -> None:
        """Revoke a named token: from now on it is refused (401)."""
        who = self.allow(actor, "tokens")
        stored_tokens.revoke_token(self.store, name, who, _now())
        self._load_tokens()
        log.info("API token %s revoked by %s", name, who)

    # -- bulk work -------------------------------------------------------------------------------------------
    def score_stored(self, start: dt.date | None = None, end: dt.date | None = None, out: Path | None = None,
                     actor: Actor | str | None = None, progress: Progress | None = None) -> dict:
        """Score stored transactions in [start, end] with the model in use; with `out`, write CSV instead."""
        actor = self.allow(actor, "download" if out else "train")  # scoring into the database rewrites decisions
        self._written()
        return scoring.score_stored(self.store, models_dir=self.models_dir, start=start, end=end, out=out,
                                    label_delay_days=self.settings.label_delay_days, actor=actor, progress=progress)

    def import_file(self, path: Path, mapping: Mapping[str, str] | None = None, *, skip_invalid: bool = False,
                    rejects_path: Path | None = None, score: bool = True, actor: Actor | str | None = None,
                    progress: Progress | None = None, source: str | None = None) -> ImportReport:
        """Import a file (all or nothing unless skip_invalid), make its rows history for live scoring, and
        with `score`, score them with the model in use, if any. The report says what was refused and where.
        `source` names the file in the load history (default: its path); a refused file is listed there too."""
        actor = self.allow(actor, "import")
        step = progress or _quiet
        self._written()  # a payment just scored is stored before the file's ids are checked against the database
        report = importer.import_file(self.store, path, mapping, currency=self.settings.currency,
                                      skip_invalid=skip_invalid, rejects_path=rejects_path, actor=actor,
                                      progress=_part(step, 0, 0.4), source=source)
        if not report.imported:
            return report
        if self.live is not None:
            step(0.45, "adding the rows to live scoring's history")
            self.live.reload_history()
        version = models.active_version(self.store)
        span = queries.unscored_span(self.store, version["version"]) if version and score else (None, None)
        if span[0] is not None:
            self.score_stored(span[0], span[1], actor=actor, progress=_part(step, 0.5, 1.0))
        step(1.0, f"{report.imported:,} rows imported")
        return report

    def train(self, *, train_start: dt.date | None = None, train_end: dt.date | None = None, delay_days: int = 7,
              test_days: int = 7, seed: int = 0, promote: bool = False, actor: Actor | str | None = None,
              progress: Progress | None = None) -> dict:
        """Train and backtest a new version. It is put in use if asked, or if no version is in use yet."""
        if promote:
            self.allow(actor, "promote")
        actor = self.allow(actor, "train")
        self._written()
        s = self.settings
        result = training.train(self.store, models_dir=self.models_dir, train_start=train_start,
                                train_end=train_end, delay_days=delay_days, test_days=test_days,
                                label_delay_days=s.label_delay_days, alert_budget=s.alert_budget,
                                review_cost=s.review_cost, seed=seed, actor=actor, progress=progress)
        promote = promote or models.active_version(self.store) is None
        if promote:
            self.promote(result["model_version"], actor)
        return {**result, "promoted": promote}

    # -- the model in use ------------------------------------------------------------------------------------
    def _model_changed(self) -> None:
        if self.live is not None:
            self.live.reload_model()

    def promote(self, version: str, actor: Actor | str | None) -> str | None:
        """Put a version in use, live scoring included. Returns the version it replaced: the version itself if it
        already was in use, and then nothing changes."""
        actor = self.allow(actor, "promote")
        old = registry.promote(self.store, self.models_dir, version, actor)
        if old != version:
            self._model_changed()
        return old

    def rollback(self, actor: Actor | str | None) -> str:
        """Back to the version used before, live scoring included. Returns the version now in use."""
        actor = self.allow(actor, "rollback")
        version = registry.rollback(self.store, self.models_dir, actor)
        self._model_changed()
        return version

    def set_thresholds(self, version: str, review: float, decline: float, actor: Actor | str | None) -> int:
        """New thresholds for a version: its stored decisions follow, and live scoring if it is in use, and its
        metrics' figures at the thresholds are computed again on its test window. Returns how many stored
        decisions changed."""
        actor = self.allow(actor, "thresholds")
        figures = backtest.figures_at(self.backtest_scores(version), review, decline, self.settings.review_cost)
        changed = registry.set_thresholds(self.store, version, review, decline, actor, figures)
        self._model_changed()
        return changed

    def backtest_scores(self, version: str) -> pd.DataFrame:
        """A version's scores on its own test window, with amounts and labels (curves, threshold simulator)."""
        return backtest.scores(self.store, self.models_dir, version, self.settings.label_delay_days)

    # -- cases -----------------------------------------------------------------------------------------------
    def decide_cases(self, transaction_ids: list[str], status: str, analyst: Actor | str, note: str | None) -> int:
        """A decision on alerts one by one (Investigate, scripts); an alert in a case someone else holds is
        refused. A confirmed fraud becomes known history for live scoring at once."""
        analyst = self.allow(analyst, "decide")
        self._written()  # an alert answered a moment ago
        version, now = self.case_version(), _now()

        def held(cur, ids: list[str]) -> None:
            if version is None:
                return
            for transaction_id, case_id in card_cases.cases_of(self.store, version, self._window, ids, cur).items():
                holder = card_cases.holder_of(self.store, case_id, cur)
                if holder and holder[0] != analyst:
                    raise cases.CaseError(f"{transaction_id} is in case {case_id}, held by {holder[0]}: only they "
                                          "may decide it")

        n = cases.decide(self.store, transaction_ids, status, analyst, note, now=now, held=held)
        self._decided(transaction_ids, status, now)
        return n

    def _decided(self, transaction_ids: list[str], status: str, now: dt.datetime) -> None:
        if self.live is not None and cases.DECISIONS[status]:
            self.live.fraud_known(queries.transaction_keys(self.store, list(transaction_ids)), now)

    # Cases per card (store/card_cases.py), under the version whose scores the views show.
    @property
    def _window(self) -> int:
        return self.settings.case_window_days

    def case_version(self) -> str | None:
        active = models.active_version(self.store)
        return analytics.scored_version(self.store) or (active and active["version"])

    def _case_version(self) -> str:
        version = self.case_version()
        if version is None:
            raise cases.CaseError("nothing is scored yet: there are no cases")
        return version

    def take_case(self, case_id: str, actor: Actor | str, to: str | None = None) -> str | None:
        """The actor takes the case, or (a lead) gives it to `to`. Returns who held it before."""
        name = self.allow(actor, "decide")
        if to is not None and to != name:
            self.allow(actor, "assign")
        return card_cases.hold(self.store, self._case_version(), self._window, case_id, to or name, name, _now(),
                               force=to is not None)

    def release_case(self, case_id: str, actor: Actor | str) -> str | None:
        """Let go of a case: its holder may; so may a lead, of anyone's."""
        name = self.allow(actor, "decide")
        holder = card_cases.holder_of(self.store, case_id)
        if holder and holder[0] != name:
            self.allow(actor, "assign")
        return card_cases.release(self.store, case_id, name, _now(), force=True)

    def decide_case(self, case_id: str, status: str, actor: Actor | str, note: str | None = None,
                    transaction_ids: list[str] | None = None) -> list[str]:
        """Decide a case's undecided alerts, or only the ticked ones. Returns the ids decided."""
        name, now = self.allow(actor, "decide"), _now()
        ids = card_cases.decide(self.store, self._case_version(), self._window, case_id, status, name, note, now,
                                transaction_ids)
        self._decided(ids, status, now)
        return ids

    def note_case(self, case_id: str, text: str, actor: Actor | str) -> None:
        card_cases.add_note(self.store, self._case_version(), self._window, case_id, self.allow(actor, "decide"),
                            text, _now())

    def case_rows(self, status: str = "flagged", start: dt.date | None = None,
                  end: dt.date | None = None) -> pd.DataFrame:
        """The cases with score, decision, reasons in words, analyst and note (what `export` writes)."""
        version = self.case_version()
        if version is None:  # nothing scored yet: no cases
            raise registry.ModelError("nothing is scored yet: train a model and score first")
        self._written()
        frame = cases.export_rows(self.store, version, status, start, end)
        frame["reasons"] = [scoring.reason_line(json.loads(raw or "[]")) for raw in frame["reasons"]]
        return frame

    def export_cases(self, out: Path, status: str = "flagged", start: dt.date | None = None,
                     end: dt.date | None = None) -> int:
        frame = self.case_rows(status, start, end)
        write_table_file(pa.Table.from_pandas(frame, preserve_index=False), Path(out))
        return len(frame)

    # -- backups ---------------------------------------------------------------------------------------------
    def backup(self, actor: Actor | str | None = None, dest: Path | None = None,
               progress: Progress | None = None) -> Path:
        """Back up the database and its model files while scoring goes on (docs/backup.md): a new folder under
        `dest` (default: the backup folder) holding every transaction acknowledged before the call. After one in
        the backup folder, the backups there older than the keep days are deleted, never the newest. Returns
        the new folder."""
        actor = self.allow(actor, "backup")
        home = self.settings.backups_path
        folder = Path(dest) if dest is not None else home
        with self._backing_up:
            path, _ = backup_folders.take(self.store, self.models_dir, folder, actor=actor, progress=progress,
                                          written=self._written)  # and every payment answered before it began
            if folder.resolve() == home.resolve():  # a copy put elsewhere is the operator's to keep
                backup_folders.prune(folder, self.store.database_id, self.settings.backup_keep_days)
        return path

    def newest_backup(self) -> tuple[dt.datetime, Path] | None:
        """When the newest backup of this database in the backup folder was taken (UTC), and where it is."""
        found = backup_folders.backups(self.settings.backups_path, self.store.database_id)
        return found[-1] if found else None

    # -- investigation ---------------------------------------------------------------------------------------
    def explain(self, transaction_id: str, version: str | None = None) -> list[dict]:
        """The top reasons for one stored transaction, computed now, with the version that scored it
        (`version`, else its latest score's, else the one in use)."""
        row = investigate.transaction(self.store, transaction_id, version)
        if row is None:
            raise ValueError(f"no stored transaction {transaction_id!r}")
        version, detector = self._explainer(version or row["model_version"])
        return scoring.explain(self.store, row, version, detector, self.settings.label_delay_days)

    def _explainer(self, version: str | None) -> tuple[str, Detector]:
        # A model load hashes and parses the file: milliseconds, more for an older .skops file (skops checks each
        # type against every loaded module). A saved file never changes (its hash is recorded) and reasons do not
        # use the thresholds, so one load per file serves every later explanation.
        row = models.get_version(self.store, version) if version else models.active_version(self.store)
        if row is None:
            return registry.load(self.store, self.models_dir, version)  # raises, saying what is missing
        key = (row["version"], row["sha256"])
        with self._lock:
            found = self._explainers.get(key)
        if found is None:
            found = registry.load(self.store, self.models_dir, row["version"])
            with self._lock:
                self._explainers[key] = found
        return found

    def score_points(self, version: str) -> pd.DataFrame:
        """Time, amount and score of the scored payments within usual_times, for the all-transactions raster;
        attrs: "window" (usual_times), "left_out" (how many it left out) and "top" (the amount axis' usual top).
        Sessions share one copy (three numpy columns, ~40 MB at 1.75M rows), loaded again for another version,
        or when the version scored more payments and the copy is a minute old: with the API scoring all the
        time, loading it for each payment opened would cost each a second."""
        with self._lock:
            held = self._points.get(version)
            if held is not None and time.monotonic() - held.attrs["loaded"] < POINTS_FRESH:
                return held
        count = queries.scored_count(self.store, version)
        if held is not None and held.attrs["count"] == count:
            held.attrs["loaded"] = time.monotonic()
            return held
        frame = pd.DataFrame(investigate.score_points(self.store, version), copy=False)
        window, left_out = None, 0
        if len(frame):
            window = usual_times(frame["time"].to_numpy())
            inside = frame["time"].between(*window)
            left_out = int(len(frame) - inside.sum())
            if left_out:  # rare, so the columns are copied only then
                frame = frame[inside].reset_index(drop=True)
        frame.attrs.update(window=window, left_out=left_out, count=count, loaded=time.monotonic(),
                           top=1.1 * float(np.quantile(frame["amount"], 0.999)) if len(frame) else 1.0)
        with self._lock:
            self._points.clear()
            self._points[version] = frame
        return frame

    def drift_job(self, version: str, end: dt.date | None = None):
        """Drift of `version` up to `end`, shared by every session (poll the job it returns)."""
        return self.drift.job(version, end)


def usual_times(times: np.ndarray) -> tuple[np.datetime64, np.datetime64]:
    """Where the all-transactions raster may reach: the bulk of the payments (0.1% to 99.9% quantiles), widened
    by a tenth of that each side (at least a day). A payment dated decades away, which is valid, must not
    stretch the axis: every other point would crowd into a few cells."""
    us = times.astype("datetime64[us]").view(np.int64)
    low, high = np.quantile(us, [0.001, 0.999])
    margin = max((high - low) / 10, 86_400e6)
    return np.datetime64(int(low - margin), "us"), np.datetime64(int(high + margin), "us")


def served_app() -> FraudApp:
    """The application object of a `panel serve` process: built and started once, at server start, by the
    `--plugins fraud_app.api` module (or by the first session without it), and found by every session.
    Panel's process-wide cache holds it, so no module of ours keeps live state."""
    import panel as pn

    from .config import load_settings, setup_logging

    def build() -> FraudApp:
        settings = load_settings()
        setup_logging(settings)
        app = FraudApp(settings)
        app.start()
        return app

    return pn.state.as_cached("fraud_app.application", build)
