"""What the Inside tests compare the page against: every number a walk shows, looked up in a full
`run_with_cache` of the same tokens, and the derived ones worked out again here."""

from __future__ import annotations

import math

import torch

from llm_workings.lab.wire import decode_tensor
from llm_workings.transformer.rotary import inverse_frequencies


def shown_numbers(body: dict) -> list[tuple[str | None, str | None, list[int], float]]:
    """(hook, derived, index, value) for every number in a walk response."""
    out = []

    def numbers(item):
        for index, value in zip(item["indices"], decode_tensor(item["values"]).tolist(), strict=True):
            out.append((item["hook"], item["derived"], index, value))

    for stage in body["stages"]:
        for item in stage["items"]:
            kind = item["kind"]
            if kind == "vector":
                values = decode_tensor(item["values"]).tolist()
                kept = item["kept"] or range(len(values))
                out += [(item["hook"], None, [*item["index"], i], v) for i, v in zip(kept, values, strict=True)]
            elif kind == "numbers":
                numbers(item)
            elif kind == "table":
                for column in item["columns"]:
                    numbers(column)
            elif kind == "matrix":
                values = decode_tensor(item["values"])
                cols = item["kept"] or range(values.shape[1])
                for r, row in zip(item["rows"], values.tolist(), strict=True):
                    out += [(item["hook"], None, [*item["index"], r, c], v) for c, v in zip(cols, row, strict=True)]
            elif kind == "pairs":
                for key, hook in zip(("before", "after"), item["hooks"], strict=True):
                    values = decode_tensor(item[key]).tolist()
                    for dims, pair in zip(item["dims"], values, strict=True):
                        out += [(hook, None, [*item["index"], d], v) for d, v in zip(dims, pair, strict=True)]
                numbers(item["angles"])
    return out


def full_run(model, ids):
    with torch.no_grad():
        logits, cache = model.run_with_cache(torch.tensor([ids]))
    return logits, cache


def engine_number(model, logits, cache, body: dict, hook: str | None, derived: str | None, index: list[int]) -> float:
    """The engine's value of one shown number."""
    if hook is not None:
        return float(cache[hook][tuple(index)])
    pos, layer, head = body["position"], body["layer"], body["head"]
    kind, _, arg = derived.partition(":")
    if kind == "mean":
        return float(cache[arg][tuple(index)].double().mean())
    if kind == "sqrt_d_head":
        return math.sqrt(model.cfg.d_head)
    if kind == "sharpened":
        scores = cache[f"blocks.{layer}.attn.hook_attn_scores"][0, head, pos].double()
        return float((float(arg) * scores).softmax(-1)[index[0]])
    if kind == "rotary_angle":
        return pos * float(inverse_frequencies(model.cfg)[index[0]])
    if kind == "neuron_out_norm":
        neuron = index[2]
        post = cache[f"blocks.{layer}.mlp.hook_post"][0, pos, neuron]
        return float(post.abs() * model.blocks[layer].mlp.W_out[neuron].detach().norm())
    if kind == "token_id":
        return float(index[2])
    if kind == "logits":
        return float(logits[tuple(index)])
    if kind == "probs":
        return float(logits[0, pos].double().softmax(-1)[index[2]])
    raise AssertionError(f"unknown derived number {derived!r}")


def close(shown: float, engine: float) -> bool:
    if math.isinf(engine) or math.isinf(shown):
        return shown == engine
    return math.isclose(shown, engine, rel_tol=1e-6, abs_tol=1e-6)
