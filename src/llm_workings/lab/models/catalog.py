"""The models the lab can offer: the bundled zoo, the `--model` arguments, and the runs in the runs folder.

    entries = zoo_entries() + cli_entries(config.models) + run_entries(config.runs_dir)

Ids are stable and URL-safe: a zoo model's name ("shakespeare-char"); "cli." plus a slug of a
`--model` argument's last part ("cli.gpt2", "cli.eleutherai-pythia-70m"); "run." plus a slug of
the run folder's name ("run.induction-2l": the prefix keeps a run of a zoo recipe, which
`llmw train` names after it, apart from the bundled model).

A run still training (a `checkpoint.json`, or the lab's `lab-run.json`, but no final `config.json`
yet: `save_model` writes the config last) is listed as unavailable, with its last checkpoint's step. So is a bad `--model`
argument, with the reason, so a typo on the command line does not stop the lab.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .describe import NotAModel, describe

Source = Literal["zoo", "cli", "run"]
SLUG = re.compile(r"[^a-z0-9_-]+")
HUB_NAME = re.compile(r"^[A-Za-z0-9_-][\w.-]*(/[\w.-]+)?$")  # as transformer/loading.py, which imports torch
RUN_RECORD = "checkpoint.json"
LAB_RUN_RECORD = "lab-run.json"  # a lab training run's recipe and settings, written before its first step


class CatalogEntry(BaseModel):
    """One model in the picker. Nothing here needs the weights."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="stable and URL-safe")
    label: str
    source: Source
    task: str = Field(description="the card's task (char-lm, bpe-lm, induction, modular-addition), 'lm', or 'unknown'")
    has_tokenizer: bool
    parameters: int | None = Field(description="numbers in the weights files; None when not cheaply known")
    n_layers: int | None = None
    d_model: int | None = None
    n_heads: int | None = None
    n_ctx: int | None = None
    d_vocab: int | None = None
    description: str = ""
    available: bool = True
    reason: str | None = Field(None, description="why the model cannot be loaded, when it cannot")
    location: str = Field(description="the directory, or the hub name, it loads from")
    # not for the page: which loader reads it, and when its files last changed (a retrained run reloads)
    format: Literal["ours", "hf", "hub"] = Field("ours", exclude=True)
    stamp: int = Field(0, exclude=True)  # the files' last change
    in_training: bool = Field(False, exclude=True)  # a run with no final model yet: nothing to load


def slug(text: str) -> str:
    return SLUG.sub("-", text.lower()).strip("-") or "model"


def bundled_root() -> Path:
    """The zoo's models folder, found without importing llm_workings.zoo (which imports torch)."""
    spec = importlib.util.find_spec("llm_workings.zoo")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _stamp(directory: Path) -> int:
    """When the directory's files last changed: a new stamp means a model to reload, or a failure to retry."""
    try:
        return max((p.stat().st_mtime_ns for p in directory.iterdir() if p.is_file()), default=0)
    except OSError:
        return 0


def entry_for_directory(id: str, label: str, source: Source, directory: Path) -> CatalogEntry:
    """The entry for a checkpoint directory; one that cannot be read is listed, unavailable, with why."""
    try:
        d = describe(directory)
    except NotAModel as e:
        return CatalogEntry(
            id=id, label=label, source=source, task="unknown", has_tokenizer=False, parameters=None,
            available=False, reason=str(e), location=str(directory), stamp=_stamp(directory),
        )  # fmt: skip
    return CatalogEntry(
        id=id,
        label=label,
        source=source,
        task=d.task,
        has_tokenizer=d.has_tokenizer,
        parameters=d.card.get("parameters") if isinstance(d.card.get("parameters"), int) else d.parameters,
        **d.sizes,
        description=d.summary or _config_line(d.format, d.config),
        location=str(directory),
        format=d.format,
        stamp=_stamp(directory),
    )


def _config_line(format: str, config: dict[str, Any]) -> str:
    if format == "hf":
        arch = (config.get("architectures") or [config.get("model_type") or "unknown architecture"])[0]
        return f"Hugging Face checkpoint ({arch})"
    return "a model saved by Transformer.save"


def zoo_entries() -> list[CatalogEntry]:
    root = bundled_root()
    names = sorted(p.name for p in root.iterdir() if (p / "card.json").is_file())
    return [entry_for_directory(name, name, "zoo", root / name) for name in names]


def cli_entries(arguments: tuple[str, ...] | list[str]) -> list[CatalogEntry]:
    """One entry per distinct `--model` argument. A zoo name is already in the catalog and is skipped."""
    zoo = {p.name for p in bundled_root().iterdir()}
    entries: list[CatalogEntry] = []
    taken: set[str] = set()
    for argument in dict.fromkeys(arguments):
        path = Path(argument).expanduser()
        if argument in zoo and not path.exists():
            continue
        hub = not path.exists() and bool(HUB_NAME.match(argument))
        base = "cli." + slug(argument.replace("/", "-") if hub else path.name)
        id, n = base, 2
        while id in taken:
            id, n = f"{base}-{n}", n + 1
        taken.add(id)
        entries.append(hub_entry(id, argument) if hub else path_entry(id, argument, path))
    return entries


def path_entry(id: str, argument: str, path: Path) -> CatalogEntry:
    entry = entry_for_directory(id, path.name if path.exists() and path.name else argument, "cli", path)
    if not path.exists():
        reason = (
            f"{argument} does not exist; expected a checkpoint directory holding config.json and weights, "
            "or a hub name such as 'gpt2'"
        )
        entry = entry.model_copy(update={"reason": reason})
    return entry


def hub_entry(id: str, name: str) -> CatalogEntry:
    """A hub name: described from its local snapshot when there is one; otherwise it downloads on first
    use, which needs the network."""
    local = _cached_snapshot(name)
    if local is not None:
        entry = entry_for_directory(id, name, "cli", local)
        return entry.model_copy(update={"format": "hub", "location": name})
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    reason = (
        f"{name!r} is not downloaded yet and HF_HUB_OFFLINE is set; download it once where there is network "
        f"(`hf download {name} --local-dir DIR`) and start the lab with --model DIR"
        if offline
        else None
    )
    return CatalogEntry(
        id=id, label=name, source="cli", task="lm", has_tokenizer=True, parameters=None,
        description=f"{name} from the Hugging Face hub (downloaded on first use)",
        available=not offline, reason=reason, location=name, format="hub",
    )  # fmt: skip


def _cached_snapshot(name: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, allow_patterns=["*.json"], local_files_only=True))
    except Exception:  # not in the local cache (or no huggingface_hub): not an error here
        return None


def run_entries(runs_dir: Path) -> list[CatalogEntry]:
    if not runs_dir.is_dir():
        return []
    # Hidden folders are no runs (older labs trained into `.tmp-NAME-*` folders and renamed them).
    runs = (child for child in sorted(runs_dir.iterdir()) if child.is_dir() and not child.name.startswith("."))
    entries = (run_entry(child) for child in runs)
    return [e for e in entries if e is not None]


def run_entry(directory: Path) -> CatalogEntry | None:
    """A finished run (its final model written), a run still training, or None for a folder that is no run."""
    id = "run." + slug(directory.name)
    if (directory / "config.json").is_file():
        return entry_for_directory(id, directory.name, "run", directory)
    if not (directory / RUN_RECORD).is_file() and not (directory / LAB_RUN_RECORD).is_file():
        return None
    step, lab_run = _read_json(directory / RUN_RECORD).get("step"), _read_json(directory / LAB_RUN_RECORD)
    reason = (
        f"{directory.name} is still training or stopped early "
        f"({'no checkpoint yet' if step is None else f'last checkpoint at step {step}'}); "
        "its model appears here when the run finishes"
    )
    config = lab_run.get("model_config") if isinstance(lab_run.get("model_config"), dict) else {}
    sizes = {k: config[k] for k in ("n_layers", "d_model", "n_heads", "n_ctx", "d_vocab") if isinstance(config.get(k), int)}
    return CatalogEntry(
        id=id, label=directory.name, source="run", task=str(lab_run.get("task", "unknown")),
        has_tokenizer=(directory / "tokenizer.json").is_file(), parameters=None, **sizes,
        available=False, reason=reason, location=str(directory), in_training=True,
    )  # fmt: skip


def _read_json(path: Path) -> dict[str, Any]:
    """A small JSON object, or {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def find_run(runs_dir: Path, id: str) -> CatalogEntry | None:
    """The run with this id, reading only that run's folder when its name is its slug."""
    name = id.removeprefix("run.")
    if slug(name) == name and (runs_dir / name).is_dir():  # a slug has no dots, slashes or NULs
        return run_entry(runs_dir / name)
    return next((e for e in run_entries(runs_dir) if e.id == id), None)
