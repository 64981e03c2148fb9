"""Parity and speed at a real 1B shape: all 16 layers of Llama-3.2-1B, random weights, fp32.

    HF_HUB_OFFLINE=1 python bench/full_size_llama.py [--tokens 16] [--rounds 3]

The test suite checks this shape at full width, heads and vocabulary but with 2 of its 16 layers
(tests/transformer/test_full_size.py), to keep CI's memory and time small. This script runs the
whole depth: about 10 GB of memory (the Hugging Face model and ours) and a minute or two to build.
It checks that logits and every layer's residual stream agree within 1e-4 and that greedy
generation with and without the KV cache gives Hugging Face's tokens, then times one forward of
each side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

from llm_workings.transformer import Transformer  # noqa: E402

LLAMA_3_2_1B = dict(
    hidden_size=2048,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=64,
    intermediate_size=8192,
    vocab_size=128256,
    tie_word_embeddings=True,
    max_position_embeddings=131072,
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    bos_token_id=128000,
    eos_token_id=128001,
    rope_scaling={
        "rope_type": "llama3",
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
)
TOL = 1e-4


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=16, help="prompt length (batch 1)")
    parser.add_argument("--rounds", type=int, default=3, help="timed forwards per side")
    args = parser.parse_args()
    transformers.utils.logging.set_verbosity_error()

    start = time.perf_counter()
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**LLAMA_3_2_1B, attn_implementation="eager")).eval()
    with torch.no_grad():  # non-trivial norm gains, so the norm path is checked too
        for p in hf.parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    built = time.perf_counter() - start
    ours = Transformer.from_hf(hf)
    converted = time.perf_counter() - start - built
    print(
        f"Llama-3.2-1B shape: {sum(p.numel() for p in ours.parameters()):,} parameters; "
        f"HF built in {built:.0f} s, converted in {converted:.1f} s"
    )

    toks = torch.randint(0, LLAMA_3_2_1B["vocab_size"], (1, args.tokens), generator=torch.Generator().manual_seed(1))
    captured: list[torch.Tensor] = []
    handles = [
        layer.register_forward_hook(lambda m, a, out: captured.append(out[0] if isinstance(out, tuple) else out))
        for layer in hf.model.layers
    ]
    with torch.no_grad():
        ref = hf(toks).logits
    for h in handles:
        h.remove()
    with torch.no_grad():
        fused = ours(toks)
        explicit, cache = ours.run_with_cache(toks)
    resid = max((cache["resid_post", layer] - captured[layer]).abs().max().item() for layer in range(16))
    diffs = {
        "logits (fused)": (fused - ref).abs().max().item(),
        "logits (explicit)": (explicit - ref).abs().max().item(),
        "residual, worst layer": resid,
    }
    for name, value in diffs.items():
        print(f"  {'PASS' if value < TOL else 'FAIL'}  max |ours - HF| {name}: {value:.2e} (tolerance {TOL})")

    n = 4
    cached = ours.generate(toks, max_new_tokens=n, stop_at_eos=False)
    uncached = ours.generate(toks, max_new_tokens=n, stop_at_eos=False, use_kv_cache=False)
    theirs = hf.generate(
        toks,
        attention_mask=torch.ones_like(toks),
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=None,
    )
    same = torch.equal(cached, uncached) and torch.equal(cached, theirs)
    print(f"  {'PASS' if same else 'FAIL'}  greedy tokens, cached = uncached = HF: {cached[0, -n:].tolist()}")

    hf.config._attn_implementation = "sdpa"  # same weights; each layer reads this setting on every call
    times: dict[str, list[float]] = {"ours": [], "HF sdpa": []}
    with torch.inference_mode():
        for _ in range(args.rounds):
            for name, call in (("ours", lambda: ours(toks)), ("HF sdpa", lambda: hf(toks).logits)):
                t = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - t)
    ours_ms, hf_ms = (statistics.median(times[k]) * 1e3 for k in ("ours", "HF sdpa"))
    print(f"  forward, batch 1 x {args.tokens}: ours {ours_ms:.0f} ms, HF sdpa {hf_ms:.0f} ms, ratio {ours_ms / hf_ms:.2f}")


if __name__ == "__main__":
    main()
