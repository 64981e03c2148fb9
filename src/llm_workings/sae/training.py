"""Training an SAE on activations: Adam, sparsity warm-up, dead-latent care, checkpoints, torch.distributed.

    trainer = SAETrainer(SAEConfig("topk", 128, 1024, k=16, hook_name=...), SAETrainConfig(steps=2000), source,
                         run_dir="runs/sae")
    result = trainer.train()        # resumes from runs/sae/checkpoint.json; writes runs/sae/cfg.json etc. at the end
    result.sae                      # reads raw activations: the normalisation is folded in

One update: x = scale * batch; loss = |x - x_hat|^2 (summed over d_in, mean over tokens, as SAELens) + the
architecture's terms; a unit-norm decoder has the gradient's radial part removed before the step and its
rows renormalised after. A latent that fired on none of the last `dead_after_tokens` tokens is dead: TopK
and BatchTopK revive it with the auxiliary-k loss, the standard SAE by resampling (Anthropic, 2023).

Under torch.distributed (torchrun, gloo or NCCL) the objective is wrapped in DDP, so gradients are averaged
across ranks; every rank reads its own shard of the batch; the fire counts (hence the dead latents) are
summed across ranks; only rank 0 writes, atomically. See docs/sae.md for the launch.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ..train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .activations import rank_and_world
from .architectures import BatchTopKSAE, JumpReLUSAE, SparseAutoencoder, StandardSAE, build_sae
from .config import SAEConfig, SAEError, SAETrainConfig
from .files import save_sae


@dataclass
class SAETrainResult:
    sae: SparseAutoencoder  # folded: reads raw activations
    steps_done: int
    losses: list[float] = field(default_factory=list)  # total loss at each step (rank-averaged)
    mse: list[float] = field(default_factory=list)
    l0: list[float] = field(default_factory=list)
    dead_fraction: float = 0.0
    log_density: torch.Tensor | None = None  # log10 firing rate per latent over the last window
    seconds: float = 0.0
    tokens_per_second: float = 0.0  # this session's updates only, all ranks together
    peak_buffer_bytes: int = 0
    interrupted: bool = False


class TrainingState(nn.Module):
    """What a checkpoint holds besides the optimizer: the SAE and its statistics."""

    def __init__(self, sae: SparseAutoencoder) -> None:
        super().__init__()
        self.sae = sae
        d = sae.cfg.d_sae
        self.register_buffer("tokens_since_fired", torch.zeros(d, dtype=torch.float64))
        self.register_buffer("window_fires", torch.zeros(d, dtype=torch.float64))
        self.register_buffer("window_tokens", torch.zeros((), dtype=torch.float64))
        self.register_buffer("input_scale", torch.ones((), dtype=torch.float64))


class _Objective(nn.Module):
    """The loss as a module's forward, so DDP can wrap it and average its gradients."""

    def __init__(self, sae: SparseAutoencoder) -> None:
        super().__init__()
        self.sae = sae

    def forward(self, x: torch.Tensor, coefficient: float, dead: torch.Tensor) -> tuple[torch.Tensor, Any]:
        terms = self.sae.training_terms(x, coefficient, dead)
        mse = (terms.recon - x).pow(2).sum(-1).mean()
        return mse + sum(terms.losses.values()), (mse, terms)


def lr_at(cfg: SAETrainConfig, step: int) -> float:
    if step < cfg.lr_warmup_steps:
        return cfg.lr * (step + 1) / cfg.lr_warmup_steps
    left = cfg.steps - step
    if cfg.lr_decay_steps and left <= cfg.lr_decay_steps:
        return cfg.lr * left / cfg.lr_decay_steps
    return cfg.lr


def geometric_median(x: torch.Tensor, iterations: int = 50, eps: float = 1e-8) -> torch.Tensor:
    """The point minimising the summed distance to the rows of x (Weiszfeld's iteration, from the mean)."""
    y = x.mean(0)
    for _ in range(iterations):
        w = 1 / (x - y).norm(dim=1).clamp(min=eps)
        y_next = (w[:, None] * x).sum(0) / w.sum()
        if (y_next - y).norm() < eps * max(1.0, y.norm().item()):
            return y_next
        y = y_next
    return y


class SAETrainer:
    def __init__(
        self,
        sae_config: SAEConfig,
        train_config: SAETrainConfig,
        source: Any,
        run_dir: str | Path | None = None,
        progress: bool = True,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        """`source` gives `batch(step, batch_size)` and `describe()` (activations.ModelActivations or
        CachedActivations); its width must be the SAE's d_in. `on_step(step, metrics)` is called after every
        update, and an exception it raises stops training (the last checkpoint stays). `device` is where the
        SAE trains (e.g. "cuda:0" with NCCL, one device per rank); batches are moved there."""
        if source.d_in != sae_config.d_in:
            raise SAEError(
                f"the SAE has d_in={sae_config.d_in}, but its activations ({sae_config.hook_name}) are {source.d_in} wide"
            )
        self.cfg, self.train_cfg, self.source = sae_config, train_config, source
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress, self.on_step = progress, on_step
        tc = train_config
        settings: dict[str, Any] = {}
        if sae_config.architecture in ("topk", "batchtopk"):
            settings["aux_k_coefficient"] = tc.aux_k_coefficient
        if sae_config.architecture == "batchtopk":
            settings["threshold_lr"] = tc.batchtopk_threshold_lr
        if sae_config.architecture == "jumprelu":
            settings |= {"bandwidth": tc.jumprelu_bandwidth, "init_threshold": tc.jumprelu_init_threshold}
        self.sae = build_sae(sae_config, **settings)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.state = TrainingState(self.sae).to(self.device)
        self.unit_decoder = tc.unit_decoder(sae_config.architecture)
        self.rank, self.world = rank_and_world()
        self.objective: nn.Module = _Objective(self.sae)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.objective = nn.parallel.DistributedDataParallel(self.objective, device_ids=ids, broadcast_buffers=False)
        self.optimizer = torch.optim.Adam(self.sae.parameters(), lr=tc.lr, betas=(tc.beta1, tc.beta2))
        self._stop = threading.Event()

    # -- settings a resumed run must share --------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        train = {k: v for k, v in self.train_cfg.to_dict().items() if k != "checkpoint_every"}
        return {"sae_config": self.cfg.to_dict(), "train_config": train, "source": self.source.describe()}

    def _resume(self, result: SAETrainResult) -> bool:
        if self.run_dir is None or not (self.run_dir / "checkpoint.json").exists():
            return False
        ckpt = load_checkpoint(self.run_dir)
        saved = ckpt.state.get("settings", {})
        ours = self.settings()
        changed = {
            f"{part}.{k}": (saved.get(part, {}).get(k), v)
            for part in ours
            for k, v in ours[part].items()
            if saved.get(part, {}).get(k) != v
        }
        if changed:
            raise CheckpointError(
                f"{self.run_dir} holds an SAE run with other settings: "
                + ", ".join(f"{k} was {old!r}, now {new!r}" for k, (old, new) in sorted(changed.items()))
                + "; resume it with the same settings, or train into a new directory (the checkpoint is untouched)"
            )
        ckpt.restore(self.state, self.optimizer)
        result.steps_done = ckpt.step
        result.losses, result.mse, result.l0 = (list(ckpt.state[k]) for k in ("losses", "mse", "l0"))
        result.seconds = ckpt.state.get("seconds", 0.0)
        return True

    def _checkpoint(self, result: SAETrainResult) -> None:
        if self.run_dir is None:
            return
        if self.rank == 0:
            state = {
                "settings": self.settings(),
                "losses": result.losses,
                "mse": result.mse,
                "l0": result.l0,
                "seconds": result.seconds,
            }
            save_checkpoint(self.run_dir, result.steps_done, self.state, self.optimizer, state)
        if self.world > 1:
            dist.barrier()

    # -- initialisation ---------------------------------------------------------------------------
    @torch.no_grad()
    def _initialise(self) -> None:
        tc, sae = self.train_cfg, self.sae
        sae.init_weights(tc.seed, 1.0 if self.unit_decoder else tc.decoder_init_norm)
        sample = torch.cat([self.source.batch(i, tc.batch_size) for i in range(tc.init_batches)]).to(self.device)
        if self.world > 1:
            gathered = [torch.empty_like(sample) for _ in range(self.world)]
            dist.all_gather(gathered, sample)
            sample = torch.cat(gathered)
        if tc.normalize == "expected_norm":
            self.state.input_scale.fill_(math.sqrt(self.cfg.d_in) / sample.norm(dim=1).double().mean().item())
        if tc.b_dec_init == "geometric_median":
            sae.b_dec.copy_(geometric_median(sample * self.state.input_scale.float()))

    # -- the loop ---------------------------------------------------------------------------------
    def train(self, resume: bool = True) -> SAETrainResult:
        tc = self.train_cfg
        result = SAETrainResult(self.sae, 0)
        if not (resume and self._resume(result)):
            self._initialise()
        window = max(1, math.ceil(tc.dead_after_tokens / tc.batch_size))
        bar = tqdm(
            total=tc.steps,
            initial=result.steps_done,
            disable=not self.progress or self.rank != 0,
            unit="step",
            dynamic_ncols=True,
        )
        started, seconds_before, session_steps = time.perf_counter(), result.seconds, 0
        with self._ctrl_c_stops():
            for step in range(result.steps_done, tc.steps):
                if self._stop.is_set():
                    result.interrupted = True
                    break
                if step % window == 0 and step > 0:
                    self.state.window_fires.zero_()
                    self.state.window_tokens.zero_()
                metrics = self._step(step)
                result.losses.append(metrics["loss"])
                result.mse.append(metrics["mse"])
                result.l0.append(metrics["l0"])
                result.steps_done, session_steps = step + 1, session_steps + 1
                result.seconds = seconds_before + time.perf_counter() - started
                if result.steps_done % tc.checkpoint_every == 0 and result.steps_done < tc.steps:
                    self._checkpoint(result)
                rate = session_steps * tc.batch_size / (time.perf_counter() - started)
                bar.set_postfix(mse=f"{metrics['mse']:.4g}", l0=f"{metrics['l0']:.1f}", tok_s=f"{rate:,.0f}", refresh=False)
                bar.update(1)
                if self.on_step is not None:
                    self.on_step(result.steps_done, metrics)
        bar.close()
        elapsed = time.perf_counter() - started
        result.tokens_per_second = session_steps * tc.batch_size / elapsed if session_steps else 0.0
        result.peak_buffer_bytes = getattr(self.source, "peak_bytes", 0)
        self._checkpoint(result)
        result.sae = self.folded()
        result.dead_fraction = self.dead().float().mean().item()
        result.log_density = self.log_density()
        if not result.interrupted and self.run_dir is not None and self.rank == 0:
            save_sae(result.sae, self.run_dir, result.log_density, metadata={"training_steps": tc.steps})
        if result.interrupted and self.rank == 0:
            tqdm.write(f"interrupted: checkpoint at step {result.steps_done} in {self.run_dir}; run again to resume")
        return result

    def dead(self) -> torch.Tensor:
        return self.state.tokens_since_fired >= self.train_cfg.dead_after_tokens

    def log_density(self) -> torch.Tensor:
        tokens = max(self.state.window_tokens.item(), 1.0)
        return torch.log10(self.state.window_fires / tokens + 1e-10).float().cpu()

    def folded(self) -> SparseAutoencoder:
        """A copy of the SAE that reads raw activations: the input scale folded into its weights."""
        sae = copy.deepcopy(self.sae).cpu().eval()
        sae.fold_input_scale(self.state.input_scale.item())
        return sae

    def _coefficient(self, step: int) -> float:
        tc = self.train_cfg
        base = tc.l0_coefficient if isinstance(self.sae, JumpReLUSAE) else tc.l1_coefficient
        return base * min(1.0, (step + 1) / tc.l1_warmup_steps) if tc.l1_warmup_steps else base

    def _step(self, step: int) -> dict[str, float]:
        tc, sae, state = self.train_cfg, self.sae, self.state
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(tc, step)
        x = self.source.batch(step, tc.batch_size).to(self.device) * state.input_scale.float()
        dead = self.dead()
        loss, (mse, terms) = self.objective(x, self._coefficient(step), dead)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not torch.isfinite(loss):
            raise SAEError(f"SAE training diverged at step {step}: the loss is {loss.item()}; lower lr (now {tc.lr})")
        with torch.no_grad():
            if self.unit_decoder:  # only the tangential part of the gradient moves a row along its sphere
                W, g = sae.W_dec, sae.W_dec.grad
                g.sub_((g * W).sum(1, keepdim=True) * W)
            torch.nn.utils.clip_grad_norm_(sae.parameters(), tc.grad_clip)
        self.optimizer.step()
        # statistics of the whole batch, all ranks: fire counts, then the three scalars
        stats = torch.cat([terms.fire_counts.double(), torch.stack([loss.detach(), mse.detach(), terms.l0]).double()])
        if self.world > 1:
            dist.all_reduce(stats)
            stats[-3:] /= self.world
        fires = stats[:-3]
        with torch.no_grad():
            if self.unit_decoder:
                sae.W_dec.div_(sae.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-8))
            if isinstance(sae, JumpReLUSAE):
                sae.threshold.clamp_(min=0.0)
            if isinstance(sae, BatchTopKSAE) and sae.smallest_kept is not None:
                smallest = sae.smallest_kept.clone()
                if self.world > 1:
                    dist.all_reduce(smallest, op=dist.ReduceOp.MIN)
                sae.update_threshold(smallest)
        state.tokens_since_fired.add_(tc.batch_size)
        state.tokens_since_fired[fires > 0] = 0
        state.window_fires.add_(fires)
        state.window_tokens.add_(tc.batch_size)
        if isinstance(sae, StandardSAE) and tc.resample_every and (step + 1) % tc.resample_every == 0:
            self._resample(step, x)
        loss_value, mse_value, l0_value = stats[-3:].tolist()
        return {"loss": loss_value, "mse": mse_value, "l0": l0_value, "dead": self.dead().float().mean().item()}

    @torch.no_grad()
    def _resample(self, step: int, x: torch.Tensor) -> None:
        """Anthropic's resampling: each dead latent's decoder row becomes an input the SAE reconstructs badly,
        drawn with probability proportional to its squared loss; its encoder column that direction at 0.2 x
        the alive columns' mean norm; its bias 0; and its Adam moments are reset."""
        sae, dead = self.sae, self.dead()
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        if self.world > 1:  # every rank draws from the same global batch, so the weights stay equal
            gathered = [torch.empty_like(x) for _ in range(self.world)]
            dist.all_gather(gathered, x)
            x = torch.cat(gathered)
        loss = (sae.forward(x) - x).pow(2).sum(-1)
        gen = torch.Generator().manual_seed(self.train_cfg.seed * 1_000_003 + step)
        chosen = torch.multinomial((loss.pow(2) + 1e-12).cpu(), n_dead, replacement=n_dead > len(x), generator=gen).to(x.device)
        directions = x[chosen] / x[chosen].norm(dim=1, keepdim=True).clamp(min=1e-8)
        alive = ~dead
        enc_norm = sae.W_enc[:, alive].norm(dim=0).mean().item() if alive.any() else 1.0
        idx = dead.nonzero().squeeze(1)
        sae.W_dec[idx] = directions
        sae.W_enc[:, idx] = directions.T * 0.2 * enc_norm
        sae.b_enc[idx] = 0.0
        for param, latent_axis in ((sae.W_dec, 0), (sae.W_enc, 1), (sae.b_enc, 0)):
            for moment in self.optimizer.state.get(param, {}).values():
                if moment.ndim:  # exp_avg and exp_avg_sq, not the step count
                    moment.index_fill_(latent_axis, idx, 0.0)
        self.state.tokens_since_fired[idx] = 0

    @contextlib.contextmanager
    def _ctrl_c_stops(self) -> Iterator[None]:
        """Ctrl-C asks the loop to stop after the current step and checkpoint (a second one aborts)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame: Any) -> None:
            if self._stop.is_set():
                raise KeyboardInterrupt
            self._stop.set()

        previous = signal.signal(signal.SIGINT, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def request_stop(self) -> None:
        self._stop.set()
