"""A finished fine-tuning run beside its base, and what the page shows of it: generations from the
base, the fine-tuned and the merged model, ΔW per module, and the task vector's losses over λ.

    loaded = load_run(runs_dir / "fine-tuning" / name)     # cached per run folder
    generations(loaded, ids, settings)                      # {"base": [...], "tuned": [...], "merged": [...]}
    loaded.spectra()                                        # weight_changes(base, tuned).to_dict()
    loaded.losses_at(0.5)                                   # {"target_val_loss", "original_val_loss"} of θ + 0.5 τ

Everything is the engine's: `adapter.disable()` / `enable()` for the base's outputs, `merged_copy`,
`weight_changes`, `TaskVector.between(base, tuned).apply_to(base, λ)`, and the domain-shift task's
evaluation with the batches the job evaluated with, so λ = 1 repeats the job's last numbers.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ApiError
from ..jobs.finetuning import EVAL_BATCH_SIZE, EVAL_BATCHES, finished, read_record

LAMBDAS = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5)  # the slider's stops
_LOADING = threading.Lock()  # the page asks for a new run's figures at once: load it once, not once per request


@dataclass
class LoadedRun:
    name: str
    settings: dict[str, Any]
    base: Any  # the bundled model, untouched
    tuned: Any  # the base with the run's adapter attached (LoRA), or the fine-tuned model (full)
    adapter: Any  # None for full fine-tuning
    task: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    _spectra: dict[str, Any] | None = None
    _losses: dict[float, dict[str, float]] = field(default_factory=dict)

    @functools.cached_property
    def merged(self) -> Any:
        from ...finetune import merged_copy

        return merged_copy(self.tuned)

    @functools.cached_property
    def task_vector(self) -> Any:
        from ...finetune import TaskVector

        return TaskVector.between(self.base, self.tuned)

    def spectra(self) -> dict[str, Any]:
        from ...finetune import weight_changes

        with self.lock:
            if self._spectra is None:
                self._spectra = weight_changes(self.base, self.tuned).to_dict()
            return self._spectra

    def losses_at(self, scale: float) -> dict[str, float]:
        """Both domains' validation losses of θ_base + λ τ (the job's evaluation)."""
        import torch

        with self.lock:
            if scale not in self._losses:
                with torch.no_grad():
                    edited = self.task_vector.apply_to(self.base, scale).eval()
                    self._losses[scale] = self.task.evaluate(edited)
            return self._losses[scale]


@functools.lru_cache(maxsize=4)
def _load(directory: str, stamp: float) -> LoadedRun:
    from ...finetune import load_adapter
    from ...finetune.forgetting import domain_shift
    from ...transformer.model import Transformer
    from ...zoo.registry import load

    path = Path(directory)
    settings = read_record(path)["settings"]
    base, _ = load(settings["model"])
    if settings["method"] == "lora":
        tuned, _ = load(settings["model"])
        adapter = load_adapter(tuned, path)
    else:
        tuned, adapter = Transformer.load(path / "model").eval(), None
    task = domain_shift(settings["model"], settings["corpus"], EVAL_BATCHES, EVAL_BATCH_SIZE)
    return LoadedRun(path.name, settings, base, tuned.eval(), adapter, task)


def load_run(directory: Path) -> LoadedRun:
    """The run in `directory`, loaded once per finished state of its folder; a 404/409 naming it otherwise."""
    record = read_record(directory) if directory.is_dir() else None
    if record is None:
        raise ApiError(f"no fine-tuning run {directory.name!r} in the runs folder", 404, "run")
    if not finished(directory):
        raise ApiError(
            f"the fine-tuning run {directory.name!r} has not finished (paused, or still training); resume it first",
            409,
            "run",
        )
    result = directory / ("lora.json" if record["settings"]["method"] == "lora" else "model/config.json")
    with _LOADING:
        return _load(str(directory), result.stat().st_mtime)  # a run redone under the same name is loaded anew


def generations(run: LoadedRun, ids: list[int], new_tokens: int, temperature: float, seed: int) -> dict[str, list[int]]:
    """The prompt continued by the base, the fine-tuned and the merged model, each with the same seed."""
    import torch

    tokens = torch.tensor([ids], dtype=torch.long)
    kwargs = dict(max_new_tokens=new_tokens, temperature=temperature, seed=seed, stop_at_eos=False, crop_context=True)

    def continued(model: Any) -> list[int]:
        return model.generate(tokens, **kwargs)[0, len(ids) :].tolist()

    with run.lock, torch.no_grad():
        if run.adapter is not None:
            run.adapter.disable()
            try:
                base = continued(run.tuned)
            finally:
                run.adapter.enable()
        else:
            base = continued(run.base)
        return {"base": base, "tuned": continued(run.tuned), "merged": continued(run.merged)}
