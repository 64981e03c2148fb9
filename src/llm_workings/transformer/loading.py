"""Load Hugging Face checkpoints into `Transformer`: from a `transformers` model object, a local
directory (config.json plus safetensors or a weights-only torch file), or a hub name.

Only tensors are read: safetensors, or `torch.load(weights_only=True)`, which refuses to run
pickled code. The family tables in families.py say which tensor goes where.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError, TransformerConfig
from .families import BY_ARCHITECTURE, FAMILIES, Family
from .model import Transformer

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
MODEL_TYPES = {
    "gpt2": "GPT2LMHeadModel",
    "gpt_neox": "GPTNeoXForCausalLM",
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
}
HUB_NAME = re.compile(r"^[A-Za-z0-9_-][\w.-]*(/[\w.-]+)?$")  # "gpt2", "EleutherAI/pythia-70m"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


class LoadError(ValueError):
    """A checkpoint cannot be loaded; the message says what was expected."""


def as_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise LoadError(f"dtype {dtype} is not supported; use float32, bfloat16 or float16")
        return dtype
    if dtype not in DTYPES:
        raise LoadError(f"dtype {dtype!r} is not supported; expected one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


# -- where tensors come from -------------------------------------------------------------------
class Tensors:
    """Name -> tensor over a state dict or checkpoint files, read lazily where the format allows."""

    def __init__(self) -> None:
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._readers: dict[str, Any] = {}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> Tensors:
        t = cls()
        for name, tensor in state.items():
            t._shapes[name] = tuple(tensor.shape)
            t._readers[name] = tensor
        return t

    @classmethod
    def from_directory(cls, path: Path) -> Tensors:
        files = _weight_files(path)
        t = cls()
        for file in files:
            try:
                if file.suffix == ".safetensors":
                    from safetensors import safe_open

                    handle = safe_open(str(file), framework="pt")
                    for name in handle.keys():
                        t._shapes[name] = tuple(handle.get_slice(name).get_shape())
                        t._readers[name] = handle
                else:
                    state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
                    if not isinstance(state, dict):
                        raise LoadError(f"{file} holds a {type(state).__name__}, not a dict of tensors")
                    for name, tensor in state.items():
                        t._shapes[name] = tuple(tensor.shape)
                        t._readers[name] = tensor
            except LoadError:
                raise
            except Exception as e:  # safetensors and torch raise many types for a damaged file
                raise LoadError(
                    f"cannot read weights from {file}: {e}. Expected a safetensors file or a "
                    "weights-only torch state dict (arbitrary pickles are refused)."
                ) from e
        return t

    def __contains__(self, name: str) -> bool:
        return name in self._shapes

    def __iter__(self) -> Iterator[str]:
        return iter(self._shapes)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]

    def get(self, name: str) -> torch.Tensor:
        reader = self._readers[name]
        return reader if isinstance(reader, torch.Tensor) else reader.get_tensor(name)


def _weight_files(path: Path) -> list[Path]:
    for index, single in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        if (path / index).exists():
            weight_map = json.loads((path / index).read_text())["weight_map"]
            return [path / name for name in sorted(set(weight_map.values()))]
        if (path / single).exists():
            return [path / single]
    found = sorted(path.glob("*.safetensors"))
    if found:
        return found
    raise LoadError(f"{path} holds no weights: expected model.safetensors (or shards with an index), or pytorch_model.bin")


# -- sources: model object, directory, hub name ------------------------------------------------
def from_hf(
    source: Any, dtype: torch.dtype | str = torch.float32, device: str | torch.device = "cpu", tokenizer: Any = None
) -> Transformer:
    """A `Transformer` with the weights of a Hugging Face causal LM.

    source: a `transformers` model object, a local directory, or a hub name such as "gpt2"
    (downloaded once, then read from the local cache). The tokenizer comes from the checkpoint
    directory when it has one, or pass `tokenizer=`.
    """
    dtype = as_dtype(dtype)
    if isinstance(source, (str, os.PathLike)):
        path = checkpoint_directory(source)
        config = read_config(path)
        family, cfg = build_config(config, architecture(config, str(path)))  # refused before reading any weights
        tensors = Tensors.from_directory(path)
        if tokenizer is None:
            tokenizer = load_tokenizer(path)
        return build(family, cfg, tensors, dtype, device, tokenizer)
    if hasattr(source, "config") and hasattr(source, "state_dict"):
        family, cfg = build_config(source.config.to_dict(), type(source).__name__)
        if tokenizer is None and Path(str(getattr(source, "name_or_path", "") or "")).is_dir():
            tokenizer = load_tokenizer(Path(source.name_or_path))
        return build(family, cfg, Tensors.from_state_dict(source.state_dict()), dtype, device, tokenizer)
    raise TypeError(f"expected a transformers model, a checkpoint directory or a hub name; got {type(source).__name__}")


def checkpoint_directory(source: str | os.PathLike, patterns: list[str] | None = None) -> Path:
    """`source` itself when it is a directory; a hub name's local snapshot (see `download`) otherwise."""
    path = Path(source)
    if path.is_dir():
        return path
    if path.exists() or not HUB_NAME.match(str(source)):
        raise LoadError(
            f"{source} is not a directory; expected a checkpoint directory holding config.json "
            "and weights, or a hub name such as 'gpt2' or 'EleutherAI/pythia-70m'"
        )
    return download(str(source), patterns)


def read_config(path: Path) -> dict[str, Any]:
    file = path / "config.json"
    if not file.exists():
        raise LoadError(f"{path} has no config.json; expected a Hugging Face checkpoint directory")
    try:
        config = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise LoadError(f"{file} is not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise LoadError(f"{file} should hold a JSON object")
    return config


def architecture(config: dict[str, Any], where: str) -> str:
    archs = config.get("architectures") or []
    if archs:
        return archs[0]
    if config.get("model_type") in MODEL_TYPES:
        return MODEL_TYPES[config["model_type"]]
    raise LoadError(f"{where}: config.json names no architecture or known model_type; {supported()}")


def supported() -> str:
    return "supported: " + ", ".join(arch for family in FAMILIES for arch in family.architectures)


def download(name: str, patterns: list[str] | None = None) -> Path:
    """The local snapshot of hub repository `name` (config, weights, tokenizer, or just `patterns`):
    from the cache, else downloaded."""
    from huggingface_hub import snapshot_download

    patterns = patterns or ["*.json", "*.safetensors", "tokenizer*", "*.txt", "*.model"]
    try:
        return Path(snapshot_download(name, allow_patterns=patterns, local_files_only=True))
    except Exception:
        pass  # not cached yet
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    how = (
        f"Download it once where there is network (`hf download {name} --local-dir DIR`) "
        f"and load the directory: Transformer.from_hf('DIR')."
    )
    if offline:
        raise LoadError(
            f"{name!r} is not a local directory, and loading it from the Hugging Face hub needs a download, "
            f"but HF_HUB_OFFLINE is set. {how}"
        )
    try:
        return Path(snapshot_download(name, allow_patterns=patterns))
    except Exception as e:
        raise LoadError(f"could not download {name!r} from the Hugging Face hub ({type(e).__name__}: {e}). {how}") from e


def load_tokenizer(path: Path) -> Any:
    if not any((path / f).exists() for f in TOKENIZER_FILES):
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(path))
    except Exception as e:  # the weights are still usable without one
        warnings.warn(f"could not load the tokenizer in {path}: {e}; the model will take token ids only", stacklevel=3)
        return None


# -- conversion ----------------------------------------------------------------------------------
def build_config(config: dict[str, Any], arch: str) -> tuple[Family, TransformerConfig]:
    family = BY_ARCHITECTURE.get(arch)
    if family is None:
        raise LoadError(f"architecture {arch!r} is not supported; {supported()}")
    try:
        return family, family.config(config)
    except KeyError as e:
        raise LoadError(f"config.json for {arch} lacks the field {e.args[0]!r}") from e
    except ConfigError as e:
        raise LoadError(f"{arch}: {e}") from e


def build(
    family: Family, cfg: TransformerConfig, tensors: Tensors, dtype: torch.dtype, device: str | torch.device, tokenizer: Any
) -> Transformer:
    with torch.device("meta"):
        model = Transformer(cfg).to(dtype)  # on meta the cast is free: bf16 weights never exist in fp32
    model.to_empty(device=device)
    model.tie_weights()  # to_empty gives each module its own copy of a shared parameter
    load_weights(model, family, tensors)
    model.tokenizer = tokenizer
    return model.eval()


def _prefix(family: Family, tensors: Tensors) -> str:
    embedding = family.weights["embed.W_E"].name
    for prefix in family.prefixes:
        if embedding.format(p=prefix) in tensors:
            return prefix
    expected = " or ".join(repr(embedding.format(p=p)) for p in family.prefixes)
    raise LoadError(f"checkpoint has no token embedding {expected}; is it a {family.name} checkpoint?")


def _find(name: str, tensors: Tensors) -> str | None:
    return next((alt for alt in name.split("|") if alt in tensors), None)


@torch.no_grad()
def load_weights(model: Transformer, family: Family, tensors: Tensors) -> None:
    prefix = _prefix(family, tensors)
    for ours, param in model.named_parameters():
        layer = re.match(r"blocks\.(\d+)\.", ours)
        template = re.sub(r"^blocks\.\d+\.", "blocks.{l}.", ours)
        source = family.weights[template]
        names = []
        for pattern, shape in zip(source.names, source.shapes(tuple(param.shape), model.cfg)):
            wanted = pattern.format(p=prefix, l=layer.group(1) if layer else "")
            found = _find(wanted, tensors)
            if found is None:
                candidates = " or ".join(repr(n) for n in wanted.split("|"))
                if ours == "unembed.weight":
                    raise LoadError(
                        f"checkpoint has no unembedding {candidates} (expected shape {list(shape)}): a base model "
                        "without an LM head can give logits only when its embeddings are tied; load the "
                        "...ForCausalLM checkpoint instead"
                    )
                raise LoadError(f"checkpoint has no tensor {candidates} (expected shape {list(shape)}, for {ours})")
            if tensors.shape(found) != shape:
                raise LoadError(
                    f"tensor {found!r} has shape {list(tensors.shape(found))}; expected {list(shape)} from config.json"
                )
            names.append(found)
        param.copy_(source.convert([tensors.get(n) for n in names], model.cfg))
