"""Adapters in PEFT's file format, both ways: `adapter_config.json` plus `adapter_model.safetensors`.

    save_peft(adapter, "my-adapter")            # PeftModel.from_pretrained(hf_model, "my-adapter") loads it
    adapter = load_peft(model, "their-adapter") # an adapter PEFT trained, on our model

Keys are `base_model.model.<Hugging Face module>.lora_A.weight` (A [r, in]) and `.lora_B.weight`
(B [out, r]), the module named by the family tables of `transformer.families`, so our targets are the
Hugging Face linear maps: GPT-2's `attn.qkv` is its Conv1D `c_attn` (PEFT's `fan_in_fan_out`, since
Conv1D stores [in, out]; A and B keep their shapes, only the merge transposes), Llama's `attn.q` is
`q_proj`. PEFT loads with `strict=False` and ignores unexpected keys, so `load_peft` checks every key
itself and refuses what it cannot load exactly, naming it, before the model is touched.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, write_json
from ..transformer.families import GPT2, LLAMA, Family, Same, Stacked, Transposed
from ..transformer.model import Transformer
from .lora import Adapter, LoRAConfig, LoRAError, add_lora, check_config, lora_shapes, targets_of

CONFIG, WEIGHTS, LEGACY_WEIGHTS = "adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"
PREFIX = "base_model.model."
KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$")
FAMILIES = {"gpt2": GPT2, "llama": LLAMA}
# PEFT features beyond plain LoRA, and the value that means "not used"
UNSUPPORTED = {
    "use_dora": False,
    "lora_bias": False,
    "bias": "none",
    "modules_to_save": None,
    "rank_pattern": {},
    "alpha_pattern": {},
    "layer_replication": None,
    "target_parameters": None,
    "trainable_token_indices": None,
    "exclude_modules": None,
}


def family_of(model: Transformer, family: str | None = None) -> Family:
    """The Hugging Face family whose module names the adapter's keys use: given, or read from the config."""
    if family is not None:
        if family not in FAMILIES:
            raise LoRAError(f"family {family!r} has no PEFT mapping; expected one of {', '.join(FAMILIES)}")
        return FAMILIES[family]
    c = model.cfg
    if c.positions == "learned" and c.norm == "layernorm" and not (c.gated_mlp or c.parallel_residual):
        return GPT2
    if c.positions == "rotary" and c.norm == "rmsnorm" and c.gated_mlp and not c.parallel_residual:
        return LLAMA
    raise LoRAError(
        "this model is neither GPT-2- nor Llama-shaped, the families whose module names PEFT adapters can use here; "
        "pass family='gpt2' or 'llama' if it is one of them"
    )


def hf_modules(model: Transformer, family: Family, prefix: str) -> dict[tuple[int, str], tuple[str, bool]]:
    """(layer, target) -> (Hugging Face module name, whether it is a Conv1D) for every target PEFT can adapt."""
    found = {}
    for target, spec in targets_of(model).items():
        source = family.weights[f"blocks.{{l}}.{spec.component}.{spec.weight}"]
        if spec.part is None and type(source) in (Same, Transposed):  # one Hugging Face module
            name = source.name
        elif spec.part is not None and isinstance(source, Stacked):
            name = source.parts[spec.part]
        else:
            continue  # a fused weight Hugging Face splits, or part of one it keeps whole
        for layer in range(model.cfg.n_layers):
            found[layer, target] = (name.format(p=prefix, l=layer).removesuffix(".weight"), isinstance(source, Transposed))
    return found


def _peft_names(model: Transformer, family: Family) -> str:
    """E.g. "attn.qkv (attn.c_attn), attn.o (attn.c_proj), ...": our targets PEFT can hold, and their modules."""
    pairs = {(t, ".".join(m.split(".")[-2:])) for (_, t), (m, _) in hf_modules(model, family, family.prefixes[0]).items()}
    return ", ".join(f"{ours} ({theirs})" for ours, theirs in sorted(pairs))


def save_peft(adapter: Adapter, directory: str | os.PathLike, family: str | None = None, base_model: str | None = None) -> Path:
    """Write the adapter as PEFT writes one. `base_model` fills `base_model_name_or_path`."""
    model, cfg = adapter.model, adapter.config
    fam = family_of(model, family)
    prefix = fam.prefixes[0]  # the ...ForCausalLM model, which PEFT wraps for causal language modelling
    modules = hf_modules(model, fam, prefix)
    tensors, names, conv1d = {}, {}, set()
    for key, lora in adapter.modules.items():
        _, layer, target = key.split(".", 2)
        if (int(layer), target) not in modules:
            raise LoRAError(
                f"{target} has no Hugging Face {fam.name} module of its own, so PEFT cannot hold it; "
                f"PEFT-compatible targets here are {_peft_names(model, fam)}"
            )
        name, is_conv1d = modules[int(layer), target]
        names[key], conv1d = name, conv1d | {is_conv1d}
        tensors[f"{PREFIX}{name}.lora_A.weight"] = lora.A.detach().contiguous().cpu()
        tensors[f"{PREFIX}{name}.lora_B.weight"] = lora.B.detach().contiguous().cpu()
    every_layer = cfg.layers is None or sorted(cfg.layers) == list(range(model.cfg.n_layers))
    # all layers: the short suffixes people write ("attn.c_attn"); some: the exact module names
    targets = sorted({".".join(n.split(".")[-2:]) for n in names.values()} if every_layer else set(names.values()))
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model or model.cfg.name or None,
        "revision": None,
        "inference_mode": True,
        "r": cfg.rank,
        "lora_alpha": cfg.alpha,
        "lora_dropout": cfg.dropout,
        "use_rslora": cfg.rslora,
        "target_modules": targets,
        "fan_in_fan_out": conv1d == {True},
        "init_lora_weights": True,
        "layers_to_transform": None,
        "layers_pattern": None,
        **UNSUPPORTED,
    }
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file(tensors, tmp, metadata={"format": "pt"})
    write_json(directory / CONFIG, config, indent=2)
    return directory


# -- loading -------------------------------------------------------------------------------------
def read_peft_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG
    if not path.is_file():
        raise LoRAError(f"{directory} has no {CONFIG}; expected a PEFT adapter directory")
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LoRAError(f"{path} is not valid JSON (truncated or corrupt?): {e}") from e
    if not isinstance(config, dict):
        raise LoRAError(f"{path} should hold a JSON object")
    if config.get("peft_type") != "LORA":
        raise LoRAError(f"{path} has peft_type {config.get('peft_type')!r}; only 'LORA' adapters can be loaded")
    for key, unused in UNSUPPORTED.items():
        value = config.get(key, unused)
        if value not in (unused, None, {}, [], False):
            raise LoRAError(f"{path} sets {key}={value!r}, which plain LoRA does not have; it cannot be loaded here")
    for key in ("r", "lora_alpha"):
        if not isinstance(config.get(key, 8), (int, float)) or config.get(key, 8) <= 0:
            raise LoRAError(f"{path}: {key} must be a positive number, got {config[key]!r}")
    return config


def read_peft_weights(directory: Path) -> dict[str, torch.Tensor]:
    path = directory / WEIGHTS
    try:
        if path.is_file():
            return load_file(path)
        if (directory / LEGACY_WEIGHTS).is_file():  # older PEFT; weights only, never arbitrary pickles
            path = directory / LEGACY_WEIGHTS
            tensors = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(tensors, dict) and all(isinstance(t, torch.Tensor) for t in tensors.values()):
                return tensors
            raise LoRAError(f"{path} does not hold a dict of tensors")
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        if isinstance(e, LoRAError):
            raise
        raise LoRAError(f"{path} is not a readable adapter weights file (truncated or corrupt?): {e}") from e
    raise LoRAError(f"{directory} has no {WEIGHTS} (or {LEGACY_WEIGHTS})")


def _matches(module: str, targets: Any) -> bool:
    """PEFT's rule: a string is a regular expression the whole name must match; a list entry matches the
    name itself or a dotted suffix of it."""
    if isinstance(targets, str):
        return re.fullmatch(targets, module) is not None
    return any(module == t or module.endswith("." + t) for t in targets)


def load_peft(
    model: Transformer, directory: str | os.PathLike, name: str = "default", family: str | None = None, freeze_base: bool = True
) -> Adapter:
    """Attach a PEFT LoRA adapter to `model` as adapter `name`, after checking every key and shape."""
    directory = Path(directory)
    config = read_peft_config(directory)
    tensors = read_peft_weights(directory)
    fam = family_of(model, family)
    parsed: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        match = KEY.match(key)
        if match is None:
            raise LoRAError(
                f"{directory / WEIGHTS}: unexpected key {key!r}; expected {PREFIX}<module>.lora_A.weight / .lora_B.weight"
            )
        parsed.setdefault(match["module"], {})[match["ab"]] = t
    # the prefix the adapter was trained with: on the ...ForCausalLM model ("transformer.") or the bare one ("")
    prefix = next((p for p in fam.prefixes if any(m.startswith(p) for m in parsed) and p), "")
    by_module = {module: place for place, (module, _) in hf_modules(model, fam, prefix).items()}
    unknown = sorted(m for m in parsed if m not in by_module)
    if unknown:
        raise LoRAError(
            f"{directory} adapts {', '.join(unknown[:3])}, which this {fam.name} model does not have: it has layers "
            f"0..{model.cfg.n_layers - 1} with {_peft_names(model, fam)}; the adapter was made for a different base"
        )
    targets = config.get("target_modules") or []
    entries = [targets] if isinstance(targets, str) else list(targets)
    stray = [t for t in entries if not any(_matches(m, t if isinstance(targets, str) else [t]) for m in by_module)]
    if stray:
        raise LoRAError(
            f"{directory / CONFIG} targets {', '.join(map(repr, stray))}, which this {fam.name} model has no module for"
        )
    expected = {m for m in by_module if _matches(m, targets)} if targets else set(parsed)
    layers_to_transform = config.get("layers_to_transform")
    if layers_to_transform is not None:
        keep = {layers_to_transform} if isinstance(layers_to_transform, int) else set(layers_to_transform)
        expected = {m for m in expected if by_module[m][0] in keep}
    missing = sorted(expected - set(parsed)) + sorted(m for m, ab in parsed.items() if set(ab) != {"A", "B"})
    if missing or set(parsed) - expected:
        raise LoRAError(
            f"{directory}: the weights do not match target_modules {targets!r}: no complete lora_A/lora_B for "
            f"{missing[:3] or 'nothing'}, weights for untargeted {sorted(set(parsed) - expected)[:3] or 'nothing'}"
        )
    places = {by_module[m]: ab for m, ab in parsed.items()}
    layers = sorted({layer for layer, _ in places})
    chosen = sorted({target for _, target in places})
    if len(places) != len(layers) * len(chosen):
        raise LoRAError(
            f"{directory} adapts different maps in different layers; only the same targets in every chosen layer load"
        )
    lora_cfg = LoRAConfig(
        rank=config.get("r", 8),
        alpha=config.get("lora_alpha", 8),
        targets=tuple(chosen),
        layers=None if layers == list(range(model.cfg.n_layers)) else tuple(layers),
        dropout=config.get("lora_dropout", 0.0),
        rslora=bool(config.get("use_rslora", False)),
    )
    check_config(model, lora_cfg, name)
    shapes = lora_shapes(model, lora_cfg)
    for (layer, target), ab in places.items():
        for part in "AB":
            shape = shapes[f"blocks.{layer}.{target}.{part}"]
            if tuple(ab[part].shape) != shape:
                raise LoRAError(
                    f"{directory}: lora_{part} of layer {layer}'s {target} has shape {list(ab[part].shape)}; this model "
                    f"needs {list(shape)} for r={lora_cfg.rank}: the adapter was made for a different base"
                    + (f" ({config['base_model_name_or_path']})" if config.get("base_model_name_or_path") else "")
                )
    adapter = add_lora(model, lora_cfg, name, freeze_base)
    adapter.load_state_dict(
        {f"blocks.{layer}.{target}.{part}": ab[part] for (layer, target), ab in places.items() for part in "AB"}, directory
    )
    return adapter
