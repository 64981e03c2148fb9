"""Attention heads from a model run: their patterns, and scores that say what kind of head each one is.

    tokens = repeated_random_tokens(model, batch=16, half=20, seed=0)   # [BOS, r, r]
    scores = head_scores(model, tokens)          # HeadScores: [layer, head] per kind
    scores.top("induction", 1)                   # [(1, 2, 0.93)]: layer 1, head 2
    scores.plot("heads.png")
    detect_head_scores(model, tokens, "induction_head")   # TransformerLens's head_detector numbers
    head_pattern(model, tokens, layer=1, head=2).plot("L1H2.png")

Two families of score, both built on the same "where would an ideal head look" masks
(`detection_patterns`, one 0/1 matrix [query, key] per prompt):

- `previous_token`, `duplicate_token`, `induction` (ARENA's scores): the attention a query puts on its
  target keys, averaged over the queries that have a target. A previous-token head looks at q - 1; a
  duplicate-token head at earlier positions holding the same token; an induction head at the positions
  just after those earlier occurrences (where the token it should predict was seen before). The masks
  come from the tokens themselves, so the scores work on any text, not only on repeated halves.
- `detection_score` (TransformerLens's `head_detector`, "mul" measure): per prompt, the share of all
  attention that lands on the mask, queries without a target included; then the mean over prompts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data.tasks import repeated_tokens
from ..transformer.cache import ActivationCache
from .conventions import AnalysisError, check_index, check_tokens
from .results import Result, heatmap

if TYPE_CHECKING:
    from ..transformer import Transformer

# TransformerLens's head_detector names; the plain names are the ARENA-style scores below.
HEAD_KINDS = ("previous_token_head", "duplicate_token_head", "induction_head")
SCORE_KINDS = {"previous_token": "previous_token_head", "duplicate_token": "duplicate_token_head", "induction": "induction_head"}


def repeated_random_tokens(
    model_or_vocab: Transformer | int, batch: int = 8, half: int = 20, seed: int = 0, bos: int | None = 0, distinct: bool = False
) -> torch.Tensor:
    """[batch, (1) + 2 * half] sequences [BOS, r, r]: random tokens r, then the same tokens again.

    `model_or_vocab` is a model (its d_vocab and device are used) or a vocabulary size. With
    `distinct=True` no token repeats within a half, so each token of the second copy has exactly one
    earlier occurrence (the layout where ARENA's fixed-offset scores and ours coincide exactly).
    """
    d_vocab = model_or_vocab if isinstance(model_or_vocab, int) else model_or_vocab.cfg.d_vocab
    device = None if isinstance(model_or_vocab, int) else model_or_vocab.W_E.device
    rng = np.random.default_rng(seed)
    if not distinct:
        return torch.from_numpy(repeated_tokens(rng, batch, half, d_vocab, bos)).to(device)
    pool = np.array([t for t in range(d_vocab) if t != bos])
    if not 1 <= half <= len(pool) or batch < 1:
        raise AnalysisError(
            f"distinct halves need 1 <= half <= {len(pool)} tokens and batch >= 1; got half={half}, batch={batch}"
        )
    body = np.stack([rng.choice(pool, size=half, replace=False) for _ in range(batch)])
    rows = np.concatenate([body, body], axis=1)
    if bos is not None:
        rows = np.concatenate([np.full((batch, 1), bos), rows], axis=1)
    return torch.from_numpy(rows.astype(np.int64)).to(device)


# -- patterns -------------------------------------------------------------------------------------
def attention_patterns(model: Transformer, tokens_or_cache: torch.Tensor | ActivationCache) -> torch.Tensor:
    """Every head's attention pattern, [layer, batch, head, query_pos, key_pos].

    Pass tokens (the model runs with only `hook_pattern` cached) or a cache that holds the patterns.
    """
    if isinstance(tokens_or_cache, ActivationCache):
        cache = tokens_or_cache
    else:
        tokens = check_tokens(model, tokens_or_cache)
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("attn.hook_pattern"))
    return torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])


def detection_patterns(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """The 0/1 pattern an ideal head of each kind would show, {kind: [batch, query_pos, key_pos]}
    (or [query_pos, key_pos] for tokens [pos]), built as TransformerLens's head_detector builds them:

    - previous_token_head: key = query - 1;
    - duplicate_token_head: earlier keys holding the query's token (not the query itself);
    - induction_head: the key just after each of those earlier occurrences (never beyond the query).
    """
    if not isinstance(tokens, torch.Tensor) or tokens.is_floating_point() or tokens.ndim not in (1, 2):
        shape = list(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise AnalysisError(f"detection patterns are built from token ids, an integer tensor [batch, pos] or [pos]; got {shape}")
    batch = (tokens if tokens.ndim == 2 else tokens[None]).cpu()
    n = batch.shape[-1]
    earlier = torch.ones(n, n, dtype=torch.bool).tril(-1)  # key < query
    previous = torch.diag(torch.ones(n - 1, dtype=torch.bool), -1)
    duplicate = (batch[:, :, None] == batch[:, None, :]) & earlier  # [batch, query, key]
    induction = torch.zeros_like(duplicate)
    induction[:, :, 1:] = duplicate[:, :, :-1]  # earlier occurrence at k - 1 -> attend to k, and k <= query
    patterns = {
        "previous_token_head": previous.expand_as(duplicate),
        "duplicate_token_head": duplicate,
        "induction_head": induction,
    }
    squeeze = tokens.ndim == 1
    return {kind: (p[0] if squeeze else p).float().to(tokens.device) for kind, p in patterns.items()}


def _check_kind(kind: str, allowed) -> None:
    if kind not in allowed:
        raise AnalysisError(f"unknown head kind {kind!r}; expected one of {', '.join(map(repr, allowed))}")


# -- ARENA-style scores ---------------------------------------------------------------------------
def target_attention(pattern: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean attention on the target keys over the queries that have any: pattern [layer, batch, head,
    q, k] and targets [batch, q, k] (0/1) -> [layer, head]. NaN where no query has a target."""
    if pattern.ndim != 5 or targets.shape != (pattern.shape[1], *pattern.shape[3:]):
        raise AnalysisError(
            f"expected pattern [layer, batch, head, q, k] and targets [batch, q, k]; "
            f"got {list(pattern.shape)} and {list(targets.shape)}"
        )
    targets = targets.to(pattern.dtype)
    on_target = torch.einsum("lbhqk,bqk->lhbq", pattern, targets)  # attention each query puts on its targets
    has_target = targets.amax(-1)  # [batch, q]
    return (on_target * has_target).sum((-2, -1)) / has_target.sum()


def head_kind_score(pattern: torch.Tensor, tokens: torch.Tensor, kind: str) -> torch.Tensor:
    """ "previous_token", "duplicate_token" or "induction" score per [layer, head] (see module doc)."""
    _check_kind(kind, SCORE_KINDS)
    targets = detection_patterns(tokens)[SCORE_KINDS[kind]]
    return target_attention(pattern, targets if targets.ndim == 3 else targets[None])


def attention_entropy(pattern: torch.Tensor, per_query: bool = False) -> torch.Tensor:
    """Entropy of each attention distribution in nats, pattern [layer, batch, head, q, k] -> [layer, head]
    (mean over batch and queries), or [layer, head, q] (mean over batch) with `per_query`.
    A head spreading evenly over n keys scores log(n); one attending a single key scores 0."""
    if pattern.ndim != 5:
        raise AnalysisError(f"expected pattern [layer, batch, head, q, k]; got {list(pattern.shape)}")
    entropy = -torch.special.xlogy(pattern, pattern).sum(-1)  # xlogy: 0 * log 0 = 0 for masked keys
    entropy = entropy.mean(1)
    return entropy if per_query else entropy.mean(-1)


# -- TransformerLens's detector -------------------------------------------------------------------
def detection_score(
    pattern: torch.Tensor, detection_pattern: torch.Tensor, exclude_bos: bool = False, exclude_current_token: bool = False
) -> torch.Tensor:
    """TransformerLens's head_detector score ("mul"): for each head and prompt, the attention on the
    detection pattern divided by all attention (after zeroing the BOS column and/or the diagonal when
    excluded); then the mean over prompts, as detect_head averages a list of prompts.

    pattern: [..., batch, head, q, k] (e.g. [layer, batch, head, q, k] -> [layer, head]), or [head, q, k]
    / [q, k] for one prompt. detection_pattern: [q, k], or [batch, q, k] (one per prompt).
    """
    if pattern.ndim < 2 or pattern.shape[-1] != pattern.shape[-2]:
        raise AnalysisError(f"expected square attention patterns [..., q, k]; got {list(pattern.shape)}")
    given_ndim = pattern.ndim
    if given_ndim <= 3:
        pattern = pattern.reshape(1, -1, *pattern.shape[-2:])  # [batch 1, head, q, k]
    if detection_pattern.ndim == 2:
        detection_pattern = detection_pattern[None]
    if (
        detection_pattern.ndim != 3
        or detection_pattern.shape[-2:] != pattern.shape[-2:]
        or detection_pattern.shape[0] not in (1, pattern.shape[-4])
    ):
        raise AnalysisError(
            f"detection pattern {list(detection_pattern.shape)} does not fit attention patterns "
            f"{list(pattern.shape)}; expected [q, k] or [batch, q, k]"
        )
    keep = torch.ones(pattern.shape[-2:], dtype=pattern.dtype, device=pattern.device)
    if exclude_bos:
        keep[:, 0] = 0
    if exclude_current_token:
        keep.fill_diagonal_(0)
    pattern = pattern * keep
    hits = (pattern * detection_pattern[:, None].to(pattern)).sum((-2, -1))  # [..., batch, head]
    scores = (hits / pattern.sum((-2, -1))).mean(-2)
    return scores[0] if given_ndim == 2 else scores


def detect_head_scores(
    model: Transformer,
    tokens: torch.Tensor,
    kind: str | torch.Tensor,
    exclude_bos: bool = False,
    exclude_current_token: bool = False,
) -> torch.Tensor:
    """[layer, head] detection scores on tokens [batch, pos]: the numbers TransformerLens's
    `detect_head(model, prompts, kind)` gives for the same prompts. `kind` is a HEAD_KINDS name or a
    detection pattern [pos, pos]."""
    tokens = check_tokens(model, tokens)
    if isinstance(kind, str):
        _check_kind(kind, HEAD_KINDS)
        kind = detection_patterns(tokens)[kind]
    return detection_score(attention_patterns(model, tokens), kind, exclude_bos, exclude_current_token)


# -- results --------------------------------------------------------------------------------------
@dataclass
class HeadScores(Result):
    """Scores per [layer, head], one tensor per kind, e.g. {"induction": [layer, head], ...}."""

    scores: dict[str, torch.Tensor]
    layer_labels: list[str] = field(default_factory=list)
    head_labels: list[str] = field(default_factory=list)
    result_type = "head_scores"

    def __post_init__(self) -> None:
        n_layers, n_heads = next(iter(self.scores.values())).shape
        self.layer_labels = self.layer_labels or [f"L{i}" for i in range(n_layers)]
        self.head_labels = self.head_labels or [f"H{i}" for i in range(n_heads)]

    def top(self, kind: str, n: int = 3) -> list[tuple[int, int, float]]:
        """The n highest-scoring heads of a kind as (layer, head, score), best first."""
        _check_kind(kind, self.scores)
        values = self.scores[kind]
        order = values.flatten().nan_to_num(float("-inf")).argsort(descending=True)[:n]
        heads = values.shape[1]
        return [(int(i) // heads, int(i) % heads, float(values.flatten()[i])) for i in order]

    def draw(self, fig: Any) -> None:
        axes = fig.subplots(1, len(self.scores), squeeze=False)[0]
        for ax, (kind, values) in zip(axes, self.scores.items()):
            unit = "nats" if kind == "entropy" else "mean attention"
            heatmap(
                ax,
                values,
                self.head_labels,
                self.layer_labels,
                title=kind.replace("_", " "),
                xlabel="head",
                ylabel="layer",
                centered=False,
                colorbar_label=unit,
            )


def head_scores(
    model: Transformer,
    tokens: torch.Tensor,
    kinds: tuple[str, ...] = ("previous_token", "duplicate_token", "induction", "entropy"),
) -> HeadScores:
    """Run the model once and score every head by each kind (the SCORE_KINDS, and "entropy")."""
    for kind in kinds:
        _check_kind(kind, (*SCORE_KINDS, "entropy"))
    tokens = check_tokens(model, tokens)
    pattern = attention_patterns(model, tokens)
    return HeadScores(
        {kind: attention_entropy(pattern) if kind == "entropy" else head_kind_score(pattern, tokens, kind) for kind in kinds}
    )


@dataclass
class AttentionPattern(Result):
    """One head's attention on one prompt, [query_pos, key_pos], with the tokens as labels."""

    pattern: torch.Tensor
    str_tokens: list[str]  # the prompt's tokens as text (or ids), the axes' labels
    layer: int
    head: int
    result_type = "attention_pattern"

    def draw(self, fig: Any) -> None:
        ax = fig.add_subplot()
        heatmap(
            ax,
            self.pattern,
            self.str_tokens,
            self.str_tokens,
            title=f"attention pattern L{self.layer}H{self.head}",
            xlabel="key (attended to)",
            ylabel="query",
            centered=False,
            colorbar_label="attention",
        )


def head_pattern(
    model: Transformer, tokens: torch.Tensor, layer: int, head: int, prompt: int = 0, labels: list[str] | None = None
) -> AttentionPattern:
    """The pattern of head `head` in `layer` on prompt `prompt` of tokens, labelled with its tokens
    (decoded by the model's tokenizer when it has one, else the ids)."""
    tokens = check_tokens(model, tokens)
    check_index("layer", layer, model.cfg.n_layers)
    check_index("head", head, model.cfg.n_heads)
    check_index("prompt", prompt, tokens.shape[0])
    row = tokens[prompt : prompt + 1]
    pattern = attention_patterns(model, row)[layer, 0, head]
    if labels is None:
        labels = model.to_str_tokens(row) if model.tokenizer is not None else [str(t) for t in row[0].tolist()]
    if len(labels) != row.shape[1]:
        raise AnalysisError(f"got {len(labels)} labels for {row.shape[1]} tokens")
    return AttentionPattern(pattern, list(labels), layer, head)
