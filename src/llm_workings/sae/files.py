"""SAE files in SAELens's on-disk format, so SAELens reads ours and we read its.

A directory holds:
- `cfg.json`: `d_in`, `d_sae`, `dtype`, `device`, `apply_b_dec_to_input`, `normalize_activations`,
  `reshape_activations`, `architecture` (`standard`, `topk` with `k` and `rescale_acts_by_decoder_norm`,
  `jumprelu`) and `metadata` (`sae_lens_version`, `model_name`, `hook_name`, `hook_head_index`,
  `context_size`, `prepend_bos`, `dataset_path`, ...);
- `sae_weights.safetensors`: `W_enc [d_in, d_sae]`, `b_enc [d_sae]`, `W_dec [d_sae, d_in]`, `b_dec [d_in]`,
  and for jumprelu `threshold [d_sae]`;
- optionally `sparsity.safetensors`: `sparsity [d_sae]`, the log10 of each latent's firing rate.

A BatchTopK SAE is saved as a JumpReLU one, as SAELens saves it. `metadata.sae_lens_version` names the
version of the format written (SAELens reads files without it as pre-6.0 files). Every file is written
atomically, the config last, so a directory with a config has its weights.

    save_sae(sae, "runs/sae", log_density=density)
    sae = load_sae("runs/sae")
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, write_json
from .architectures import CLASSES, SparseAutoencoder
from .config import SAEConfig, SAEError

CFG, WEIGHTS, SPARSITY = "cfg.json", "sae_weights.safetensors", "sparsity.safetensors"
SAE_LENS_FORMAT_VERSION = "6.54.12"  # the SAELens release whose format this module writes and is tested against
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}
_TENSORS = {  # what each saved architecture's weights file holds: SAELens loads it strictly
    "standard": ("W_enc", "b_enc", "W_dec", "b_dec"),
    "topk": ("W_enc", "b_enc", "W_dec", "b_dec"),
    "jumprelu": ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"),
}
_NO_OP_NORMALIZATIONS = ("none", "expected_average_only_in")  # the second is folded in already when SAELens saves


def _shapes(d_in: int, d_sae: int) -> dict[str, list[int]]:
    return {"W_enc": [d_in, d_sae], "b_enc": [d_sae], "W_dec": [d_sae, d_in], "b_dec": [d_in], "threshold": [d_sae]}


def save_sae(
    sae: SparseAutoencoder,
    directory: str | os.PathLike,
    log_density: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write `sae` (already folded: it reads raw activations) in SAELens's format; `metadata` is added to cfg.json's."""
    directory = Path(directory)
    dtype_name = next(name for name, t in _DTYPES.items() if t == dtype)
    tensors = {name: t.detach().to(dtype).contiguous().cpu() for name, t in sae.saved_tensors().items()}
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file(tensors, tmp)
    if log_density is not None:
        with atomic_path(directory / SPARSITY) as tmp:
            save_file({"sparsity": log_density.detach().float().contiguous().cpu()}, tmp)
    c = sae.cfg
    cfg: dict[str, Any] = {
        "architecture": sae.saved_as,
        "d_in": c.d_in,
        "d_sae": c.d_sae,
        "dtype": dtype_name,
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "hook_z" if c.hook_name.endswith("hook_z") else "none",
    }
    if sae.saved_as == "topk":
        cfg |= {"k": c.k, "rescale_acts_by_decoder_norm": False}
    cfg["metadata"] = {
        "sae_lens_version": SAE_LENS_FORMAT_VERSION,
        "sae_lens_training_version": SAE_LENS_FORMAT_VERSION,
        "model_name": c.model_name,
        "hook_name": c.hook_name,
        "hook_head_index": c.hook_head_index,
        "context_size": c.context_size,
        "prepend_bos": c.prepend_bos,
        "dataset_path": c.dataset_path,
        "training_architecture": c.architecture,
        "written_by": "llm_workings",
        **({"k": c.k} if c.architecture == "batchtopk" else {}),
        **(metadata or {}),
    }
    write_json(directory / CFG, cfg)
    return directory


def read_cfg(directory: str | os.PathLike) -> dict[str, Any]:
    path = Path(directory) / CFG
    if not path.is_file():
        raise SAEError(f"{directory} is not an SAE directory: {CFG} is missing (expected SAELens's format)")
    try:
        cfg = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SAEError(f"{path} is not valid JSON (truncated or corrupt?): {e}") from e
    if not isinstance(cfg, dict):
        raise SAEError(f"{path} must hold a JSON object, got {type(cfg).__name__}")
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    if not (meta.get("sae_lens_version") or cfg.get("sae_lens_version")):  # a pre-6.0 file: its names moved since
        cfg = {{"hook_point": "hook_name", "hook_point_head_index": "hook_head_index"}.get(k, k): v for k, v in cfg.items()}
        cfg.setdefault("architecture", "standard")
        meta = {
            k: cfg[k]
            for k in ("model_name", "hook_name", "hook_head_index", "context_size", "prepend_bos", "dataset_path")
            if k in cfg
        }
    cfg["metadata"] = meta
    return cfg


def load_sae(directory: str | os.PathLike, dtype: torch.dtype = torch.float32) -> SparseAutoencoder:
    """Read an SAE saved by `save_sae` or by SAELens; a file that does not fit is refused by name."""
    directory = Path(directory)
    cfg = read_cfg(directory)
    arch = cfg.get("architecture")
    if arch not in _TENSORS:
        raise SAEError(
            f"{directory / CFG}: unknown architecture {arch!r}; this loader reads {', '.join(_TENSORS)} "
            "(a batchtopk SAE is saved as jumprelu)"
        )
    for key in ("d_in", "d_sae"):
        if not isinstance(cfg.get(key), int) or cfg[key] < 1:
            raise SAEError(f"{directory / CFG}: {key} must be a positive integer, got {cfg.get(key)!r}")
    norm = cfg.get("normalize_activations", "none")
    if norm not in _NO_OP_NORMALIZATIONS:
        raise SAEError(
            f"{directory / CFG}: normalize_activations={norm!r} is not supported; expected one of {_NO_OP_NORMALIZATIONS}"
        )
    meta = cfg["metadata"]
    sae_cfg = SAEConfig(
        architecture=arch,
        d_in=cfg["d_in"],
        d_sae=cfg["d_sae"],
        k=cfg.get("k") if arch == "topk" else None,
        hook_name=meta.get("hook_name") or "",
        hook_head_index=meta.get("hook_head_index"),
        model_name=meta.get("model_name") or "",
        context_size=meta.get("context_size"),
        prepend_bos=bool(meta.get("prepend_bos", False)),
        dataset_path=meta.get("dataset_path") or "",
    )
    tensors = _read_weights(directory, arch, sae_cfg)
    sae = CLASSES[arch](sae_cfg)
    sae.load_saved({k: t.to(dtype) for k, t in tensors.items()})
    sae.to(dtype)
    if not cfg.get("apply_b_dec_to_input", True):  # pre = x W_enc + b_enc, which is ours with b_enc + b_dec W_enc
        with torch.no_grad():
            sae.b_enc.add_(sae.b_dec @ sae.W_enc)
    if arch == "topk" and cfg.get("rescale_acts_by_decoder_norm", False):
        sae.fold_decoder_norm()  # the same top k and the same reconstruction, with unit decoder rows
    sae.source_dtype = cfg.get("dtype", "float32")
    return sae.eval()


def _read_weights(directory: Path, arch: str, cfg: SAEConfig) -> dict[str, torch.Tensor]:
    path = directory / WEIGHTS
    if not path.is_file():
        raise SAEError(f"{directory} has {CFG} but no {WEIGHTS}")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError) as e:
        raise SAEError(f"{path} is not a readable safetensors file (truncated or corrupt?): {e}") from e
    if arch == "jumprelu" and "log_threshold" in tensors and "threshold" not in tensors:  # older SAELens files
        tensors["threshold"] = tensors.pop("log_threshold").exp()
    expected, shapes = _TENSORS[arch], _shapes(cfg.d_in, cfg.d_sae)
    missing = [n for n in expected if n not in tensors]
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise SAEError(
            f"{path} does not hold a {arch} SAE: missing tensor {', '.join(missing) or 'none'}, "
            f"unexpected {', '.join(unexpected) or 'none'} (expected {', '.join(expected)})"
        )
    for name in expected:
        if list(tensors[name].shape) != shapes[name]:
            raise SAEError(
                f"{path}: {name} has shape {list(tensors[name].shape)}; {CFG} (d_in={cfg.d_in}, d_sae={cfg.d_sae}) "
                f"means {shapes[name]}"
            )
    return tensors


def load_log_density(directory: str | os.PathLike) -> torch.Tensor | None:
    """The log10 firing rate per latent from `sparsity.safetensors`, or None when the directory has none."""
    path = Path(directory) / SPARSITY
    if not path.is_file():
        return None
    try:
        return load_file(path)["sparsity"]
    except (SafetensorError, OSError, KeyError) as e:
        raise SAEError(f"{path} should hold one tensor named 'sparsity' [d_sae]: {e}") from e
