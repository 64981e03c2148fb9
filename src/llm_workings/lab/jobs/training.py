"""The training job: a short `llmw train` of a recipe, landing in the runs folder only when complete.

The run is written into a hidden directory beside its target (`runs/.tmp-NAME-XXXX/`) and renamed
to `runs/NAME` after the model and its card are saved, so the runs folder never shows half a run:
a cancelled or failed job removes its temporary directory, and a hidden directory that a killed
lab left behind is removed when a lab next starts (`remove_stale_temporaries`). What lands is exactly what
`llmw train RECIPE --out runs/NAME` writes, so the model catalog lists it like any other run.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ApiError
from .manager import JobContext, JobFailed, JobManager
from .process import in_process

if TYPE_CHECKING:  # the child module runs as __main__ in the child; importing it here would load it twice there
    from .child import ChildContext

KIND = "train"
TEMPORARY_PREFIX = ".tmp-"
# A lab's own jobs cannot be running when it starts, but another lab sharing the runs folder may be
# training into one of these now. Its directory is written at every evaluation and checkpoint, so
# one untouched for an hour was left by a lab that was killed.
STALE_AFTER_S = 3600.0
MAX_STEPS = 5000  # minutes, not hours, on a laptop's CPU for the bundled recipes
REPORTS_PER_RUN = 200  # progress points per run, plus one a second at most: a long run's stream stays small
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
# austen-bpe is left out: before its first step it trains a 4k-token BPE vocabulary on the corpus,
# which no cancel can interrupt.
LabRecipe = Literal["induction-2l", "modadd-113", "shakespeare-char"]


class TrainOverrides(BaseModel):
    """The settings a lab run may change, each bounded so that no request can exhaust the machine."""

    model_config = ConfigDict(extra="forbid")

    steps: int | None = Field(None, ge=1, le=MAX_STEPS, description="optimizer updates")
    batch_size: int | None = Field(None, ge=1, le=256)
    lr: float | None = Field(None, gt=0, le=1)
    warmup_steps: int | None = Field(None, ge=0, le=MAX_STEPS)
    weight_decay: float | None = Field(None, ge=0, le=10)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    d_model: int | None = Field(None, ge=8, le=256)
    n_layers: int | None = Field(None, ge=1, le=4)
    n_heads: int | None = Field(None, ge=1, le=16)


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["train"]
    recipe: LabRecipe = "induction-2l"
    name: str | None = Field(None, pattern=NAME_PATTERN, description="the run's folder in the runs folder")
    overrides: TrainOverrides = Field(default_factory=TrainOverrides)


def prepare(request: TrainRequest, runs_dir: Path, jobs: JobManager) -> tuple[Callable[[JobContext], Any], dict[str, Any]]:
    """Check the request now (a bad setting is a 400 before anything runs); return the job and its params."""
    from ...zoo import get_recipe  # here, not at the top: the lab starts without torch

    recipe = get_recipe(request.recipe)
    overrides = request.overrides.model_dump(exclude_none=True)
    steps = overrides.get("steps", recipe.train["steps"])
    if "warmup_steps" not in overrides and recipe.train.get("warmup_steps", 0) > steps:
        overrides["warmup_steps"] = steps // 10  # a short run keeps the recipe's shape: a tenth of it warms up
    try:
        recipe = recipe.with_overrides(overrides)
    except ValueError as e:
        raise ApiError(str(e), field="overrides") from None
    name = request.name or free_name(request.recipe, runs_dir, jobs)
    if (runs_dir / name).exists() or jobs.reserved(KIND, "name", name):
        raise ApiError(f"a run named {name!r} already exists in the runs folder or is being trained", 409, "name")
    params = {"recipe": recipe.name, "name": name, "overrides": overrides, "steps": steps}

    def run(ctx: JobContext) -> dict[str, Any]:
        return train_into(ctx, recipe.name, overrides, runs_dir, name)

    return run, params


def free_name(recipe: str, runs_dir: Path, jobs: JobManager) -> str:
    """The first of RECIPE-run1, RECIPE-run2, ... that neither the runs folder nor a pending job holds."""
    taken = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()
    n = 1
    while f"{recipe}-run{n}" in taken or jobs.reserved(KIND, "name", f"{recipe}-run{n}"):
        n += 1
    return f"{recipe}-run{n}"


def train_into(ctx: JobContext, recipe: str, overrides: dict[str, Any], runs_dir: Path, name: str) -> dict[str, Any]:
    """On the manager's worker thread: train in a child process into a temporary directory, then rename it."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}{name}-", dir=runs_dir))
    try:
        ctx.progress(0.0, "starting: loading torch and building the model")
        target = runs_dir / name
        params = {"recipe": recipe, "overrides": overrides, "out_dir": str(temporary), "reproduce_out": typed_path(target)}
        result = in_process(ctx, f"{__name__}:train_recipe", params)
        ctx.check_cancelled()
        if target.exists():  # rename() would merge into an empty directory; never let it
            raise JobFailed(f"{target} appeared while training, so the run was not moved there")
        # Each file inside was written atomically; the rename makes the whole run appear at once. If the
        # machine dies before the rename is on disk, what is left is a hidden .tmp- directory, never half a run.
        os.rename(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return {"run": name, **result}


def remove_stale_temporaries(runs_dir: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the hidden training directories in `runs_dir` that nothing has written to for
    `older_than_s` seconds (see STALE_AFTER_S); return those removed."""
    if not runs_dir.is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for path in sorted(runs_dir.glob(f"{TEMPORARY_PREFIX}*")):
        if path.is_dir() and not path.is_symlink() and last_written(path) < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def last_written(directory: Path) -> float:
    """The newest modification time of `directory` and everything in it."""
    newest = directory.lstat().st_mtime
    for parent, dirs, files in os.walk(directory):
        for entry in (*dirs, *files):
            try:
                newest = max(newest, os.lstat(os.path.join(parent, entry)).st_mtime)
            except OSError:  # removed while we looked: it was being written to
                return time.time()
    return newest


def typed_path(path: Path) -> str:
    """`path` as a user in the lab's working directory would type it: relative when it is inside, as
    `runs/NAME` for the default runs folder; absolute otherwise."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(absolute)


def train_recipe(ctx: ChildContext, recipe: str, overrides: dict[str, Any], out_dir: str, reproduce_out: str) -> dict[str, Any]:
    """In the child process: `llmw train` into `out_dir`, reporting step, loss and tokens/s; the card's
    command names `reproduce_out`, the folder the run is renamed to."""
    import torch

    from ...train import StepReport
    from ...zoo import get_recipe
    from ...zoo.runner import CARD, run_recipe

    ctx.check_cancelled()  # a cancel while torch was loading
    out = Path(out_dir)
    recipe = get_recipe(recipe).with_overrides(overrides)  # checked by prepare() already
    # Leave a core to the server. These models are tiny: a second intra-op thread buys little, and on a
    # busy machine OpenMP's barrier makes each small matmul wait out a scheduler slice (tests/conftest.py).
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    every = max(1, recipe.train["steps"] // REPORTS_PER_RUN)
    evaluation: dict[str, float] = {}
    last_report = -math.inf

    def on_step(report: StepReport) -> None:
        nonlocal last_report
        ctx.check_cancelled()  # every update, so a cancel takes effect within one step
        if report.evaluation is not None:
            evaluation.update({k: v for k, v in report.evaluation.items() if k != "step"})
        # every `every` steps, and at least once a second on a slow machine (the first step included)
        if report.step % every == 0 or report.step == report.steps or time.monotonic() - last_report >= 1.0:
            last_report = time.monotonic()
            ctx.progress(
                report.step / report.steps,
                f"step {report.step} of {report.steps}",
                step=report.step,
                steps=report.steps,
                loss=report.loss,
                tokens_per_second=report.tokens_per_second,
                **({"evaluation": dict(evaluation)} if evaluation else {}),
            )

    run_recipe(recipe, out, overrides, progress=False, on_step=on_step, reproduce_out=reproduce_out)
    card = json.loads((out / CARD).read_text())
    return {"metrics": card["metrics"], "training_seconds": card["training_seconds"], "parameters": card["parameters"]}
