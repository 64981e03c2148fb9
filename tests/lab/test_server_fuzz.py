"""Random requests to every route the app has: each gets a success or a 4xx JSON error, never a 5xx.

The routes are read from the app itself (its OpenAPI description, which lists every API
route of every page and service, plus the pages and static files), so a route added
later is fuzzed without editing this file. Bodies are random JSON built mostly from the
field names the routes declare, so that many get past the first check; the rest are
random bytes, wrong types and methods, foreign origins and odd headers.
"""

from __future__ import annotations

import json
import re
import string
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import PAGES, create_app

BASE = "http://127.0.0.1:8000"
# A fuzzed body that happens to be a valid training job writes its run here, never into the checkout.
RUNS = tempfile.TemporaryDirectory(prefix="lab-fuzz-runs-")
APP = create_app(LabConfig(runs_dir=Path(RUNS.name)))
DOC = APP.openapi()
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO"]


def _names(node) -> set[str]:
    """Every property and parameter name anywhere in the API's description."""
    found = set()
    if isinstance(node, dict):
        found |= set(node.get("properties", {}))
        if node.get("in") in ("query", "path") and "name" in node:
            found.add(node["name"])
        for value in node.values():
            found |= _names(value)
    elif isinstance(node, list):
        for value in node:
            found |= _names(value)
    return found


FIELDS = sorted(_names(DOC))
ROUTES = sorted(
    [(path, sorted(m.upper() for m in ops)) for path, ops in DOC["paths"].items()]
    + [(page.path, ["GET", "HEAD"]) for page in PAGES]
    + [("/", ["GET", "HEAD"]), ("/static/{name}", ["GET", "HEAD"])]
)


def test_the_fuzzed_routes_are_all_of_the_app():
    # Every page's and service's API shows in the description the fuzzer reads.
    assert {"/api/backprop/runs", "/api/backprop/runs/{run_id}/step"} <= {path for path, _ in ROUTES}
    assert all(path.startswith("/api/") for path in DOC["paths"])
    assert len(ROUTES) >= len(DOC["paths"]) + 2


@pytest.fixture(scope="module")
def client():
    with TestClient(APP, base_url=BASE, raise_server_exceptions=False) as c:
        run = c.post("/api/backprop/runs", json={"history": False})
        assert run.status_code == 201
        c.real_ids = [run.json()["run_id"]]  # so that some requests reach an existing run
        yield c


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(FIELDS)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.sampled_from([b"", b"NaN", b'{"steps": Infinity}', b"[" * 40 + b"]" * 40, b'{"a": 1e999}', b"\xff\xfe{}"]),
)
path_values = st.text(alphabet=string.ascii_letters + string.digits + "-_.~%", max_size=24) | st.sampled_from(
    ["0", "-1", "999999999999", "shakespeare-char", "..", "%2e%2e", "js/api.js", "vendor/katex/katex.min.js"]
)
header_text = st.text(alphabet=string.ascii_letters + string.digits + " -_/;=.,:", max_size=30)


@st.composite
def requests(draw, route: tuple[str, list[str]], real_ids: list[str]):
    path, methods = route
    method = draw(st.sampled_from(methods) if draw(st.integers(0, 3)) else st.sampled_from(METHODS))

    def fill(match: re.Match) -> str:
        return draw(st.sampled_from(real_ids) | path_values) if "run_id" in match.group(0) else draw(path_values)

    url = re.sub(r"\{[^}]+\}", fill, path) or "/"
    query = draw(st.dictionaries(st.sampled_from(FIELDS) | st.text(string.ascii_lowercase, max_size=6), header_text, max_size=3))
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]))}
    origin = draw(st.sampled_from([None, BASE, "http://attacker.example", "null"]))
    if origin:
        headers["Origin"] = origin
    headers.update(
        draw(st.dictionaries(st.sampled_from(["X-Fuzz", "Accept", "Range", "Cookie", "Expect"]), header_text, max_size=2))
    )
    body = draw(bodies) if method not in ("GET", "HEAD") or draw(st.booleans()) else b""
    return method, url, query, headers, body


@pytest.mark.parametrize("route", ROUTES, ids=[f"{path} {','.join(m)}" for path, m in ROUTES])
def test_random_requests_never_get_a_server_error(client, route):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(requests(route, client.real_ids))
    def check(request):
        method, url, query, headers, body = request
        response = client.request(method, url, params=query, headers=headers, content=body or None)
        assert response.status_code < 500, (request, response.status_code, response.text[:300])
        kind = response.headers.get("content-type", "")
        if response.status_code >= 400:
            assert kind == "application/json", (request, kind)
            if method != "HEAD":
                error = response.json()
                assert set(error) == {"error", "field"} and error["error"], (request, error)

    check()
