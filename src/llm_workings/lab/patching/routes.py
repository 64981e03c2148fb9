"""The Patching page's routes, under /api/patching: its schema and presets, the prompt pair, the
attribution-patching preview, the activation-patching sweep (now, or as a job with progress and
cancel), path patching from one head, and ablation.

Each route holds its model from the lab's cache, and its lock while hooks are attached, for the length
of the request (or of the job). A sweep estimated at more than a second runs as a job on the lab's
JobManager: each layer's row of the map comes as a progress point (`metrics.layer`, `metrics.rows`),
so the page fills the heatmap in as it goes, and a cancel stops it after the layer in progress.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..jobs.routes import JobView
from ..pages import reply
from . import compute, wire
from .pair import Pair, read_pair
from .presets import PRESETS
from .settings import ACTIVATIONS, MAX_COMPONENTS, MAX_TOKENS, SETTINGS, AblateBody, PairBody, PathBody, SweepBody

router = APIRouter(prefix="/api/patching")
JOB_KIND = "patching-sweep"


@contextmanager
def analysis_errors(field: str | None) -> Iterator[None]:
    """The toolkit's AnalysisError (bad layer, head, activation, ...) as a 422 naming `field`."""
    from ...analysis.conventions import AnalysisError

    try:
        yield
    except AnalysisError as e:
        raise ApiError(str(e), status=422, field=field) from None


def available(model: Any) -> list[str]:
    """The activations this model has (an attention-only model has no MLP output)."""
    from ...analysis.conventions import AnalysisError

    names = []
    for activation in ACTIVATIONS:
        try:
            compute.check(model, activation, "all")
            names.append(activation)
        except AnalysisError:
            pass
    return names


@contextmanager
def held_pair(request: Request, body: Any, metric: str) -> Iterator[tuple[Any, Pair]]:
    with request.app.state.models.hold(body.model) as held:
        yield held, read_pair(held, body, metric)


def refuse_equal(before: compute.Runs) -> None:
    if before.clean == before.corrupted:
        raise ApiError(
            f"the clean and corrupted runs score the same ({before.clean:.4g}): there is no difference for a patch to restore; "
            "change a token of the corrupted prompt, or the answers",
            status=422,
            field="corrupted",
        )


@router.get("/schema")
def schema() -> dict[str, Any]:
    return {
        "settings": SETTINGS.to_json(),
        "limits": {"tokens": MAX_TOKENS, "components": MAX_COMPONENTS, "now_seconds": compute.MAX_NOW_SECONDS},
        "presets": PRESETS,
    }


@router.post("/pair", response_model=wire.PairOut)
def pair(body: PairBody, request: Request) -> Response:
    with held_pair(request, body, body.metric) as (held, p), held.lock:
        before = compute.runs(held.model, p)
        refuse_equal(before)
        return reply(wire.pair_out(body.model, held, p, before, available(held.model)))


def checked(held: Any, body: SweepBody) -> None:
    with analysis_errors("activation"):
        compute.check(held.model, body.activation, body.positions)


@router.post("/preview", response_model=wire.MapOut)
def preview(body: SweepBody, request: Request) -> Response:
    with held_pair(request, body, body.metric) as (held, p), held.lock:
        checked(held, body)
        started = time.perf_counter()
        with analysis_errors("activation"):
            estimate = compute.preview(held.model, p, body.activation, body.positions, body.direction)
        seconds = time.perf_counter() - started
        grid = compute.grid(estimate, held.model.cfg.n_heads)
        return reply(wire.MapOut(**wire.map_fields("estimate", estimate, grid, seconds)))


def run_sweep(held: Any, p: Pair, body: SweepBody, on_layer: Any = None) -> wire.SweepResult:
    """The real sweep, then attribution patching on the same cells to compare with (a few passes more)."""
    model = held.model
    started = time.perf_counter()
    result = compute.sweep(model, p, body.activation, body.positions, body.direction, on_layer)
    seconds = time.perf_counter() - started
    estimate = compute.preview(model, p, body.activation, body.positions, body.direction)
    pearson, cells = compute.disagreements(estimate, result, model.cfg.n_heads)
    return wire.SweepResult(
        **wire.map_fields("sweep", result, compute.grid(result, model.cfg.n_heads), seconds),
        pearson=pearson if pearson == pearson else None,  # NaN when a map is constant
        disagreements=[wire.DisagreementOut(**cell.__dict__) for cell in cells],
    )


@router.post("/sweep", response_model=wire.SweepOut)
def sweep(body: SweepBody, request: Request) -> Response:
    cache, jobs = request.app.state.models, request.app.state.jobs
    with held_pair(request, body, body.metric) as (held, p):
        checked(held, body)
        model = held.model
        estimated = compute.seconds(model, body.activation, body.positions, p.clean.shape[1])
        background = body.background if body.background is not None else estimated > compute.MAX_NOW_SECONDS
        if not background:
            with held.lock, analysis_errors("corrupted"):  # e.g. both runs scoring the same: nothing to normalise by
                return reply(wire.SweepOut(result=run_sweep(held, p, body), job=None, estimated_seconds=estimated))
    axes = compute.indexed(body.activation, body.positions)
    n_layers = model.cfg.n_layers

    def job(ctx: Any) -> dict[str, Any]:
        with cache.hold(body.model) as held, held.lock:
            ctx.check_cancelled()
            ctx.progress(0.0, f"layer 0 of {n_layers}")

            def on_layer(layer: int, scores: Any) -> None:
                ctx.check_cancelled()
                ctx.progress(
                    (layer + 1) / n_layers, f"layer {layer + 1} of {n_layers}", layer=layer, rows=compute.layer_rows(scores, axes)
                )

            pair_now = read_pair(held, body, body.metric)  # the model may have been reloaded since the request
            return run_sweep(held, pair_now, body, on_layer).model_dump()

    params = {
        "model": body.model,
        "activation": body.activation,
        "positions": body.positions,
        "metric": body.metric,
        "direction": body.direction,
    }
    started = jobs.submit(JOB_KIND, job, params)
    return reply(wire.SweepOut(result=None, job=JobView(**jobs.view(started.id)), estimated_seconds=estimated))


@router.post("/path", response_model=wire.PathOut)
def path(body: PathBody, request: Request) -> Response:
    with held_pair(request, body, body.metric) as (held, p), held.lock:
        refuse_equal(compute.runs(held.model, p))
        with analysis_errors("sender"):
            result = compute.path(held.model, p, body.sender, body.direction)
        return reply(wire.path_out(body.sender, result))


@router.post("/ablate", response_model=wire.AblateOut)
def ablate(body: AblateBody, request: Request) -> Response:
    with held_pair(request, body, body.metric) as (held, p), held.lock:
        before = compute.runs(held.model, p)
        if body.components:
            with analysis_errors("components"):
                value = compute.ablated(held.model, p, body.components, body.method)
        else:
            value = before.clean
        return reply(
            wire.AblateOut(
                components=body.components, method=body.method, value=value, clean=before.clean, corrupted=before.corrupted
            )
        )
