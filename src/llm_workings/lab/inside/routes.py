"""The "Inside a transformer" page's routes, under /api/inside: its schema, and one walk."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..pages import reply
from ..prompts import read_prompt
from . import compute, stages, wire
from .settings import MAX_TOKENS, SETTINGS, WalkBody

router = APIRouter(prefix="/api/inside")


@router.get("/schema")
def schema() -> dict[str, Any]:
    return {"settings": SETTINGS.to_json(), "limits": {"tokens": MAX_TOKENS}}


@router.post("/walk", response_model=wire.WalkOut)
def walk(body: WalkBody, request: Request) -> Response:
    with request.app.state.models.hold(body.model) as held:
        prompt = read_prompt(held, body.prompt, max_tokens=MAX_TOKENS)
        wiring = compute.Wiring.of(held.model.cfg)
        position = compute.check_choice(
            wiring, held.entry.id, len(prompt.ids), None if body.position == -1 else body.position, body.layer, body.head
        )
        with held.lock:  # hooks are attached for the length of the pass
            result = compute.run_walk(held.model, prompt.ids, position, body.layer, body.head)
        token_text = None if held.tokenizer is None else held.tokenizer.token_text
        out = stages.build(held.entry, held.model, result, prompt.str_tokens, prompt.bos, token_text, body.sharpen)
        return reply(out)
