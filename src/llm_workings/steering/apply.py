"""Applying steering vectors through the model's hooks, to forward passes and to `generate`.

    with steer(model, v):                        # or a list of vectors, at one hook or several
        text = model.generate("ROMEO:", 40)

Positions are absolute. With a KV cache, `generate` feeds the prompt once and then one new token
per step, and the model starts each step at the cache's length; `steer` reads that start from the
forward call itself, so "from position 10" means position 10 of the text with or without a cache,
and each new token is steered exactly once. The prompt's length is the length of the first forward
pass inside the block (the prompt, when the block holds one `generate`), unless given: so use one
`with steer(...)` per generation when the positions are "prompt" or "generated".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from .vector import SteeringVector

if TYPE_CHECKING:
    from ..transformer import Transformer

_KV_CACHE_ARG = 7  # kv_cache's place in Transformer.forward's signature, for a positional call


def position_mask(positions: Any, start: int, n: int, prompt_length: int) -> torch.Tensor | bool:
    """Which of the absolute positions start..start+n-1 a vector acts on: True (all), False (none)
    or a bool tensor `[n]`."""
    if positions == "all":
        return True
    first = prompt_length if positions == "generated" else 0 if positions == "prompt" else positions
    last = prompt_length if positions == "prompt" else start + n  # exclusive
    lo, hi = max(first, start), min(last, start + n)
    if lo >= hi:
        return False
    if lo == start and hi == start + n:
        return True
    mask = torch.zeros(n, dtype=torch.bool)
    mask[lo - start : hi - start] = True
    return mask


def edit(x: torch.Tensor, vector: SteeringVector, mask: torch.Tensor | bool) -> torch.Tensor:
    """`x` `[batch, pos, d]` with the vector added (or its direction ablated) where `mask` says."""
    v = vector.vector.to(x.device, x.dtype)
    if vector.mode == "add":
        delta = vector.coefficient * v
    else:
        unit = v / v.norm()
        delta = -vector.coefficient * (x @ unit)[..., None] * unit
    if mask is True:
        return x + delta
    return x + mask.to(x.device)[:, None] * delta


class _Positions:
    """The absolute start of the forward pass now running, and the prompt's length."""

    def __init__(self, prompt_length: int | None) -> None:
        self.start = 0
        self.prompt_length = prompt_length

    def before_forward(self, module: Any, args: tuple, kwargs: dict) -> None:
        cache = kwargs.get("kv_cache", args[_KV_CACHE_ARG] if len(args) > _KV_CACHE_ARG else None)
        self.start = 0 if cache is None else cache.length


@contextmanager
def steer(
    model: Transformer, vectors: SteeringVector | Iterable[SteeringVector], prompt_length: int | None = None
) -> Iterator[Transformer]:
    """Apply steering vectors for the body of a `with` block; each is checked against the model
    (hook and width) before anything is attached, and all are removed on exit."""
    vectors = [vectors] if isinstance(vectors, SteeringVector) else list(vectors)
    for vector in vectors:
        vector.check_for(model)
    where = _Positions(prompt_length)

    def hook_for(vector: SteeringVector):
        def apply(x: torch.Tensor, hook: Any) -> torch.Tensor | None:
            n = x.shape[1]
            if where.prompt_length is None:
                where.prompt_length = where.start + n
            mask = position_mask(vector.positions, where.start, n, where.prompt_length)
            return None if mask is False else edit(x, vector, mask)

        return apply

    handle = model.register_forward_pre_hook(where.before_forward, with_kwargs=True)
    try:
        with model.hooks([(vector.hook, hook_for(vector)) for vector in vectors]):
            yield model
    finally:
        handle.remove()
