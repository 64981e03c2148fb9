"""The lab's web server: FastAPI on uvicorn, holding only HTTP, routing and the safety checks.

Safe by default: it binds 127.0.0.1, answers only requests whose Host header names this
server (so a DNS-rebinding page cannot reach it), refuses cross-origin writes, bounds the
body (size, JSON depth, numbers), and tells the browser to load nothing from anywhere else.
Every refusal, down to a malformed HTTP request, is a JSON `{"error", "field"}` with a 4xx.

The pages (`lab/backprop/`, `lab/tokens/`) and services (`lab/models/`, `lab/jobs/`)
bring their own routers; `create_app` includes them and serves each page's HTML.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import mimetypes
import socket
import threading
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import (
    backprop,
    features,
    finetune,
    grokking,
    heads,
    induction,
    inside,
    jobs,
    models,
    patching,
    prompts,
    residual,
    saliency,
    steering,
    tokens,
    train,
)
from .config import LabConfig
from .errors import ApiError, describe_validation_error
from .jobs.runs import remove_stale_temporaries
from .pages import Page

MAX_BODY = 64 * 1024
MAX_HEADERS = 16 * 1024  # bytes of request headers; a browser sends well under 2 KiB
MAX_JSON_DEPTH = 32  # no lab body needs more; a deeper one is refused before anything parses it
STATIC_ROOT = Path(str(resources.files("llm_workings.lab") / "static"))
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SAFETY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
PAGES: tuple[Page, ...] = (
    backprop.PAGE,
    tokens.PAGE,
    inside.PAGE,
    heads.PAGE,
    residual.PAGE,
    saliency.PAGE,
    patching.PAGE,
    induction.PAGE,
    grokking.PAGE,
    train.PAGE,
    steering.PAGE,
    features.PAGE,
    finetune.PAGE,
)
SERVICES = (models.router, jobs.router, prompts.router)
HOME = "index.html"
log = logging.getLogger("llm_workings.lab")


# -- JSON in and out -----------------------------------------------------------------


def error_body(status: int, message: str, field: str | None = None) -> tuple[int, bytes]:
    # ASCII-only JSON: a field name echoed from a body may hold a lone surrogate, which UTF-8 cannot encode.
    return status, json.dumps({"error": message, "field": field}).encode()


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None) -> Response:
    _, body = error_body(status, message, field)
    # The safety headers again: a 500 leaves through Starlette's outermost middleware, outside the Guard.
    safety = {k.decode(): v.decode() for k, v in SAFETY_HEADERS}
    return Response(body, status, headers={**safety, **(headers or {})}, media_type="application/json")


def _refuse_constant(name: str) -> Any:
    raise ApiError(f"request body holds {name}, which JSON does not allow; send a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ApiError(f"request body holds the number {text[:40]}, too large for a float")
    return value


def check_json(raw: bytes) -> None:
    """Refuse a body that is not strict, bounded JSON; the route parses it again, knowing it is safe."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(f"request body is not valid UTF-8 (byte {e.start}); send JSON text") from None
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:  # bytes outside strings decide the nesting; this is linear and never recurses
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise ApiError(f"request body is nested {deepest} deep; the limit is {MAX_JSON_DEPTH}")
    try:
        json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise ApiError(f"request body is not valid JSON: {e}") from None
    except ValueError as e:  # an integer with thousands of digits
        raise ApiError(f"request body holds a number JSON here cannot take: {e}") from None


# -- the safety checks, as ASGI middleware around the whole app -------------------------


@dataclass(frozen=True)
class Origins:
    """The Host and Origin values this server answers: its own address, by name or loopback IP."""

    allowed_hosts: frozenset[str]
    any_interface: bool
    port: int

    @classmethod
    def for_address(cls, host: str, port: int) -> Origins:
        names = {"127.0.0.1", "localhost", "[::1]", host if ":" not in host else f"[{host}]"}
        allowed = {f"{n}:{port}".lower() for n in names}
        if port == 80:
            allowed |= {n.lower() for n in names}
        return cls(frozenset(allowed), host in ("0.0.0.0", "::"), port)

    def host_allowed(self, host: str) -> bool:
        host = host.lower()
        if host in self.allowed_hosts:
            return True
        # Bound to every interface, any IP literal with our port is fine: DNS rebinding needs a name.
        name, _, port = host.rpartition(":")
        return self.any_interface and port == str(self.port) and _is_ip_literal(name)

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None:
            return True
        scheme, _, rest = origin.partition("://")
        return scheme == "http" and rest.lower() in self.allowed_hosts


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class Guard:
    """Host, Origin, Content-Length, body size and JSON checks before any route runs; safety headers after."""

    def __init__(self, app: Any, origins: Origins):
        self.app = app
        self.origins = origins

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SAFETY_HEADERS if k not in have]
                if b"cache-control" not in have:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            body = await self._checked_body(scope, receive)
        except ApiError as e:
            status, payload = error_body(e.status, str(e), e.field)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            await send_with_headers({"type": "http.response.start", "status": status, "headers": headers})
            await send_with_headers({"type": "http.response.body", "body": payload})
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_headers)

    async def _checked_body(self, scope: dict, receive: Any) -> bytes:
        size = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if size > MAX_HEADERS:
            raise ApiError(f"request headers are {size} bytes; the limit is {MAX_HEADERS}", status=431)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not self.origins.host_allowed(host):
            raise ApiError(
                f"Host header {host!r} is not this server's address; the lab only answers {sorted(self.origins.allowed_hosts)}",
                status=403,
            )
        if scope["method"] not in ("GET", "HEAD") and not self.origins.origin_allowed(headers.get("origin")):
            raise ApiError(f"cross-origin request from {headers.get('origin')!r} refused", status=403)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise ApiError(f"Content-Length must be a non-negative integer; got {declared[:40]!r}")
            if int(declared) > MAX_BODY:
                raise ApiError(f"request body is {int(declared)} bytes; the limit is {MAX_BODY}", status=413)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                raise ApiError(f"request body is over {MAX_BODY} bytes, the limit", status=413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and scope["path"].startswith("/api/"):
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                raise ApiError(
                    f"send the request body as JSON, with Content-Type: application/json; got {content_type[:60] or 'none'!r}",
                    status=415,
                )
            check_json(body)
        return body


class LabH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, but a request it cannot parse gets the lab's JSON error too."""

    def send_400_response(self, msg: str) -> None:
        _, body = error_body(400, f"malformed HTTP request: {msg}")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *SAFETY_HEADERS,
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()


# -- the app ------------------------------------------------------------------------------


def create_app(config: LabConfig | None = None) -> FastAPI:
    """The lab as an ASGI app: every page's and service's routes, their HTML, the static files, the checks."""
    config = config or LabConfig()
    # Off: FastAPI's docs pages load their scripts and styles from a CDN.
    app = FastAPI(title="LLM Workings lab", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.config = config
    app.state.models = models.ModelCache(config)
    app.state.jobs = jobs.JobManager(config.max_jobs)
    for stale in remove_stale_temporaries(config.runs_dir):
        log.info("removed %s: a training run that a stopped lab left unfinished", stale)
    for router in SERVICES:
        app.include_router(router)
    for page in PAGES:
        app.include_router(page.router)
        _serve_page(app, page.path, page.html)
    _serve_page(app, "/", HOME)
    app.add_api_route("/static/{name:path}", _static_file, methods=["GET", "HEAD"], include_in_schema=False)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> Response:
        return error_response(e.status, str(e), e.field)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, e: RequestValidationError) -> Response:
        return error_response(400, *describe_validation_error(e.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> Response:
        path, method = request.url.path, request.method
        if e.status_code == 405:
            allowed = (e.headers or {}).get("Allow", "")
            message = f"{method} is not allowed on {path}; use {' or '.join(allowed.split(', '))}"
        elif e.status_code == 404:
            message = f"no API endpoint {path}" if path.startswith("/api/") else f"no page {path}"
        else:
            message = str(e.detail)
        return error_response(e.status_code, message, headers=e.headers)

    @app.exception_handler(Exception)
    async def server_fault(request: Request, e: Exception) -> Response:
        log.exception("lab: %s %s failed", request.method, request.url.path)
        return error_response(500, f"the lab failed on this request ({type(e).__name__}); see the server's log")

    app.add_middleware(Guard, origins=Origins.for_address(config.host, config.port))
    return app


def _send_file(target: Path, cache: bool) -> Response:
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith(("javascript", "json")):
        content_type += "; charset=utf-8"
    headers = {"Cache-Control": "max-age=3600" if cache else "no-store"}
    return Response(target.read_bytes(), 200, headers=headers, media_type=content_type)


def _serve_page(app: FastAPI, path: str, html: str) -> None:
    async def page() -> Response:
        return _send_file(STATIC_ROOT / html, cache=False)

    app.add_api_route(path, page, methods=["GET", "HEAD"], include_in_schema=False)


async def _static_file(name: str) -> Response:
    root = STATIC_ROOT.resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise ApiError(f"no file /static/{name}", status=404)
    return _send_file(target, cache=name.startswith("vendor/"))


# -- running it -----------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the app is built so that the app knows its real port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named outright: asyncio turns Nagle's algorithm off only on sockets whose proto says TCP,
    # and with it on, each response's body waits ~40 ms for the client's delayed ACK of its headers.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"


class LabServer(uvicorn.Server):
    """uvicorn's server, ending the lab's jobs first on Ctrl-C: an open progress stream would hold up a graceful stop."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.config.app.state.jobs.shutdown()
        super().handle_exit(sig, frame)


def uvicorn_server(config: LabConfig, sock: socket.socket) -> LabServer:
    config = replace(config, port=sock.getsockname()[1])
    settings = uvicorn.Config(
        create_app(config),
        http=LabH11Protocol,
        ws="none",
        lifespan="off",
        h11_max_incomplete_event_size=MAX_HEADERS,  # a request whose headers arrive slowly is bounded too
        log_level="info" if config.verbose else "warning",
        access_log=config.verbose,
        server_header=False,
        timeout_graceful_shutdown=2,
    )
    return LabServer(settings)


class LabThread:
    """A lab server on a background thread: `.url`, `.host`, `.port`, `.app`, `.shutdown()`."""

    def __init__(self, config: LabConfig):
        self.sock = bind(config.host, config.port)
        self.host, self.port = config.host, self.sock.getsockname()[1]
        self.url = url_of(self.host, self.port)
        self.server = uvicorn_server(config, self.sock)
        self.app = self.server.config.app
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the lab server stopped while starting")
            self.thread.join(0.005)

    def shutdown(self) -> None:
        self.app.state.jobs.shutdown()
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def serve_in_thread(config: LabConfig | None = None, port: int = 0) -> LabThread:
    """Start a lab server on a background thread (port 0 picks a free one); for tests and benchmarks."""
    return LabThread(replace(config or LabConfig(), port=port))
