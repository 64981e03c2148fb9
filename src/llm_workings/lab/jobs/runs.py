"""A lab training run's folder in the runs folder: its record, whether it can resume, what it has done.

A lab run trains in place, in `runs/NAME`, as `llmw train RECIPE --out runs/NAME` would. Beside what
the trainer writes (checkpoint, snapshots, at the end the model and its card) the lab keeps one small
file, `lab-run.json`: the recipe, its task, the overrides and the model's config, written before the first step.
With it the lab can resume a run it did not finish (paused, or the server stopped mid-run), and the
snapshots of a run still training can be loaded (their weights need the model's config).

    record = read_record(runs_dir / "induction-2l-run1")   # {"recipe", "task", "overrides", "model_config"} or None
    resumable(runs_dir)                                  # unfinished lab runs, with their last step
    history(runs_dir / "induction-2l-run1")              # the losses and evals of its last checkpoint
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ...atomic import write_json
from ..errors import ApiError
from ..models.catalog import LAB_RUN_RECORD as LAB_RUN
from ..models.catalog import RUN_RECORD, slug

FORMAT = "llm_workings.lab_run"
FINISHED = "config.json"  # save_model writes it last: a run with it is complete
# Labs before runs trained in place wrote into hidden `.tmp-NAME-XXXX` folders and renamed them; one a
# killed lab left is removed when nothing has written to it for an hour (another lab sharing the runs
# folder may still be training into a fresher one).
TEMPORARY_PREFIX = ".tmp-"
STALE_AFTER_S = 3600.0


def model_id(name: str) -> str:
    """The catalog id of the run in `runs/NAME` (see models/catalog.py)."""
    return "run." + slug(name)


def write_record(directory: Path, recipe: str, task: str, overrides: dict[str, Any], model_config: dict[str, Any]) -> None:
    record = {"format": FORMAT, "recipe": recipe, "task": task, "overrides": overrides, "model_config": model_config}
    write_json(directory / LAB_RUN, record)


def read_record(directory: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((directory / LAB_RUN).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


def checkpoint_step(directory: Path) -> int:
    """The step of the run's committed checkpoint; 0 when it has none yet."""
    try:
        return int(json.loads((directory / RUN_RECORD).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def resumable(runs_dir: Path) -> list[dict[str, Any]]:
    """Every lab run in the runs folder that has not finished: it resumes from its last checkpoint
    (from the start, with the same settings, when it stopped before its first one)."""
    if not runs_dir.is_dir():
        return []
    found = []
    for directory in sorted(runs_dir.iterdir()):
        if directory.name.startswith(".") or not directory.is_dir() or (directory / FINISHED).exists():
            continue
        record = read_record(directory)
        if record is None:
            continue
        found.append(
            {
                "name": directory.name,
                "model": model_id(directory.name),
                "recipe": record["recipe"],
                "overrides": record["overrides"],
                "step": checkpoint_step(directory),
            }
        )
    return found


def history(directory: Path) -> dict[str, Any]:
    """The training loss at every step and the evaluations, as of the run's last checkpoint."""
    try:
        state = json.loads((directory / RUN_RECORD).read_text())["state"]
        return {"step": len(state["losses"]), "losses": state["losses"], "evals": state["evals"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {"step": 0, "losses": [], "evals": []}


def check_writable(folder: Path, what: str) -> None:
    """Refuse, before anything trains, a folder the lab cannot write into (or create)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ApiError(
            f"{what} {folder} is not writable ({e.strerror or type(e).__name__}), so a run there could not save "
            "its checkpoints; make it writable, or start the lab with --runs-dir pointing at a folder that is",
            status=409,
            field="name",
        ) from None


def remove_stale_temporaries(runs_dir: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the hidden training folders in `runs_dir` that nothing has written to for `older_than_s`
    seconds (see STALE_AFTER_S); return those removed."""
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
