"""The lab server's safety properties, each on its own: what it binds, whom it answers, what it sends.

Most go through FastAPI's TestClient; what only a real server shows (raw, malformed HTTP,
and Nagle's algorithm) goes to uvicorn on 127.0.0.1 over a socket with a timeout, so a
regression fails instead of hanging.
"""

from __future__ import annotations

import json
import socket
import statistics
import time

import pytest
from fastapi.testclient import TestClient

from llm_workings.lab.backprop import routes
from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import CSP, MAX_BODY, MAX_HEADERS, MAX_JSON_DEPTH, Origins, create_app, serve_in_thread

BASE = "http://127.0.0.1:8000"  # LabConfig's default address, which the Host check expects
RUNS = "/api/backprop/runs"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), base_url=BASE, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def live():
    server = serve_in_thread()
    yield server
    server.shutdown()


def refused(response, status: int, *words: str) -> dict:
    """The response is the lab's JSON error with this status, its message holding these words."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "field"} and isinstance(body["error"], str)
    for word in words:
        assert word in body["error"], body["error"]
    return body


def post_raw(client, path: str, raw: bytes, content_type: str = "application/json"):
    return client.post(path, content=raw, headers={"Content-Type": content_type})


# -- where it listens, and whom it answers --------------------------------------------


def test_binds_loopback_by_default():
    assert LabConfig().host == "127.0.0.1"
    server = serve_in_thread()
    try:
        assert server.sock.getsockname()[0] == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()


@pytest.mark.parametrize("host", ["attacker.example:8000", "127.0.0.1.nip.io:8000", "localhost:8001", "127.0.0.1", ""])
def test_a_foreign_host_header_is_refused(client, host):
    # DNS rebinding: a page on attacker.example resolves its name to 127.0.0.1 and calls us.
    response = client.get("/api/backprop/schema", headers={"Host": host})
    refused(response, 403, "Host header", "is not this server's address")


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000", "[::1]:8000"])
def test_our_own_names_are_answered(client, host):
    assert client.get("/api/backprop/schema", headers={"Host": host}).status_code == 200


def test_bound_to_every_interface_any_ip_literal_is_ours_but_no_name():
    origins = Origins.for_address("0.0.0.0", 8000)
    assert origins.host_allowed("192.168.1.20:8000") and origins.host_allowed("[fe80::1]:8000")
    assert not origins.host_allowed("evil.example:8000") and not origins.host_allowed("192.168.1.20:9000")
    assert not Origins.for_address("127.0.0.1", 8000).host_allowed("192.168.1.20:8000")


@pytest.mark.parametrize(
    "origin", ["http://attacker.example", "null", "https://127.0.0.1:8000", "http://127.0.0.1:9999", "http://localhost"]
)
def test_cross_origin_writes_are_refused(client, origin):
    for method in ("POST", "DELETE", "PUT"):
        response = client.request(method, RUNS, json={}, headers={"Origin": origin})
        refused(response, 403, "cross-origin request", "refused")


def test_same_origin_writes_and_any_read_are_answered(client):
    assert client.post(RUNS, json={}, headers={"Origin": BASE}).status_code == 201
    assert client.post(RUNS, json={}, headers={"Origin": "http://localhost:8000"}).status_code == 201
    # A cross-origin read is answered; the browser's same-origin policy keeps its body from the page.
    assert client.get("/api/backprop/schema", headers={"Origin": "http://attacker.example"}).status_code == 200


# -- what it sends ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/"),
        ("GET", "/backprop"),
        ("GET", "/api/backprop/schema"),
        ("GET", "/static/js/api.js"),
        ("GET", "/static/vendor/katex/katex.min.css"),
        ("GET", "/nowhere"),
        ("GET", "/api/nowhere"),
        ("PUT", "/api/backprop/schema"),
        ("POST", RUNS),
    ],
)
def test_every_response_carries_the_strict_policy(client, method, path):
    response = client.request(method, path, content=b"x" * (MAX_BODY + 1) if method == "POST" else None)
    assert response.headers["content-security-policy"] == CSP
    assert "default-src 'self'" in CSP and "connect-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers


def test_a_refusal_before_any_route_carries_the_policy_too(client):
    response = client.get("/", headers={"Host": "attacker.example"})
    assert response.status_code == 403 and response.headers["content-security-policy"] == CSP


def test_a_bug_in_a_route_is_a_json_500_with_the_policy():
    app = create_app()

    @app.get("/api/broken")
    def broken() -> dict:
        raise RuntimeError("a bug")

    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        body = refused(c.get("/api/broken"), 500, "RuntimeError", "server's log")
        assert "a bug" not in body["error"]  # the log has the details; the page gets no traceback
        assert c.get("/api/broken").headers["content-security-policy"] == CSP


def test_only_vendored_files_are_cached(client):
    assert client.get("/static/vendor/katex/katex.min.js").headers["cache-control"] == "max-age=3600"
    for path in ("/", "/backprop", "/static/js/backprop.js", "/api/backprop/schema"):
        assert client.get(path).headers["cache-control"] == "no-store", path


def test_pages_and_static_files_have_their_types(client):
    for path in ("/", "/backprop", "/tokens"):
        response = client.get(path)
        assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8", path
    assert client.get("/static/js/api.js").headers["content-type"] == "text/javascript; charset=utf-8"
    assert client.head("/backprop").status_code == 200


def test_no_api_docs_pages_that_would_load_a_cdn(client):
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        refused(client.get(path), 404, "no page")


@pytest.mark.parametrize("path", ["/static/%2e%2e/server.py", "/static/..%2fserver.py", "/static/js/../../server.py"])
def test_static_files_stay_in_their_folder(client, path):
    refused(client.get(path), 404)


def test_unknown_paths_and_methods_get_json(client):
    refused(client.get("/api/backprop/nothing"), 404, "no API endpoint /api/backprop/nothing")
    refused(client.get("/nothing"), 404, "no page /nothing")
    refused(client.put("/api/backprop/schema"), 405, "PUT is not allowed on /api/backprop/schema; use GET")
    refused(client.request("PATCH", "/backprop"), 405, "PATCH is not allowed")
    refused(client.request("PROPFIND", RUNS), 405, "use POST")


# -- bounded input ---------------------------------------------------------------------------


def test_a_declared_body_over_the_limit_is_refused_unread(client):
    refused(post_raw(client, RUNS, b" " * (MAX_BODY + 1)), 413, f"the limit is {MAX_BODY}")


def test_a_streamed_body_over_the_limit_is_refused(client):
    chunks = (b" " * 4096 for _ in range(MAX_BODY // 4096 + 2))  # chunked: no Content-Length to refuse up front
    response = client.post(RUNS, content=chunks, headers={"Content-Type": "application/json"})
    refused(response, 413, "limit")


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), ["nested", f"the limit is {MAX_JSON_DEPTH}"]),
        (b'{"settings": ' * 2000 + b"{}" + b"}" * 2000, ["nested"]),
        (b'{"settings": {"noise": NaN}}', ["NaN", "finite number"]),
        (b'{"settings": {"noise": Infinity}}', ["Infinity"]),
        (b'{"settings": {"noise": -Infinity}}', ["Infinity"]),
        (b'{"step": 1e999}', ["1e999", "too large"]),
        (b'{"step": ' + b"9" * 5000 + b"}", ["number"]),
        (b'{"step": "\xff"}', ["not valid UTF-8"]),
        (b"{not json", ["not valid JSON"]),
        (b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', ["unknown field 'a'"]),
        (b"[]", ["request body must be a JSON object; got a list"]),
        (b'"text"', ["request body must be a JSON object; got a string"]),
        (b"null", ["request body must be a JSON object; got null"]),
    ],
)
def test_malformed_bodies_are_named(client, raw, words):
    refused(post_raw(client, RUNS, raw), 400, *words)


def test_a_body_must_say_it_is_json(client):
    refused(post_raw(client, RUNS, b"{}", "text/plain"), 415, "Content-Type: application/json", "text/plain")
    refused(post_raw(client, RUNS, b"{}", ""), 415, "none")


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"step": -1}, "step", ["between 0 and 20000", "-1"]),
        ({"step": 10**30}, "step", ["between 0 and 20000"]),
        ({"step": True}, "step", ["must be an integer"]),
        ({"example": 10**6}, "example", ["between 0 and 256"]),
        ({"changes": [[1, "learning_rate", 0.1]] * 1001}, "changes", ["at most 1000 entries"]),
        ({"settings": {"samples": 10**9}}, "samples", ["samples must be between 4 and 2000"]),
        ({"settings": {"hidden": [16] * 7}}, "hidden", ["at most 6 entries"]),
        ({"settings": {"noise": 1e308}}, "noise", ["noise must be between 0 and 0.5"]),
        ({"settings": {"seed": 2**31}}, "seed", ["seed must be between"]),
        ({"settings": {"dataset": "x" * 10_000}}, "dataset", ["dataset must be one of", "..."]),
        ({"history": 1}, "history", ["history must be true or false"]),
    ],
)
def test_every_count_and_size_is_bounded(client, body, field, words):
    error = refused(client.post(RUNS, json=body), 400, *words)
    assert error["field"] == field
    assert len(error["error"]) < 400  # an error names the value; it never echoes a whole body


def test_a_step_request_is_bounded_in_work(client):
    run = client.post(RUNS, json={}).json()
    error = refused(client.post(f"{RUNS}/{run['run_id']}/step", json={"steps": 1001}), 400, "between 1 and 1000")
    assert error["field"] == "steps"


def test_the_runs_kept_are_bounded(client, monkeypatch):
    monkeypatch.setattr(routes.RUNS, "capacity", 3)
    ids = [client.post(RUNS, json={"history": False}).json()["run_id"] for _ in range(5)]
    assert [client.get(f"{RUNS}/{i}/data").status_code for i in ids] == [404, 404, 200, 200, 200]


def test_an_empty_body_means_the_defaults(client):
    created = client.post(RUNS)
    assert created.status_code == 201 and created.json()["settings"]["dataset"] == "xor"
    stepped = client.post(f"{RUNS}/{created.json()['run_id']}/step")
    assert stepped.status_code == 200 and stepped.json()["step"] == 1


# -- a real server, over raw sockets -------------------------------------------------------------


def exchange(server, request: bytes, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """Send raw bytes, read until the server closes or a whole response is in; (status, headers, body)."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split()[1]), headers, body


def raw_request(method: str, path: str, port: int, body: bytes = b"", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{extra}"
    if body and "Content-Length" not in extra:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def json_error(status: int, headers: dict, body: bytes, expected: int) -> str:
    assert status == expected, body
    assert headers["content-type"] == "application/json"
    assert headers["content-security-policy"] == CSP
    return json.loads(body)["error"]


@pytest.mark.parametrize("length", ["-1", "-100", "12abc", "1e3", "0x10", "1, 2"])
def test_a_bad_content_length_is_answered_not_hung(live, length):
    status, headers, body = exchange(live, raw_request("POST", RUNS, live.port, b"{}", f"Content-Length: {length}\r\n"))
    assert "malformed HTTP request" in json_error(status, headers, body, 400)


@pytest.mark.parametrize("size", [MAX_HEADERS + 1, 100_000, 1_000_000])
def test_huge_headers_are_refused(live, size):
    status, headers, body = exchange(live, raw_request("GET", "/", live.port, extra=f"X-Big: {'a' * size}\r\n"))
    assert status in (400, 431)
    json_error(status, headers, body, status)


def test_many_headers_are_refused(live):
    extra = "".join(f"X-{i}: 1\r\n" for i in range(MAX_HEADERS // 6))
    status, headers, body = exchange(live, raw_request("GET", "/", live.port, extra=extra))
    assert "headers" in json_error(status, headers, body, 431)


@pytest.mark.parametrize(
    "request_line, expected",
    [(b"HELLO\r\n\r\n", 400), (b"\x16\x03\x01\x00\xa5\x01\r\n\r\n", 400), (b"GET / HTTP/9.9\r\n\r\n", 403)],
)
def test_garbage_is_answered(live, request_line, expected):
    status, headers, body = exchange(live, request_line)
    json_error(status, headers, body, expected)


def test_deep_nesting_and_put_get_json_errors_over_the_wire(live):
    nested = b"[" * 100_000 + b"]" * 100_000  # dropped the connection under http.server
    status, headers, body = exchange(live, raw_request("POST", RUNS, live.port, nested[: MAX_BODY - 1]))
    assert "nested" in json_error(status, headers, body, 400)
    status, headers, body = exchange(live, raw_request("PUT", RUNS, live.port, b"{}"))  # 501 HTML under http.server
    assert "PUT is not allowed" in json_error(status, headers, body, 405)


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/%2e%2e/server.py", "/static/../../../../etc/passwd"])
def test_path_traversal_over_the_wire(live, path):
    status, headers, body = exchange(live, raw_request("GET", path, live.port))
    json_error(status, headers, body, 404)


def test_keep_alive_answers_are_not_held_by_nagle(live):
    # With Nagle's algorithm on, each body waits out the client's delayed ACK: ~40 ms a request.
    with socket.create_connection((live.host, live.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(15):
            start = time.perf_counter()
            sock.sendall(raw_request("GET", "/api/nowhere", live.port))
            data = b""
            while not (b"\r\n\r\n" in data and data.endswith(b"}")):
                data += sock.recv(65536)
            times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.025, times
