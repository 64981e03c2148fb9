"""Full fine-tuning and LoRA through the one trainer: resumable, seeded, with a progress bar.

    result = finetune(model, task, TrainConfig(steps=300, lr=1e-3), lora=LoRAConfig(rank=8), run_dir="runs/ft")
    result.adapter        # the trained Adapter (None for full fine-tuning)

A LoRA run's checkpoints hold only the adapter and its optimizer moments; at the end the run directory
gets the adapter alone, in PEFT's format when the targets have Hugging Face modules (`adapter/`) and
always in ours (`lora.json` + `lora.safetensors`). A full run saves the whole model (`model/`). The
base's weights are fingerprinted in `finetune.json`, so resuming onto a different base is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, write_json
from ..train.config import TrainConfig
from ..train.tasks import Task
from ..train.trainer import StepReport, Trainer, TrainResult
from ..transformer.model import Transformer
from .lora import Adapter, LoRAConfig, LoRAError, add_lora, check_config, lora_shapes
from .peft_format import family_of, save_peft

RECORD, LORA_CONFIG, LORA_WEIGHTS = "finetune.json", "lora.json", "lora.safetensors"
FORMAT = "llm_workings.lora"


@dataclass
class FineTuneResult:
    train: TrainResult
    adapter: Adapter | None  # None for full fine-tuning
    run_dir: Path | None


def fingerprint(model: Transformer) -> str:
    """SHA-256 of the base weights (adapters left out), to tell one base from another."""
    digest = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if ".lora." not in name:
            digest.update(name.encode())
            digest.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def finetune(
    model: Transformer,
    task: Task,
    config: TrainConfig,
    lora: LoRAConfig | None = None,
    run_dir: str | os.PathLike | None = None,
    progress: bool = True,
    on_step: Callable[[StepReport], None] | None = None,
) -> FineTuneResult:
    """Fine-tune `model` in place on `task`: every weight when `lora` is None, else a fresh LoRA adapter
    named "default" (the base frozen). With `run_dir`, an interrupted run resumes where it stopped."""
    run_dir = Path(run_dir) if run_dir is not None else None
    record = {"method": "full" if lora is None else "lora", "lora": lora and lora.to_dict(), "base": fingerprint(model)}
    record = json.loads(json.dumps(record))  # as it reads back from the file: tuples become lists
    if run_dir is not None:
        _check_resumable(run_dir, record)
    adapter = add_lora(model, lora) if lora is not None else None
    if run_dir is not None:
        write_json(run_dir / RECORD, record, indent=2)
    trainer = Trainer(model, task, config, run_dir, progress, on_step)
    if adapter is not None:
        trainer.checkpointed = adapter.as_module()
    result = trainer.train()
    if run_dir is not None and not result.interrupted:
        if adapter is None:
            model.save(run_dir / "model")
        else:
            save_adapter(adapter, run_dir)
    return FineTuneResult(result, adapter, run_dir)


def _check_resumable(run_dir: Path, record: dict[str, Any]) -> None:
    path = run_dir / RECORD
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LoRAError(f"{path} is not valid JSON (truncated or corrupt?): {e}") from e
    for key, what in (("base", "a different base model"), ("method", "another method"), ("lora", "other LoRA settings")):
        if saved.get(key) != record[key]:
            raise LoRAError(f"{run_dir} holds a fine-tuning run of {what}; resume it as it was started, or use a new directory")


def save_adapter(adapter: Adapter, directory: str | os.PathLike) -> Path:
    """Our format (always), and PEFT's in `adapter/` when every target has a Hugging Face module."""
    directory = Path(directory)
    with atomic_path(directory / LORA_WEIGHTS) as tmp:
        save_file({k: t.contiguous().cpu() for k, t in adapter.state_dict().items()}, tmp)
    write_json(directory / LORA_CONFIG, {"format": FORMAT, "name": adapter.name, "config": adapter.config.to_dict()}, indent=2)
    try:
        family_of(adapter.model)
        save_peft(adapter, directory / "adapter")
    except LoRAError:
        pass  # e.g. attn.q on GPT-2, whose c_attn PEFT can only adapt whole; our files hold it
    return directory


def load_adapter(model: Transformer, directory: str | os.PathLike, name: str | None = None) -> Adapter:
    """Attach an adapter written by `save_adapter` (or `finetune`), after checking every name and shape."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / LORA_CONFIG).read_text())
    except FileNotFoundError:
        raise LoRAError(f"{directory} has no {LORA_CONFIG}; expected a directory written by save_adapter") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LoRAError(f"{directory / LORA_CONFIG} is not valid JSON (truncated or corrupt?): {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LoRAError(f"{directory / LORA_CONFIG} is not an llm_workings LoRA config (no format {FORMAT!r})")
    try:
        tensors = load_file(directory / LORA_WEIGHTS)
    except (SafetensorError, OSError) as e:
        raise LoRAError(f"{directory / LORA_WEIGHTS} is not a readable safetensors file (truncated or corrupt?): {e}") from e
    cfg, name = LoRAConfig.from_dict(meta["config"]), name or meta.get("name", "default")
    check_config(model, cfg, name)  # everything is checked before anything is attached
    shapes = lora_shapes(model, cfg)
    missing, unexpected = sorted(set(shapes) - set(tensors)), sorted(set(tensors) - set(shapes))
    if missing or unexpected:
        raise LoRAError(
            f"{directory / LORA_WEIGHTS} does not match its config: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for key, shape in shapes.items():
        if tuple(tensors[key].shape) != shape:
            raise LoRAError(
                f"{directory / LORA_WEIGHTS}: {key} has shape {list(tensors[key].shape)}; this model needs {list(shape)}: "
                "the adapter was made for a different base"
            )
    adapter = add_lora(model, cfg, name)
    adapter.load_state_dict(tensors, directory)
    return adapter
