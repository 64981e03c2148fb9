"""The Tokens page's routes, under /api/tokens: its schema, the predictions, the sampling panel, a sample.

Each route holds its model from the lab's cache for the length of the request, tokenizes with the
model's own tokenizer, and calls compute.py; nothing about a request is kept between requests
except the last few logits rows the sampling panel reshapes (see `ROWS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..memo import Lru
from ..pages import reply
from ..prompts import token_ids
from . import compute, wire
from .settings import MAX_NEW_TOKENS, MAX_TEXT_CHARS, MAX_TOKENS, SETTINGS, PredictBody, ReshapeBody, SampleBody, cut

router = APIRouter(prefix="/api/tokens")


# The logits after a prefix, for the last few prefixes: dragging a sampling slider asks for the
# same position again and again, and each answer then costs a softmax, not a forward pass.
ROWS = Lru(32)


@contextmanager
def text_model(request: Request, model_id: str, text: str) -> Iterator[tuple[Any, Any, list[int]]]:
    """The held model, its tokenizer and the text's ids (BOS first when the model reads one)."""
    with request.app.state.models.hold(model_id) as held:
        if held.tokenizer is None:
            raise ApiError(
                f"model {model_id!r} has no text tokenizer (it reads task tokens); pick a language model",
                status=422,
                field="model",
            )
        ids = token_ids(held.model, held.tokenizer, text)
        if len(ids) > MAX_TOKENS:
            raise ApiError(
                f"text is {len(ids)} tokens for {model_id!r}; the lab predicts at most {MAX_TOKENS} at a time",
                status=413,
                field="text",
            )
        if len(ids) == 0:
            raise ApiError("text makes no tokens with this tokenizer", field="text")
        yield held, held.tokenizer, ids


@router.get("/schema")
def schema() -> dict[str, Any]:
    return {
        "settings": SETTINGS.to_json(),
        "limits": {"text_chars": MAX_TEXT_CHARS, "tokens": MAX_TOKENS, "new_tokens": MAX_NEW_TOKENS},
    }


@router.post("/predict", response_model=wire.PredictionsOut)
def predict(body: PredictBody, request: Request) -> Response:
    with text_model(request, body.model, body.text) as (held, tok, ids):
        model = held.model
        pred = compute.predict(model, ids, body.k)
        start = compute.context_start(len(ids), model.cfg.n_ctx, len(ids) - 1)
        key = (body.model, held.entry.stamp, id(model), tuple(ids[start:]))
        ROWS.get(key, lambda: pred.last_logits)  # the sampling panel starts at the end of the text
        bos = model.bos_to_prepend(None) is not None
        return reply(wire.predictions(body.model, model.cfg.n_ctx, model.cfg.d_vocab, bos, pred, tok.token_text, body.k))


@router.post("/reshape", response_model=wire.ReshapedOut)
def reshape(body: ReshapeBody, request: Request) -> Response:
    with text_model(request, body.model, body.text) as (held, tok, ids):
        if body.position >= len(ids):
            raise ApiError(
                f"position must be below the text's {len(ids)} tokens; got {body.position}", status=422, field="position"
            )
        model = held.model
        start = compute.context_start(len(ids), model.cfg.n_ctx, body.position)
        key = (body.model, held.entry.stamp, id(model), tuple(ids[start : body.position + 1]))
        logits = ROWS.get(key, lambda: compute.logits_at(model, ids, body.position))
        top_k, top_p = cut(body.top_k, body.top_p)
        result = compute.reshape(logits, body.temperature, top_k, top_p, body.k)
        return reply(wire.reshaped(body.position, result, tok.token_text, model.cfg.d_vocab))


@router.post("/sample", response_model=wire.SampleOut)
def sample(body: SampleBody, request: Request) -> Response:
    with text_model(request, body.model, body.text) as (held, tok, ids):
        top_k, top_p = cut(body.top_k, body.top_p)
        eos = getattr(held.model.tokenizer, "eos_token_id", None)
        new = compute.continue_text(held.model, ids, body.temperature, top_k, top_p, body.seed, body.new_tokens, eos)
        stopped = eos is not None and bool(new) and new[-1] == eos
        return reply(
            wire.SampleOut(
                ids=new,
                strings=tok.token_text(new),
                text=tok.decode(new),
                stopped_at_eos=stopped,
            )
        )
