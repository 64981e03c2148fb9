"""Run a recipe end to end: train (resumably) in a run directory, then export the model and its card.

out = run_recipe(get_recipe("induction-2l"), "runs/induction-2l")
# runs/induction-2l/: checkpoint.json + checkpoint-*.safetensors  (resumable training state)
#                     config.json, model.safetensors, tokenizer.json  (the model, see transformer/saving.py)
#                     card.json  (recipe, seed, time, metrics)      snapshots/  (weights during training)
"""

from __future__ import annotations

import os
import platform
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_json
from ..train.config import snapshot_steps
from ..train.trainer import StepReport, Trainer, TrainResult
from ..transformer.model import Transformer
from ..transformer.saving import save_model
from .baselines import ngram_bits_per_byte
from .recipes import Recipe, build_task, build_tokenizer
from .registry import CARD


def run_recipe(
    recipe: Recipe,
    out_dir: str | os.PathLike,
    overrides: dict[str, str] | None = None,
    progress: bool = True,
    on_step: Callable[[StepReport], None] | None = None,
    reproduce_out: str | None = None,
) -> Path:
    """`on_step` is the trainer's: told each update, and an exception it raises stops the run.
    `reproduce_out` is the folder the card's command names, when the run is not trained where it ends
    up (the lab trains in a hidden folder and renames it); by default `out_dir` as given."""
    reproduce_out = os.fspath(out_dir) if reproduce_out is None else reproduce_out
    out_dir = Path(out_dir)
    tokenizer_path = out_dir / "tokenizer.json"
    if tokenizer_path.is_file():  # resuming: the ids on disk must keep their meaning
        from ..tokenizers import load_tokenizer

        tokenizer = load_tokenizer(tokenizer_path)
    else:
        tokenizer = build_tokenizer(recipe)
        if tokenizer is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            tokenizer.save(tokenizer_path)
    cfg = recipe.model_config()
    if tokenizer is not None and len(tokenizer) != cfg.d_vocab:
        raise ValueError(f"{recipe.name}: the tokenizer has {len(tokenizer)} tokens but d_vocab is {cfg.d_vocab}")
    train_cfg = recipe.train_config()
    model = Transformer(cfg, tokenizer).init_weights(train_cfg.seed)
    task = build_task(recipe, tokenizer)
    result = Trainer(model, task, train_cfg, run_dir=out_dir, progress=progress, on_step=on_step).train()
    if result.interrupted:
        return out_dir
    save_model(model, out_dir, tokenizer)
    card = make_card(recipe, model, task, result, overrides or {}, reproduce_out)
    write_json(out_dir / CARD, card)
    return out_dir


def make_card(
    recipe: Recipe, model: Transformer, task: Any, result: TrainResult, overrides: dict[str, str], out: str
) -> dict[str, Any]:
    """The run's card; its "reproduce" command trains the same run into `out`, spelled as the user types it."""
    metrics = final_metrics(recipe, model, task)
    command = "llmw train " + " ".join([recipe.name, *(f"--{k}={shlex.quote(str(v))}" for k, v in overrides.items())])
    return {
        "name": recipe.name,
        "summary": recipe.summary,
        "task": recipe.task,
        "reproduce": f"{command} --out {shlex.quote(out)}",
        "seed": recipe.train["seed"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_config": recipe.model,
        "train_config": recipe.train,
        "data": recipe.data,
        "overrides": overrides,
        "metrics": metrics,
        "references": recipe.references,
        "training_seconds": round(result.seconds, 1),
        "machine": machine_description(),
        "evals": result.evals,
        "snapshot_steps": snapshot_steps(recipe.train_config().snapshots, recipe.train_config().steps),
        "transition": locate_transition(result.evals, recipe.transition),
    }


def locate_transition(evals: list[dict[str, Any]], transition: dict[str, Any]) -> dict[str, Any] | None:
    """The steps a recipe's transition spans in a run's evals: from the last eval still on the near side
    of `start` to the first one past `end` (a falling metric when start > end). None when the recipe
    names no transition, or the run never got past `end` (a shortened run, say)."""
    if not transition:
        return None
    metric, start, end = transition["metric"], transition["start"], transition["end"]
    falling = start > end
    past = (lambda v, t: v <= t) if falling else (lambda v, t: v >= t)
    values = [(e["step"], e[metric]) for e in evals if metric in e]
    end_step = next((step for step, value in values if past(value, end)), None)
    if end_step is None:
        return None
    before = [step for step, value in values if step < end_step and not past(value, start)]
    start_step = before[-1] if before else values[0][0]
    return {**transition, "start_step": start_step, "end_step": end_step}


@torch.no_grad()
def final_metrics(recipe: Recipe, model: Transformer, task: Any) -> dict[str, float]:
    """The metrics on a card: the task's final evaluation, and for language models the n-gram baselines."""
    metrics = task.evaluate(model, final=True)
    if recipe.task in ("char-lm", "bpe-lm"):
        metrics.update(ngram_bits_per_byte(task.train_ids, task.val_ids, model.cfg.d_vocab, task.val_bytes))
    return metrics


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
