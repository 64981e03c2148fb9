"""A full residual-stream patching sweep: ours against TransformerLens's patching utilities, side by side.

    HF_HUB_OFFLINE=1 python bench/bench_patching.py [--rounds N] [--batch B] [--pos P] [--layers L]

A GPT-2-small-shape checkpoint (12 layers, d_model 768, 12 heads, vocab 50257) with random
weights is built offline and saved to a temp directory. Ours loads it with `Transformer.from_hf`;
TransformerLens 3.9's `HookedTransformer` gets the same weights (hand-written config, its GPT-2
weight converter, no folding or centering), since its patching functions are written for that
class. Both sweep `resid_pre` over every layer x position (12 x 16 = 192 patched runs at the
default sequence length 16) with the same logit-difference metric:

    ours:  patch_residual(model, clean, corrupted, metric)          (batched, one forward per layer)
    TL:    patching.get_act_patch_resid_pre(model, corrupted, clean_cache, metric)   (one per cell)

TransformerLens's time includes its clean `run_with_cache`, as ours includes both of its cached
runs. The results are compared first (max |difference|). Rounds alternate the two and medians
are reported. Peak memory is the highest resident-set size above the level just before the
sweep, sampled every millisecond from /proc/self/statm (Linux), so it counts torch's CPU tensors.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llm_workings.analysis.metrics import LogitDiff
from llm_workings.analysis.patching import patch_residual
from llm_workings.transformer import Transformer

TARGET = 5.0  # ours at least this many times faster


class PeakMemory:
    """Highest RSS above the starting level while the block runs, in MB."""

    page = os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = self._rss()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.001)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mb(self) -> float:
        return (self.peak - self.start) / 2**20


def hooked_transformer(hf: GPT2LMHeadModel, config: GPT2Config):
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

    cfg = HookedTransformerConfig(
        n_layers=config.n_layer,
        d_model=config.n_embd,
        n_heads=config.n_head,
        d_head=config.n_embd // config.n_head,
        d_mlp=4 * config.n_embd,
        d_vocab=config.vocab_size,
        n_ctx=config.n_positions,
        act_fn="gelu_new",
        normalization_type="LN",
        eps=config.layer_norm_epsilon,
        positional_embedding_type="standard",
        original_architecture="GPT2LMHeadModel",
        device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(cfg)
    model.load_and_process_state_dict(
        convert_gpt2_weights(hf, cfg), fold_ln=False, center_writing_weights=False, center_unembed=False, fold_value_biases=False
    )
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1, help="prompts per run")
    parser.add_argument("--pos", type=int, default=16, help="sequence length")
    parser.add_argument("--layers", type=int, default=12)
    args = parser.parse_args()

    from transformer_lens import patching

    config = GPT2Config(n_layer=args.layers, bos_token_id=0, eos_token_id=0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as path:
        torch.manual_seed(0)
        hf = GPT2LMHeadModel(config).eval()
        hf.save_pretrained(path)
        ours = Transformer.from_hf(path).eval()
        theirs = hooked_transformer(hf, config)
    del hf
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(1, config.vocab_size, (args.batch, args.pos), generator=gen)
    corrupted = clean.clone()
    corrupted[:, args.pos // 2] = torch.randint(1, config.vocab_size, (args.batch,), generator=gen)
    answers = torch.randint(1, config.vocab_size, (args.batch, 2), generator=gen)
    metric = LogitDiff(answers)

    def run_ours() -> torch.Tensor:
        return patch_residual(ours, clean, corrupted, metric, progress=False).values

    def run_theirs() -> torch.Tensor:
        with torch.no_grad():
            _, clean_cache = theirs.run_with_cache(clean)
            return patching.get_act_patch_resid_pre(theirs, corrupted, clean_cache, metric)

    contestants = {"ours": run_ours, "TransformerLens": run_theirs}
    print(
        f"residual-stream patching sweep, GPT-2-small shape ({args.layers} layers, d_model 768), batch {args.batch} "
        f"x {args.pos} positions = {args.layers * args.pos} patched runs; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; built in {time.perf_counter() - started:.0f} s; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    results = {name: fn() for name, fn in contestants.items()}  # also the warm-up
    diff = (results["ours"] - results["TransformerLens"]).abs().max().item()
    print(f"max |ours - TransformerLens| over {results['ours'].numel()} cells: {diff:.2e}")

    times: dict[str, list[float]] = {name: [] for name in contestants}
    memory: dict[str, list[float]] = {name: [] for name in contestants}
    for r in range(args.rounds):
        order = list(contestants) if r % 2 == 0 else list(reversed(contestants))
        for name in order:
            with PeakMemory() as peak:
                t0 = time.perf_counter()
                contestants[name]()
                times[name].append(time.perf_counter() - t0)
            memory[name].append(peak.mb)
    print(f"{'':2s}{'contestant':18s}{'median s':>10s}{'min s':>9s}{'peak MB':>10s}")
    for name in contestants:
        print(f"  {name:18s}{statistics.median(times[name]):10.3f}{min(times[name]):9.3f}{statistics.median(memory[name]):10.0f}")
    speedup = statistics.median(times["TransformerLens"]) / statistics.median(times["ours"])
    paired = statistics.median(t / o for t, o in zip(times["TransformerLens"], times["ours"]))
    memory_ratio = statistics.median(memory["TransformerLens"]) / max(statistics.median(memory["ours"]), 1e-9)
    print(
        f"ours is {speedup:.1f}x faster (median of per-round ratios {paired:.1f}x), target >= {TARGET:.0f}x: "
        f"{'PASS' if speedup >= TARGET else 'MISS'}; peak memory TransformerLens / ours = {memory_ratio:.2f}"
    )
    print(f"identical results (max |difference| <= 1e-4): {'PASS' if diff <= 1e-4 else 'MISS'}")


if __name__ == "__main__":
    main()
