"""The training loop: AdamW, warmup + cosine, clipping, accumulation, evaluation, checkpoints, snapshots.

    trainer = Trainer(model, InductionTask(64, 24), TrainConfig(steps=2000, snapshots="log:20"), run_dir="runs/ind")
    result = trainer.train()            # resumes from runs/ind/checkpoint.json if there is one
    result.losses                       # the training loss at every step

Determinism: batches come from generators seeded by (seed, step, micro-batch), and the checkpoint holds
the weights, the optimizer's moments and torch's RNG, so a resumed run repeats the uninterrupted one's
losses exactly on the CPU. Ctrl-C finishes the current step, writes a checkpoint and returns.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..atomic import write_json
from ..errors import DivergenceError
from ..transformer.model import Transformer
from ..transformer.saving import save_weights
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig, lr_at, snapshot_steps
from .tasks import Task

SNAPSHOTS, SNAPSHOT_INDEX = "snapshots", "index.json"  # a run directory's snapshot folder and its index


@dataclass
class TrainResult:
    steps_done: int
    losses: list[float] = field(default_factory=list)  # training loss at each step, from step 0
    evals: list[dict[str, float]] = field(default_factory=list)  # {"step": ..., metric: value}
    interrupted: bool = False
    seconds: float = 0.0  # wall time spent training, summed over resumed sessions
    step_seconds: list[float] = field(default_factory=list)  # each update's wall time in this session (no evals)


@dataclass(frozen=True)
class StepReport:
    """What `Trainer(on_step=...)` is told after each update (the lab's progress bar, a notebook's plot)."""

    step: int  # updates done
    steps: int  # updates planned
    loss: float
    tokens_per_second: float  # over this session's updates, evaluations left out
    evaluation: dict[str, float] | None  # this step's evaluation, when it had one


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices (embeddings, projections, unembedding) and leave vectors (biases, norm gains) alone:
    shrinking a gain or a bias towards zero is not a simpler function, only a different one."""
    matrices = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    vectors = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": matrices, "weight_decay": weight_decay}, {"params": vectors, "weight_decay": 0.0}]


class Trainer:
    def __init__(
        self,
        model: Transformer,
        task: Task,
        config: TrainConfig,
        run_dir: str | Path | None = None,
        progress: bool = True,
        on_step: Callable[[StepReport], bool | None] | None = None,
    ) -> None:
        """`on_step` is called after every update. If it returns True, training stops there as on Ctrl-C,
        with a checkpoint of that step (how the lab pauses a run); an exception it raises stops training
        and propagates (how the lab cancels one), leaving the run directory with its last checkpoint."""
        self.model, self.task, self.cfg = model, task, config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress, self.on_step = progress, on_step
        # What checkpoints and snapshots hold: the whole model, unless a caller narrows it. LoRA sets its
        # adapter (finetune.run), so a checkpoint holds only what training changes; the frozen base comes
        # from wherever the model came from.
        self.checkpointed: torch.nn.Module = model
        # The fused kernel updates all tensors in one pass: 3x faster than the default loop on CPU, and
        # deterministic, so resumed runs still repeat exactly (it differs from the loop in the last bits).
        fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
        self.optimizer = torch.optim.AdamW(
            parameter_groups(model, config.weight_decay), lr=config.lr, betas=(config.beta1, config.beta2), fused=fused
        )
        self.snapshot_at = set(snapshot_steps(config.snapshots, config.steps))
        if self.snapshot_at and self.run_dir is None:
            raise ValueError("snapshots are written to run_dir; give one")
        self._stop = threading.Event()

    # -- the loop -------------------------------------------------------------------------------
    def train(self, resume: bool = True) -> TrainResult:
        result = self._resume() if resume else TrainResult(0)
        if result.steps_done == 0 and 0 in self.snapshot_at:
            self._snapshot(0, result)
        cfg, model = self.cfg, self.model
        model.train()
        start, started = result.steps_done, time.perf_counter()
        seconds_before = result.seconds
        bar = tqdm(total=cfg.steps, initial=start, disable=not self.progress, unit="step", dynamic_ncols=True)
        tokens_per_step = self.task.tokens_per_batch(cfg.batch_size) * cfg.grad_accum
        with self._ctrl_c_stops():
            for step in range(start, cfg.steps):
                if self._stop.is_set():
                    result.interrupted = True
                    break
                step_started = time.perf_counter()
                loss = self._step(step)
                result.step_seconds.append(time.perf_counter() - step_started)
                result.losses.append(loss)
                result.steps_done = done = step + 1
                result.seconds = seconds_before + time.perf_counter() - started
                evaluated = done % cfg.eval_every == 0 or done == cfg.steps
                if evaluated:
                    result.evals.append({"step": done, **self._evaluate()})
                if done in self.snapshot_at:
                    self._snapshot(done, result)
                if self.run_dir is not None and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
                    self._checkpoint(result)
                rate = len(result.step_seconds) * tokens_per_step / sum(result.step_seconds)
                bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{rate:,.0f}", refresh=False)
                bar.update(1)
                report = StepReport(done, cfg.steps, loss, rate, result.evals[-1] if evaluated else None)
                if self.on_step is not None and self.on_step(report):
                    self._stop.set()  # asked to pause: stop before the next step, with a checkpoint
        bar.close()
        if result.interrupted and self.run_dir is not None:
            self._checkpoint(result)
            tqdm.write(f"interrupted: checkpoint at step {result.steps_done} in {self.run_dir}; run again to resume")
        model.eval()
        return result

    def _step(self, step: int) -> float:
        cfg, model = self.cfg, self.model
        lr = lr_at(cfg, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(cfg.grad_accum):
            batch = self.task.train_batch(np.random.default_rng([cfg.seed, step, micro]), cfg.batch_size)
            loss = self.task.loss(model, batch) / cfg.grad_accum
            if not torch.isfinite(loss):
                self._diverged(step, "loss", loss.item() * cfg.grad_accum, lr)
            loss.backward()
            total += loss.item()
        params = [p for p in model.parameters() if p.grad is not None]
        max_norm = cfg.grad_clip if cfg.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if not torch.isfinite(grad_norm):
            self._diverged(step, "gradient norm", grad_norm.item(), lr)
        self.optimizer.step()
        return total

    def _diverged(self, step: int, what: str, value: float, lr: float) -> None:
        where = f"; the last checkpoint in {self.run_dir} is intact" if self.run_dir is not None else ""
        raise DivergenceError(
            f"training diverged at step {step}: the {what} is {value} (learning rate {lr:.3g}). Likely cause: the "
            f"learning rate is too high for this model, or a missing warmup or gradient clipping lets one bad batch "
            f"blow up the weights. Try a lower lr, more warmup_steps, or grad_clip=1.0{where}.",
            step,
            "learning rate",
        )

    def _evaluate(self) -> dict[str, float]:
        self.model.eval()
        try:
            return self.task.evaluate(self.model)
        finally:
            self.model.train()

    # -- files ----------------------------------------------------------------------------------
    def _state(self, result: TrainResult) -> dict[str, Any]:
        return {
            "train_config": self.cfg.to_dict(),
            "model_config": self.model.cfg.to_dict(),
            "task": self.task.name,
            "losses": result.losses,
            "evals": result.evals,
            "seconds": result.seconds,
        }

    def _checkpoint(self, result: TrainResult) -> None:
        save_checkpoint(self.run_dir, result.steps_done, self.checkpointed, self.optimizer, self._state(result))

    def _resume(self) -> TrainResult:
        if self.run_dir is None or not (self.run_dir / "checkpoint.json").exists():
            return TrainResult(0)
        ckpt = load_checkpoint(self.run_dir)
        for torn in self.run_dir.glob(".tmp-*"):  # half-written files of a run that was killed mid-write
            torn.unlink()
        saved = ckpt.state.get("train_config", {})
        changed = {
            k: (saved.get(k), v)
            for k, v in self.cfg.to_dict().items()
            if k not in ("eval_every", "checkpoint_every") and saved.get(k) != v
        }
        if changed or ckpt.state.get("model_config") != self.model.cfg.to_dict():
            raise CheckpointError(
                f"{self.run_dir} holds a run with other settings ({changed or 'a different model'}); "
                "resume it with the same settings, or train into a new directory"
            )
        ckpt.restore(self.checkpointed, self.optimizer)
        return TrainResult(
            ckpt.step, list(ckpt.state["losses"]), list(ckpt.state["evals"]), seconds=ckpt.state.get("seconds", 0.0)
        )

    def _snapshot(self, step: int, result: TrainResult) -> None:
        """Keep this step's weights and metrics, so the run's dynamics can be replayed later."""
        folder = self.run_dir / SNAPSHOTS
        dtype = getattr(torch, self.cfg.snapshot_dtype)
        save_weights(self.checkpointed, folder / f"step-{step:07d}.safetensors", dtype)
        index_path = folder / SNAPSHOT_INDEX
        index = json.loads(index_path.read_text()) if index_path.exists() else []
        index = [entry for entry in index if entry["step"] != step]
        index.append({"step": step, "file": f"step-{step:07d}.safetensors", **self._evaluate()})
        write_json(index_path, sorted(index, key=lambda e: e["step"]))

    @contextlib.contextmanager
    def _ctrl_c_stops(self) -> Iterator[None]:
        """While training, Ctrl-C asks the loop to stop after the current step (a second one aborts)."""
        if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
            yield
            return

        def handle(signum: int, frame: Any) -> None:
            if self._stop.is_set():
                raise KeyboardInterrupt
            self._stop.set()
            tqdm.write("stopping after this step (Ctrl-C again to abort without a checkpoint)")

        previous = signal.signal(signal.SIGINT, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def request_stop(self) -> None:
        """Stop after the current step, as Ctrl-C does (for the lab, or another thread)."""
        self._stop.set()
