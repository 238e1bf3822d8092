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
import sys
import threading
import time
from typing import Any

from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler, stream_request_body

from . import __version__, fields
from .access import Actor, Forbidden
from .application import FraudApp, Unauthorized, served_app
from .guard import Throttle, bearer_token, is_json_media_type, origin_allowed, parse_json, retry_after
from .importer import FieldError, parse_record
from .live import ConflictError, NoModelError
from .store import StoreError, limits, models, queries

log = logging.getLogger(__name__)
MAX_BATCH = limits.MAX_BATCH
AUTH_FAILURES = 10  # wrong tokens from one client within settings.auth_window before it is rate limited


class Service:
    """What every handler shares: the application object, its settings, the per-client rate limit and the
    count of wrong tokens per client."""

    def __init__(self, app: FraudApp):
        self.app, self.settings = app, app.settings
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
        if app.api_open:
            self.actor = f"api:{client}"
        else:
            try:
                self.actor = app.token_actor(bearer_token(headers.get("Authorization")))
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
            if error.status_code == 409:
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

    def get(self) -> None:
        try:
            n = queries.transaction_count(self.svc.app.store)
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


HANDLERS = (ScoreHandler, LabelsHandler, HealthHandler, ModelHandler, OpenApiHandler, MetricsHandler)


def routes(app: FraudApp) -> list[tuple]:
    """The API's Tornado routes, each handed the application object."""
    svc = Service(app)
    return [(handler.route, handler, {"svc": svc}) for handler in HANDLERS]


def __getattr__(name: str):
    # `panel serve --plugins fraud_app.api` reads ROUTES once, at server start: that is when the process's
    # application object is built, so the first request finds it ready.
    if name == "ROUTES":
        return routes(served_app())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
