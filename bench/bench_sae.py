"""SAE training: our trainer against SAELens's, side by side on the same cached activations.

    HF_HUB_OFFLINE=1 python bench/bench_sae.py [--rounds 3] [--steps 300] [--tokens 262144]

Activations: shakespeare-char's blocks.2.hook_resid_pre (d_in 128) on its training split, cached once with
`cache_activations` and held in memory; both trainers read the same rows in the same order. Both train a
TopK SAE with the same width (1024), k (16), batch (1024 tokens), Adam learning rate (1e-3, constant) and
steps; both without input normalisation, with the auxiliary-k loss at 1/32 and dead latents judged over
the same window of tokens. Everything else is each library's default (ours: b_dec at the geometric median,
unit-norm decoder rows; SAELens 6.54.12: b_dec at zero, activations rescaled by decoder norms, decoder rows
at 0.1). Both run on one thread, after an untimed two-step warm-up of each. Timed: the whole training call,
initialisation included.

The trained SAEs are scored by the same code (sae.evaluate_sae) on 64 held-out sequences: L0, explained
variance, CE loss score and dead fraction. Rounds alternate the two sides; medians and the ratio are printed.
Target: at least 1.5x SAELens's tokens/s at equal or better explained variance at equal L0.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from llm_workings import zoo
from llm_workings.sae import SAEConfig, SAETrainConfig, SAETrainer, cache_activations, evaluate_sae, load_sae
from llm_workings.sae.activations import ModelActivations
from llm_workings.sae.bundled import evaluation_tokens, token_source

MODEL, HOOK, D_SAE, K, BATCH, LR, AUX = "shakespeare-char", "blocks.2.hook_resid_pre", 1024, 16, 1024, 1e-3, 1 / 32
DEAD_WINDOW_STEPS = 100
TARGET = 1.5


class InMemory:
    """The cached rows as our trainer's source: batch `step` is rows [step * batch, (step + 1) * batch)."""

    def __init__(self, rows: torch.Tensor) -> None:
        self.rows, self.d_in = rows, rows.shape[1]

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        start = (step * batch_size) % len(self.rows)
        return self.rows[start : start + batch_size]

    def describe(self) -> dict:
        return {"kind": "memory", "rows": len(self.rows)}


def ours(rows: torch.Tensor, steps: int) -> tuple[float, object]:
    cfg = SAEConfig("topk", rows.shape[1], D_SAE, k=K, hook_name=HOOK, model_name=MODEL)
    train = SAETrainConfig(steps=steps, batch_size=BATCH, lr=LR, normalize="none", aux_k_coefficient=AUX,
                           dead_after_tokens=DEAD_WINDOW_STEPS * BATCH, buffer_tokens=BATCH)  # fmt: skip
    start = time.perf_counter()
    result = SAETrainer(cfg, train, InMemory(rows), progress=False).train()
    return time.perf_counter() - start, result.sae


def theirs(rows: torch.Tensor, steps: int, directory: str) -> tuple[float, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
        from sae_lens.config import SAETrainerConfig
        from sae_lens.training.sae_trainer import SAETrainer as LensTrainer
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=rows.shape[1], d_sae=D_SAE, k=K, aux_loss_coefficient=AUX))
    cfg = SAETrainerConfig(total_training_samples=steps * BATCH, train_batch_size_samples=BATCH, lr=LR, lr_end=LR,
                           dead_feature_window=DEAD_WINDOW_STEPS, feature_sampling_window=10**9)  # fmt: skip
    batches = (rows[i * BATCH : (i + 1) * BATCH] for i in itertools.count())
    start = time.perf_counter()
    LensTrainer(cfg, sae, batches).fit()
    seconds = time.perf_counter() - start
    sae.save_inference_model(directory)  # through its own file, so its norm folding on save applies
    loaded = load_sae(directory)
    loaded.cfg.hook_name, loaded.cfg.model_name = HOOK, MODEL
    return seconds, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=262_144)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = zoo.load(MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        source = ModelActivations(model, HOOK, token_source(MODEL), buffer_tokens=65_536, seed=7)
        cache = cache_activations(source, f"{tmp}/cache", n_tokens=args.tokens, progress=False)
        rows = cache.rows_between(0, cache.rows)
        print(
            f"cached {cache.rows} activations of {HOOK} ({rows.shape[1]} wide); peak buffer {source.peak_bytes / 2**20:.1f} MiB"
        )
        tokens = evaluation_tokens(MODEL)
        ours(rows, 2), theirs(rows, 2, f"{tmp}/warm-up")  # the first Adam step imports torch's compiler stack (seconds)
        times = {"ours": [], "SAELens": []}
        scores = {}
        for r in range(args.rounds):
            for name in ("ours", "SAELens") if r % 2 == 0 else ("SAELens", "ours"):
                seconds, sae = ours(rows, args.steps) if name == "ours" else theirs(rows, args.steps, f"{tmp}/lens-{r}")
                times[name].append(seconds)
                scores[name] = evaluate_sae(sae, model, tokens)
                print(f"round {r} {name:8s} {args.steps * BATCH / seconds:10,.0f} tokens/s")
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"\n{'':10s}{'tokens/s':>12s}{'L0':>8s}{'expl. var':>11s}{'CE score':>10s}{'dead':>8s}")
    for name, s in scores.items():
        rate = args.steps * BATCH / medians[name]
        print(f"{name:10s}{rate:12,.0f}{s.l0:8.2f}{s.explained_variance:11.4f}{s.ce_loss_score:10.4f}{s.dead_fraction:8.3f}")
    ratio = medians["SAELens"] / medians["ours"]
    verdict = "met" if ratio >= TARGET and scores["ours"].explained_variance >= scores["SAELens"].explained_variance else "missed"
    print(f"\nours / SAELens tokens per second (medians of {args.rounds}): {ratio:.2f}x; target {TARGET}x at equal or better "
          f"explained variance: {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
