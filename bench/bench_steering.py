"""Steering on austen-bpe: the batched coefficient sweep against a plain loop of hooked forwards,
and steered generation against unsteered.

    HF_HUB_OFFLINE=1 python bench/bench_steering.py [--rounds N] [--new-tokens T]

The vector is the quotation demonstration's (steering/demonstrations.py: a logistic probe's unit
weight at blocks.3.hook_resid_pre). The sweep is 16 coefficients x all 4 layers, each cell scored
on the demonstration's prompts (P(next token holds a quote)) and on its neutral text (next-token
loss), for the vector and for the random baseline:

    batched:  steering_sweep(...)                 one stacked forward per layer and measurement
    loop:     steering_sweep(..., batched=False)  two hooked forwards per cell (256 in all)

The results are compared first (max |difference|). Generation: `model.generate` greedy with the
KV cache, from 32 prompt tokens, unsteered and inside `steer(model, vector)` (every position).
Rounds alternate the two sides; medians and their ratio are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from llm_workings import zoo
from llm_workings.steering import TargetProbability, steer, steering_sweep
from llm_workings.steering.demonstrations import quotation_demo

SWEEP_TARGET, GENERATION_TARGET = 3.0, 1.1


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args()
    model, tokenizer = zoo.load("austen-bpe")
    demo = quotation_demo(model)
    quote_ids = [i for i in range(model.cfg.d_vocab) if '"' in tokenizer.decode([i])]
    vector = demo.vector.with_(coefficient=4.0)
    coefficients = torch.linspace(-8, 8, 16)

    def sweep(batched: bool):
        return steering_sweep(
            model, vector, coefficients, TargetProbability(quote_ids), demo.prompts, demo.neutral, batched=batched
        )

    with torch.inference_mode():
        times = {"batched": [], "loop": []}
        for _ in range(args.rounds):
            t, fast = timed(lambda: sweep(True))
            times["batched"].append(t)
            t, slow = timed(lambda: sweep(False))
            times["loop"].append(t)
        diff = max(
            float((getattr(fast, k) - getattr(slow, k)).abs().max())
            for k in ("behaviour", "loss", "random_behaviour", "random_loss")
        )
        print(
            f"sweep: {len(fast.layers)} layers x {len(fast.coefficients)} coefficients x (vector, random); max |batched - loop| = {diff:.2e}"
        )
        batched, loop = statistics.median(times["batched"]), statistics.median(times["loop"])
        print(
            f"  batched {batched:.2f} s, loop {loop:.2f} s (medians of {args.rounds}): {loop / batched:.1f}x (target >= {SWEEP_TARGET}x)"
        )

        prompt = demo.neutral[:1, :32]
        gen = {"unsteered": [], "steered": []}
        steered_tokens = plain_tokens = None
        for _ in range(max(args.rounds, 5)):
            t, plain_tokens = timed(lambda: model.generate(prompt, args.new_tokens, stop_at_eos=False))
            gen["unsteered"].append(t)
            with steer(model, vector):
                t, steered_tokens = timed(lambda: model.generate(prompt, args.new_tokens, stop_at_eos=False))
            gen["steered"].append(t)
        plain, steered = statistics.median(gen["unsteered"]), statistics.median(gen["steered"])
        changed = int((plain_tokens != steered_tokens).sum())
        print(
            f"generation of {args.new_tokens} tokens: unsteered {plain * 1e3:.1f} ms, steered {steered * 1e3:.1f} ms "
            f"(medians of {len(gen['steered'])}): {steered / plain:.2f}x (target <= {GENERATION_TARGET}x); "
            f"{changed} of {args.new_tokens} tokens differ"
        )


if __name__ == "__main__":
    main()
