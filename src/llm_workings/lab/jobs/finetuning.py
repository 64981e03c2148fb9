"""The fine-tuning job: `finetune.finetune` of a bundled language model on another corpus, in a child
process, in place in `runs/fine-tuning/NAME`, pausable and resumable.

    POST /api/jobs {"kind": "finetune", "settings": {"model": "shakespeare-char", "corpus": "austen", "rank": 4}}
    POST /api/jobs {"kind": "finetune", "resume": "shakespeare-char-austen-lora-r4-run1"}

Each evaluation reports both losses of the engine's domain-shift task: `target_val_loss` (learning the
new corpus) and `original_val_loss` (forgetting the model's own). Stopping it:
- cancel: stops within a step and removes the run's folder;
- pause: stops after the step with a checkpoint (the trainer's); resuming calls `finetune` again on
  the same folder, which continues it exactly.
The folder holds `lab-finetune.json` (the settings and the base model's two losses before training),
then what `finetune` writes: its checkpoint, and at the end the adapter (LoRA) or the model (full).
It sits under `fine-tuning/`, which the model catalog does not list: a fine-tuned model is opened on
the Fine-tuning page, beside its base.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...atomic import write_json
from ..errors import ApiError, describe_validation_error
from ..settings import Setting, SettingsTable
from .manager import JobCancelled, JobContext, JobFailed, JobManager, JobPaused
from .process import in_process
from .runs import check_writable, checkpoint_step, history

if TYPE_CHECKING:
    from .child import ChildContext

KIND = "finetune"
FOLDER = "fine-tuning"  # under the runs folder
RECORD = "lab-finetune.json"
FORMAT = "llm_workings.lab_finetune"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
# Each evaluation reads this many batches of each domain's validation text: enough for a steady
# number, few enough that evaluating every 10 steps costs less than the training between.
EVAL_BATCHES, EVAL_BATCH_SIZE = 4, 16
MODELS = ("shakespeare-char", "austen-bpe", "induction-2l", "modadd-113")  # the bundled zoo
CORPORA = ("austen", "tinyshakespeare")

SETTINGS = SettingsTable(
    (
        Setting("model", "choice", "shakespeare-char", "Base model", "The bundled model to fine-tune; it must read text.", choices=MODELS),
        Setting("corpus", "choice", "austen", "Target corpus", "The new domain it learns; its own corpus measures forgetting.", choices=CORPORA),
        Setting("method", "choice", "lora", "Method", "Full fine-tuning trains every weight; LoRA trains a low-rank B A beside frozen weights.", choices=("full", "lora")),
        Setting("rank", "int", 4, "LoRA rank r", "The rank of the update B A (LoRA only); at most the adapted map's width.", min=1, max=4096),
        Setting("alpha", "float", 8.0, "LoRA alpha", "The update is scaled by alpha / r (LoRA only).", min=0.001, max=4096.0),
        Setting("targets", "text", "attn.qkv,attn.o,mlp.in,mlp.out", "LoRA targets", "Comma-separated linear maps to adapt (LoRA only).", max_length=200),
        Setting("steps", "int", 40, "Steps", "Optimizer updates.", min=1, max=2000),
        Setting("lr", "float", 3e-3, "Learning rate", "AdamW's peak step size.", min=1e-5, max=1.0, log_scale=True),
        Setting("batch_size", "int", 16, "Batch size", "Sequences of the target corpus per update.", min=1, max=128),
        Setting("eval_every", "int", 10, "Evaluate every", "Updates between two measurements of both losses.", min=1, max=2000),
        Setting("seed", "int", 0, "Seed", "Fixes the batches and the adapter's initialisation.", min=0, max=99999),
    )
)  # fmt: skip


class FineTuneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["finetune"]
    settings: dict[str, Any] = Field(default_factory=dict, description="from GET /api/fine-tuning/schema")
    resume: str | None = Field(None, pattern=NAME_PATTERN, description="a paused run's name: continue it")


def check_settings(posted: dict[str, Any]) -> dict[str, Any]:
    """The posted settings with the defaults filled in; a 400 naming the first bad one. Checks that need
    the model (a rank above a map's width, a target it lacks) are the engine's, in `check_model`."""
    model = SETTINGS.model("FineTuneSettings")
    try:
        settings = model.model_validate(posted).model_dump()
    except ValidationError as e:
        message, field = describe_validation_error(e.errors())
        raise ApiError(message, field=field or "settings") from None
    if settings["model"] in ("induction-2l", "modadd-113"):
        raise ApiError(
            f"{settings['model']} has no tokenizer (it reads task tokens, not text), so it cannot learn a text corpus; "
            "fine-tune shakespeare-char or austen-bpe",
            field="model",
        )
    settings["targets"] = [t.strip() for t in settings["targets"].split(",") if t.strip()]
    return settings


def lora_config(settings: dict[str, Any]) -> Any:
    from ...finetune import LoRAConfig

    if settings["method"] != "lora":
        return None
    return LoRAConfig(rank=settings["rank"], alpha=settings["alpha"], targets=tuple(settings["targets"]), seed=settings["seed"])


def train_config(settings: dict[str, Any]) -> Any:
    from ...train import TrainConfig

    steps = settings["steps"]
    return TrainConfig(
        steps=steps,
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        warmup_steps=steps // 10,
        eval_every=min(settings["eval_every"], steps),
        checkpoint_every=max(steps, 1),  # a pause writes its own; none needed between
        seed=settings["seed"],
    )


def check_model(settings: dict[str, Any]) -> None:
    """Refuse, before a job starts, what the engine refuses: the target corpus the model was trained
    on, a target map the model lacks, a rank above a map's width."""
    from ...finetune.lora import LoRAError, check_config
    from ...zoo.registry import card, load

    own = card(settings["model"]).get("data", {}).get("corpus")
    if own == settings["corpus"]:
        raise ApiError(
            f"{settings['model']} was trained on {own}; pick another corpus to see it learn something new", field="corpus"
        )
    try:
        cfg = lora_config(settings)
        if cfg is not None:
            model, _ = load(settings["model"])
            check_config(model, cfg)
    except LoRAError as e:
        message = str(e)
        field = "rank" if message.startswith("rank") else "targets"
        raise ApiError(message, field=field) from None


def run_name(settings: dict[str, Any], directory: Path, jobs: JobManager) -> str:
    method = f"lora-r{settings['rank']}" if settings["method"] == "lora" else "full"
    base = f"{settings['model']}-{settings['corpus']}-{method}"
    taken = {p.name for p in directory.iterdir()} if directory.is_dir() else set()
    n = 1
    while f"{base}-run{n}" in taken or jobs.reserved(KIND, "name", f"{base}-run{n}"):
        n += 1
    return f"{base}-run{n}"


def read_record(directory: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((directory / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


def finished(directory: Path) -> bool:
    return (directory / "lora.json").is_file() or (directory / "model" / "config.json").is_file()


def prepare(request: FineTuneRequest, runs_dir: Path, jobs: JobManager) -> tuple[Callable[[JobContext], Any], dict[str, Any]]:
    """Check the request now (a bad setting is a 400 before anything runs); return the job and its params."""
    folder = runs_dir / FOLDER
    if request.resume is not None:
        if request.settings:
            raise ApiError("a resumed run keeps its settings; send only resume", field="settings")
        name = request.resume
        record = read_record(folder / name)
        if record is None:
            raise ApiError(f"no fine-tuning run {name!r} to resume in {folder}", 404, "resume")
        if finished(folder / name):
            raise ApiError(f"the fine-tuning run {name!r} has finished; there is nothing to resume", 409, "resume")
        if jobs.reserved(KIND, "name", name):
            raise ApiError(f"the fine-tuning run {name!r} is being trained already", 409, "resume")
        settings, resumed_from = record["settings"], checkpoint_step(folder / name)
    else:
        settings = check_settings(request.settings)
        check_model(settings)
        check_writable(folder, "the fine-tuning runs folder")
        name, resumed_from = run_name(settings, folder, jobs), None
    directory = folder / name
    params = {"name": name, "settings": settings, "steps": settings["steps"], "resumed_from": resumed_from}

    def run(ctx: JobContext) -> dict[str, Any]:
        return finetune_into(ctx, settings, directory, resumed=resumed_from is not None)

    return run, params


def finetune_into(ctx: JobContext, settings: dict[str, Any], directory: Path, resumed: bool) -> dict[str, Any]:
    """On the manager's worker thread: fine-tune in a child process; keep the folder when paused."""
    try:
        ctx.progress(0.0, "starting: loading torch and the base model", run=directory.name)
        result = in_process(ctx, f"{__name__}:finetune_run", {"settings": settings, "directory": str(directory)})
    except BaseException as e:
        keep = ctx.pause_requested or (resumed and not isinstance(e, JobCancelled))
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
        elif ctx.pause_requested and isinstance(e, JobCancelled):
            raise JobPaused({"run": directory.name, "step": checkpoint_step(directory)}) from None
        raise
    if result.get("paused"):
        raise JobPaused({"run": directory.name, "step": result["step"]})
    if not finished(directory):
        raise JobFailed(f"the fine-tuning run ended without saving its result in {directory}")
    return {"run": directory.name, **result}


def finetune_run(ctx: ChildContext, settings: dict[str, Any], directory: str) -> dict[str, Any]:
    """In the child: the engine's `finetune` with an `on_step` that reports each step and each
    evaluation (both losses), stops for a pause, and raises for a cancel."""
    import torch

    from ...finetune import finetune
    from ...finetune.forgetting import domain_shift
    from ...zoo.registry import load

    ctx.check_cancelled()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    out = Path(directory)
    model, _ = load(settings["model"])
    task = domain_shift(settings["model"], settings["corpus"], EVAL_BATCHES, EVAL_BATCH_SIZE)
    record = read_record(out)
    if record is None:
        out.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            baseline = task.evaluate(model.eval())
        record = {"format": FORMAT, "settings": settings, "baseline": baseline}
        write_json(out / RECORD, record)
    steps = settings["steps"]
    for evaluated in ({"step": 0, **record["baseline"]}, *history(out)["evals"]):  # a resumed run's curve so far
        ctx.progress(evaluated["step"] / steps, f"step {evaluated['step']}", run=out.name, evaluated=evaluated)

    def on_step(report: Any) -> bool:
        if ctx.pause_requested:
            return True  # the trainer stops here and writes a checkpoint of this step
        ctx.check_cancelled()
        ctx.progress(
            report.step / report.steps,
            f"step {report.step} of {report.steps}",
            run=out.name,
            step=report.step,
            steps=report.steps,
            loss=report.loss,
            tokens_per_second=report.tokens_per_second,
            **({"evaluated": dict(report.evaluation)} if report.evaluation is not None else {}),
        )
        return False

    run = finetune(model, task, train_config(settings), lora=lora_config(settings), run_dir=out, progress=False, on_step=on_step)
    if run.train.interrupted:
        return {"paused": True, "step": checkpoint_step(out)}
    trainable = run.adapter.num_parameters() if run.adapter is not None else sum(p.numel() for p in model.parameters())
    return {"baseline": record["baseline"], "evals": run.train.evals, "trainable": trainable}
