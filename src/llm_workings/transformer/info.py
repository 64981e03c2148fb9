"""What a checkpoint is and what it will cost, read from its config alone (`llmw model info`).

The model is built on PyTorch's "meta" device, which tracks shapes without allocating, and run
once with every hook cached, so the activation figure counts exactly what `run_with_cache` keeps.
"""

from __future__ import annotations

from typing import Any

import torch

from .loading import architecture, as_dtype, build_config, checkpoint_directory, read_config
from .model import Transformer


def describe(source: str, batch: int = 1, seq: int | None = None, dtype: str = "float32") -> dict[str, Any]:
    path = checkpoint_directory(source, patterns=["config.json"])
    config = read_config(path)
    arch = architecture(config, str(path))
    family, cfg = build_config(config, arch)
    seq = cfg.n_ctx if seq is None else seq
    if batch < 1 or seq < 1:
        raise ValueError(f"batch and seq must be positive, got batch={batch}, seq={seq}")
    bytes_per = torch.empty(0, dtype=as_dtype(dtype)).element_size()
    with torch.device("meta"):
        model = Transformer(cfg)
        _, cache = model.run_with_cache(torch.zeros(batch, seq, dtype=torch.long))
    n_params = sum(p.numel() for p in model.parameters())  # a tied parameter is listed once
    kv_elements = 2 * cfg.n_layers * batch * seq * cfg.n_kv_heads * cfg.d_head
    return {
        "source": source,
        "architecture": arch,
        "family": family.name,
        "config": cfg.to_dict(),
        "parameters": n_params,
        "dtype": dtype,
        "batch": batch,
        "seq": seq,
        "weights_bytes": n_params * bytes_per,
        "kv_cache_bytes": kv_elements * bytes_per,
        "activation_cache_bytes": sum(t.numel() for t in cache.cache.values()) * bytes_per,
        "activation_cache_entries": len(cache),
    }


def _size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GiB"


def format_info(info: dict[str, Any]) -> str:
    c = info["config"]
    heads = f"{c['n_heads']} heads" + (f" ({c['n_kv_heads']} key/value)" if c["n_kv_heads"] != c["n_heads"] else "")
    positions = c["positions"] + (f" ({c['rotary_pct']:.0%} of each head)" if c["positions"] == "rotary" else "")
    mlp = "none (attention only)" if c["attn_only"] else f"{'gated ' if c['gated_mlp'] else ''}{c['act']}, d_mlp={c['d_mlp']}"
    lines = [
        f"{info['source']}: {info['architecture']} ({info['family']} family)",
        f"  layers      {c['n_layers']}, d_model={c['d_model']}, {heads} of d_head={c['d_head']}",
        f"  vocabulary  {c['d_vocab']:,}; context {c['n_ctx']:,}",
        f"  positions   {positions}",
        f"  norm        {c['norm']}; residual {'parallel' if c['parallel_residual'] else 'sequential'}",
        f"  MLP         {mlp}",
        f"  parameters  {info['parameters']:,}",
        f"memory in {info['dtype']}, batch {info['batch']} x {info['seq']} tokens:",
        f"  weights                        {_size(info['weights_bytes'])}",
        f"  KV cache for generation        {_size(info['kv_cache_bytes'])}",
        f"  run_with_cache, every hook     {_size(info['activation_cache_bytes'])}"
        f" ({info['activation_cache_entries']} activations)",
    ]
    return "\n".join(lines)
