"""The Grokking page's routes, under /api/grokking: every snapshot's series, and one snapshot's spectrum.

The key frequencies come from the last snapshot; every snapshot's view is then computed once with
them (one pass over all p² pairs each) and cached, so scrubbing serializes and computes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..pages import reply
from ..snapshots import ViewCache, snapshot_run
from . import compute, wire
from .settings import SeriesBody, SnapshotBody

router = APIRouter(prefix="/api/grokking")
VIEWS = ViewCache()
PAGE_NAME = "The grokking page"


def _views(request: Request, model_id: str) -> tuple[Any, dict[str, Any], list[int], list[compute.SnapshotView]]:
    run = snapshot_run(request.app.state.models, model_id, "modular-addition", PAGE_NAME)
    data = run.data()
    try:
        p, fraction, seed = int(data["p"]), float(data["train_fraction"]), int(data["split_seed"])
    except (KeyError, TypeError, ValueError):
        raise ApiError(
            f"{model_id}: its card names no modular-addition data (p, train_fraction, split_seed)", status=409
        ) from None
    last = run.entries[-1]
    keys = VIEWS.get(run, last, ("keys", p), lambda model: compute.key_freqs(model, p))
    if not keys:
        raise ApiError(f"{model_id}: its last snapshot's embedding has no key frequencies yet; train it further", status=409)
    train_x, train_y = compute.split(p, fraction, seed)
    settings = ("view", p, fraction, seed, tuple(keys))
    views = [
        VIEWS.get(run, e, settings, lambda model: compute.snapshot_view(model, p, keys, train_x, train_y)) for e in run.entries
    ]
    return run, {"p": p, "train_pairs": len(train_y)}, keys, views


@router.post("/series", response_model=wire.SeriesOut)
def series(body: SeriesBody, request: Request) -> Response:
    run, data, keys, views = _views(request, body.model)
    return reply(wire.series(body.model, data["p"], data["train_pairs"], run.entries, views, keys, run.transition()))


@router.post("/snapshot", response_model=wire.SnapshotOut)
def snapshot(body: SnapshotBody, request: Request) -> Response:
    run, _, _, views = _views(request, body.model)
    entry = run.entry(body.step)
    return reply(wire.snapshot(body.model, body.step, views[run.entries.index(entry)]))
