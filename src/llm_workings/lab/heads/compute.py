"""The Attention heads page's engine side: pure functions of (model, token ids, choices), built on the
analysis toolkit's patterns, head scores and circuits (`analysis/heads.py`, `analysis/circuits.py`).

    tokens = prompt.tensor()                       # [1, pos], from lab/prompts.py
    g = grid(model, tokens)                        # every head's pattern, its scores, attention by distance
    g.patterns[1, 2]                               # [query, key]: head L1H2, as run_with_cache gives it
    g.scores["induction"]                          # [layer, head]: head_scores' numbers on this prompt
    induction_heads(g.scores)                      # [(1, 0), (1, 1), ...]: the heads the page names
    one = head_detail(model, tokens, 1, 2, query=30, key=None)   # its pattern, q.k against distance
    qk, ov = head_circuits(model, 1, 2)            # full_QK and full_OV [d_vocab, d_vocab]
    position_similarity(model, 64)                 # cosine similarity of learned position embeddings

torch is imported lazily, so that importing the lab stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCORE_KINDS = ("previous_token", "duplicate_token", "induction", "entropy")
# A head the page calls an induction head puts at least this much attention, on average, on the
# token after an earlier copy of the current one. The bundled induction-2l's layer-1 heads score
# 0.74 to 0.94 on repeated random tokens; heads that do not induct stay under 0.05 there.
INDUCTION_THRESHOLD = 0.4


@dataclass(frozen=True)
class Grid:
    patterns: Any  # [layer, head, query, key] float32: every head's attention on the prompt
    scores: dict[str, Any]  # kind -> [layer, head] float32, as analysis.heads.head_scores computes them
    by_distance: Any  # [layer, head, pos] float32: mean attention from a query to the key d tokens back


def pattern_cache(model: Any, tokens: Any) -> Any:
    """The patterns of every layer, as a bare `run_with_cache` of `hook_pattern` gives them: [layer, batch, head, q, k]."""
    import torch

    from ...analysis.heads import attention_patterns

    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("attn.hook_pattern"))
    return attention_patterns(model, cache)


def scores_from_patterns(pattern: Any, tokens: Any) -> dict[str, Any]:
    """`head_scores`' four kinds from patterns already computed ([layer, batch, head, q, k]), so the
    page runs the model once: the same toolkit functions head_scores calls, on the same patterns, with
    the detection masks built once for the three kinds."""
    from ...analysis.heads import SCORE_KINDS as MASK_OF
    from ...analysis.heads import attention_entropy, detection_patterns, target_attention

    masks = detection_patterns(tokens)
    scores = {kind: target_attention(pattern, masks[MASK_OF[kind]]) for kind in SCORE_KINDS if kind != "entropy"}
    scores["entropy"] = attention_entropy(pattern)
    return scores


def attention_by_distance(patterns: Any) -> Any:
    """[layer, head, q, k] -> [layer, head, pos]: entry d is the mean, over the queries q >= d, of the
    attention q puts on key q - d (d = 0 is a token attending to itself)."""
    n = patterns.shape[-1]
    # Read the diagonals as columns without a gather: in the key-reversed pattern, entry (q, k = q - d)
    # sits at flat index (n - 1) + q (n - 1) + d, a strided view; entries with d > q are not keys and are cut.
    flipped = patterns.flip(-1).reshape(*patterns.shape[:-2], n * n)
    strides = (*flipped.stride()[:-1], n - 1, 1)
    by_query = flipped.as_strided((*patterns.shape[:-2], n, n), strides, flipped.storage_offset() + n - 1)  # [..., q, d]
    counts = n - patterns.new_tensor(range(n))  # queries that have a key d back: n - d
    return by_query.tril().sum(-2) / counts


def grid(model: Any, tokens: Any) -> Grid:
    """Every head's pattern on `tokens` [1, pos], scored by each kind, in one forward pass."""
    pattern = pattern_cache(model, tokens)
    patterns = pattern[:, 0]
    return Grid(patterns, scores_from_patterns(pattern, tokens), attention_by_distance(patterns))


def induction_heads(scores: dict[str, Any], threshold: float = INDUCTION_THRESHOLD) -> list[tuple[int, int]]:
    """The (layer, head) pairs whose induction score on this prompt reaches `threshold`, best first.
    None when the prompt repeats nothing (every score is NaN: no query has an earlier copy)."""
    values = scores["induction"]
    flat = values.flatten().tolist()
    order = sorted((i for i, v in enumerate(flat) if v >= threshold), key=lambda i: -flat[i])  # NaN is never >=
    heads = values.shape[1]
    return [(i // heads, i % heads) for i in order]


@dataclass(frozen=True)
class HeadDetail:
    pattern: Any  # [query, key] float32
    query: int  # the query the rotary pair is taken from
    key: int  # and the key (the one `query` attends to most, unless chosen)
    rotary_scores: Any | None  # [distance] float32: q.k * scale with the query `distance` tokens after the key
    actual_score: float | None  # the score the model computed for (query, key): rotary_scores[query - key]


def head_detail(model: Any, tokens: Any, layer: int, head: int, query: int | None, key: int | None) -> HeadDetail:
    """One head's pattern on `tokens`, and for a rotary model how its score for the pair (q at
    `query`, k at `key`) changes when the same two vectors are moved to every relative distance."""
    import torch

    n = tokens.shape[1]
    rotary = model.cfg.positions == "rotary"
    attn = f"blocks.{layer}.attn."
    # every layer's pattern, as the grid caches them, so that the one head's pattern is the grid's to the bit
    extra = {attn + "hook_q", attn + "hook_k", attn + "hook_attn_scores"} if rotary else set()
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("attn.hook_pattern") or name in extra)
    pattern = cache[attn + "hook_pattern"][0, head]
    query = n - 1 if query is None else query
    key = int(pattern[query].argmax()) if key is None else key
    if not rotary:
        return HeadDetail(pattern, query, key, None, None)
    kv_head = head // model.cfg.group_size
    q = cache[attn + "hook_q"][0, query, head]
    k = cache[attn + "hook_k"][0, key, kv_head]
    curve = rotary_scores(model, layer, q, k, model.cfg.n_ctx)
    actual = float(cache[attn + "hook_attn_scores"][0, head, query, key])
    return HeadDetail(pattern, query, key, curve, actual)


def rotary_scores(model: Any, layer: int, q: Any, k: Any, distances: int) -> Any:
    """[distances]: the attention score of query vector q placed d positions after key vector k, for
    d = 0, 1, ...: the model's own rotation of both (its Rotary module) and its own 1/sqrt(d_head) scale.
    Rotary scores depend only on d, so the key is put at position 0."""
    import torch

    attn = model.blocks[layer].attn
    with torch.no_grad():
        q_rot = attn.rotary(q.expand(1, distances, 1, q.shape[-1]).contiguous(), 0)[0, :, 0]  # [d, d_head]
        k_rot = attn.rotary(k.reshape(1, 1, 1, -1), 0)[0, 0, 0]
        return (q_rot * attn.scale) @ k_rot


def head_circuits(model: Any, layer: int, head: int) -> tuple[Any, Any]:
    """(full_QK, full_OV) of one head, each [d_vocab, d_vocab]: rows are the query (QK) or the attended
    (OV) token, columns the key token (QK) or the token whose logit moves (OV)."""
    from ...analysis.circuits import full_OV, full_QK

    with _no_grad():
        return full_QK(model)[layer, head].AB, full_OV(model)[layer, head].AB


def copying_scores(model: Any) -> Any:
    """[layer, head]: the toolkit's eigenvalue copying score of each head's full OV circuit."""
    from ...analysis.circuits import copying_scores as scores

    with _no_grad():
        return scores(model)


def position_similarity(model: Any, n: int) -> Any:
    """[n, n]: cosine similarity between the learned embeddings of positions 0 .. n - 1."""
    import torch

    with torch.no_grad():
        rows = torch.nn.functional.normalize(model.W_pos[:n].float(), dim=-1)
        return rows @ rows.T


def _no_grad() -> Any:
    import torch

    return torch.no_grad()
