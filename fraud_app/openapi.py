"""The OpenAPI 3 description of the REST API; tests check it against the handlers."""
from __future__ import annotations

from .store import limits

# No NUL character; JSON Schema cannot say "no unpaired surrogate", so the descriptions do.
_STORABLE = "valid Unicode text, without NUL characters"
_TEXT = {"type": "string", "minLength": 1, "maxLength": limits.MAX_TEXT_LENGTH, "pattern": "^[^\\u0000]*$",
         "description": _STORABLE}
_ID = {"oneOf": [{**_TEXT, "maxLength": limits.MAX_ID_LENGTH,
                  "description": f"{_STORABLE}; surrounding spaces are dropped"}, {"type": "integer"}]}
TRANSACTION = {
    "type": "object",
    "required": ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount"],
    "properties": {
        "transaction_id": _ID, "customer_id": _ID, "terminal_id": _ID,
        "timestamp": {"type": "string", "format": "date-time",
                      "description": f"ISO 8601, from {limits.TIMESTAMP_RANGE}; naive means UTC"},
        "amount": {"type": "number", "minimum": limits.MIN_AMOUNT, "maximum": limits.MAX_AMOUNT,
                   "exclusiveMaximum": True},
        "currency": {"type": "string", "pattern": f"^[A-Za-z]{{{limits.CURRENCY_LETTERS}}}$"},
        "merchant_category": {**_TEXT, "minLength": 0},
        "channel": {"type": "string", "enum": list(limits.CHANNELS)},
        "country": {"type": "string", "pattern": f"^[A-Za-z]{{{limits.COUNTRY_LETTERS}}}$"},
    },
}
REASON = {"type": "object", "properties": {
    "feature": {"type": "string"}, "value": {"description": "the feature's value; null when undefined"},
    "contribution": {"type": "number"},
    "text": {"type": "string"}}}
RESULT = {"type": "object", "required": ["transaction_id", "fraud_probability", "risk_score", "risk_level", "decision",
                                         "reasons", "model_version", "scored_at"], "properties": {
    "transaction_id": {"type": "string"}, "fraud_probability": {"type": "number", "minimum": 0, "maximum": 1},
    "risk_score": {"type": "integer", "minimum": 0, "maximum": 99},
    "risk_level": {"type": "string", "enum": ["low", "medium", "high"]},
    "decision": {"type": "string", "enum": ["approve", "review", "decline"]},
    "reasons": {"type": "array", "items": REASON, "maxItems": 3},
    "model_version": {"type": "string"}, "scored_at": {"type": "string", "format": "date-time"}}}
ERROR = {"type": "object", "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
    "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {400: "malformed JSON", 401: "no or wrong bearer token", 413: "body too large",
            422: "a field is invalid; `field` names it", 429: "rate limited", 503: "no model yet, or no database"}
    return {str(c): {"description": text[c], **_json({"$ref": "#/components/schemas/Error"})} for c in codes}


def document(version: str) -> dict:
    secured = {"401": _errors(401)["401"], "429": _errors(429)["429"]}
    return {
        "openapi": "3.0.3",
        "info": {"title": "fraud_app", "version": version,
                 "description": "Real-time fraud scoring, labels, health and metrics (see docs/rest-api.md)."},
        "components": {
            "schemas": {"Transaction": TRANSACTION, "Result": RESULT, "Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/score": {"post": {
                "summary": f"Score one transaction, or up to {limits.MAX_BATCH:,}, storing each before replying",
                "requestBody": {"required": True, **_json({"oneOf": [
                    {"$ref": "#/components/schemas/Transaction"},
                    {"type": "object", "required": ["transactions"], "properties": {"transactions": {
                        "type": "array", "minItems": 1, "maxItems": limits.MAX_BATCH,
                        "items": {"$ref": "#/components/schemas/Transaction"}}}}]})},
                "responses": {"200": {"description": "the result, or {results: [...]} for a batch", **_json(
                    {"oneOf": [{"$ref": "#/components/schemas/Result"}, {"type": "object", "required": ["results"], "properties": {
                        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}}}}]})},
                    **_errors(400, 413, 422, 503), **secured}}},
            "/api/v1/labels": {"post": {
                "summary": "Record a label (chargeback, analyst decision), with an audit entry",
                "requestBody": {"required": True, **_json({"type": "object", "required": ["transaction_id", "is_fraud"],
                                                            "properties": {"transaction_id": _ID,
                                                                           "is_fraud": {"type": "boolean"},
                                                                           "source": _TEXT}})},
                "responses": {"200": {"description": "recorded", **_json({"type": "object"})},
                              **_errors(400, 413, 422), **secured}}},
            "/api/v1/health": {"get": {"summary": "Liveness, model in use and row count", "responses": {
                "200": {"description": "ok", **_json({"type": "object"})},
                "503": {"description": "degraded", **_json({"type": "object"})}, **secured}}},
            "/api/v1/model": {"get": {"summary": "The model in use", "responses": {
                "200": {"description": "version, window, features, thresholds, metrics", **_json({"type": "object"})},
                **_errors(503), **secured}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3", **_json({"type": "object"})}, **secured}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
                **secured}}},
        },
    }
