"""Text generation with a key/value cache.

Each step feeds only the new token; every layer's keys and values for earlier positions are kept
in `KVCache`, so a step costs one position's work instead of the whole sequence's. The cached
path computes the same logits as running the full sequence (tests check that).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from .model import Input, Transformer


class KVCache:
    """Keys and values per layer, `[batch, kv_head, pos, d_head]`, in buffers that grow by doubling."""

    def __init__(self, n_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers
        self.length = 0  # positions already stored (and committed by `advance`)

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's keys and values for `layer`; return all of them so far."""
        new = k.shape[2]
        end = self.length + new
        buf_k, buf_v = self.keys[layer], self.values[layer]
        if buf_k is None or buf_k.shape[2] < end:
            size = max(end, 2 * (buf_k.shape[2] if buf_k is not None else 0), 64)
            grown_k = k.new_empty(*k.shape[:2], size, k.shape[3])
            grown_v = v.new_empty(*v.shape[:2], size, v.shape[3])
            if buf_k is not None:
                grown_k[:, :, : self.length] = buf_k[:, :, : self.length]
                grown_v[:, :, : self.length] = buf_v[:, :, : self.length]
            self.keys[layer], self.values[layer] = buf_k, buf_v = grown_k, grown_v
        buf_k[:, :, self.length : end] = k
        buf_v[:, :, self.length : end] = v
        return buf_k[:, :, :end], buf_v[:, :, :end]

    def advance(self, n: int) -> None:
        self.length += n


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row of `logits [batch, d_vocab]`. temperature 0 is greedy (argmax)."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = sampling_distribution(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def sampling_distribution(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """The probabilities `sample` draws from, for logits `[..., d_vocab]`: divide by the temperature,
    keep the top_k, keep the smallest set reaching top_p, softmax. Temperature 0 puts all of it on the argmax."""
    logits = logits.float()
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    logits = logits / temperature
    if top_k is not None:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:  # at 1.0, float32 rounding in the cumsum would still drop a tail
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens ranked above it already reach top_p (the top token always stays)
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    return logits.softmax(-1)


@torch.no_grad()  # not inference_mode: the tokens returned must be usable in a later forward with autograd
def generate(
    model: Transformer,
    input: Input,
    max_new_tokens: int = 20,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_kv_cache: bool = True,
    stop_at_eos: bool = True,
    eos_token_id: int | None = None,
    prepend_bos: bool | None = None,
    crop_context: bool = False,
    verbose: bool = False,
) -> Any:
    """Continue `input` by up to `max_new_tokens` tokens. Returns text when given text, else tokens
    `[batch, pos + new]`. temperature=0 is greedy; otherwise sample, optionally from the top_k
    tokens or the smallest set whose probability reaches top_p. `seed` makes sampling repeatable.
    crop_context lets a model with learned positions write past n_ctx: each new token is then predicted
    from the last n_ctx tokens only (as nanoGPT's sampler does), recomputed without the KV cache."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k}")
    as_text = isinstance(input, (str, list, tuple))
    if isinstance(input, (list, tuple)):
        rows = [model.to_tokens(text, prepend_bos) for text in input]
        if len({row.shape[1] for row in rows}) > 1:
            raise ValueError(
                "prompts of different token lengths cannot be generated as one batch yet (there is no "
                "padding mask); generate them one at a time, or give prompts of equal length"
            )
        tokens = torch.cat(rows)
    else:
        tokens = model._tokens(input, prepend_bos)
    n_ctx = model.cfg.n_ctx
    if model.cfg.positions == "learned" and tokens.shape[1] + max_new_tokens - 1 > n_ctx and not crop_context:
        raise ValueError(
            f"{tokens.shape[1]} prompt tokens + {max_new_tokens} new ones need more than the "
            f"n_ctx={n_ctx} positions this model learned; pass crop_context=True to predict "
            "from the last n_ctx tokens"
        )
    if eos_token_id is None and model.tokenizer is not None:
        eos_token_id = getattr(model.tokenizer, "eos_token_id", None)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=tokens.device).manual_seed(seed)
    cache = KVCache(model.cfg.n_layers) if use_kv_cache else None
    finished = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    step_input = tokens
    for _ in tqdm(range(max_new_tokens), disable=not verbose, desc="generating"):
        if crop_context and tokens.shape[1] > n_ctx:
            use_kv_cache, cache = False, None  # the window slides: every position changes, so recompute
        logits = model(step_input if use_kv_cache else tokens[:, -n_ctx:] if crop_context else tokens, kv_cache=cache)[:, -1]
        next_token = sample(logits, temperature, top_k, top_p, generator)
        if stop_at_eos and eos_token_id is not None:
            next_token = torch.where(finished, eos_token_id, next_token)
            finished |= next_token == eos_token_id
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        step_input = next_token[:, None]
        if stop_at_eos and eos_token_id is not None and bool(finished.all()):
            break
    if not as_text:
        return tokens
    bos_added = model.bos_to_prepend(prepend_bos) is not None
    texts = model.to_string(tokens[:, int(bos_added) :])  # each prompt and its continuation, without the BOS we added
    return texts[0] if isinstance(input, str) else texts
