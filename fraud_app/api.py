"""REST API (docs/rest-api.md) as Tornado handlers on Panel's own server.

Two ways in, one set of handlers, each handed the process's application object:
- `fraud-app serve` passes routes(app) to pn.serve(extra_patterns=...);
- `panel serve fraud_app/ui/app.py --plugins fraud_app.api` reads ROUTES from this module at server start,
  which builds and starts the application object then (not in the first request).
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler, stream_request_body

from . import __version__, fields
from .access import Actor, Forbidden, name_of
from .application import FraudApp, Unauthorized, served_app
from .guard import Throttle, bearer_token, is_json_media_type, origin_allowed, parse_json, retry_after
from .importer import FieldError, parse_record
from .jobs import BusyError, Job
from .live import ConflictError, NoModelError
from .local import USER_HEADER, Credentials
from .store import StoreError, limits, models

log = logging.getLogger(__name__)
MAX_BATCH = limits.MAX_BATCH
AUTH_FAILURES = 10  # wrong tokens from one client within settings.auth_window before it is rate limited


class Service:
    """What every handler shares: the application object, its settings, the per-client rate limit, the
    count of wrong tokens per client, and the command line's credentials when the server published them."""

    def __init__(self, app: FraudApp, cli: Credentials | None = None):
        self.app, self.settings, self.cli = app, app.settings, cli
        self.failed_auth = Throttle(AUTH_FAILURES, app.settings.auth_window)
        self._buckets: dict[str, list[float]] = {}
        self._bucket_lock = threading.Lock()

    def allow(self, client: str) -> bool:
        """Token bucket per client: `rate_limit` requests a second, bursts up to twice that. 0 disables."""
        rate = self.settings.rate_limit
        if rate <= 0:
            return True
        now = time.monotonic()
        with self._bucket_lock:
            tokens, last = self._buckets.get(client, (2 * rate, now))
            tokens = min(2 * rate, tokens + (now - last) * rate)
            if tokens < 1:
                self._buckets[client] = [tokens, now]
                return False
            self._buckets[client] = [tokens - 1, now]
            return True


class ApiError(HTTPError):
    """An error the client caused or must know about, sent as the documented error object. `stored` is the
    stored result a 409 refers to."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, stored: Any = None,
                 headers: dict[str, str] | None = None):
        super().__init__(status)
        self.code, self.message, self.field, self.stored = code, message, field, stored
        self.headers = headers or {}  # sent with the error (send_error clears headers set before it)


def forbidden(exc: Forbidden) -> ApiError:
    return ApiError(403, "forbidden", str(exc))


@stream_request_body
class ApiHandler(RequestHandler):
    """Every check that needs only the headers runs in prepare(), before any of the body is read: a client
    that will be refused cannot make the server hold its upload. The body then streams into
    data_received() up to the size limit."""
    route = ""
    action = "view"  # what the request does (access.NEEDS); the token's scopes must allow it
    cli_only = False  # True: only the command line's secret may call it, never a token, nor an open API
    from_cli = False  # the request carries the command line's secret
    # The one method each route has; any other is answered 405 with Allow before the headers are checked.
    SUPPORTED_METHODS: tuple[str, ...] = ("GET",)
    _admitted = False  # past the checks; until then a refusal ends the connection (its body is never read)
    actor: Actor | str  # who the request is: its token's Actor, or `api:<address>` while the API is open

    def initialize(self, svc: Service) -> None:
        self.svc = svc

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    def prepare(self) -> None:
        settings, headers, request = self.svc.settings, self.request.headers, self.request
        self._body = bytearray()
        client = request.remote_ip or "?"
        # Rate first, token second: a client guessing tokens is refused even when a guess is right. Wrong
        # tokens count against the rate limit (and are not limited when it is off).
        failures = self.svc.failed_auth
        if settings.rate_limit > 0 and (wait := failures.wait(client)):
            raise ApiError(429, "rate_limited", f"{AUTH_FAILURES} wrong tokens within {settings.auth_window:g} s",
                           headers={"Retry-After": retry_after(wait)})
        if not self.svc.allow(client):
            raise ApiError(429, "rate_limited", f"more than {settings.rate_limit:g} requests a second",
                           headers={"Retry-After": "1"})
        app = self.svc.app
        token = bearer_token(headers.get("Authorization"))
        if self.svc.cli is not None and self.svc.cli.matches(token):
            self.actor = self._cli_user()  # a plain name: the command line may do everything
            self.from_cli = True
        elif self.cli_only:
            self._refuse_outside_cli(token, client)
        elif app.api_open:
            self.actor = f"api:{client}"
        else:
            try:
                self.actor = app.token_actor(token)
            except Unauthorized as exc:
                failures.fail(client)
                raise ApiError(401, "unauthorized", str(exc)) from None
            try:  # the use case checks again; asking here refuses before the body is read
                app.allow(self.actor, self.action)
            except Forbidden as exc:
                raise forbidden(exc) from None
        origin = headers.get("Origin")
        if not origin_allowed(origin, f"{request.protocol}://{request.host}", settings.allowed_origins):
            raise ApiError(403, "forbidden_origin", f"requests from the web origin {origin!r} are not accepted "
                           "(FRAUD_APP_ALLOWED_ORIGINS lists the ones that are)")
        if request.method == "POST" and not is_json_media_type(headers.get("Content-Type")):
            raise ApiError(415, "unsupported_media_type", "send the body as Content-Type: application/json")
        length = headers.get("Content-Length")
        if length is not None and not re.fullmatch(r"\s*\d{1,20}\s*", length):
            raise ApiError(400, "bad_request", f"Content-Length {length!r} is not a number of bytes")
        if length is not None and int(length) > settings.max_body_bytes:
            raise ApiError(413, "too_large", f"body over {settings.max_body_bytes:,} bytes")
        connection = request.connection
        if hasattr(connection, "set_body_timeout"):  # HTTP/1 (Tornado's only server-side connection)
            connection.set_body_timeout(settings.body_timeout)
            # data_received applies the limit, answering 413; Tornado's own check, which is for the
            # server's other routes, would drop a chunked body over it with a bare 400.
            connection.set_max_body_size(sys.maxsize)
        self._admitted = True

    def _cli_user(self) -> str:
        """The OS user a command-line request acts as, as the audit log names them."""
        raw = self.request.headers.get(USER_HEADER, "")
        try:
            user = urllib.parse.unquote(raw, errors="strict")
        except UnicodeDecodeError:
            user = ""
        if not 1 <= len(user) <= limits.MAX_ID_LENGTH or not user.isprintable():
            raise ApiError(400, "bad_request", f"{USER_HEADER}: the command line names its user here, as 1 to "
                           f"{limits.MAX_ID_LENGTH} printable characters (percent-encoded UTF-8)")
        return user

    def _refuse_outside_cli(self, token: str | None, client: str) -> None:
        words = (f"{self.route} takes only the secret of `fraud-app` on the server's host (in the database's "
                 ".server.json file), as it makes the server read a file from its disk")
        if token is None:
            raise ApiError(401, "unauthorized", f"missing bearer token: {words}")
        try:
            actor = self.svc.app.token_actor(token)
        except Unauthorized as exc:
            self.svc.failed_auth.fail(client)
            raise ApiError(401, "unauthorized", str(exc)) from None
        raise ApiError(403, "forbidden", f"{actor.title} may not call {words}; no API token may")

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        limit = self.svc.settings.max_body_bytes
        if len(self._body) + len(chunk) > limit:
            self._admitted = False
            error = ApiError(413, "too_large", f"body over {limit:,} bytes")
            self.send_error(413, exc_info=(ApiError, error, None))
            return
        self._body += chunk

    def send(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body, allow_nan=False, default=str))

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        self.set_header("Content-Type", "application/json")  # also from /metrics
        if not self._admitted:  # refused before its body was read: Tornado closes the connection after this
            self.set_header("Connection", "close")
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.SUPPORTED_METHODS))
        if isinstance(error, ApiError):
            body = {"code": error.code, "message": error.message}
            if error.field:
                body["field"] = error.field
            if error.code == "conflict":
                body["stored"] = error.stored
            for name, value in error.headers.items():
                self.set_header(name, value)
        elif isinstance(error, StoreError):  # the database, not the request, is at fault
            self.set_status(503)
            body = {"code": "unavailable", "message": str(error)}
        else:  # Tornado's own (405) or a bug: the traceback stays in the server log
            codes = {405: "method_not_allowed", 404: "not_found", 400: "bad_request"}
            body = {"code": codes.get(status_code, "internal"),
                    "message": self._reason if status_code < 500 else "internal error (details in the server log)"}
        self.finish(json.dumps({"error": body}))

    def on_finish(self) -> None:
        self.svc.app.metrics.request_done(self.route, self.get_status(), self.request.request_time())

    def json_body(self) -> Any:
        try:
            return parse_json(bytes(self._body))
        except ValueError as exc:  # UnicodeDecodeError is one
            raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from None


def _records(body: Any, currency: str) -> tuple[list[dict], bool]:
    """(validated records, whether the body was a batch)."""
    key = fields.BATCH_KEY
    if isinstance(body, dict) and key in body:
        items = body[key]
        if not isinstance(items, list) or not items:
            raise ApiError(422, "invalid", "must be a non-empty list of transactions", key)
        if len(items) > MAX_BATCH:
            raise ApiError(422, "invalid", f"at most {MAX_BATCH} transactions per request", key)
        records = []
        for i, item in enumerate(items):
            try:
                records.append(parse_record(item, currency))
            except FieldError as exc:
                field = f"transactions[{i}]" + ("" if exc.field == "transaction" else f".{exc.field}")
                raise ApiError(422, "invalid", exc.message, field) from None
        return records, True
    try:
        return [parse_record(body, currency)], False
    except FieldError as exc:
        raise ApiError(422, "invalid", exc.message, exc.field) from None


class ScoreHandler(ApiHandler):
    route = "/api/v1/score"
    action = "score"
    SUPPORTED_METHODS = ("POST",)

    async def post(self) -> None:
        app = self.svc.app
        records, batch = _records(self.json_body(), self.svc.settings.currency)
        started = time.perf_counter()
        try:
            # Scoring takes about a millisecond on the event loop; the durable write is awaited, not
            # blocked on, so the UI's sessions and other requests go on meanwhile.
            job = app.begin_scoring(records, self.actor)
        except Forbidden as exc:
            raise forbidden(exc) from None
        except NoModelError as exc:
            raise ApiError(503, "no_model", str(exc)) from None
        except ConflictError as exc:
            field = f"transactions[{exc.index}].transaction_id" if batch else "transaction_id"
            raise ApiError(409, "conflict", exc.message, field, stored=exc.stored) from None
        await asyncio.gather(*(asyncio.wrap_future(w) for w in job.writes), return_exceptions=True)
        results = app.finish_scoring(job)
        app.metrics.latency.observe(time.perf_counter() - started)
        self.send({"results": results} if batch else results[0])


class LabelsHandler(ApiHandler):
    route = "/api/v1/labels"
    action = "label"
    SUPPORTED_METHODS = ("POST",)

    async def post(self) -> None:
        try:
            label = fields.parse(fields.LABEL, self.json_body(), "body")
        except FieldError as exc:
            raise ApiError(422, "invalid", exc.message, exc.field) from None
        tx, is_fraud, source = label["transaction_id"], label["is_fraud"], label["source"]
        try:
            found = await IOLoop.current().run_in_executor(None, self.svc.app.label, tx, is_fraud, source, self.actor)
        except Forbidden as exc:
            raise forbidden(exc) from None
        if not found:  # the request is well formed; what it names does not exist
            raise ApiError(404, "unknown_transaction", f"no stored transaction {tx!r}", "transaction_id")
        self.send({"transaction_id": tx, "is_fraud": is_fraud, "source": source, "recorded": True})


class HealthHandler(ApiHandler):
    route = "/api/v1/health"

    async def get(self) -> None:
        try:
            # Off the event loop: the count includes every payment answered so far, which may wait for a commit.
            n = await IOLoop.current().run_in_executor(None, self.svc.app.transaction_count)
        except Exception as exc:  # the database is what health reports on; never a 500 here
            self.send({"status": "degraded", "model_version": self.svc.app.model_version, "error": str(exc)}, 503)
            return
        version = self.svc.app.model_version
        self.send({"status": "ok" if version else "degraded", "model_version": version, "transactions": n,
                   "version": __version__}, 200 if version else 503)


class ModelHandler(ApiHandler):
    route = "/api/v1/model"

    def get(self) -> None:
        row = models.active_version(self.svc.app.store)
        if row is None:
            raise ApiError(503, "no_model", "no model in use yet: train one first")
        self.send({"version": row["version"], "trained_at": row["created_at"],
                   "training_window": {"start": row["train_start"], "end": row["train_end"]},
                   "features": row["features"], "thresholds": row["thresholds"], "metrics": row["metrics"],
                   "params": row["params"], "promoted_at": row["promoted_at"]})


class OpenApiHandler(ApiHandler):
    route = "/api/v1/openapi.json"

    def get(self) -> None:
        from .openapi import document

        self.send(document(__version__))


class MetricsHandler(ApiHandler):
    route = "/metrics"

    def set_default_headers(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST

        self.set_header("Content-Type", CONTENT_TYPE_LATEST)

    def get(self) -> None:
        from prometheus_client import generate_latest

        self.finish(generate_latest(self.svc.app.metrics.registry))


class StatusHandler(ApiHandler):
    route = "/api/v1/status"

    def get(self) -> None:
        status = self.svc.app.status(self.actor)
        self.send({**status, "instance": self.svc.cli.instance if self.svc.cli else None})


class JobHandler(ApiHandler):
    """Starts long work as the process's one background job: 202 with the job, which GET /api/v1/job follows.
    Every session of the UI shows its progress too."""
    SUPPORTED_METHODS = ("POST",)
    body: tuple = ()

    def title(self, body: dict) -> str:
        raise NotImplementedError

    def work(self, body: dict, file: Path | None):
        """work(progress) for these parsed body fields, writing `file` when the handler writes one."""
        raise NotImplementedError

    def check(self, body: dict) -> None:
        """Refuse, with Forbidden, what the body asks beyond the handler's action."""

    def post(self) -> None:
        try:
            body = fields.parse(self.body, self.json_body(), "body")
        except FieldError as exc:
            raise ApiError(422, "invalid", exc.message, exc.field) from None
        try:
            self.check(body)  # refused now rather than as a failed job
        except Forbidden as exc:
            raise forbidden(exc) from None
        suffix = self.suffix(body)
        folder = Path(tempfile.mkdtemp(prefix="fraud_app-job-")) if suffix else None
        file = folder / f"{self.route.rsplit('/', 1)[-1]}{suffix}" if folder else None
        started = False
        try:
            job = self.svc.app.jobs.start(self.title(body), name_of(self.actor), self.work(body, file), file=file)
            started = True
        except BusyError as exc:
            raise ApiError(409, "busy", f"{exc}; try again when it is done") from None
        finally:
            if folder is not None and not started:
                shutil.rmtree(folder, ignore_errors=True)
        self.send(job.describe(), 202)

    def suffix(self, body: dict) -> str | None:
        kind = body.get("file")
        return {"csv": ".csv", "parquet": ".parquet"}.get(kind) if kind else None


class TrainJobHandler(JobHandler):
    route = "/api/v1/jobs/train"
    action = "train"
    body = fields.TRAIN_JOB

    def title(self, body: dict) -> str:
        start, end = body["train_start"], body["train_end"]
        return "Training a new version" + (f" on {start or '…'} to {end or '…'}" if start or end else "")

    def check(self, body: dict) -> None:
        if body["promote"]:
            self.svc.app.allow(self.actor, "promote")

    def work(self, body: dict, file: Path | None):
        app, actor = self.svc.app, self.actor
        return lambda progress: app.train(**body, actor=actor, progress=progress)


class ScoreJobHandler(JobHandler):
    route = "/api/v1/jobs/score"
    action = "download"  # into a file; into the database needs "train", checked with the body
    body = fields.SCORE_JOB

    def title(self, body: dict) -> str:
        return "Scoring stored transactions" + (" into a file" if body["file"] else "")

    def check(self, body: dict) -> None:
        if not body["file"]:
            self.svc.app.allow(self.actor, "train")  # scoring into the database rewrites decisions

    def work(self, body: dict, file: Path | None):
        app, actor = self.svc.app, self.actor

        def run(progress) -> dict:
            result = app.score_stored(body["start"], body["end"], out=file, actor=actor, progress=progress)
            return {k: v for k, v in result.items() if k != "out"}  # the server's own path means nothing to a caller
        return run


class ExportJobHandler(JobHandler):
    route = "/api/v1/jobs/export"
    action = "download"
    body = fields.EXPORT_JOB

    def title(self, body: dict) -> str:
        return f"Exporting {body['status']} cases"

    def work(self, body: dict, file: Path | None):
        app = self.svc.app

        def run(progress) -> dict:
            rows = app.export_cases(file, status=body["status"], start=body["start"], end=body["end"])
            progress(1.0, f"{rows:,} cases exported")
            return {"rows": rows}
        return run


class ImportJobHandler(JobHandler):
    route = "/api/v1/jobs/import"
    action = "import"
    cli_only = True  # the server reads a file from its own disk: only for whoever may run fraud-app there
    body = fields.IMPORT_JOB

    def title(self, body: dict) -> str:
        return f"Importing {Path(body['path']).name}"

    def suffix(self, body: dict) -> str | None:
        return ".csv" if body["rejects"] else None

    def work(self, body: dict, file: Path | None):
        app, actor = self.svc.app, self.actor

        def run(progress) -> dict:
            # As `fraud-app import` does: the rows are loaded and become live history; scoring is its own command.
            report = app.import_file(Path(body["path"]), body["map"], skip_invalid=body["skip_invalid"],
                                     rejects_path=file, score=False, actor=actor, progress=progress)
            return {"source": report.source, "rows_read": report.rows_read, "imported": report.imported,
                    "rejected": report.rejected, "where": report.where, "import_id": report.import_id,
                    "sample": [{"line": r.line, "field": r.field, "reason": r.reason, "value": r.value}
                               for r in report.sample]}
        return run


class BackupJobHandler(JobHandler):
    route = "/api/v1/jobs/backup"
    action = "backup"
    body = fields.BACKUP_JOB

    def title(self, body: dict) -> str:
        return "Backing up"

    def check(self, body: dict) -> None:
        if body["out"] and not self.from_cli:  # the server would write where the caller says, on its own disk
            raise ApiError(403, "forbidden", "out: only the command line's secret may choose where the server "
                           "writes a backup; without out, it goes to the server's backup folder", "out")

    def work(self, body: dict, file: Path | None):
        app, actor = self.svc.app, self.actor

        def run(progress) -> dict:
            from .backup import read_manifest

            folder = app.backup(actor, dest=Path(body["out"]) if body["out"] else None, progress=progress)
            manifest = read_manifest(folder) or {}
            return {"folder": str(folder), "transactions": manifest.get("rows", {}).get("transactions", 0),
                    "model_files": len(manifest.get("models", [])),
                    "bytes": sum(f["bytes"] for f in manifest.get("files", {}).values()),
                    "missing_models": manifest.get("missing_models", [])}
        return run


def _job_id(handler: RequestHandler, required: bool) -> str | None:
    value = handler.get_query_argument("id", None)
    if value is None and not required:
        return None
    if value is None or not re.fullmatch(fields.JOB_ID, value):
        raise ApiError(422, "invalid", "must be a job's id: 16 characters 0-9 and a-f", "id")
    return value


class CurrentJobHandler(ApiHandler):
    route = "/api/v1/job"

    def get(self) -> None:
        job_id, jobs = _job_id(self, required=False), self.svc.app.jobs
        job = jobs.current if job_id is None else jobs.find(job_id)
        self.send({"job": job.describe() if job else None})


class JobFileHandler(ApiHandler):
    route = "/api/v1/job/file"
    action = "download"

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")

    async def get(self) -> None:
        job_id = _job_id(self, required=True)
        job: Job | None = self.svc.app.jobs.find(job_id)
        if job is None or not job.describe()["file"]:
            why = ("the server no longer knows it" if job is None else "it is still running" if job.running
                   else "it failed" if job.error else "it was fetched already, or wrote none")
            raise ApiError(409, "no_file", f"job {job_id} has no file to fetch: {why}", "id")
        if job.actor != name_of(self.actor):
            raise ApiError(403, "forbidden", f"job {job_id} was started by {job.actor}; only they may fetch its file")
        path, job.file = job.file, None  # fetched once; the folder goes once it is sent
        try:
            self.set_header("Content-Type", "application/vnd.apache.parquet" if path.suffix == ".parquet"
                            else "text/csv; charset=utf-8")
            self.set_header("Content-Length", str(path.stat().st_size))
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    self.write(chunk)
                    await self.flush()
            self.finish()
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)


HANDLERS = (ScoreHandler, LabelsHandler, HealthHandler, ModelHandler, OpenApiHandler, MetricsHandler,
            StatusHandler, TrainJobHandler, ScoreJobHandler, ExportJobHandler, ImportJobHandler, BackupJobHandler,
            CurrentJobHandler, JobFileHandler)


@stream_request_body  # answered from the headers: a body sent along is never read
class UnknownRouteHandler(RequestHandler):
    """Any other path under /api/: the API's JSON error, not Tornado's HTML page."""
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def prepare(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Connection", "close")
        self.finish(json.dumps({"error": {"code": "not_found", "message": "no API route at this path; "
                                          "/api/v1/openapi.json lists them"}}))

    def data_received(self, chunk: bytes) -> None:
        pass


def routes(app: FraudApp, cli: Credentials | None = None) -> list[tuple]:
    """The API's Tornado routes, each handed the application object; with `cli`, the command line's secret
    is a way in too (docs/one-process.md). Last, the JSON 404 for any other path under /api/."""
    svc = Service(app, cli)
    return [(handler.route, handler, {"svc": svc}) for handler in HANDLERS] + [(r"/api/.*", UnknownRouteHandler)]


def __getattr__(name: str):
    # `panel serve --plugins fraud_app.api` reads ROUTES once, at server start: that is when the process's
    # application object is built, so the first request finds it ready.
    if name == "ROUTES":
        return routes(served_app())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
