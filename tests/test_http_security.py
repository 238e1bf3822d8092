"""The transport of the REST API and of the UI's sign-in, over real HTTP: bodies refused before they are
read, cross-site requests, token guessing, strict JSON, and idle or slow connections."""
import json
import re
import select
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from conftest import BIN, Server, copy_of, one_line_error, run_cli
from fraud_app.store import Store

TOKEN = "k7Qe2-long-enough-token-for-tests-0x9f3a"  # 40 characters
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
BIG = 95_000_000
MB = 1 << 20


def tx(i, **over):
    return {"transaction_id": f"sec-{i}", "timestamp": "2018-06-20T12:00:00Z", "customer_id": "C00011",
            "terminal_id": "T00100", "amount": 40.0 + i, **over}


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http")
    srv = Server(tmp, copy_of(trained, tmp), FRAUD_APP_API_TOKEN=TOKEN, FRAUD_APP_RATE_LIMIT="0",
                 FRAUD_APP_ALLOWED_ORIGINS="https://ops.example, https://desk.example:8443",
                 FRAUD_APP_IDLE_TIMEOUT="2", FRAUD_APP_BODY_TIMEOUT="2")
    srv.wait("api/v1/health")
    yield srv
    srv.stop()


def post(srv, route, body=None, headers=None, raw=None, **kwargs):
    data = raw if raw is not None else json.dumps(body)
    return requests.post(srv.url + route.lstrip("/"), data=data, headers={**AUTH, **JSON, **(headers or {})},
                         timeout=60, **kwargs)


def error_of(response, status, code=None):
    """The documented error object, and nothing else."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"] and set(body["error"]) <= {"code", "message", "field"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def proc_memory(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(value) * 1024 for key, value in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}


def status_line(sock: socket.socket) -> int | None:
    """The status of the response on `sock`, or None when the connection ended without one."""
    data = b""
    try:
        while b"\r\n" not in data:
            piece = sock.recv(4096)
            if not piece:
                break
            data += piece
    except OSError:
        pass
    found = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    return int(found.group(1)) if found else None


def upload(port: int, size: int, headers: dict, chunked: bool = False) -> tuple[int | None, int]:
    """POST a `size`-byte body from a raw socket, stopping as soon as the server answers.
    (status, body bytes sent before the answer came)."""
    head = {"Host": f"127.0.0.1:{port}", **JSON, **headers,
            **({"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(size)})}
    block = b" " * 65536
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(("POST /api/v1/score HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
                      + "\r\n").encode())
        sent = 0
        try:
            while sent < size and not select.select([sock], [], [], 0)[0]:
                piece = block[:size - sent]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked and sent == size:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed while this was still sending
            pass
        return status_line(sock), sent


def uploads(port: int, n: int, size: int, headers: dict, chunked: bool = False) -> list[tuple[int | None, int]]:
    results: list = [None] * n

    def one(i: int) -> None:
        results[i] = upload(port, size, headers, chunked)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


# -- 1. bodies: the token and the length are checked before the body is read ---------------------------

def test_refused_uploads_are_not_read_into_memory(server):
    pid = server.proc.pid
    before = proc_memory(pid)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # restart VmHWM (the peak) from the current size
    unauthenticated = uploads(server.port, 10, BIG, {})
    wrong_token = uploads(server.port, 3, BIG, {"Authorization": "Bearer wrong"})
    too_large = uploads(server.port, 5, BIG, AUTH)
    chunked_too_large = uploads(server.port, 5, BIG, AUTH, chunked=True)
    cost = proc_memory(pid)["VmHWM"] - before["VmRSS"]
    assert cost < 50 * MB, f"the server grew by {cost / MB:.0f} MB (from {before['VmRSS'] / MB:.0f} MB)"
    for status, sent in unauthenticated + wrong_token:
        assert status == 401 and sent < BIG // 4, (status, sent)
    for status, sent in too_large + chunked_too_large:
        assert status == 413 and sent < BIG // 4, (status, sent)
    assert call_health(server).status_code == 200  # still serving


def call_health(srv, headers=AUTH):
    return requests.get(srv.url + "api/v1/health", headers=headers, timeout=30)


def test_oversized_bodies_get_the_error_object(server):
    error_of(post(server, "/api/v1/score", raw=b" " * 2_000_001), 413, "too_large")

    def pieces():
        for _ in range(40):
            yield b" " * 65536

    error_of(post(server, "/api/v1/score", raw=pieces()), 413, "too_large")  # chunked: no Content-Length
    error_of(post(server, "/api/v1/score", raw=b"{}", headers={"Authorization": "Bearer wrong"}), 401,
             "unauthorized")


def test_a_chunked_body_within_the_limit_is_scored(server):
    body = json.dumps(tx(1)).encode()

    def pieces():
        for start in range(0, len(body), 7):
            yield body[start:start + 7]

    response = post(server, "/api/v1/score", raw=pieces())
    assert response.status_code == 200, response.text
    assert response.json()["transaction_id"] == "sec-1"


def test_a_bad_content_length_gets_the_error_object(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"POST /api/v1/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 12abc\r\n\r\n".encode())
        data = b""
        while piece := sock.recv(65536):
            data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), data
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    assert json.loads(body[:length])["error"]["code"] == "bad_request" and body[length:] == b"", data


# -- 2. cross-site requests ---------------------------------------------------------------------------

def test_posts_need_a_json_content_type(server):
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                         "application/jsonx"):
        response = requests.post(server.url + "api/v1/score", data=json.dumps(tx(2)), timeout=30,
                                 headers={**AUTH, **({"Content-Type": content_type} if content_type else {})})
        error_of(response, 415, "unsupported_media_type")
    for content_type in ("application/json; charset=utf-8", "Application/JSON"):
        response = post(server, "/api/v1/score", tx(3), headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text


def test_other_origins_are_refused(server):
    own = f"http://127.0.0.1:{server.port}"
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{server.port + 1}", "https://ops.example.evil"):
        error_of(post(server, "/api/v1/score", tx(4), headers={"Origin": origin}), 403, "forbidden_origin")
        error_of(call_health(server, {**AUTH, "Origin": origin}), 403, "forbidden_origin")
    for origin in (own, "https://ops.example", "https://desk.example:8443"):
        assert call_health(server, {**AUTH, "Origin": origin}).status_code == 200
    assert post(server, "/api/v1/score", tx(5), headers={"Origin": own}).status_code == 200


def test_a_cross_site_page_cannot_store_or_relabel(trained, tmp_path):
    """A loopback server without a token, and what a page on another site can send it with fetch(...,
    {mode: "no-cors"}): a simple text/plain POST, with its Origin."""
    db = copy_of(trained, tmp_path)
    with Store(db) as store:
        known = store.cursor().execute("SELECT transaction_id FROM transactions ORDER BY transaction_id LIMIT 1"
                                       ).fetchone()[0]
    srv = Server(tmp_path, db)
    try:
        srv.wait("api/v1/health")
        url = srv.url + "api/v1/"
        evil = {"Origin": "http://evil.example"}
        attacks = [({"Content-Type": "text/plain"}, 415), ({"Content-Type": "text/plain", **evil}, 403),
                   ({**JSON, **evil}, 403)]
        for headers, status in attacks:
            error_of(requests.post(url + "score", data=json.dumps(tx(6)), headers=headers, timeout=30), status)
            label = {"transaction_id": known, "is_fraud": True, "source": "evil"}
            error_of(requests.post(url + "labels", data=json.dumps(label), headers=headers, timeout=30), status)
    finally:
        srv.stop()
    with Store(db) as store:
        cursor = store.cursor()
        assert cursor.execute("SELECT count(*) FROM transactions WHERE transaction_id = 'sec-6'").fetchone()[0] == 0
        assert cursor.execute("SELECT count(*) FROM labels WHERE source = 'evil'").fetchone()[0] == 0
        assert cursor.execute("SELECT count(*) FROM audit_log WHERE action = 'label'").fetchone()[0] == 0


# -- 3. guessing ----------------------------------------------------------------------------------------

def test_bearer_is_matched_in_any_case(server):
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert call_health(server, {"Authorization": f"{scheme} {TOKEN}"}).status_code == 200
    for header in (f"Bearer {TOKEN.upper()}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"Bearer{TOKEN}"):
        error_of(call_health(server, {"Authorization": header}), 401, "unauthorized")


@pytest.fixture
def guarded(trained, tmp_path):
    """The default rate limit, a UI login and a short window for failed attempts."""
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"ana": "s3cret-pass"}))
    srv = Server(tmp_path, copy_of(trained, tmp_path), FRAUD_APP_API_TOKEN=TOKEN, FRAUD_APP_UI_USERS=str(users),
                 FRAUD_APP_AUTH_WINDOW="3")
    srv.wait("api/v1/health")
    yield srv
    srv.stop()


def until(check, timeout: float = 60, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise AssertionError("not reached in time")


def test_wrong_tokens_are_rate_limited(guarded):
    with requests.Session() as http:
        responses = [http.get(guarded.url + "api/v1/health", headers={"Authorization": f"Bearer guess-{i}"},
                              timeout=30) for i in range(200)]
        statuses = [r.status_code for r in responses]
        assert statuses[0] == 401 and 429 in statuses, statuses
        limited = next(r for r in responses if r.status_code == 429)
        assert error_of(limited, 429, "rate_limited") and int(limited.headers["Retry-After"]) >= 1
        # While limited, even the right token is refused, so a lucky guess is not told apart.
        error_of(http.get(guarded.url + "api/v1/health", headers=AUTH, timeout=30), 429, "rate_limited")
        # After the window the right token works again.
        until(lambda: http.get(guarded.url + "api/v1/health", headers=AUTH, timeout=30).status_code == 200)


def sign_in(http: requests.Session, srv, password: str) -> str:
    """What the sign-in answered: "in", or the login page's error message."""
    response = http.post(srv.url + "login", data={"username": "ana", "password": password}, timeout=30,
                         allow_redirects=False)
    assert response.status_code == 302, response.text
    location = urlparse(response.headers["Location"])
    if location.path == "/login":
        return parse_qs(location.query)["error"][-1]
    assert response.cookies.get("user"), response.headers
    return "in"


def test_failed_sign_ins_are_throttled_per_client(guarded):
    with requests.Session() as http:
        assert sign_in(http, guarded, "s3cret-pass") == "in"
    with requests.Session() as http:
        for _ in range(5):
            assert "Invalid" in sign_in(http, guarded, "nope")
        started = time.monotonic()
        refused = sign_in(http, guarded, "s3cret-pass")
        assert "Too many failed sign-ins" in refused
        shown = http.get(guarded.url + "login", params={"error": refused}, timeout=30)
        assert "Too many failed sign-ins" in shown.text  # the login page's own message
        until(lambda: sign_in(http, guarded, "s3cret-pass") == "in", every=0.5)
        assert time.monotonic() - started > 1  # not at once: after the window (3 s) of the first failure
        page = http.get(guarded.url, timeout=60)
        assert page.status_code == 200 and "Sign in" not in page.text


def test_a_non_loopback_bind_needs_a_long_api_token(tmp_path):
    result = run_cli(tmp_path, "--db", str(tmp_path / "x.duckdb"), "serve", "--address", "0.0.0.0", "--no-show",
                     timeout=60, FRAUD_APP_API_TOKEN="only-twenty-chars-xx", FRAUD_APP_UI_PASSWORD="pw")
    line = one_line_error(result)
    assert "refusing to serve on 0.0.0.0" in line and "FRAUD_APP_API_TOKEN" in line and "32 characters" in line


# -- 4. JSON ------------------------------------------------------------------------------------------

def test_deep_nesting_and_repeated_keys_are_malformed_json(server):
    deep = b"[" * 100_000 + b"]" * 100_000
    error_of(post(server, "/api/v1/score", raw=deep), 400, "malformed_json")
    error_of(post(server, "/api/v1/labels", raw=b'{"a":' * 50_000 + b"1" + b"}" * 50_000), 400, "malformed_json")
    eight = {"transactions": [[[[[[[1]]]]]]]}  # 8 levels: accepted as JSON, then refused as a field
    assert error_of(post(server, "/api/v1/score", eight), 422, "invalid")["field"] == "transactions[0]"
    error_of(post(server, "/api/v1/score", {"transactions": [[[[[[[[1]]]]]]]]}), 400, "malformed_json")
    text = json.dumps(tx(7))
    twice = text[:-1] + ', "amount": 1.0}'
    message = error_of(post(server, "/api/v1/score", raw=twice), 400, "malformed_json")["message"]
    assert "amount" in message
    inner = json.dumps({"transactions": [tx(8)]})[:-3] + ', "customer_id": "C2"}]}'
    error_of(post(server, "/api/v1/score", raw=inner), 400, "malformed_json")
    error_of(post(server, "/api/v1/score", raw=json.dumps(tx(9)).encode("utf-16")), 400, "malformed_json")
    error_of(post(server, "/api/v1/score", raw=json.dumps(tx(9, amount=float("nan")))), 400, "malformed_json")
    started = time.monotonic()  # an unterminated string of escaped quotes: counted in one pass
    error_of(post(server, "/api/v1/score", raw=b'["' + b'\\"' * 900_000), 400, "malformed_json")
    assert time.monotonic() - started < 20
    # Brackets inside strings are not nesting.
    response = post(server, "/api/v1/score", tx(10, merchant_category="[[[[[[[[[[{{{{{{{{{{"))
    assert response.status_code == 200, response.text
    assert "Traceback" not in server.log.read_text()


# -- 5. idle and slow connections -----------------------------------------------------------------------

def closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes `sock` (sending nothing); fails after 30 s."""
    started = time.monotonic()
    sock.settimeout(30)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        raise AssertionError("the server kept the connection open for 30 s") from None
    assert data == b"", data
    return time.monotonic() - started


def test_half_a_request_line_is_dropped_after_the_idle_timeout(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /api/v1/hea")
        assert closed_after(sock) < 10  # idle timeout 2 s


def test_an_idle_kept_alive_connection_is_closed(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(f"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        assert status_line(sock) == 200
        started = time.monotonic()
        sock.settimeout(30)
        while sock.recv(65536):  # the rest of the response, then nothing until the server closes
            pass
        assert time.monotonic() - started < 10  # idle timeout 2 s


def test_a_slow_body_is_dropped_after_the_body_timeout(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(f"POST /api/v1/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"transaction_id\"".encode())
        assert closed_after(sock) < 10  # body timeout 2 s


# -- the same under `panel serve --plugins fraud_app.api` ------------------------------------------------

def test_the_plugin_routes_refuse_before_reading_too(trained, tmp_path):
    app = Path(__file__).resolve().parent.parent / "fraud_app" / "ui" / "app.py"
    srv = Server(tmp_path, copy_of(trained, tmp_path), argv=[
        str(BIN / "panel"), "serve", str(app), "--plugins", "fraud_app.api", "--port", "{port}",
        "--address", "127.0.0.1", "--allow-websocket-origin", "127.0.0.1:{port}"],
        FRAUD_APP_API_TOKEN=TOKEN, FRAUD_APP_BODY_TIMEOUT="2")
    try:
        srv.wait("api/v1/health")
        for status, sent in uploads(srv.port, 3, BIG, {}) + uploads(srv.port, 3, BIG, AUTH):
            assert status in (401, 413) and sent < BIG // 4, (status, sent)
        error_of(post(srv, "/api/v1/score", tx(11), headers={"Content-Type": "text/plain"}), 415)
        error_of(post(srv, "/api/v1/score", tx(11), headers={"Origin": "http://evil.example"}), 403)
        error_of(post(srv, "/api/v1/score", raw=b"[" * 100_000 + b"]" * 100_000), 400, "malformed_json")
        assert post(srv, "/api/v1/score", tx(11)).status_code == 200
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(f"POST /api/v1/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                         "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
            assert closed_after(sock) < 10
    finally:
        log = srv.stop()
    assert "Traceback" not in log
