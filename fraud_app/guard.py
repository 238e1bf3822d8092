"""Checks at the HTTP transport, shared by the REST API and the UI's login: strict JSON, origins, media
types, bearer tokens, per-client failure throttling and the server's connection limits."""
from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 8
# JSON strings, so brackets inside them are not taken for nesting. An unterminated string (or a lone
# backslash) runs to the end rather than failing to match: a failed match here is retried from every
# later quote, which is quadratic in the body.
_STRING = re.compile(rb'"[^"\\]*(?:\\.?[^"\\]*)*"?', re.S)


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in a UTF-8 `body`, counted without parsing it (json.loads
    recurses, so a very deep document would exhaust the stack before it could be refused)."""
    marks = np.frombuffer(_STRING.sub(b"", body), np.uint8)
    steps = ((marks == ord("[")) | (marks == ord("{"))).astype(np.int8)
    steps -= (marks == ord("]")) | (marks == ord("}"))
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r} in an object")
        seen.add(key)
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, at most MAX_JSON_DEPTH levels, no repeated key, no NaN or Infinity.
    Raises ValueError (UnicodeDecodeError included) with a message for the client."""
    text = body.decode("utf-8")  # UTF-8 only: json.loads would also take UTF-16 and UTF-32 bytes
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted")
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json`, with or without parameters such as charset."""
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def origin_allowed(origin: str | None, own: str, allowed: str | None) -> bool:
    """No Origin header (curl, scripts), the server's own scheme://host:port, or one listed in `allowed`
    (comma separated)."""
    if origin is None:
        return True
    listed = {item.strip().rstrip("/").lower() for item in (allowed or "").split(",") if item.strip()}
    return origin.strip().rstrip("/").lower() in listed | {own.lower()}


def bearer_token(header: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` (the scheme in any case), or None for any other header."""
    scheme, _, given = (header or "").partition(" ")
    return (given.lstrip(" ") or None) if scheme.lower() == "bearer" else None


def server_limits(settings) -> dict:
    """Tornado HTTPServer arguments: idle and slow connections are closed, bodies are capped. Behind a proxy
    (settings.behind_proxy), the client's address and scheme come from the proxy's X-Real-IP, X-Forwarded-For
    and X-Forwarded-Proto headers; otherwise those headers are ignored, as any client can send them."""
    return {"idle_connection_timeout": settings.idle_timeout, "body_timeout": settings.body_timeout,
            "max_body_size": settings.max_body_bytes, "xheaders": bool(settings.behind_proxy)}


class Throttle:
    """Failed attempts per client: after `limit` failures within `window` seconds, the client is refused
    until the oldest of them is `window` seconds old. Attempts refused meanwhile do not count."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            recent = self._failures.get(client)
            if recent is None:
                return 0.0
            while recent and now - recent[0] >= self.window:
                recent.popleft()
            if not recent:
                del self._failures[client]
                return 0.0
            return self.window - (now - recent[0]) if len(recent) >= self.limit else 0.0

    def fail(self, client: str) -> None:
        with self._lock:
            if len(self._failures) > 100_000:  # many addresses: forget those with old failures only
                cutoff = time.monotonic() - self.window
                self._failures = {c: q for c, q in self._failures.items() if q and q[-1] > cutoff}
            self._failures.setdefault(client, deque(maxlen=self.limit)).append(time.monotonic())


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
