"""What a lab page declares: where it lives, its HTML file, and its API routes.

A page is a package under `lab/` (`lab/backprop/`, `lab/tokens/`) whose `__init__.py`
exposes `PAGE = Page("/backprop", "backprop.html", router)`. Its routes live under
`/api/<page>/...`; `server.create_app` serves the HTML at `path` and includes the router.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel


@dataclass(frozen=True)
class Page:
    path: str  # where the browser opens it, e.g. "/backprop"
    html: str  # its file under lab/static/, e.g. "backprop.html"
    router: APIRouter  # its routes, under /api/<page>/


def reply(body: BaseModel, status: int = 200) -> Response:
    """A response model's JSON, serialized once by pydantic (a route declares the model as its response_model)."""
    return Response(body.__pydantic_serializer__.to_json(body), status, media_type="application/json")
