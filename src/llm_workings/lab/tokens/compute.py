"""The Tokens page's engine side: what a model predicts at every position of a text, and sampling.

Pure functions of (model, token ids, settings); torch is imported by the caller's first use of a
model, never at import time of the lab. Every number the page shows comes from here:

    ids = token_ids(model, tokenizer, "To be, or not to be")  # from lab/prompts.py
    pred = predict(model, ids, k=10)           # one forward pass
    pred.top_probs[i]                          # the k likeliest tokens after position i
    pred.next_prob[i], pred.next_loss[i]       # what it gave the token that actually came next
    reshape(pred.last_logits, temperature=0.5, top_k=None, top_p=0.9, k=10)
    continue_text(model, ids, temperature=0.8, top_k=None, top_p=None, seed=1, max_new_tokens=20)

A model reads at most `n_ctx` tokens. A longer text is read in overlapping windows of n_ctx
tokens, half a window apart, batched into the same single forward pass; each position is
predicted in the earliest window that holds it, so it sees at least n_ctx/2 tokens before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Predictions:
    """Per position i of `ids` (the prediction made after reading token i, for token i + 1)."""

    ids: list[int]  # the tokens as the model read them, a BOS first when the model adds one
    top_ids: Any  # [pos, k] int64: the k likeliest next tokens, likeliest first
    top_probs: Any  # [pos, k] float32
    next_prob: Any  # [pos - 1] float32: the probability given to ids[i + 1]
    next_loss: Any  # [pos - 1] float32: -ln next_prob, in nats
    context: list[int]  # [pos]: how many tokens (this one included) prediction i was made from
    last_logits: Any  # [d_vocab] float32: the logits after the last token, for the sampling panel

    @property
    def surprise_bits(self) -> Any:
        """-log2 of next_prob: the loss in bits. 1 bit is a coin flip's worth of surprise."""
        return self.next_loss / LN2

    @property
    def windowed(self) -> bool:
        return any(c < i + 1 for i, c in enumerate(self.context))


def window_starts(n: int, n_ctx: int) -> list[int]:
    """Where each window of n_ctx tokens starts: one window when the text fits, else half a window apart,
    the last one ending at the text's end."""
    if n <= n_ctx:
        return [0]
    stride = max(1, n_ctx // 2)
    starts = list(range(0, n - n_ctx, stride))
    return starts + [n - n_ctx]


def context_start(n: int, n_ctx: int, position: int) -> int:
    """Where the context of `position`'s prediction starts in a text of n tokens: the start of the
    earliest window that holds it."""
    starts = window_starts(n, n_ctx)
    return starts[_earliest(starts, min(n, n_ctx), position)]


def _earliest(starts: list[int], width: int, position: int) -> int:
    """The index in `starts` of the earliest window of `width` tokens that holds `position`."""
    return next(w for w, s in enumerate(starts) if position < s + width)


def windowed_logits(model: Any, ids: list[int]) -> tuple[Any, list[int]]:
    """Logits `[pos, d_vocab]` for `ids` in one forward pass (a batch of windows when the text is longer
    than n_ctx), and the context length each row was predicted from."""
    import torch

    n, n_ctx = len(ids), model.cfg.n_ctx
    tokens = torch.tensor(ids, dtype=torch.long, device=model.W_E.device)
    starts = window_starts(n, n_ctx)
    width = min(n, n_ctx)
    batch = torch.stack([tokens[s : s + width] for s in starts])
    logits = model(batch)  # [windows, width, d_vocab]
    if len(starts) == 1:
        return logits[0], list(range(1, n + 1))
    # position i goes to the earliest window that holds it: the one giving it the most context
    window = [_earliest(starts, width, i) for i in range(n)]
    rows = logits[torch.tensor(window), torch.tensor([i - starts[w] for i, w in enumerate(window)])]
    return rows, [i - starts[w] + 1 for i, w in enumerate(window)]


def predict(model: Any, ids: list[int], k: int) -> Predictions:
    """The top `k` next tokens at every position, and each actual next token's probability and loss.

    One forward pass; the log-normaliser is taken once per row (logsumexp), so no second
    `[pos, d_vocab]` tensor of probabilities is built."""
    import torch

    if not ids:
        raise ValueError("predict needs at least one token")
    with torch.inference_mode():
        logits, context = windowed_logits(model, ids)
        logits = logits.float()
        log_norm = logits.logsumexp(-1)  # [pos]
        top_logits, top_ids = logits.topk(min(k, logits.shape[-1]), dim=-1)
        top_probs = (top_logits - log_norm[:, None]).exp()
        targets = torch.tensor(ids[1:], dtype=torch.long, device=logits.device)
        next_logprob = logits[:-1].gather(-1, targets[:, None])[:, 0] - log_norm[:-1]
        return Predictions(
            ids=list(ids),
            top_ids=top_ids.cpu(),
            top_probs=top_probs.cpu(),
            next_prob=next_logprob.exp().cpu(),
            next_loss=(-next_logprob).cpu(),
            context=context,
            last_logits=logits[-1].cpu().clone(),
        )


def logits_after(model: Any, ids: list[int]) -> Any:
    """The logits `[d_vocab]` predicted after the last of `ids` (from its last n_ctx tokens)."""
    return logits_at(model, ids, len(ids) - 1)


def logits_at(model: Any, ids: list[int], position: int) -> Any:
    """The logits `[d_vocab]` of the prediction made after token `position`, from the same context
    `predict` used for it (so the sampling panel and the bars agree on a text longer than n_ctx)."""
    import torch

    window = ids[context_start(len(ids), model.cfg.n_ctx, position) : position + 1]
    with torch.inference_mode():
        tokens = torch.tensor([window], dtype=torch.long, device=model.W_E.device)
        return model(tokens)[0, -1].float().cpu().clone()


@dataclass(frozen=True)
class Reshaped:
    """One position's distribution before and after the sampling settings, on its k likeliest tokens."""

    ids: Any  # [k] the k likeliest tokens at temperature 1, likeliest first
    before: Any  # [k] their probabilities at temperature 1, no cut
    after: Any  # [k] their probabilities under the settings
    kept: int  # how many tokens of the vocabulary can still be drawn
    entropy_before: float  # bits
    entropy_after: float  # bits


def reshape(logits: Any, temperature: float, top_k: int | None, top_p: float | None, k: int) -> Reshaped:
    import torch

    from ...transformer.generate import sampling_distribution

    with torch.inference_mode():
        before = logits.float().softmax(-1)
        after = sampling_distribution(logits, temperature, top_k, top_p)  # what the sample button draws from
        top_before, ids = before.topk(min(k, before.shape[-1]))
        return Reshaped(
            ids=ids,
            before=top_before,
            after=after[ids],
            kept=int((after > 0).sum()),
            entropy_before=_entropy_bits(before),
            entropy_after=_entropy_bits(after),
        )


def _entropy_bits(probs: Any) -> float:
    import torch

    terms = torch.where(probs > 0, probs * probs.clamp_min(1e-45).log2(), torch.zeros_like(probs))
    return float(-terms.sum())


def continue_text(
    model: Any,
    ids: list[int],
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int,
    max_new_tokens: int,
    eos_token_id: int | None = None,
) -> list[int]:
    """The ids `model.generate` adds after `ids` with these settings and this seed (KV cache on; past
    n_ctx, a learned-positions model predicts from its last n_ctx tokens)."""
    import torch

    tokens = torch.tensor([ids], dtype=torch.long, device=model.W_E.device)
    out = model.generate(
        tokens,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        use_kv_cache=True,
        stop_at_eos=eos_token_id is not None,
        eos_token_id=eos_token_id,
        crop_context=True,
    )
    return out[0, len(ids) :].tolist()
