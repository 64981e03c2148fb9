"""The Induction page's routes, under /api/induction: its schema, every snapshot's series, one snapshot.

The series computes (once, then from the cache) every snapshot's view; a snapshot request then only
serializes one of them, so the page can fetch them all ahead and scrub without waiting.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..pages import reply
from ..snapshots import ViewCache, snapshot_run
from . import compute, wire
from .settings import SETTINGS, SeriesBody, SnapshotBody

router = APIRouter(prefix="/api/induction")
VIEWS = ViewCache()
PAGE_NAME = "The induction page"


def _run_and_tokens(request: Request, body: SeriesBody | SnapshotBody) -> tuple[Any, Any]:
    run = snapshot_run(request.app.state.models, body.model, "induction", PAGE_NAME)
    cfg = run.model_config()
    if cfg.n_layers < 2:
        raise ApiError(
            f"{body.model!r} has {cfg.n_layers} layer; induction needs two (a previous-token head, then an induction head)",
            status=422,
            field="model",
        )
    most = (cfg.n_ctx - 1) // 2
    if body.half > most:
        raise ApiError(
            f"half is {body.half}; {body.model} reads at most {cfg.n_ctx} tokens, so BOS and two copies allow half <= {most}",
            status=422,
            field="half",
        )
    import torch

    from ...analysis import repeated_random_tokens

    tokens = repeated_random_tokens(cfg.d_vocab, batch=compute.SEQUENCES, half=body.half, seed=body.seed)
    return run, tokens.to(torch.long)


def _views(run: Any, tokens: Any, body: SeriesBody | SnapshotBody) -> list[compute.SnapshotView]:
    settings = ("induction", body.seed, body.half)
    return [VIEWS.get(run, entry, settings, lambda model: compute.snapshot_view(model, tokens)) for entry in run.entries]


@router.get("/schema")
def schema() -> dict[str, Any]:
    return {"settings": SETTINGS.to_json()}


@router.post("/series", response_model=wire.SeriesOut)
def series(body: SeriesBody, request: Request) -> Response:
    run, tokens = _run_and_tokens(request, body)
    views = _views(run, tokens, body)
    copies = [compute.copy_losses(v, body.half) for v in views]
    featured = compute.featured_heads(views[-1])
    return reply(wire.series(body.model, run.entries, views, copies, body.half, body.seed, featured, run.transition()))


@router.post("/snapshot", response_model=wire.SnapshotOut)
def snapshot(body: SnapshotBody, request: Request) -> Response:
    run, tokens = _run_and_tokens(request, body)
    entry = run.entry(body.step)
    settings = ("induction", body.seed, body.half)
    view = VIEWS.get(run, entry, settings, lambda model: compute.snapshot_view(model, tokens))
    last = VIEWS.get(run, run.entries[-1], settings, lambda model: compute.snapshot_view(model, tokens))
    return reply(wire.snapshot(body.model, body.step, tokens[0].tolist(), view, compute.featured_heads(last)))
