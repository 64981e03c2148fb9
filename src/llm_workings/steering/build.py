"""Steering vectors from contrastive pairs: read each text of each pair at one hook and position,
then aggregate the (positive, negative) readings into one direction.

    pairs = [("...\\n\\nROMEO:\\n", "...\\n\\nJULIET:\\n"), ...]
    v = from_contrast(model, pairs, ("resid_pre", 2))                      # raw mean difference
    v = from_contrast(model, pairs, ("resid_pre", 2), aggregation="pca")   # unit norm, sign fixed

Aggregations (the conventions of the field, named in the vector's repr):
- "mean_diff": mean over pairs of positive - negative, unscaled (CAA, steering-vectors' default);
- "pca": the top right singular vector of the difference matrix (uncentred, so a shared shift is
  the direction found), unit norm, its sign fixed so that positives project higher on average
  (repeng's convention);
- "logistic": the weight of a logistic probe telling positives from negatives (analysis.probing),
  unit norm; its sign already points to the positive class.

The read position is "last" (each text's last token, whatever its length), a negative int counted
from each text's end, or a non-negative int (or one per pair) counted from the start: that one
names the same position in both texts only if they are the same number of tokens long, so pairs
of different lengths are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

from ..analysis.conventions import AnalysisError, check_tokens
from ..analysis.probing import harvest, train_probe
from .vector import SteeringError, SteeringVector, hook_width, steering_hook

if TYPE_CHECKING:
    from ..transformer import Transformer

Aggregation = Literal["mean_diff", "pca", "logistic"]
AGGREGATIONS = ("mean_diff", "pca", "logistic")
ReadAt = Literal["last"] | int | Sequence[int]
Text = str | torch.Tensor


def _tokens(model: Transformer, text: Text, what: str) -> torch.Tensor:
    if isinstance(text, str):
        return model.to_tokens(text)[0]
    try:
        tokens = check_tokens(model, text, what)
    except AnalysisError as e:
        raise SteeringError(str(e)) from None
    if tokens.shape[0] != 1:
        raise SteeringError(f"{what}: one text or one sequence of token ids per side of a pair; got a batch of {tokens.shape[0]}")
    return tokens[0]


def _read_positions(pairs: list[tuple[torch.Tensor, torch.Tensor]], read_at: ReadAt) -> list[tuple[int, int]]:
    """The absolute (positive, negative) position read in each pair, each checked against its text."""
    if read_at == "last":
        return [(len(p) - 1, len(n) - 1) for p, n in pairs]
    if isinstance(read_at, int):
        per_pair = [read_at] * len(pairs)
    elif isinstance(read_at, Sequence) and not isinstance(read_at, str):
        per_pair = [int(i) for i in read_at]
        if len(per_pair) != len(pairs):
            raise SteeringError(f"read_at gives {len(per_pair)} positions for {len(pairs)} pairs; give one per pair")
    else:
        raise SteeringError(f"read_at is 'last', a position (int), or one position per pair; got {read_at!r}")
    out = []
    for i, ((p, n), at) in enumerate(zip(pairs, per_pair)):
        if at >= 0 and len(p) != len(n):
            raise SteeringError(
                f"pair {i}: the texts are {len(p)} and {len(n)} tokens long, so position {at} counted from the "
                "start is not the same place in both; give pairs of equal token length, or read at 'last' or a "
                "negative position (counted from each text's end)"
            )
        for side, tokens in (("positive", p), ("negative", n)):
            if not -len(tokens) <= at < len(tokens):
                raise SteeringError(f"pair {i}: read position {at} is past the {side} prompt, which is {len(tokens)} tokens long")
        out.append((at % len(p), at % len(n)))
    return out


@torch.no_grad()
def contrast_readings(
    model: Transformer, pairs: Sequence[tuple[Text, Text]], hook: str | tuple[str, int], read_at: ReadAt = "last"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The activations at `hook` of every positive and every negative text at the read position,
    as `[n_pairs, d]` float32 each (rows in the order of `pairs`)."""
    pairs = list(pairs)
    if not pairs:
        raise SteeringError("the list of contrast pairs is empty; give at least one (positive, negative) pair")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise SteeringError(f"pair {i} should be (positive, negative); got {type(pair).__name__}")
    name = steering_hook(model, hook)
    hook_width(model, name)
    tokens = [
        (_tokens(model, p, f"pair {i} positive"), _tokens(model, n, f"pair {i} negative")) for i, (p, n) in enumerate(pairs)
    ]
    positions = _read_positions(tokens, read_at)
    layer = name.split(".")[1] if name.startswith("blocks.") else None
    stop = int(layer) + 1 if layer is not None and not name.startswith("ln_final") else None
    texts = [t for pair in tokens for t in pair]
    reads = [at for pair in positions for at in pair]
    rows: list[torch.Tensor | None] = [None] * len(texts)
    by_length: dict[int, list[int]] = {}
    for i, t in enumerate(texts):
        by_length.setdefault(len(t), []).append(i)
    for indices in by_length.values():  # one forward per token length: no padding to get wrong
        batch = torch.stack([texts[i] for i in indices])
        _, cache = model.run_with_cache(batch, names_filter=[name], stop_at_layer=stop, return_type=None)
        act = cache[name].float()
        for row, i in enumerate(indices):
            rows[i] = act[row, reads[i]].cpu()
    readings = torch.stack(rows)
    return readings[0::2], readings[1::2]


def aggregate(
    positives: torch.Tensor, negatives: torch.Tensor, aggregation: Aggregation = "mean_diff"
) -> tuple[torch.Tensor, str, dict]:
    """One direction from paired readings `[n, d]` -> (vector `[d]`, its normalisation, metadata)."""
    if aggregation not in AGGREGATIONS:
        raise SteeringError(f"aggregation is one of {', '.join(AGGREGATIONS)}; got {aggregation!r}")
    diffs = positives - negatives
    if aggregation == "mean_diff":
        return diffs.mean(0), "raw mean difference", {}
    if aggregation == "pca":
        _, singular, vh = torch.linalg.svd(diffs, full_matrices=False)
        direction = vh[0]
        if float((diffs @ direction).mean()) < 0:  # an SVD's sign is arbitrary: make positives project higher
            direction = -direction
        explained = float(singular[0] ** 2 / (singular**2).sum()) if float(singular.sum()) > 0 else 0.0
        return direction, "unit norm (PCA of differences)", {"explained": explained}
    if len(positives) < 3:
        raise SteeringError(f"a logistic probe needs at least 3 pairs (it holds some out to score itself); got {len(positives)}")
    X = torch.cat([positives, negatives])
    y = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))]).long()
    probe = train_probe(X, y, "logistic")
    weight = probe.weights[0].float()
    return weight / weight.norm(), "unit norm (logistic probe weight)", {"probe_test_accuracy": probe.test_score}


def from_contrast(
    model: Transformer,
    pairs: Sequence[tuple[Text, Text]],
    hook: str | tuple[str, int],
    read_at: ReadAt = "last",
    aggregation: Aggregation = "mean_diff",
    **fields: Any,
) -> SteeringVector:
    """A steering vector from contrastive (positive, negative) pairs read at `hook` and `read_at`;
    `fields` set the coefficient, positions and mode of the vector."""
    positives, negatives = contrast_readings(model, pairs, hook, read_at)
    vector, normalisation, meta = aggregate(positives, negatives, aggregation)
    meta = {
        "aggregation": aggregation,
        "n_pairs": len(positives),
        "read_at": read_at if isinstance(read_at, (str, int)) else list(read_at),
        **meta,
    }
    return SteeringVector(steering_hook(model, hook), vector, normalisation=normalisation, metadata=meta, **fields)


def from_probe(model: Transformer, tokens: Any, labels: Any, hook: str | tuple[str, int], **fields: Any) -> SteeringVector:
    """The unit-norm weight of a logistic probe that reads a binary property of each position (labels
    `[batch, pos]`, 1 where it holds) from the activations at `hook` on `tokens` `[batch, pos]`; its
    sign points to where the property holds. The probe's held-out accuracy is in the metadata, so a
    direction from a probe that could not read the property shows as such."""
    hook = steering_hook(model, hook)
    labels = torch.as_tensor(labels).reshape(-1)
    if labels.numel() == 0 or not set(labels.unique().tolist()) == {0, 1}:
        raise SteeringError("a probe needs labels of both classes, 0 and 1, at the given positions")
    try:
        features = harvest(model, tokens, [hook], progress=False)[hook]
    except AnalysisError as e:
        raise SteeringError(str(e)) from None
    if features.shape[0] != labels.numel():
        raise SteeringError(f"got {labels.numel()} labels for {features.shape[0]} positions; give one label per token")
    probe = train_probe(features, labels)
    norm = float(probe.weights[0].norm())
    if norm == 0:
        raise SteeringError("the probe's weight is zero: it found no direction for this property")
    meta = {"probe_test_accuracy": probe.test_score, "n_positions": int(labels.numel()), **fields.pop("metadata", {})}
    return SteeringVector(
        hook, probe.weights[0] / norm, normalisation="unit norm (logistic probe weight)", metadata=meta, **fields
    )
