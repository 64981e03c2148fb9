"""The bundled models: small models this project trained itself, shipped with their cards and snapshots.

model, tokenizer = load("shakespeare-char")      # or a run directory written by `llmw train`
card("modadd-113")["metrics"]                      # what was measured when it was trained
[s["step"] for s in snapshots("modadd-113")]       # weights kept during training
early = load_snapshot("modadd-113", step=100)
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from ..train.trainer import SNAPSHOT_INDEX, SNAPSHOTS
from ..transformer.loading import LoadError
from ..transformer.model import Transformer
from ..transformer.saving import load_model, load_weights_into, read_model_config, read_tokenizer

CARD = "card.json"  # a model directory's card: recipe, seed, time, metrics


def bundled_root() -> Path:
    return Path(str(resources.files("llm_workings.zoo") / "models"))


def list_models() -> list[str]:
    root = bundled_root()
    return sorted(p.name for p in root.iterdir() if (p / CARD).is_file()) if root.is_dir() else []


def model_dir(name_or_dir: str | os.PathLike) -> Path:
    """A bundled model's folder, or a directory written by `llmw train`."""
    path = Path(name_or_dir)
    if path.is_dir():
        return path
    bundled = bundled_root() / str(name_or_dir)
    if bundled.is_dir():
        return bundled
    raise LoadError(f"{name_or_dir!r} is neither a bundled model ({', '.join(list_models()) or 'none bundled'}) nor a directory")


def load(name_or_dir: str | os.PathLike, device: Any = None) -> tuple[Transformer, Any]:
    """The model, in eval mode, and its tokenizer (None for the synthetic tasks, which work on token ids)."""
    model = load_model(model_dir(name_or_dir), device).eval()
    return model, model.tokenizer


def card(name_or_dir: str | os.PathLike) -> dict[str, Any]:
    path = model_dir(name_or_dir) / CARD
    if not path.is_file():
        raise LoadError(f"{path.parent} has no {CARD}")
    return json.loads(path.read_text())


def snapshots(name_or_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Each snapshot's step and the metrics measured on it when it was taken, oldest first."""
    index = model_dir(name_or_dir) / SNAPSHOTS / SNAPSHOT_INDEX
    return json.loads(index.read_text()) if index.is_file() else []


def load_snapshot(name_or_dir: str | os.PathLike, step: int, device: Any = None) -> Transformer:
    folder = model_dir(name_or_dir)
    entry = next((s for s in snapshots(folder) if s["step"] == step), None)
    if entry is None:
        steps = [s["step"] for s in snapshots(folder)]
        raise LoadError(f"{folder.name} has no snapshot at step {step}; it has {steps or 'none'}")
    model = Transformer(read_model_config(folder), read_tokenizer(folder))
    model = load_weights_into(model, folder / SNAPSHOTS / entry["file"]).eval()
    return model.to(device) if device is not None else model
