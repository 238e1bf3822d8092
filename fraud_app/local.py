"""The command line beside a running server (docs/one-process.md).

While a server holds the database, DuckDB's lock keeps every other process out. So the server writes
`<database>.server.json` beside the database, readable by its owner only: its loopback URL and a secret made
at each start. A command on the same host that finds the file, and a server there that accepts the secret
and names the same instance, sends its work to that server, acting as the OS user who runs it.

This module is the light part both sides share: the file, the secret, and an HTTP client that goes straight
to loopback. It imports nothing heavy, so a command through the server starts quickly.
"""
from __future__ import annotations

import hmac
import http.client
import ipaddress
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

# Straight to loopback: an HTTP proxy set for the internet (common in offices) would not reach our port.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
USER_HEADER = "X-Fraud-App-User"  # the OS user a command-line request acts as; trusted only with the secret
ANSWER_TIMEOUT = 10.0  # seconds a running server may take to answer before the command gives up on it
POLL = 0.25  # seconds between looks at a job's progress
CHUNK = 1 << 20


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read: made with mode 0600 under a temporary name, then renamed into
    place, so no reader ever sees it half written or readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def credentials_path(db_path: Path) -> Path:
    """Where the server holding `db_path` says how a command on this host reaches it."""
    return db_path.with_name(db_path.name + ".server.json")


@dataclass(frozen=True)
class Credentials:
    """A server's per-start secret, and the id of this start (instance), which its status answer echoes."""

    secret: str
    instance: str

    @classmethod
    def new(cls) -> "Credentials":
        return cls("cli_" + secrets.token_urlsafe(32), secrets.token_hex(8))

    def matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.secret.encode())


def local_url(address: str, port: int, prefix: str = "") -> str:
    """The URL a command on this host uses: a server bound to every interface is reached on loopback."""
    host = address or "0.0.0.0"
    if host in ("0.0.0.0", "localhost"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:  # a host name: used as it is
        pass
    return f"http://{host}:{port}{prefix}"


@contextmanager
def published(db_path: Path, credentials: Credentials, url: str) -> Iterator[Path]:
    """The credentials file for as long as the server runs; removed when it stops."""
    path = credentials_path(db_path)
    write_private(path, json.dumps({"url": url, "secret": credentials.secret, "instance": credentials.instance,
                                    "pid": os.getpid()}))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


class ServerError(RuntimeError):
    """The running server refused or failed the work; the message is its own, for one `error:` line."""


class Running:
    """The server holding a database, as a command reaches it: with its secret, as the OS user `user`."""

    def __init__(self, url: str, secret: str, user: str, pid: int | None = None):
        self.url, self.pid = url.rstrip("/"), pid
        self._headers = {"Authorization": f"Bearer {secret}", USER_HEADER: urllib.parse.quote(user, safe="")}

    def _open(self, method: str, path: str, body: Any = None, timeout: float = ANSWER_TIMEOUT):
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers, **({"Content-Type": "application/json"} if data is not None else {}))
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            return DIRECT.open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise ServerError(_message(exc)) from None
        except OSError as exc:
            raise ServerError(f"lost the running server at {self.url}: {getattr(exc, 'reason', exc)}") from None

    def call(self, method: str, path: str, body: Any = None) -> dict:
        try:
            with self._open(method, path, body) as reply:
                return json.loads(reply.read())
        except (OSError, http.client.HTTPException) as exc:  # the server stopped while answering
            raise ServerError(f"lost the running server at {self.url}: {exc}") from None

    def status(self) -> dict:
        return self.call("GET", "/api/v1/status")

    def run(self, kind: str, body: dict, progress: Callable[[float, str], None] | None = None) -> dict:
        """Start a job (train, import, score, export) and follow it to its end. Returns the job; raises
        ServerError with the job's own error when it failed."""
        job = self.call("POST", f"/api/v1/jobs/{kind}", body)
        while True:
            if progress is not None:
                progress(job["fraction"], job["message"])
            if not job["running"]:
                break
            time.sleep(POLL)
            job = self.call("GET", f"/api/v1/job?id={job['id']}")["job"]
            if job is None:
                raise ServerError(f"the running server at {self.url} no longer knows the {kind} job it started")
        if job["error"] is not None:
            raise ServerError(job["error"])
        return job

    def download(self, job: dict, out: Path) -> None:
        """The file a finished job wrote, into `out`: complete, or not at all."""
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name(out.name + ".part")
        try:
            with self._open("GET", f"/api/v1/job/file?id={job['id']}") as reply, open(part, "wb") as f:
                while chunk := self._read(reply):
                    f.write(chunk)
            os.replace(part, out)
        finally:
            part.unlink(missing_ok=True)

    def _read(self, reply) -> bytes:
        try:
            return reply.read(CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            raise ServerError(f"lost the running server at {self.url} while receiving a file: {exc}") from None


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read())["error"]["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return f"the running server answered {exc.code} {exc.reason}"


def find(db_path: Path, user: str) -> Running | None:
    """The server holding `db_path`, if its credentials file is there and readable, and the server it names
    answers with its secret as the same instance. None otherwise: a file left by a server that is gone, or
    by an earlier start of it, is ignored."""
    try:
        info = json.loads(credentials_path(db_path).read_text(encoding="utf-8"))
        server = Running(str(info["url"]), str(info["secret"]), user, info.get("pid"))
        answer = server.status()
    except (OSError, ValueError, KeyError, TypeError, ServerError):
        return None
    return server if answer.get("instance") == info.get("instance") else None
