"""What a checkpoint directory is, read from its small files only: config.json, card.json, the
safetensors headers. Listing the catalog never loads weights or imports torch.

Both formats the lab loads keep a `config.json`: ours (`{"format": "llm_workings.transformer",
"config": {...}}`, written by `Transformer.save`) and Hugging Face's (`{"architectures": [...], ...}`).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUR_FORMAT = "llm_workings.transformer"  # transformer/saving.py FORMAT, without importing torch
CONFIG, CARD, WEIGHTS = "config.json", "card.json", "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
MAX_HEADER = 100 * 2**20  # safetensors' own limit on a header

# Hugging Face spells the sizes differently per family; the first name a config has wins.
HF_SIZES = {
    "n_layers": ("n_layer", "num_hidden_layers"),
    "d_model": ("n_embd", "hidden_size"),
    "n_heads": ("n_head", "num_attention_heads"),
    "n_ctx": ("n_positions", "max_position_embeddings"),
    "d_vocab": ("vocab_size",),
}
SIZES = tuple(HF_SIZES)


class NotAModel(ValueError):
    """The directory is not a checkpoint the lab can list; the message says what was expected."""


@dataclass
class Description:
    """A checkpoint's facts as its small files state them."""

    format: str  # "ours" or "hf"
    config: dict[str, Any]  # our TransformerConfig fields, or Hugging Face's config.json as written
    sizes: dict[str, int | None]
    parameters: int | None
    has_tokenizer: bool
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return str(self.card.get("task") or ("lm" if self.format == "hf" or self.has_tokenizer else "unknown"))

    @property
    def summary(self) -> str:
        return str(self.card.get("summary") or "")


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NotAModel(f"{path} is not readable JSON: {e}") from None
    if not isinstance(data, dict):
        raise NotAModel(f"{path} should hold a JSON object, not a {type(data).__name__}")
    return data


def describe(directory: Path) -> Description:
    if not directory.is_dir():
        raise NotAModel(f"{directory} is not a directory")
    if not (directory / CONFIG).is_file():
        raise NotAModel(f"{directory} has no {CONFIG}; expected a model saved by Transformer.save or a Hugging Face checkpoint")
    raw = read_json_object(directory / CONFIG)
    card = read_json_object(directory / CARD) if (directory / CARD).is_file() else {}
    if raw.get("format") == OUR_FORMAT:
        config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
        sizes = {name: _int(config.get(name)) for name in SIZES}
        return Description("ours", config, sizes, weight_count(directory), (directory / "tokenizer.json").is_file(), card)
    sizes = {name: _int(next((raw[k] for k in keys if k in raw), None)) for name, keys in HF_SIZES.items()}
    tokenizer = any(
        (directory / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
    )
    return Description("hf", raw, sizes, weight_count(directory), tokenizer, card)


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def weight_count(directory: Path) -> int | None:
    """How many numbers the safetensors files hold (tied weights are stored once), or None when
    the weights are in another format or a header cannot be read (the loader then says why)."""
    if (directory / SHARD_INDEX).is_file():
        weight_map = read_json_object(directory / SHARD_INDEX).get("weight_map") or {}
        files = sorted({directory / name for name in weight_map.values()})
    else:
        files = [directory / WEIGHTS] if (directory / WEIGHTS).is_file() else sorted(directory.glob("*.safetensors"))
    if not files:
        return None
    try:
        return sum(_header_count(f) for f in files)
    except (OSError, ValueError):
        return None


def _header_count(path: Path) -> int:
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > MAX_HEADER:
            raise ValueError(f"{path}: header of {length} bytes")
        header = json.loads(f.read(length))
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in info["shape"]:
            count *= dim
        total += count
    return total
