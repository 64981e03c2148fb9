"""The training job: `llmw train` of a recipe in a child process, in place in `runs/NAME`, pausable.

    POST /api/jobs {"kind": "train", "recipe": "modadd-113", "overrides": {"p": 59, "steps": 400}}
    POST /api/jobs {"kind": "train", "resume": "modadd-p59-run1"}      # a paused or interrupted run

The run is what `llmw train RECIPE --overrides... --out runs/NAME` writes, trained by the same code
(`zoo.runner.run_recipe`), so the model catalog lists it like any other run: unavailable while it
trains (with its last checkpoint's step), then with its card. Stopping it:
- cancel: stops within a step and removes the run's folder (nothing half-trained is left);
- pause: stops after the current step with a checkpoint; the job ends `paused` and the run resumes,
  repeating the uninterrupted run's losses exactly (the trainer's guarantee, see train/trainer.py);
- the server stopping (Ctrl-C) pauses every run, and a child whose server died pauses itself, so an
  interrupted run is never lost: it is listed as resumable when a lab next starts.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ApiError
from .manager import JobCancelled, JobContext, JobFailed, JobManager, JobPaused
from .process import in_process
from .recipe_settings import LabRecipe, check_overrides, warnings
from .runs import FINISHED, check_writable, checkpoint_step, model_id, read_record, typed_path, write_record

if TYPE_CHECKING:  # the child module runs as __main__ in the child; importing it here would load it twice there
    from .child import ChildContext

KIND = "train"
REPORTS_PER_RUN = 200  # progress points per run, plus one a second at most: a long run's stream stays small
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["train"]
    recipe: LabRecipe = "induction-2l"
    name: str | None = Field(None, pattern=NAME_PATTERN, description="the run's folder in the runs folder")
    overrides: dict[str, Any] = Field(default_factory=dict, description="settings from the recipe's table")
    resume: str | None = Field(None, pattern=NAME_PATTERN, description="a paused run's name: continue it")


def prepare(request: TrainRequest, runs_dir: Path, jobs: JobManager) -> tuple[Callable[[JobContext], Any], dict[str, Any]]:
    """Check the request now (a bad setting is a 400 before anything runs); return the job and its params."""
    if request.resume is not None:
        return prepare_resume(request, runs_dir, jobs)
    recipe, overrides = resolve(request.recipe, request.overrides)
    steps = recipe.train["steps"]
    base = f"modadd-p{overrides['p']}" if "p" in overrides else recipe.name
    name = request.name or free_name(base, runs_dir, jobs)
    if (runs_dir / name).exists() or jobs.reserved(KIND, "name", name):
        raise ApiError(f"a run named {name!r} already exists in the runs folder or is being trained", 409, "name")
    check_writable(runs_dir, "the runs folder")
    params = {
        "recipe": recipe.name,
        "name": name,
        "model": model_id(name),
        "overrides": overrides,
        "steps": steps,
        "warnings": warnings(recipe.name, overrides),
    }
    model_config = recipe.model_config().to_dict()

    def run(ctx: JobContext) -> dict[str, Any]:
        (runs_dir / name).mkdir(parents=True)  # not exist_ok: two jobs never share a folder
        write_record(runs_dir / name, recipe.name, recipe.task, overrides, model_config)
        return train_into(ctx, recipe.name, overrides, runs_dir / name, resumed=False)

    return run, params


def resolve(recipe_name: str, posted: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The recipe with the posted settings, and the overrides that make it (with those they imply);
    a 400 naming the setting when one is out of range or the combination cannot train."""
    from ...zoo import get_recipe  # here, not at the top: the lab starts without torch

    recipe = get_recipe(recipe_name)
    overrides = check_overrides(recipe.name, posted)
    if "p" in overrides:  # the vocabulary is the p residues and '='
        overrides["d_vocab"] = overrides["p"] + 1
    steps = overrides.get("steps", recipe.train["steps"])
    if "warmup_steps" not in overrides and recipe.train.get("warmup_steps", 0) > steps:
        overrides["warmup_steps"] = steps // 10  # a short run keeps the recipe's shape: a tenth of it warms up
    try:
        return recipe.with_overrides(overrides), overrides
    except ValueError as e:
        raise ApiError(str(e), field="overrides") from None


def prepare_resume(request: TrainRequest, runs_dir: Path, jobs: JobManager) -> tuple[Callable[[JobContext], Any], dict[str, Any]]:
    if request.overrides or request.name is not None:
        raise ApiError("a resumed run keeps its settings and name; send only resume", field="overrides")
    name = request.resume
    directory = runs_dir / name
    record = read_record(directory) if directory.is_dir() else None
    if record is None:
        raise ApiError(f"no lab run {name!r} to resume in the runs folder {runs_dir}", 404, "resume")
    if (directory / FINISHED).exists():
        raise ApiError(f"the run {name!r} has finished; there is nothing to resume", 409, "resume")
    if jobs.reserved(KIND, "name", name):
        raise ApiError(f"the run {name!r} is being trained, or waits in the queue, already", 409, "resume")
    check_writable(directory, "the run folder")
    from ...zoo import get_recipe

    overrides = record["overrides"]
    try:  # as checked when the run was started; a record edited since is refused here, not mid-run
        steps = get_recipe(record["recipe"]).with_overrides(overrides).train["steps"]
    except (ValueError, TypeError, AttributeError) as e:
        raise ApiError(
            f"the run {name!r} cannot be resumed: its {directory / 'lab-run.json'} is not valid: {e}", 409, "resume"
        ) from None
    step = checkpoint_step(directory)
    params = {
        "recipe": record["recipe"],
        "name": name,
        "model": model_id(name),
        "overrides": overrides,
        "steps": steps,
        "warnings": warnings(record["recipe"], overrides),
        "resumed_from": step,
    }

    def run(ctx: JobContext) -> dict[str, Any]:
        return train_into(ctx, record["recipe"], overrides, directory, resumed=True)

    return run, params


def free_name(base: str, runs_dir: Path, jobs: JobManager) -> str:
    """The first of BASE-run1, BASE-run2, ... that neither the runs folder nor a pending job holds."""
    taken = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()
    n = 1
    while f"{base}-run{n}" in taken or jobs.reserved(KIND, "name", f"{base}-run{n}"):
        n += 1
    return f"{base}-run{n}"


def train_into(ctx: JobContext, recipe: str, overrides: dict[str, Any], directory: Path, resumed: bool) -> dict[str, Any]:
    """On the manager's worker thread: train in a child process; a run that stops unfinished is kept
    when it was asked to pause (or the server is stopping), and removed when it was cancelled."""
    name = directory.name
    try:
        ctx.progress(0.0, "starting: loading torch and building the model", run=model_id(name))
        params = {"recipe": recipe, "overrides": overrides, "out_dir": str(directory), "reproduce_out": typed_path(directory)}
        result = in_process(ctx, f"{__name__}:train_recipe", params)
    except BaseException as e:
        # A failure of a resumed run keeps its intact checkpoint; a fresh run's failure leaves nothing.
        keep = ctx.pause_requested or (resumed and not isinstance(e, JobCancelled))
        if not keep or not (directory / "checkpoint.json").exists():
            shutil.rmtree(directory, ignore_errors=True)
        elif ctx.pause_requested and isinstance(e, JobCancelled):
            raise JobPaused({"run": name, "model": model_id(name), "step": checkpoint_step(directory)}) from None
        raise
    if result.get("paused"):
        raise JobPaused({"run": name, "model": model_id(name), "step": result["step"]})
    if not (directory / FINISHED).exists():
        raise JobFailed(f"the run ended without saving its model in {directory}")
    return {"run": name, "model": model_id(name), **result}


def train_recipe(ctx: ChildContext, recipe: str, overrides: dict[str, Any], out_dir: str, reproduce_out: str) -> dict[str, Any]:
    """In the child process: `llmw train` into `out_dir`, reporting step, loss, tokens/s, each evaluation
    and the snapshots written; a pause stops it after a step with a checkpoint."""
    import torch

    from ...train import StepReport
    from ...train.config import snapshot_steps
    from ...zoo import get_recipe
    from ...zoo.runner import CARD, run_recipe

    ctx.check_cancelled()  # a cancel while torch was loading
    out = Path(out_dir)
    recipe = get_recipe(recipe).with_overrides(overrides)  # checked by prepare() already
    # Leave a core to the server. These models are tiny: a second intra-op thread buys little, and on a
    # busy machine OpenMP's barrier makes each small matmul wait out a scheduler slice (tests/conftest.py).
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    train_cfg = recipe.train_config()
    every = max(1, train_cfg.steps // REPORTS_PER_RUN)
    schedule = snapshot_steps(train_cfg.snapshots, train_cfg.steps)
    evaluation: dict[str, float] = {}
    last_report = -math.inf
    run = model_id(out.name)

    def on_step(report: StepReport) -> bool:
        nonlocal last_report
        if ctx.pause_requested:
            return True  # the trainer stops here and writes a checkpoint of this step
        ctx.check_cancelled()  # every update, so a cancel takes effect within one step
        if report.evaluation is not None:
            evaluation.update({k: v for k, v in report.evaluation.items() if k != "step"})
        snapshot = report.step in schedule
        # every `every` steps, each evaluation and snapshot, and at least once a second on a slow machine
        if (
            report.step % every == 0
            or report.step == report.steps
            or report.evaluation is not None
            or snapshot
            or time.monotonic() - last_report >= 1.0
        ):
            last_report = time.monotonic()
            ctx.progress(
                report.step / report.steps,
                f"step {report.step} of {report.steps}",
                run=run,
                step=report.step,
                steps=report.steps,
                loss=report.loss,
                tokens_per_second=report.tokens_per_second,
                snapshots=[s for s in schedule if s <= report.step],
                **({"evaluation": dict(evaluation)} if evaluation else {}),
                **({"evaluated": dict(report.evaluation)} if report.evaluation is not None else {}),
            )
        return False

    run_recipe(recipe, out, overrides, progress=False, on_step=on_step, reproduce_out=reproduce_out)
    if not (out / CARD).is_file():  # the trainer stopped early: paused
        return {"paused": True, "step": json.loads((out / "checkpoint.json").read_text())["step"]}
    card = json.loads((out / CARD).read_text())
    return {"metrics": card["metrics"], "training_seconds": card["training_seconds"], "parameters": card["parameters"]}
