"""The OpenAPI 3 description of the REST API (docs/rest-api.md). The request bodies are the declarations in
fields.py, the same ones the server checks bodies with; tests run an API fuzzer against it."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST

from . import fields
from .access import SCOPES
from .store import limits

JSON = "application/json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


REASON = {"type": "object", "required": ["feature", "value", "contribution", "text"], "additionalProperties": False,
          "properties": {
              "feature": {"type": "string"},
              "value": {"type": "number", "nullable": True, "description": "the feature's value; null when undefined"},
              "contribution": {"type": "number", "description": "its TreeSHAP contribution, in log-odds"},
              "text": {"type": "string", "description": "the reason in words"}}}
RESULT = {"type": "object", "additionalProperties": False,
          "required": ["transaction_id", "fraud_probability", "risk_score", "risk_level", "decision", "reasons",
                       "model_version", "scored_at"],
          "properties": {
              "transaction_id": {"type": "string"},
              "fraud_probability": {"type": "number", "minimum": 0, "maximum": 1},
              "risk_score": {"type": "integer", "minimum": 0, "maximum": 99},
              "risk_level": {"type": "string", "enum": ["low", "medium", "high"]},
              "decision": {"type": "string", "enum": ["approve", "review", "decline"]},
              "reasons": {"type": "array", "items": _ref("Reason"), "maxItems": 3},
              "model_version": {"type": "string"},
              "scored_at": {"type": "string", "format": "date-time", "description": "when it was scored, UTC"}}}
RESULTS = {"type": "object", "required": ["results"], "additionalProperties": False, "properties": {
    "results": {"type": "array", "minItems": 1, "maxItems": limits.MAX_BATCH, "items": _ref("Result"),
                "description": "one result per transaction, in the order posted"}}}
LABELLED = {"type": "object", "required": ["transaction_id", "is_fraud", "source", "recorded"],
            "additionalProperties": False, "properties": {
                "transaction_id": {"type": "string"}, "is_fraud": {"type": "boolean"}, "source": {"type": "string"},
                "recorded": {"type": "boolean", "enum": [True]}}}
HEALTH = {"type": "object", "required": ["status", "model_version"], "additionalProperties": False, "properties": {
    "status": {"type": "string", "enum": ["ok", "degraded"]},
    "model_version": {"type": "string", "nullable": True, "description": "null while no model is in use"},
    "transactions": {"type": "integer", "minimum": 0, "description": "absent when the database cannot be read"},
    "version": {"type": "string", "description": "fraud_app's own version"},
    "error": {"type": "string", "description": "why the database cannot be read"}}}
MODEL = {"type": "object", "additionalProperties": False,
         "required": ["version", "trained_at", "promoted_at", "training_window", "features", "thresholds", "metrics",
                      "params"],
         "properties": {
             "version": {"type": "string"}, "trained_at": {"type": "string"},
             "promoted_at": {"type": "string", "nullable": True},
             "training_window": {"type": "object", "required": ["start", "end"], "properties": {
                 "start": {"type": "string", "format": "date"}, "end": {"type": "string", "format": "date"}}},
             "features": {"type": "array", "items": {"type": "string"}},
             "thresholds": {"type": "object", "required": ["review", "decline"], "properties": {
                 "review": {"type": "number"}, "decline": {"type": "number"}}},
             "metrics": {"type": "object", "description": "what `fraud-app train` printed for this version"},
             "params": {"type": "object"}}}
JOB = {"type": "object", "additionalProperties": False,
       "required": ["id", "title", "actor", "running", "fraction", "message", "error", "seconds", "file", "result"],
       "properties": {
           "id": {"type": "string", "pattern": fields.JOB_ID},
           "title": {"type": "string"}, "actor": {"type": "string", "description": "who started it"},
           "running": {"type": "boolean"}, "fraction": {"type": "number", "minimum": 0, "maximum": 1},
           "message": {"type": "string", "description": "what it is doing, or did last"},
           "error": {"type": "string", "nullable": True, "description": "why it failed; null unless it did"},
           "seconds": {"type": "number", "minimum": 0, "description": "how long it ran, or has run so far"},
           "file": {"type": "boolean", "description": "a file awaits its starter at GET /api/v1/job/file"},
           "result": {"type": "object", "nullable": True, "description": (
               "what the work returned, once done: for train, what `fraud-app train` prints; for score, "
               "model_version, scored, flagged and seconds; for export, rows; for import, rows_read, imported, "
               "rejected and a sample of the rejected rows; for backup, folder, transactions, model_files, bytes and "
               "missing_models. Null for jobs that return no object")}}}
STATUS = {"type": "object", "additionalProperties": False,
          "required": ["database", "transactions", "model_version", "job", "process", "uptime_seconds", "version",
                       "instance"],
          "properties": {
              "database": {"type": "string", "description": "the database file, as the server names it"},
              "transactions": {"type": "integer", "minimum": 0},
              "model_version": {"type": "string", "nullable": True, "description": "null while no model is in use"},
              "job": {**JOB, "nullable": True, "description": "the running job, or the last one; null before any"},
              "process": {"type": "integer", "description": "the server's process id"},
              "uptime_seconds": {"type": "number", "minimum": 0},
              "version": {"type": "string", "description": "fraud_app's own version"},
              "instance": {"type": "string", "nullable": True, "description": (
                  "this start of the server, as its credentials file for the command line names it; null when it "
                  "wrote none (under `panel serve`)")}}}
JOB_ANSWER = {"type": "object", "required": ["job"], "additionalProperties": False, "properties": {
    "job": {**JOB, "nullable": True, "description": "null when the server knows no such job"}}}
CLI_SECRET = ("the secret `fraud-app serve` (and the desktop app) writes at each start to `<database>.server.json`, "
              "readable by the server's OS user only, for the command line on the same host; a request with it names "
              f"the OS user it acts for in the `X-Fraud-App-User` header (percent-encoded UTF-8, 1 to "
              f"{limits.MAX_ID_LENGTH} characters), who may do everything")

# Every error code, the status it comes with, and when.
ERRORS = {
    "bad_request": (400, "the request cannot be read (e.g. a Content-Length that is not a number)"),
    "malformed_json": (400, "the body is not JSON, not UTF-8, nested deeper than 8 levels, or repeats a key"),
    "unauthorized": (401, "no bearer token, or a wrong or revoked one"),
    "forbidden": (403, "the token's scopes do not allow this operation (the message names the token, what it may "
                       "not do and the scope that would allow it); a token on a route that takes only the command "
                       "line's secret; or a job's file asked for by someone other than who started the job"),
    "forbidden_origin": (403, "an Origin header that is neither the server's own nor in FRAUD_APP_ALLOWED_ORIGINS"),
    "unknown_transaction": (404, "no stored transaction has this transaction_id"),
    "conflict": (409, "the transaction_id is stored with other content, or repeated in the batch; `stored` is the "
                      "stored result (null when it was never scored, or for a repeat in the batch)"),
    "busy": (409, "another job is running (one at a time per server); the message names it and who started it"),
    "no_file": (409, "the job has no file to fetch: unknown to the server, still running, failed, or fetched already"),
    "too_large": (413, "the declared or streamed body is over FRAUD_APP_MAX_BODY_BYTES (default 2,000,000)"),
    "unsupported_media_type": (415, "a POST without Content-Type: application/json"),
    "invalid": (422, "a field is invalid; `field` names it (transactions[i].name in a batch)"),
    "rate_limited": (429, "over the per-client rate (FRAUD_APP_RATE_LIMIT), or too many wrong tokens"),
    "internal": (500, "a bug; the server log has the details"),
    "no_model": (503, "no model is in use yet"),
    "unavailable": (503, "the database cannot be used"),
}
# The codes each route can answer with, besides its success.
EVERY_ROUTE = ("bad_request", "unauthorized", "forbidden_origin", "too_large", "rate_limited", "internal")
POSTED = ("malformed_json", "unsupported_media_type", "invalid")


def _scoped(action: str) -> tuple[tuple[str, ...], str]:
    """The error code an operation doing `action` adds (`forbidden`, when some scope does not allow it), and
    the sentence saying which scopes do."""
    allowing = [scope for scope, actions in SCOPES.items() if action in actions]
    if len(allowing) == len(SCOPES):
        return (), "Any valid token may call it when tokens are in use."
    scopes = " or ".join(f"`{scope}`" for scope in allowing)
    return ("forbidden",), f"Needs a token with the {scopes} scope when tokens are in use."


def _error_schema(codes: list[str], stored: bool) -> dict:
    error = {"type": "object", "required": ["code", "message"], "additionalProperties": False, "properties": {
        "code": {"type": "string", "enum": codes}, "message": {"type": "string"},
        "field": {"type": "string", "description": "the field at fault, when one is"}}}
    if stored:
        error["required"].append("stored")
        error["properties"]["stored"] = {**RESULT, "nullable": True}
    return {"type": "object", "required": ["error"], "additionalProperties": False, "properties": {"error": error}}


def _errors(codes: tuple[str, ...]) -> dict:
    by_status: dict[int, list[str]] = {}
    for name in codes:
        by_status.setdefault(ERRORS[name][0], []).append(name)
    out = {}
    for status, names in sorted(by_status.items()):
        response = {"description": "; ".join(f"`{n}`: {ERRORS[n][1]}" for n in names),
                    "content": {JSON: {"schema": _error_schema(names, stored="conflict" in names)}}}
        if status == 429:
            response["headers"] = {"Retry-After": {"required": True, "description": "seconds to wait",
                                                   "schema": {"type": "integer", "minimum": 1}}}
        out[str(status)] = response
    return out


def _job_id(required: bool) -> dict:
    return {"name": "id", "in": "query", "required": required, "description": "the job's id, as its start answered",
            "schema": {"type": "string", "pattern": fields.JOB_ID}}


def _ok(description: str, schema: dict, media_type: str = JSON, **extra) -> dict:
    return {"200": {"description": description, "content": {media_type: {"schema": schema}}, **extra}}


def _body(schema: dict, examples: dict) -> dict:
    return {"required": True, "content": {JSON: {"schema": schema, "examples": {
        name: {"value": value} for name, value in examples.items()}}}}


EXAMPLE = {"transaction_id": "t1", "timestamp": "2018-09-01T12:00:00Z", "customer_id": "C00001",
           "terminal_id": "T00002", "amount": 312.5, "channel": "online"}


def document(version: str) -> dict:
    links = {
        "label": {"operationId": "label", "description": "label the transaction just scored (one, not a batch)",
                  "requestBody": {"transaction_id": "$response.body#/transaction_id"}},
        "retry": {"operationId": "score", "description": "post the same again: the stored result, stored once",
                  "requestBody": "$request.body", "x-schemathesis": {"merge_body": False}},
    }
    score_codes, score_needs = _scoped("score")
    label_codes, label_needs = _scoped("label")
    view_codes, view_needs = _scoped("view")
    train_codes, train_needs = _scoped("train")
    download_codes, download_needs = _scoped("download")
    backup_codes, backup_needs = _scoped("backup")
    started = {"202": {"description": "started: the job, which GET /api/v1/job?id= follows",
                       "content": {JSON: {"schema": _ref("Job")}}}}

    def cli_only(path: dict) -> dict:
        return {"post": {**path["post"], "security": [{"cli": []}]}}

    def job(operation: str, summary: str, body: str, needs: str, codes: tuple[str, ...], example: dict) -> dict:
        return {"post": {"operationId": operation, "summary": summary, "description": needs,
                         "requestBody": _body(_ref(body), {"example": example}),
                         "responses": {**started, **_errors(EVERY_ROUTE + POSTED + codes + ("busy", "unavailable"))}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "fraud_app", "version": version, "description": (
            "Real-time fraud scoring, labels, health and metrics, and the command line's work as background "
            "jobs (docs/rest-api.md). Every request needs "
            "`Authorization: Bearer <token>` when the server has FRAUD_APP_API_TOKEN set or named tokens "
            "(`fraud-app token create`); a token's scopes (`score`, `label`, `admin`) say which operations it may "
            "call, and any valid token may read. The command line's secret is a way in too, and the only one to "
            "POST /api/v1/jobs/import. A method a path does not list is answered 405 with an Allow "
            "header. Fields not described are refused (422).")},
        "components": {
            "schemas": {"Transaction": fields.object_schema(fields.TRANSACTION, batch_key=True),
                        "Batch": fields.batch_schema(_ref("Transaction")),
                        "Label": fields.object_schema(fields.LABEL),
                        "Result": RESULT, "Results": RESULTS, "Reason": REASON, "Labelled": LABELLED,
                        "Health": HEALTH, "Model": MODEL, "Status": STATUS, "Job": JOB, "JobAnswer": JOB_ANSWER,
                        "TrainJob": fields.object_schema(fields.TRAIN_JOB),
                        "ScoreJob": fields.object_schema(fields.SCORE_JOB),
                        "ExportJob": fields.object_schema(fields.EXPORT_JOB),
                        "ImportJob": fields.object_schema(fields.IMPORT_JOB),
                        "BackupJob": fields.object_schema(fields.BACKUP_JOB)},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "cli": {"type": "http", "scheme": "bearer", "description": CLI_SECRET}},
        },
        "security": [{"bearer": []}, {"cli": []}],
        "paths": {
            "/api/v1/score": {"post": {
                "operationId": "score", "description": score_needs,
                "summary": f"Score one transaction, or a batch of up to {limits.MAX_BATCH:,}, storing each before "
                           "replying; transaction_id is the idempotency key",
                "requestBody": _body({"oneOf": [_ref("Transaction"), _ref("Batch")]},
                                     {"one": EXAMPLE, "batch": {fields.BATCH_KEY: [
                                         {**EXAMPLE, "transaction_id": "t2", "amount": 12.0},
                                         {**EXAMPLE, "transaction_id": "t3", "country": "PT", "currency": "EUR"}]}}),
                "responses": {**_ok("the result, or {results: [...]} for a batch",
                                    {"oneOf": [_ref("Result"), _ref("Results")]},
                                    links=links),
                              **_errors(EVERY_ROUTE + POSTED + score_codes
                                        + ("conflict", "no_model", "unavailable"))}}},
            "/api/v1/labels": {"post": {
                "operationId": "label", "description": label_needs,
                "summary": "Record a label (chargeback, analyst decision), with an audit entry",
                "requestBody": _body(_ref("Label"), {"chargeback": {"transaction_id": "t1", "is_fraud": True,
                                                                    "source": "chargeback"}}),
                "responses": {**_ok("recorded", _ref("Labelled")),
                              **_errors(EVERY_ROUTE + POSTED + label_codes
                                        + ("unknown_transaction", "unavailable"))}}},
            "/api/v1/health": {"get": {
                "operationId": "health", "description": view_needs,
                "summary": "Liveness, the model in use and the number of transactions",
                "responses": {**_ok("ok", _ref("Health")),
                              **_errors(EVERY_ROUTE + view_codes),
                              "503": {"description": "degraded: no model in use, or the database cannot be read",
                                      "content": {JSON: {"schema": _ref("Health")}}}}}},
            "/api/v1/model": {"get": {
                "operationId": "model", "description": view_needs, "summary": "The model in use",
                "responses": {**_ok("version, window, features, thresholds, test metrics", _ref("Model")),
                              **_errors(EVERY_ROUTE + view_codes + ("no_model", "unavailable"))}}},
            "/api/v1/openapi.json": {"get": {
                "operationId": "openapi", "description": view_needs, "summary": "This document",
                "responses": {**_ok("OpenAPI 3.0", {"type": "object"}), **_errors(EVERY_ROUTE + view_codes)}}},
            "/metrics": {"get": {
                "operationId": "metrics", "description": view_needs, "summary": "Prometheus metrics (docs/metrics.md)",
                "responses": {**_ok("Prometheus text format", {"type": "string"}, CONTENT_TYPE_LATEST),
                              **_errors(EVERY_ROUTE + view_codes)}}},
            "/api/v1/status": {"get": {
                "operationId": "status", "description": view_needs, "summary": "What `fraud-app status` shows: the "
                "database, transactions, the model in use, the current job, the process, its uptime and version",
                "responses": {**_ok("the server's status", _ref("Status")),
                              **_errors(EVERY_ROUTE + view_codes + ("unavailable",))}}},
            "/api/v1/jobs/train": job(
                "train", "Train and backtest a new version, as `fraud-app train` does, as the background job",
                "TrainJob", train_needs + " With promote, the scope must allow promoting too.", train_codes,
                {"train_start": "2018-05-01", "train_end": "2018-07-31", "promote": False}),
            "/api/v1/jobs/score": job(
                "score_stored", "Score stored transactions with the model in use, as `fraud-app score` does, into "
                "the database or a file, as the background job", "ScoreJob",
                download_needs + " Into the database (no file), the scope must allow training too.",
                download_codes, {"start": "2018-08-01", "end": "2018-08-07", "file": "csv"}),
            "/api/v1/jobs/export": job(
                "export", "The cases for investigators, as `fraud-app export` writes them, into a file, as the "
                "background job", "ExportJob", download_needs, download_codes, {"status": "flagged", "file": "csv"}),
            "/api/v1/jobs/import": cli_only(job(
                "import", "Import a file from the server's disk, as `fraud-app import` does, as the background job",
                "ImportJob", "Only with the command line's secret: no API token may make the server read a file.",
                ("forbidden",), {"path": "/srv/fraud/incoming/transactions.csv", "skip_invalid": False})),
            "/api/v1/jobs/backup": job(
                "backup", "Back up the database and its model files, as `fraud-app backup` does, as the background "
                "job", "BackupJob", backup_needs + " Only the command line's secret may give `out`.", backup_codes,
                {}),
            "/api/v1/job": {"get": {
                "operationId": "job", "description": view_needs,
                "summary": "The background job with this id (without one, the running or last job)",
                "parameters": [_job_id(required=False)],
                "responses": {**_ok("the job, or null", _ref("JobAnswer")),
                              **_errors(EVERY_ROUTE + view_codes + ("invalid",))}}},
            "/api/v1/job/file": {"get": {
                "operationId": "job_file", "description": download_needs + " Only who started the job may fetch "
                "its file, once; the server deletes it then.",
                "summary": "The file a finished job wrote: scores, cases, or an import's rejected rows",
                "parameters": [_job_id(required=True)],
                "responses": {"200": {
                    "description": "the file: CSV (as the command line writes it), or Parquet when the job was asked "
                                   "for one",
                    "headers": {"Content-Length": {"schema": {"type": "integer", "minimum": 0}}},
                    "content": {"text/csv": {"schema": {"type": "string"}},
                                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}}},
                              **_errors(EVERY_ROUTE + ("forbidden", "invalid", "no_file"))}}},
        },
    }
