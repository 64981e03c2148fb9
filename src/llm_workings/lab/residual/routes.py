"""The Residual stream page's routes, under /api/residual: its schema, and every view of one prompt.

One request draws the whole page: the lens table, the decomposition and the write norms come from
the same forward pass's model and prompt, so nothing is half-drawn when one part is refused: the
checks (prompt, stream, position, tokens) all run before anything is computed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..pages import reply
from ..prompts import read_prompt, read_token
from . import compute, wire
from .settings import MAX_POSITIONS, SETTINGS, ResidualBody

router = APIRouter(prefix="/api/residual")


@router.get("/schema")
def schema() -> dict[str, Any]:
    return {"settings": SETTINGS.to_json(), "limits": {"positions": MAX_POSITIONS}}


def checked_index(value: int, count: int, field: str, holder: str) -> int:
    """`value` (negative counts from the end) as an index in [0, count), or an ApiError naming the range."""
    if not -count <= value < count:
        raise ApiError(f"{field} {value} is out of range: {holder} ({-count} to {count - 1})", status=422, field=field)
    return value % count


@router.post("/run", response_model=wire.ResidualOut)
def run(body: ResidualBody, request: Request) -> Response:
    import torch

    with request.app.state.models.hold(body.model) as held:
        model = held.model
        prompt = read_prompt(held, body.prompt, max_tokens=MAX_POSITIONS)
        n_pos = len(prompt.ids)
        streams = compute.stream_count(model)
        layer = checked_index(body.layer, streams, "layer", f"{held.entry.id} has {streams} residual streams")
        position = checked_index(body.position, n_pos, "position", f"the prompt has {n_pos} tokens")
        target = read_token(held, body.target, "target") if body.target else None
        tokens = prompt.tensor(model.W_E.device)
        with held.lock, torch.no_grad():
            top, second = compute.answers_at(model, tokens, position)
            answer = read_token(held, body.answer, "answer") if body.answer else top
            wrong = read_token(held, body.wrong, "wrong") if body.wrong else (second if answer == top else top)
            if answer == wrong:
                raise ApiError("the answer and the wrong answer are the same token: their difference is 0", field="wrong")
            lens = compute.lens(model, tokens, target, layer, position, body.k)
            parts = compute.decompose(model, tokens, answer, wrong, position, body.split)
            norms = compute.write_norms(model, tokens)
        text = held.tokenizer.token_text if held.tokenizer is not None else (lambda ids: [str(i) for i in ids])
        answer_text, wrong_text = text([answer, wrong])
        return reply(
            wire.residual(
                body.model,
                prompt.ids,
                prompt.str_tokens,
                layer,
                position,
                lens,
                text([target])[0] if target is not None else "",
                parts,
                wire.Token(id=answer, text=answer_text),
                wire.Token(id=wrong, text=wrong_text),
                norms,
                text,
            )
        )
