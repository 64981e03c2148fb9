"""Forward and run_with_cache time: our Transformer against Hugging Face and TransformerLens, side by side.

    HF_HUB_OFFLINE=1 python bench/bench_transformer.py [--rounds N] [--quick] [--shapes full|gpt2-small|tiny]

Two GPT-2 checkpoints are built offline with random weights (GPT-2 small at batch 4 x 128, and a
2-layer d_model=64 model at batch 1 x 32) and saved, with a small word-level tokenizer, to a temp
directory. Every contestant loads that same directory: ours (`Transformer.from_hf`), HF
`GPT2LMHeadModel` with sdpa and with eager attention, TransformerLens's `TransformerBridge`
(`boot_transformers`) and, where installed, `HookedTransformer` (hand-built config, GPT-2 weight
conversion, no LayerNorm folding or centering). Their logits are checked against ours first.

Forward rows time `model(tokens)`. Cache rows time `run_with_cache(tokens)` of every hook, with
per-head `hook_result` switched on in TransformerLens (ours always has it); each cache's names,
distinct tensors (the bridge files some under several names) and MB are printed so the work can
be compared. HF sdpa's plain forward is the baseline for both; HF eager with hidden states and
attentions is an informative row. Everything runs under `torch.inference_mode()`.

Contestants are interleaved round-robin and medians reported, with the fastest call beside them:
on a small shared machine a busy neighbour makes torch's threads wait on each other, which can
slow whole stretches of calls two- or threefold. The load average is printed for that reason;
`OMP_NUM_THREADS=1` gives steadier (single-threaded) numbers there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast  # noqa: E402

from llm_workings.transformer import Transformer  # noqa: E402

try:
    from transformer_lens.model_bridge import TransformerBridge
except ImportError:  # TransformerLens 2.x has no bridge
    TransformerBridge = None
try:
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights
except ImportError:
    HookedTransformer = None

SHAPES = {
    # name: GPT2Config overrides, batch, pos, rounds, calls per round (quick: rounds, calls)
    "gpt2-small": (dict(), 4, 128, 5, 1, (1, 1)),
    "tiny": (dict(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=1000), 1, 32, 50, 4, (10, 2)),
}
TOL = 1e-3
BASE = "HF sdpa"
SHORT = {"TL bridge": "vs bridge", "HookedTransformer": "vs HookedTr"}


# -- checkpoints ------------------------------------------------------------------------------
def build_checkpoint(path: str, overrides: dict, seed: int = 0) -> GPT2Config:
    """A random-weight GPT-2 and a word-level tokenizer of the same vocabulary, saved to `path`."""
    config = GPT2Config(bos_token_id=0, eos_token_id=0, **overrides)
    vocab = {"<|endoftext|>": 0, **{f"w{i}": i for i in range(1, config.vocab_size)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    special = "<|endoftext|>"
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=special, eos_token=special, unk_token=special, pad_token=special
    ).save_pretrained(path)
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(path)
    return config


def hooked_transformer(path: str, config: GPT2Config):
    """HookedTransformer with the checkpoint's exact weights (from_pretrained refuses local paths)."""
    hf = GPT2LMHeadModel.from_pretrained(path)
    cfg = HookedTransformerConfig(
        n_layers=config.n_layer,
        d_model=config.n_embd,
        n_heads=config.n_head,
        d_head=config.n_embd // config.n_head,
        d_mlp=config.n_inner or 4 * config.n_embd,
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
        warnings.simplefilter("ignore", DeprecationWarning)
        model = HookedTransformer(cfg)
    model.load_and_process_state_dict(
        convert_gpt2_weights(hf, cfg), fold_ln=False, center_writing_weights=False, center_unembed=False, fold_value_biases=False
    )
    return model.eval()


def load_all(path: str, config: GPT2Config) -> dict:
    models_ = {"ours": Transformer.from_hf(path)}
    for impl in ("sdpa", "eager"):
        models_[f"HF {impl}"] = GPT2LMHeadModel.from_pretrained(path, attn_implementation=impl).eval()
    if TransformerBridge is not None:
        models_["TL bridge"] = TransformerBridge.boot_transformers(path, device="cpu")
    if HookedTransformer is not None:
        models_["HookedTransformer"] = hooked_transformer(path, config)
    return models_


def set_attn_result(model, on: bool) -> None:
    """TransformerLens computes per-head results only when asked, and then on every forward."""
    if model is not None and model.cfg.use_attn_result != on:
        model.set_use_attn_result(on)


# -- contestants -----------------------------------------------------------------------------
def contestants(m: dict, tokens: torch.Tensor) -> list[tuple[str, str, Callable, Callable]]:
    """(kind, name, prepare, call): `prepare` runs untimed before each timed stretch."""
    bridge, ht = m.get("TL bridge"), m.get("HookedTransformer")
    no_result = lambda: (set_attn_result(bridge, False), set_attn_result(ht, False))  # noqa: E731
    result = lambda: (set_attn_result(bridge, True), set_attn_result(ht, True))  # noqa: E731
    # Each round runs these in this order (rotated), so the pairs the targets compare sit close together.
    rows = [
        ("forward", "ours", no_result, lambda: m["ours"](tokens)),
        ("forward", "HF sdpa", no_result, lambda: m["HF sdpa"](tokens).logits),
        ("cache", "ours", no_result, lambda: m["ours"].run_with_cache(tokens)),
        ("forward", "HF eager", no_result, lambda: m["HF eager"](tokens).logits),
    ]
    for n in ("TL bridge", "HookedTransformer"):
        if n in m:
            rows += [
                ("forward", n, no_result, lambda n=n: m[n](tokens)),
                ("cache", n, result, lambda n=n: m[n].run_with_cache(tokens)),
            ]
    rows.append(
        (
            "cache",
            "HF eager +hidden+attn",
            no_result,
            lambda: m["HF eager"](tokens, output_hidden_states=True, output_attentions=True),
        )
    )
    return rows


def check(m: dict, tokens: torch.Tensor) -> tuple[dict, dict]:
    """Logits of every contestant against ours; name count, distinct tensors and MB of each cache."""
    bridge, ht = m.get("TL bridge"), m.get("HookedTransformer")
    ref = m["ours"](tokens)
    diffs, sizes = {}, {}
    for kind, name, prepare, call in contestants(m, tokens):
        prepare()
        out = call()
        cache = None
        if isinstance(out, tuple):
            out, cache = out
        logits = out if isinstance(out, torch.Tensor) else out.logits
        diffs[f"{kind} {name}"] = (logits - ref).abs().max().item()
        if cache is not None:
            sizes[name] = cache_size(cache)
    set_attn_result(bridge, False)
    set_attn_result(ht, False)
    return diffs, sizes


def cache_size(cache) -> tuple[int, int, float]:
    """(names, distinct tensors, MB): a bridge cache lists some tensors under several names."""
    names = list(cache.keys())
    distinct = {}
    for name in names:
        t = cache[name]
        distinct[(t.data_ptr(), tuple(t.shape), t.stride())] = t.numel() * t.element_size()
    return len(names), len(distinct), sum(distinct.values()) / 2**20


# -- timing ----------------------------------------------------------------------------------
Times = dict[tuple[str, str], list[float]]


def bench(rows, rounds: int, calls: int, warmup: int) -> Times:
    """ms per call for each round, interleaved round-robin, starting each round one contestant later."""
    for _, _, prepare, call in rows:
        prepare()
        for _ in range(warmup):
            call()
    times: Times = {(k, n): [] for k, n, _, _ in rows}
    for r in range(rounds):
        for i in range(len(rows)):
            kind, name, prepare, call = rows[(i + r) % len(rows)]
            prepare()
            start = time.perf_counter()
            for _ in range(calls):
                call()
            times[kind, name].append((time.perf_counter() - start) / calls * 1e3)
    return times


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:6.2f}x" if a is not None and b is not None else f"{'-':>7s}"


def report(times: Times, sizes: dict) -> None:
    med = {key: statistics.median(t) for key, t in times.items()}
    base = med["forward", BASE]
    refs = [n for n in SHORT if ("forward", n) in med]
    print(
        f"  {'':8s}{'contestant':24s}{'median ms':>10s}{'min ms':>10s} {'vs ' + BASE:>11s}"
        + "".join(f" {SHORT[r]:>12s}" for r in refs)
        + "  cache: names, tensors, MB"
    )
    for kind in ("forward", "cache"):
        for name in [n for k, n in times if k == kind]:
            ms = med[kind, name]
            line = f"  {kind:8s}{name:24s}{ms:10.2f}{min(times[kind, name]):10.2f} {ratio(ms, base):>11s}"
            line += "".join(f" {ratio(ms, med.get((kind, r))):>12s}" for r in refs)
            if name in sizes and kind == "cache":
                line += "  {:5d} {:5d} {:8.2f}".format(*sizes[name])
            print(line)


def targets(shape: str, times: Times) -> None:
    """PASS/MISS on the ratio of medians; the median of per-round ratios and the ratio of the
    fastest calls are printed beside it, since a busy neighbour can slow whole stretches of rounds."""
    if shape == "gpt2-small":
        goals = [("forward", "ours", "forward", BASE, 1.0), ("cache", "ours", "forward", BASE, 1.1)]
    else:
        goals = [(kind, "ours", kind, ref, 0.5) for ref in SHORT for kind in ("forward", "cache") if (kind, ref) in times]
    for kind, name, ref_kind, ref, limit in goals:
        num, den = times[kind, name], times[ref_kind, ref]
        value = statistics.median(num) / statistics.median(den)
        paired = statistics.median(a / b for a, b in zip(num, den))
        label = f"{'run_with_cache' if kind == 'cache' else 'forward'}: ours / {ref} {ref_kind}"
        print(
            f"  {'PASS' if value <= limit else 'MISS'}  {label:48s} {value:5.2f} (target <= {limit}); "
            f"per-round {paired:.2f}, fastest {min(num) / min(den):.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=None, help="rounds per shape (default 5 for GPT-2 small, 50 tiny)")
    parser.add_argument("--quick", action="store_true", help="a few rounds, for a smoke check")
    parser.add_argument("--shapes", choices=["full", *SHAPES], default="full", help="full: both shapes")
    args = parser.parse_args()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    from importlib.metadata import version

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; transformers {transformers.__version__}; "
        f"transformer-lens {version('transformer-lens')}"
        f"{'' if HookedTransformer else ' (no HookedTransformer)'}{'' if TransformerBridge else ' (no bridge)'}"
    )
    for shape, (overrides, batch, pos, rounds, calls, quick) in SHAPES.items():
        if args.shapes not in ("full", shape):
            continue
        if args.quick:
            rounds, calls = quick
        rounds = args.rounds or rounds
        with tempfile.TemporaryDirectory() as path, torch.inference_mode():
            start = time.perf_counter()
            config = build_checkpoint(path, overrides)
            m = load_all(path, config)
            setup = time.perf_counter() - start
            tokens = torch.randint(0, config.vocab_size, (batch, pos), generator=torch.Generator().manual_seed(1))
            print(
                f"\n{shape}: {config.n_layer} layers, d_model={config.n_embd}, d_vocab={config.vocab_size}, "
                f"batch {batch} x {pos}; {rounds} rounds x {calls} calls, interleaved; built and loaded in {setup:.0f} s; "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            diffs, sizes = check(m, tokens)
            print("  max |logits - ours|: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items() if k != "forward ours"))
            bad = {k: v for k, v in diffs.items() if not v <= TOL}
            if bad:
                raise SystemExit(f"logits differ from ours by more than {TOL}: {bad}; timings would not compare equal work")
            # check() has run each contestant once: warm-up enough where one call takes seconds
            times = bench(contestants(m, tokens), rounds, calls, warmup=0 if shape == "gpt2-small" else 3 * calls)
            report(times, sizes)
            targets(shape, times)
            print(f"  load average {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} CPUs")
            del m


if __name__ == "__main__":
    main()
