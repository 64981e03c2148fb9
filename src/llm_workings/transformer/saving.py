"""Our own model files: a directory with `config.json` (the TransformerConfig) and `model.safetensors`.

    model.save("runs/my-model")                      # or save_model(model, dir, tokenizer)
    model = Transformer.load("runs/my-model")        # tokenizer.json beside it is attached too

A tokenizer, when given, is saved beside them as `tokenizer.json` (see llm_workings.tokenizers).
Every file is written atomically. A tied unembedding is stored once, as the embedding.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, write_json
from .config import ConfigError, TransformerConfig
from .loading import LoadError, read_config
from .model import Transformer

FORMAT = "llm_workings.transformer"
CONFIG, WEIGHTS, TOKENIZER = "config.json", "model.safetensors", "tokenizer.json"


def tied_names(model: Transformer) -> set[str]:
    """State-dict entries that are another entry under a second name, so files leave them out (none for a
    module that is not a Transformer, such as an SAE's training state, which train/'s checkpoints also save)."""
    return {"unembed.weight"} if getattr(getattr(model, "cfg", None), "tie_embeddings", False) else set()


def weights_to_save(model: Transformer, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The state dict with a tied unembedding left out (it is the embedding), contiguous and detached."""
    tied = tied_names(model)
    return {
        name: (t.to(dtype) if dtype is not None and t.is_floating_point() else t).detach().contiguous().cpu()
        for name, t in model.state_dict().items()
        if name not in tied
    }


def save_weights(
    model: Transformer, path: str | os.PathLike, dtype: torch.dtype | None = None, metadata: dict[str, str] | None = None
) -> None:
    with atomic_path(path) as tmp:
        save_file(weights_to_save(model, dtype), tmp, metadata=metadata)


def load_weights_into(model: Transformer, path: str | os.PathLike) -> Transformer:
    """Load a weights file written by `save_weights` (any float dtype) into a model of the same config."""
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError) as e:
        raise LoadError(f"{path} is not a readable safetensors file (truncated or corrupt?): {e}") from e
    return copy_weights(model, tensors, path)


def copy_weights(model: Transformer, tensors: dict[str, torch.Tensor], source: Any) -> Transformer:
    """Copy `tensors` (as `weights_to_save` names them) into the model, after checking that every name and
    shape matches, so a mismatch changes nothing."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors) - tied_names(model))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise LoadError(
            f"{source} does not match the model: missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}"
        )
    for name, t in tensors.items():
        if t.shape != own[name].shape:
            raise LoadError(f"{source}: {name} has shape {list(t.shape)}, the model expects {list(own[name].shape)}")
    with torch.no_grad():
        for name, t in tensors.items():
            own[name].copy_(t)
    return model


def save_model(model: Transformer, directory: str | os.PathLike, tokenizer: Any = None, dtype: torch.dtype | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_weights(model, directory / WEIGHTS, dtype)
    tokenizer = tokenizer if tokenizer is not None else model.tokenizer
    if tokenizer is not None and hasattr(tokenizer, "save"):
        tokenizer.save(directory / TOKENIZER)
    # the config goes last: a directory whose config is in place has all its files
    config = {"format": FORMAT, "config": model.cfg.to_dict()}
    write_json(directory / CONFIG, config, indent=2)
    return directory


def read_model_config(directory: str | os.PathLike) -> TransformerConfig:
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise LoadError(f"{directory} has no {CONFIG}; expected a directory written by save_model")
    data = read_config(Path(directory))
    if data.get("format") != FORMAT or not isinstance(data.get("config"), dict):
        raise LoadError(
            f"{path} is not an llm_workings model config (expected {{'format': '{FORMAT}', 'config': {{...}}}}); "
            "a Hugging Face checkpoint loads with Transformer.from_hf"
        )
    try:
        return TransformerConfig.from_dict(data["config"])
    except (ConfigError, TypeError) as e:
        raise LoadError(f"{path}: {e}") from e


def read_tokenizer(directory: str | os.PathLike) -> Any:
    """The tokenizer saved beside a model, or None."""
    path = Path(directory) / TOKENIZER
    if not path.is_file():
        return None
    from ..tokenizers import load_tokenizer

    return load_tokenizer(path)


def load_model(directory: str | os.PathLike, device: str | torch.device | None = None) -> Transformer:
    directory = Path(directory)
    model = load_weights_into(Transformer(read_model_config(directory), read_tokenizer(directory)), directory / WEIGHTS)
    return model.to(device) if device is not None else model
