"""Integrated gradients: ours (64 steps, batched) against Captum's IntegratedGradients, side by side.

    HF_HUB_OFFLINE=1 python bench/bench_saliency.py [--rounds N] [--layers L] [--width D] [--vocab V] [--pos P]

A GPT-2-architecture checkpoint with random weights (by default 4 layers, d_model 256, GPT-2's
vocabulary of 50257, a small model's shape) is built offline and loaded with `Transformer.from_hf`.
Both attribute the logit difference of two tokens at the last of P positions to the token
embeddings, from the zero embedding, in 64 Gauss-Legendre steps, all 64 path points in one
batched forward and backward:

    ours:    integrated_gradients(model, tokens, LogitDiff(answers), steps=64, batch_rows=64)
    Captum:  IntegratedGradients(f).attribute(embeddings, baselines=0, n_steps=64, internal_batch_size=64)

where f is the same embedding function (`analysis.saliency.embedding_forward`) followed by the
logit difference. Ours reads only the two answers' unembedding columns at the last position, where
Captum's function (like any model forward) computes every logit at every position; that is where
the difference comes from, so it grows with the vocabulary and shrinks with the width. Ours also
computes the target at the input and the baseline (two more forwards) for its completeness error.
The attributions are compared first (max |difference|). Rounds alternate the two; medians are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llm_workings.analysis import LogitDiff, integrated_gradients
from llm_workings.analysis.saliency import embedding_forward
from llm_workings.transformer import Transformer

TARGET = 2.0  # ours at least this many times faster
STEPS = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--pos", type=int, default=16)
    args = parser.parse_args()
    from captum.attr import IntegratedGradients

    config = GPT2Config(
        n_layer=args.layers,
        n_embd=args.width,
        n_head=max(1, args.width // 64),
        vocab_size=args.vocab,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as path:
        GPT2LMHeadModel(config).eval().save_pretrained(path)
        model = Transformer.from_hf(path).eval()
    tokens = torch.randint(0, args.vocab, (1, args.pos), generator=torch.Generator().manual_seed(1))
    answers = torch.tensor([[11, 13]])
    forward = embedding_forward(model, args.pos)
    embeddings = model.embed(tokens).detach()
    captum = IntegratedGradients(lambda e: (lambda logits: logits[:, -1, 11] - logits[:, -1, 13])(forward(e)))

    def run_ours() -> torch.Tensor:
        return integrated_gradients(model, tokens, LogitDiff(answers), steps=STEPS, batch_rows=STEPS).scores[0]

    def run_captum() -> torch.Tensor:
        attributions = captum.attribute(
            embeddings, baselines=torch.zeros_like(embeddings), n_steps=STEPS, internal_batch_size=STEPS
        )
        return attributions.sum(-1)[0]

    ours_result, captum_result = run_ours(), run_captum()  # warm-up, and the check
    print(
        f"GPT-2 architecture, {args.layers} layers, d_model {args.width}, vocab {args.vocab}, {args.pos} positions, "
        f"{STEPS} steps; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    difference = float((ours_result - captum_result).abs().max())
    print(
        f"max |ours - Captum| over the attributions: {difference:.2e} (largest |attribution| {float(captum_result.abs().max()):.2e})"
    )
    times: dict[str, list[float]] = {"ours": [], "captum": []}
    for _ in range(args.rounds):
        for name, run in (("ours", run_ours), ("captum", run_captum)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    ours, theirs = statistics.median(times["ours"]), statistics.median(times["captum"])
    print(f"ours    median {ours * 1000:8.1f} ms  (runs: {', '.join(f'{t * 1000:.0f}' for t in times['ours'])})")
    print(f"Captum  median {theirs * 1000:8.1f} ms  (runs: {', '.join(f'{t * 1000:.0f}' for t in times['captum'])})")
    print(f"ours is {theirs / ours:.2f}x faster (target {TARGET:g}x: {'met' if theirs / ours >= TARGET else 'missed'})")


if __name__ == "__main__":
    main()
