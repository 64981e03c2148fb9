"""The Attention heads page's routes, under /api/heads: its schema, the head grid, one head in depth,
and the model's positions.

Each route holds its model from the lab's cache for the length of the request, reads the prompt with
`lab/prompts.py` (at most MAX_TOKENS positions: the grid grows with their square) and calls compute.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..pages import reply
from ..prompts import read_prompt
from . import compute, wire
from .settings import MAX_CIRCUIT_VOCAB, MAX_POSITIONS, MAX_TOKENS, SETTINGS, SORTS, GridBody, HeadBody, PositionsBody

router = APIRouter(prefix="/api/heads")


@router.get("/schema")
def schema() -> dict[str, Any]:
    return {
        "settings": SETTINGS.to_json(),
        "sorts": list(SORTS),
        "scores": list(compute.SCORE_KINDS),
        "limits": {"tokens": MAX_TOKENS, "circuit_vocab": MAX_CIRCUIT_VOCAB, "positions": MAX_POSITIONS},
        "induction_threshold": compute.INDUCTION_THRESHOLD,
    }


@router.post("/grid", response_model=wire.GridOut)
def grid(body: GridBody, request: Request) -> Response:
    with request.app.state.models.hold(body.model) as held:
        prompt = read_prompt(held, body.prompt, max_tokens=MAX_TOKENS)
        with held.lock:  # run_with_cache attaches hooks to the shared model
            result = compute.grid(held.model, prompt.tensor(held.model.W_E.device))
        return reply(wire.grid(body.model, prompt, result, compute.INDUCTION_THRESHOLD))


def check_head(held: Any, layer: int, head: int) -> None:
    cfg, name = held.model.cfg, held.entry.id
    if layer >= cfg.n_layers:
        raise ApiError(
            f"layer must be from 0 to {cfg.n_layers - 1}: {name} has {cfg.n_layers} layers; got {layer}", field="layer"
        )
    if head >= cfg.n_heads:
        raise ApiError(
            f"head must be from 0 to {cfg.n_heads - 1}: {name} has {cfg.n_heads} heads a layer; got {head}", field="head"
        )


def check_position(name: str, value: int | None, n: int) -> None:
    if value is not None and value >= n:
        raise ApiError(f"{name} must be a position of the prompt, from 0 to {n - 1}; got {value}", field=name)


@router.post("/head", response_model=wire.HeadOut)
def head(body: HeadBody, request: Request) -> Response:
    with request.app.state.models.hold(body.model) as held:
        check_head(held, body.layer, body.head)
        prompt = read_prompt(held, body.prompt, max_tokens=MAX_TOKENS)
        n = len(prompt.ids)
        check_position("query", body.query, n)
        check_position("key", body.key, n)
        if body.key is not None and body.query is not None and body.key > body.query:
            raise ApiError(
                f"key must not come after the query ({body.query}): a token attends only backwards; got {body.key}", field="key"
            )
        model = held.model
        with held.lock:
            detail = compute.head_detail(model, prompt.tensor(model.W_E.device), body.layer, body.head, body.query, body.key)
        circuits, note = None, None
        if model.cfg.d_vocab <= MAX_CIRCUIT_VOCAB:
            qk, ov = compute.head_circuits(model, body.layer, body.head)
            circuits = wire.circuits(qk, ov, compute.copying_scores(model), body.layer, body.head)
        else:
            note = (
                f"{held.entry.id}'s vocabulary has {model.cfg.d_vocab:,} tokens: its full QK and OV circuits are "
                f"{model.cfg.d_vocab:,} x {model.cfg.d_vocab:,} maps, drawn here only up to {MAX_CIRCUIT_VOCAB} tokens"
            )
        return reply(wire.head(body.model, body.layer, body.head, prompt, detail, circuits, note))


@router.post("/positions", response_model=wire.PositionsOut)
def positions(body: PositionsBody, request: Request) -> Response:
    with request.app.state.models.hold(body.model) as held:
        cfg = held.model.cfg
        similarity, note = None, None
        if cfg.positions == "learned":
            n = min(cfg.n_ctx, MAX_POSITIONS)
            similarity = wire.tensor(compute.position_similarity(held.model, n).numpy(), "uint8")
            if n < cfg.n_ctx:
                note = f"the first {n} of {cfg.n_ctx} positions"
        rotary = cfg.positions == "rotary"
        return reply(
            wire.PositionsOut(
                model=body.model,
                positions=cfg.positions,
                n_ctx=cfg.n_ctx,
                similarity=similarity,
                similarity_note=note,
                rotary_dim=cfg.rotary_dim if rotary else None,
                rotary_base=cfg.rotary_base if rotary else None,
            )
        )
