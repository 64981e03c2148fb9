"""The lab's web server: static pages plus a small JSON API, on the standard library alone.

Safe by default: it binds 127.0.0.1, answers only requests whose Host header names
this server (so a DNS-rebinding page cannot reach it), refuses cross-origin writes,
bounds request sizes, and tells the browser to load nothing from anywhere else.
"""

from __future__ import annotations

import ipaddress
import json
import mimetypes
import re
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import backprop
from .errors import ApiError

MAX_BODY = 64 * 1024
STATIC_ROOT = Path(str(resources.files("llm_workings.lab") / "static"))
PAGES = {"/": "index.html", "/backprop": "backprop.html"}
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

Handler = Callable[["LabRequestHandler", dict[str, str], Any], tuple[int, Any]]


class Api:
    """Routes: (method, pattern) -> function(handler, path params, json body) -> (status, payload)."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.runs = backprop.RunStore()

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[A-Za-z0-9_-]+)", pattern) + "$")

        def register(fn: Handler) -> Handler:
            self.routes.append((method, regex, fn))
            return fn

        return register

    def find(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = []
        for m, regex, fn in self.routes:
            match = regex.match(path)
            if match:
                if m == method:
                    return fn, match.groupdict()
                allowed.append(m)
        if allowed:
            raise ApiError(f"{method} is not allowed on {path}; use {' or '.join(allowed)}", status=405)
        raise ApiError(f"no API endpoint {path}", status=404)


api = Api()


def _int_field(body: dict, name: str, default: int, lo: int, hi: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ApiError(f"{name} must be an integer between {lo} and {hi}; got {value!r}", field=name)
    return value


def _body(body: Any, allowed: set[str]) -> dict:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(f"request body must be a JSON object; got {type(body).__name__}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(f"unknown field {unknown[0]!r}; expected fields from {sorted(allowed)}", field=unknown[0])
    return body


def _changes(value: Any) -> list[list]:
    """Validate a replay log: [[step, setting, value], ...] for live settings only."""
    if not isinstance(value, list):
        raise ApiError("changes must be a list of [step, setting, value] entries", field="changes")
    if len(value) > 1000:
        raise ApiError("changes may have at most 1000 entries", field="changes")
    clean = []
    for entry in value:
        if not (isinstance(entry, list) and len(entry) == 3):
            raise ApiError(f"each change must be [step, setting, value]; got {entry!r}", field="changes")
        step, name, v = entry
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= backprop.MAX_STEPS:
            raise ApiError(
                f"a change's step must be an integer between 0 and {backprop.MAX_STEPS}; got {step!r}", field="changes"
            )
        if name not in backprop.LIVE:
            raise ApiError(f"only {list(backprop.LIVE)} can change mid-run; got {name!r}", field="changes")
        clean.append([step, name, backprop.SETTINGS.by_name[name].coerce(v)])
    return clean


@api.route("GET", "/api/backprop/schema")
def get_schema(h, params, body):
    return 200, backprop.schema()


@api.route("POST", "/api/backprop/runs")
def create_run(h, params, body):
    body = _body(body, {"settings", "step", "changes", "example", "history"})
    settings = backprop.SETTINGS.validate(body.get("settings", {}))
    steps = _int_field(body, "step", 0, 0, backprop.MAX_STEPS)
    changes = _changes(body.get("changes", []))
    run = backprop.Run(settings)
    with run.lock:
        run.replay(steps, changes)
        api.runs.add(run)
        # run_settings: what the run really uses (the batch size may have been capped).
        state = run.state(_example(body), _history(body))
        return 201, {**state, "data": run.data_json(), "run_settings": run.settings}


def _history(body: dict) -> bool:
    value = body.get("history", True)
    if not isinstance(value, bool):
        raise ApiError(f"history must be true or false; got {value!r}", field="history")
    return value


def _example(body: dict) -> int:
    return _int_field(body, "example", 0, 0, backprop.SETTINGS.by_name["batch_size"].max)


def _with_run(fn: Callable[[backprop.Run, dict], None], fields: set[str]) -> Handler:
    def handle(h, params, body):
        body = _body(body, fields | {"example", "history"})
        run = api.runs.get(params["run_id"])
        with run.lock:
            fn(run, body)
            return 200, run.state(_example(body), _history(body))

    return handle


api.route("POST", "/api/backprop/runs/{run_id}/step")(
    _with_run(lambda run, b: run.advance(_int_field(b, "steps", 1, 1, backprop.MAX_STEPS_PER_REQUEST)), {"steps"})
)
api.route("POST", "/api/backprop/runs/{run_id}/back")(
    _with_run(lambda run, b: run.back(_int_field(b, "steps", 1, 1, backprop.MAX_STEPS)), {"steps"})
)


def _set_live(run: backprop.Run, body: dict) -> None:
    posted = body.get("settings", {})
    fixed = sorted(set(posted) - set(backprop.LIVE)) if isinstance(posted, dict) else []
    if fixed:
        raise ApiError(
            f"{fixed[0]!r} cannot change mid-run (only {list(backprop.LIVE)} can); start a new run instead", field=fixed[0]
        )
    run.set_live(backprop.SETTINGS.validate(posted, partial=True))


api.route("POST", "/api/backprop/runs/{run_id}/set")(_with_run(_set_live, {"settings"}))


@api.route("GET", "/api/backprop/runs/{run_id}")
def get_run(h, params, body):
    query = {k: v[-1] for k, v in parse_qs(urlsplit(h.path).query).items()}
    try:
        options = {"example": int(query.get("example", 0)), "history": query.get("history", "1") != "0"}
    except ValueError:
        raise ApiError(f"example must be an integer; got {query.get('example')!r}", field="example") from None
    return _current_state(h, params, options)


_current_state = _with_run(lambda run, body: None, set())


@api.route("GET", "/api/backprop/runs/{run_id}/data")
def get_data(h, params, body):
    return 200, api.runs.get(params["run_id"]).data_json()


@api.route("GET", "/api/backprop/runs/{run_id}/export")
def export_run(h, params, body):
    run = api.runs.get(params["run_id"])
    with run.lock:
        return 200, run.export()


@api.route("DELETE", "/api/backprop/runs/{run_id}")
def delete_run(h, params, body):
    api.runs.remove(params["run_id"])
    return 200, {"deleted": params["run_id"]}


class LabRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: play mode makes many small requests
    # Headers and body go out as two writes; with Nagle's algorithm on, the second waits
    # for the client's delayed ACK (~40 ms) on every keep-alive response.
    disable_nagle_algorithm = True
    server_version = "llm-workings-lab"
    server: LabServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    # -- safety checks -----------------------------------------------------------

    def _host_allowed(self) -> bool:
        host = (self.headers.get("Host") or "").lower()
        if host in self.server.allowed_hosts:
            return True
        # Bound to every interface, any IP literal with our port is fine: DNS rebinding needs a name.
        name, _, port = host.rpartition(":")
        return self.server.any_interface and port == str(self.server.server_address[1]) and _is_ip_literal(name)

    def _origin_allowed(self) -> bool:
        origin = self.headers.get("Origin")
        if origin is None:
            return True
        parts = urlsplit(origin)
        return parts.scheme == "http" and parts.netloc.lower() in self.server.allowed_hosts

    # -- responses ---------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, allow_nan=False).encode(), "application/json")

    def _send_error(self, status: int, message: str, field: str | None = None) -> None:
        self._send_json(status, {"error": message, "field": field})

    # -- dispatch -------------------------------------------------------------------------

    def _handle(self) -> None:
        if not self._host_allowed():
            self._send_error(
                403,
                f"Host header {self.headers.get('Host')!r} is not this server's address; the lab only answers {sorted(self.server.allowed_hosts)}",
            )
            return
        path = urlsplit(self.path).path
        try:
            if path.startswith("/api/"):
                self._api(path)
            elif self.command in ("GET", "HEAD"):
                self._static(path)
            else:
                raise ApiError(f"{self.command} is not allowed on {path}", status=405)
        except ApiError as e:
            self._send_error(e.status, str(e), e.field)

    def _api(self, path: str) -> None:
        if self.command != "GET" and not self._origin_allowed():
            raise ApiError(f"cross-origin request from {self.headers.get('Origin')!r} refused", status=403)
        fn, params = api.find(self.command, path)
        body = self._read_json() if self.command in ("POST", "PUT") else None
        status, payload = fn(self, params, body)
        self._send_json(status, payload)

    def _read_json(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError("Content-Length must be an integer") from None
        if length > MAX_BODY:
            raise ApiError(f"request body is {length} bytes; the limit is {MAX_BODY}", status=413)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(f"request body is not valid JSON: {e}") from None

    def _static(self, path: str) -> None:
        name = PAGES.get(path)
        if name is None:
            if not path.startswith("/static/"):
                raise ApiError(f"no page {path}", status=404)
            name = path[len("/static/") :]
        target = (STATIC_ROOT / name).resolve()
        if not target.is_relative_to(STATIC_ROOT.resolve()) or not target.is_file():
            raise ApiError(f"no file {path}", status=404)
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith(("javascript", "json")):
            content_type += "; charset=utf-8"
        self._send(200, target.read_bytes(), content_type, cache=path.startswith("/static/vendor/"))

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_GET
    do_POST = do_GET
    do_DELETE = do_GET


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class LabServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, verbose: bool = False):
        super().__init__((host, port), LabRequestHandler)
        self.verbose = verbose
        self.any_interface = host in ("0.0.0.0", "::")
        port = self.server_address[1]
        names = {"127.0.0.1", "localhost", "[::1]", host if ":" not in host else f"[{host}]"}
        self.allowed_hosts = {f"{n}:{port}".lower() for n in names}
        if port == 80:
            self.allowed_hosts |= {n.lower() for n in names}

    def handle_error(self, request, client_address) -> None:
        # A browser closing a keep-alive connection is routine, not an error worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{self.server_address[1]}"


def serve_in_thread(host: str = "127.0.0.1", port: int = 0) -> LabServer:
    """Start a server on a background thread (port 0 picks a free one); for tests and benchmarks."""
    server = LabServer(host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
