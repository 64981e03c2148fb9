"""Training checkpoints: one safetensors file of tensors plus one JSON file that commits it.

A checkpoint is two files in the run directory:
- `checkpoint-{step}.safetensors`: the model's weights (`model.*`), the optimizer's moments
  (`optim.{param}.{name}`) and torch's RNG state (`rng.torch`);
- `checkpoint.json`: the step, the configs, the history so far, the optimizer's settings, and
  the name and SHA-256 of the tensor file it belongs to.

Both are written atomically, the tensors first. `checkpoint.json` is the commit record: until it
is replaced, it names the previous tensor file, which is deleted only afterwards. So a run killed
at any instant leaves a complete, loadable checkpoint, and a damaged file is caught by its hash.

    save_checkpoint(run_dir, step=500, model=model, optimizer=opt, state={...})
    ckpt = load_checkpoint(run_dir)      # ckpt.step, ckpt.state, ckpt.restore(model, opt)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, write_json
from ..transformer.loading import LoadError
from ..transformer.saving import copy_weights, weights_to_save

FORMAT, VERSION = "llm_workings.checkpoint", 1
RECORD = "checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged or does not fit the model; the message says which."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    run_dir: str | os.PathLike, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> Path:
    """Write the model, optimizer and RNG at `step`, with `state` (JSON-serialisable) in the record."""
    run_dir = Path(run_dir)
    tensors = {f"model.{name}": t for name, t in weights_to_save(model).items()}
    optim = optimizer.state_dict()
    for index, moments in optim["state"].items():
        for name, value in moments.items():
            tensors[f"optim.{index}.{name}"] = value.detach().contiguous().cpu()
    tensors["rng.torch"] = torch.get_rng_state()
    tensor_file = f"checkpoint-{step:07d}.safetensors"
    with atomic_path(run_dir / tensor_file) as tmp:
        save_file(tensors, tmp)
    previous = _committed_tensor_file(run_dir)
    record = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "tensors": tensor_file,
        "sha256": _sha256(run_dir / tensor_file),
        "param_groups": optim["param_groups"],
        "state": state,
    }
    write_json(run_dir / RECORD, record)
    if previous and previous != tensor_file:
        (run_dir / previous).unlink(missing_ok=True)
    return run_dir / RECORD


def _committed_tensor_file(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / RECORD).read_text()).get("tensors")
    except (OSError, ValueError, AttributeError):
        return None


@dataclass
class Checkpoint:
    step: int
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    param_groups: list[dict[str, Any]]
    path: Path

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Put the weights (and the optimizer's state and torch's RNG) back as they were at `step`."""
        weights = {k.removeprefix("model."): t for k, t in self.tensors.items() if k.startswith("model.")}
        try:
            copy_weights(model, weights, self.path)
        except LoadError as e:
            raise CheckpointError(f"{self.path} holds weights for a different model: {e}") from e
        if optimizer is not None:
            moments: dict[int, dict[str, torch.Tensor]] = {}
            for key, t in self.tensors.items():
                if key.startswith("optim."):
                    _, index, name = key.split(".", 2)
                    moments.setdefault(int(index), {})[name] = t
            try:
                optimizer.load_state_dict({"state": moments, "param_groups": self.param_groups})
            except (ValueError, KeyError) as e:
                raise CheckpointError(f"{self.path}: the optimizer state does not fit this optimizer: {e}") from e
        torch.set_rng_state(self.tensors["rng.torch"])


def load_checkpoint(run_dir: str | os.PathLike) -> Checkpoint:
    """Read and verify the committed checkpoint of a run directory."""
    run_dir = Path(run_dir)
    record_path = run_dir / RECORD
    if not record_path.is_file():
        raise CheckpointError(f"no checkpoint in {run_dir}: {RECORD} is missing")
    try:
        record = json.loads(record_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{record_path} is not valid JSON (truncated or corrupt?): {e}") from e
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{record_path} is not an llm_workings checkpoint record (no format {FORMAT!r})")
    if record.get("version") != VERSION:
        raise CheckpointError(
            f"{record_path} has checkpoint version {record.get('version')!r}; this code reads version {VERSION}"
        )
    missing = [k for k in ("step", "tensors", "sha256", "param_groups", "state") if k not in record]
    if missing:
        raise CheckpointError(f"{record_path} lacks {', '.join(missing)}")
    tensor_path = run_dir / record["tensors"]
    if not tensor_path.is_file():
        raise CheckpointError(f"{record_path} names {record['tensors']}, which is missing from {run_dir}")
    if _sha256(tensor_path) != record["sha256"]:
        raise CheckpointError(
            f"{tensor_path} is damaged: its SHA-256 does not match the one recorded in {RECORD} "
            "(was it truncated or overwritten?)"
        )
    try:
        tensors = load_file(tensor_path)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{tensor_path} is not a readable safetensors file: {e}") from e
    if "rng.torch" not in tensors:
        raise CheckpointError(f"{tensor_path} lacks the RNG state rng.torch")
    return Checkpoint(int(record["step"]), record["state"], tensors, record["param_groups"], tensor_path)
