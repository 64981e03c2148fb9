"""A page's prompt: the learner's text, or token ids, as the ids a model reads and the strings it shows.

Every page that runs a model on the learner's input takes a `PromptIn` in its body and calls
`read_prompt`, so every page refuses the same bad prompts with the same messages:

    class Body(Body):
        model: str
        prompt: PromptIn

    with request.app.state.models.hold(body.model) as held:
        prompt = read_prompt(held, body.prompt)      # ApiError naming the limit, field "prompt"
        logits, cache = held.model.run_with_cache(prompt.tensor())
        prompt.str_tokens                            # one display string per position

Text is for models with a tokenizer; the model's BOS goes first when the model reads one. Ids are
taken as they are, BOS included if wanted, so that a model with no tokenizer (induction-2l,
modadd-113), or a sequence no text spells (repeated random tokens), can be posted too.

`POST /api/prompts/tokenize` shows what a prompt becomes before a page runs anything on it, and
`POST /api/prompts/repeated` makes the repeated random sequence on which induction heads show
themselves. `static/js/prompt-input.js` is the prompt box that calls both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from .errors import ApiError
from .pages import reply
from .settings import Body, bounded_int, refused

MAX_TEXT_CHARS = 20_000
MAX_IDS = 4096

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


class PromptIn(Body):
    """Exactly one of `text` (tokenized by the model's tokenizer) or `ids` (read as given)."""

    text: str | None = Field(None, max_length=MAX_TEXT_CHARS)
    ids: list[int] | None = Field(None, max_length=MAX_IDS)

    @model_validator(mode="after")
    def _one_of(self) -> PromptIn:
        if (self.text is None) == (self.ids is None):
            raise refused("give the prompt as text or as ids, not both and not neither", field="prompt")
        return self


@dataclass(frozen=True)
class Prompt:
    ids: list[int]  # as the model reads them: the BOS first when it was added to a text
    str_tokens: list[str]  # what each id stands for, one per position
    bos: bool  # whether ids[0] is a BOS that was added to the text

    def tensor(self, device: Any = None) -> Any:
        """The ids as a `[1, pos]` long tensor, the batch a model's forward takes."""
        import torch

        return torch.tensor([self.ids], dtype=torch.long, device=device)


def token_ids(model: Any, tokenizer: Any, text: str) -> list[int]:
    """`text` in `tokenizer`'s ids, with the BOS id first when the model is used with one."""
    ids = list(tokenizer.encode(text))
    bos = model.bos_to_prepend(None)
    return ([bos] if bos is not None else []) + ids


def str_tokens(held: Any, ids: list[int]) -> list[str]:
    """Each id as its tokenizer spells it, or the id itself for a model that reads task tokens."""
    if held.tokenizer is None:
        return [str(i) for i in ids]
    return list(held.tokenizer.token_text(ids))


def read_prompt(held: Any, prompt: PromptIn, field: str = "prompt", max_tokens: int | None = None) -> Prompt:
    """The prompt as `held`'s model reads it, or an ApiError (field `field`) that names the limit it breaks.

    `max_tokens` lowers the limit below the model's context, for a page whose view grows with the
    square of the length (an attention pattern per head).
    """
    model, name = held.model, held.entry.id
    n_ctx = model.cfg.n_ctx
    if prompt.text is not None:
        if held.tokenizer is None:
            raise ApiError(
                f"{name} has no text tokenizer (it reads task tokens): give the prompt as ids from 0 to {model.cfg.d_vocab - 1}",
                status=422,
                field=field,
            )
        ids = token_ids(model, held.tokenizer, prompt.text)
        added_bos = model.bos_to_prepend(None) is not None
        if len(ids) == int(added_bos):
            raise ApiError("the prompt is empty: type at least one token", field=field)
    else:
        ids, added_bos = list(prompt.ids), False
        if not ids:
            raise ApiError("the prompt is empty: give at least one token id", field=field)
        bad = [i for i in ids if not 0 <= i < model.cfg.d_vocab]
        if bad:
            raise ApiError(
                f"token id {bad[0]} is outside {name}'s vocabulary: ids run from 0 to {model.cfg.d_vocab - 1}",
                field=field,
            )
    limit = n_ctx if max_tokens is None else min(n_ctx, max_tokens)
    if len(ids) > limit:
        reason = f"{name} reads at most {n_ctx} tokens" if limit == n_ctx else f"this page shows at most {limit}"
        raise ApiError(f"the prompt is {len(ids)} tokens; {reason}", status=413, field=field)
    return Prompt(ids, str_tokens(held, ids), added_bos)


def read_token(held: Any, text: str, field: str) -> int:
    """One token id the learner named as an answer: text that `held`'s tokenizer makes into exactly
    one token (a leading space counts: " Darcy"), or, for a model that reads task tokens, the id as
    digits. An ApiError (field `field`) names what it was instead."""
    d_vocab = held.model.cfg.d_vocab
    if held.tokenizer is None:
        if not text.strip().isdigit() or not 0 <= int(text) < d_vocab:
            raise ApiError(
                f"{field} {text!r:.40} is not a token id of {held.entry.id}: give an id from 0 to {d_vocab - 1}", field=field
            )
        return int(text)
    ids = list(held.tokenizer.encode(text))
    if len(ids) != 1:
        pieces = ", ".join(repr(s) for s in held.tokenizer.token_text(ids[:8])) + (", ..." if len(ids) > 8 else "")
        raise ApiError(
            f"{field} {text!r:.40} is {len(ids)} tokens ({pieces}) for {held.entry.id}; give one token"
            if ids
            else f"{field} is empty: give one token",
            field=field,
        )
    return ids[0]


def repeated_prompt(held: Any, half: int | None, seed: int, max_tokens: int | None = None) -> Prompt:
    """A random sequence of `half` tokens, then the same tokens again (the model's BOS first when it
    reads one): on the second copy, an induction head attends to the token after the earlier copy of
    the current one. `half=None` takes 20 tokens, or as many as fit twice in the context (and in
    `max_tokens`)."""
    from ..analysis.heads import repeated_random_tokens

    model = held.model
    bos = model.bos_to_prepend(None)
    limit = model.cfg.n_ctx if max_tokens is None else min(model.cfg.n_ctx, max_tokens)
    room = (limit - (bos is not None)) // 2
    if half is None:
        half = min(20, room)
    if not 1 <= half <= room:
        raise ApiError(
            f"half must be from 1 to {room} tokens, so that both copies fit in {limit} tokens; got {half}",
            field="half",
        )
    ids = repeated_random_tokens(model.cfg.d_vocab, batch=1, half=half, seed=seed, bos=bos)[0].tolist()
    return Prompt(ids, str_tokens(held, ids), bos is not None)


class PromptOut(BaseModel):
    ids: list[int]
    str_tokens: list[str]
    bos: bool = Field(description="ids[0] is a BOS the model adds to text")
    n_ctx: int = Field(description="the most tokens the model reads")
    d_vocab: int
    has_tokenizer: bool


class TokenizeBody(Body):
    model: str
    prompt: PromptIn


class RepeatedBody(Body):
    model: str
    half: bounded_int(1, MAX_IDS // 2) | None = None
    seed: bounded_int(0, 2**31 - 1) = 0
    max_tokens: bounded_int(2, MAX_IDS) | None = None


def _out(held: Any, prompt: Prompt) -> PromptOut:
    cfg = held.model.cfg
    return PromptOut(
        ids=prompt.ids,
        str_tokens=prompt.str_tokens,
        bos=prompt.bos,
        n_ctx=cfg.n_ctx,
        d_vocab=cfg.d_vocab,
        has_tokenizer=held.tokenizer is not None,
    )


@router.post("/tokenize", response_model=PromptOut)
def tokenize(body: TokenizeBody, request: Request) -> Response:
    with request.app.state.models.hold(body.model) as held:
        return reply(_out(held, read_prompt(held, body.prompt)))


@router.post("/repeated", response_model=PromptOut)
def repeated(body: RepeatedBody, request: Request) -> Response:
    with request.app.state.models.hold(body.model) as held:
        return reply(_out(held, repeated_prompt(held, body.half, body.seed, body.max_tokens)))
