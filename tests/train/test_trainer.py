"""The trainer's contract: schedules, decay groups, accumulation, determinism, resuming, Ctrl-C and divergence."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest
import torch

from llm_workings import nn
from llm_workings.data import modular_addition
from llm_workings.train import (
    DivergenceError,
    InductionTask,
    ModularAdditionTask,
    TrainConfig,
    TrainConfigError,
    Trainer,
    lr_at,
    parameter_groups,
    snapshot_steps,
)
from llm_workings.train.checkpoint import CheckpointError
from llm_workings.transformer import Transformer, TransformerConfig
from llm_workings.zoo import load_snapshot, snapshots

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = TransformerConfig(
    d_model=32, n_layers=2, n_heads=2, d_vocab=16, n_ctx=17, attn_only=True, positions="rotary", default_prepend_bos=False
)


def tiny_model(seed: int = 0) -> Transformer:
    return Transformer(TINY).init_weights(seed)


def tiny_task() -> InductionTask:
    return InductionTask(d_vocab=16, half=8, min_half=4, eval_size=16)


def config(**kw) -> TrainConfig:
    base = dict(steps=12, batch_size=4, lr=3e-3, warmup_steps=2, eval_every=4, checkpoint_every=4)
    return TrainConfig(**{**base, **kw})


# -- schedules -------------------------------------------------------------------------------------
def test_warmup_rises_linearly_then_cosine_falls_to_the_floor() -> None:
    cfg = TrainConfig(steps=101, lr=1.0, min_lr=0.1, warmup_steps=10)
    assert [lr_at(cfg, s) for s in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert lr_at(cfg, 10) == pytest.approx(1.0)
    assert lr_at(cfg, 55) == pytest.approx(0.1 + 0.5 * 0.9)  # halfway through the cosine
    assert lr_at(cfg, 100) == pytest.approx(0.1)
    lrs = [lr_at(cfg, s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert TrainConfig(steps=5, lr=2.0).floor_lr == pytest.approx(0.2)
    assert lr_at(TrainConfig(steps=50, lr=0.5, schedule="constant"), 40) == 0.5


def test_snapshot_specs() -> None:
    log = snapshot_steps("log:8", 1000)
    assert log[0] == 0 and log[-1] == 1000 and len(log) == 8
    ratios = [b / a for a, b in zip(log[2:], log[3:])]
    assert max(ratios) / min(ratios) < 1.6  # roughly evenly spaced in log(step)
    assert snapshot_steps("every:30", 100) == [0, 30, 60, 90, 100]
    assert snapshot_steps("5, 0,50", 50) == [0, 5, 50]
    assert snapshot_steps("none", 10) == []
    # unions and spans: dense through a transition, sparse elsewhere; both ends of a span are kept
    assert snapshot_steps("every:100+every:25:300-400", 500) == [0, 100, 200, 300, 325, 350, 375, 400, 500]
    assert snapshot_steps("every:40:0-100+7", 200) == [0, 7, 40, 80, 100]
    span = snapshot_steps("log:4:10-1000", 1000)
    assert span[0] == 10 and span[-1] == 1000 and len(span) == 4
    # a recipe's schedule on a shortened run keeps what the run reaches (the lab trains short runs)
    assert snapshot_steps("every:100+every:25:300-800", 20) == [0, 20]
    assert snapshot_steps("every:5:0-200", 12) == [0, 5, 10, 12]
    assert snapshot_steps("0,200", 100) == [0]
    for bad in ("log:1", "every:0", "sometimes", "-5,10", "every:5:80-20", "every:5+", "log:3:5"):
        with pytest.raises(TrainConfigError, match="snapshot"):
            snapshot_steps(bad, 100)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("steps", 0, "steps must be a positive integer"),
        ("lr", -1.0, "lr must be positive"),
        ("warmup_steps", 99, "warmup_steps must be in"),
        ("schedule", "linear", "schedule must be"),
        ("grad_clip", 0.0, "grad_clip must be positive"),
        ("snapshot_dtype", "int8", "snapshot_dtype"),
    ],
)
def test_bad_settings_are_refused_up_front(field, value, message) -> None:
    with pytest.raises(TrainConfigError, match=message):
        TrainConfig(**{"steps": 10, field: value})


def test_only_matrices_are_decayed() -> None:
    model = Transformer(TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_vocab=10, n_ctx=4))
    decayed, kept = parameter_groups(model, 0.3)
    assert decayed["weight_decay"] == 0.3 and kept["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in decayed["params"]} == {n for n, p in model.named_parameters() if p.ndim >= 2}
    assert "blocks.0.ln1.w" in {names[id(p)] for p in kept["params"]}
    assert "blocks.0.mlp.b_in" in {names[id(p)] for p in kept["params"]}


# -- what a step does -------------------------------------------------------------------------------
def test_one_step_is_adamw_with_the_scheduled_lr() -> None:
    """Our update equals torch's AdamW applied by hand, with the same groups, lr, clipping and batch."""
    cfg = config(steps=1, warmup_steps=0, grad_clip=0.05, weight_decay=0.5)
    task, ours, reference = tiny_task(), tiny_model(), tiny_model()
    Trainer(ours, task, cfg, progress=False).train()
    opt = torch.optim.AdamW(parameter_groups(reference, 0.5), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    batch = task.train_batch(np.random.default_rng([cfg.seed, 0, 0]), cfg.batch_size)
    task.loss(reference, batch).backward()
    norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.05)
    assert norm > 0.05  # so clipping was exercised
    opt.step()
    for (name, a), b in zip(ours.named_parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, msg=name)


def test_gradient_accumulation_of_a_full_batch_equals_one_big_step() -> None:
    """Full-batch modular addition gives the same batch to every micro-step, so 3 accumulated
    thirds of the loss must give the same update as the whole loss once."""
    task = ModularAdditionTask(modular_addition(p=11, train_fraction=0.5, seed=0))
    cfg = TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_vocab=12, n_ctx=3, default_prepend_bos=False)
    one, three = Transformer(cfg).init_weights(1), Transformer(cfg).init_weights(1)
    r1 = Trainer(one, task, config(steps=4, grad_accum=1), progress=False).train()
    r3 = Trainer(three, task, config(steps=4, grad_accum=3), progress=False).train()
    assert r1.losses == pytest.approx(r3.losses, rel=1e-5)
    for a, b in zip(one.parameters(), three.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # Adam magnifies float noise in ~0 gradients


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    runs = [Trainer(tiny_model(), tiny_task(), config(seed=seed), progress=False).train().losses for seed in (0, 0, 1)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert len(runs[0]) == 12 and all(math.isfinite(x) for x in runs[0])


def test_training_learns() -> None:
    task = ModularAdditionTask(modular_addition(p=11, train_fraction=0.5, seed=0))
    cfg = TransformerConfig(d_model=32, n_layers=1, n_heads=2, d_vocab=12, n_ctx=3, default_prepend_bos=False)
    result = Trainer(Transformer(cfg).init_weights(0), task, config(steps=100, lr=1e-2), progress=False).train()
    assert result.losses[-1] < result.losses[0] / 3
    assert result.evals[-1]["train_accuracy"] > 0.8 > result.evals[0]["train_accuracy"]
    assert [e["step"] for e in result.evals] == list(range(4, 101, 4))


# -- resuming -------------------------------------------------------------------------------------
def stop_after(trainer: Trainer, steps: int) -> Trainer:
    """Ask the trainer to stop once `steps` updates are done, as the lab's stop button does."""
    original = trainer._step

    def step(n: int) -> float:
        loss = original(n)
        if n + 1 == steps:
            trainer.request_stop()
        return loss

    trainer._step = step
    return trainer


def test_resume_continues_exactly(tmp_path) -> None:
    full = Trainer(tiny_model(), tiny_task(), config(), progress=False).train()
    stopped = stop_after(Trainer(tiny_model(), tiny_task(), config(), run_dir=tmp_path, progress=False), 7).train()
    assert stopped.interrupted and stopped.steps_done == 7
    resumed = Trainer(tiny_model(seed=5), tiny_task(), config(), run_dir=tmp_path, progress=False).train()
    assert resumed.losses == full.losses  # bit for bit, though the second model started from other weights
    assert [e["step"] for e in resumed.evals] == [e["step"] for e in full.evals]
    assert resumed.evals == full.evals


def test_resume_refuses_a_run_with_other_settings(tmp_path) -> None:
    stop_after(Trainer(tiny_model(), tiny_task(), config(), run_dir=tmp_path, progress=False), 4).train()
    with pytest.raises(CheckpointError, match="other settings.*lr"):
        Trainer(tiny_model(), tiny_task(), config(lr=1e-4), run_dir=tmp_path, progress=False).train()
    with pytest.raises(CheckpointError, match="other settings.*steps"):  # the cosine schedule depends on it
        Trainer(tiny_model(), tiny_task(), config(steps=20), run_dir=tmp_path, progress=False).train()


def test_ctrl_c_stops_after_the_step_with_a_resumable_checkpoint(tmp_path) -> None:
    class InterruptedTask(InductionTask):
        calls = 0

        def loss(self, model, batch):
            InterruptedTask.calls += 1
            if InterruptedTask.calls == 6:
                os.kill(os.getpid(), signal.SIGINT)  # as a person pressing Ctrl-C during step 5
            return super().loss(model, batch)

    full = Trainer(tiny_model(), tiny_task(), config(), progress=False).train()
    task = InterruptedTask(d_vocab=16, half=8, min_half=4, eval_size=16)
    stopped = Trainer(tiny_model(), task, config(), run_dir=tmp_path, progress=False).train()
    assert stopped.interrupted and stopped.steps_done == 6
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    resumed = Trainer(tiny_model(), tiny_task(), config(), run_dir=tmp_path, progress=False).train()
    assert resumed.losses == full.losses


def test_a_nan_loss_stops_training_naming_the_step(tmp_path) -> None:
    class PoisonedTask(InductionTask):
        def loss(self, model, batch):
            loss = super().loss(model, batch)
            return loss * float("nan") if self.poison else loss

    task = PoisonedTask(d_vocab=16, half=8, min_half=4, eval_size=16)
    task.poison = False
    trainer = Trainer(tiny_model(), task, config(steps=12), run_dir=tmp_path, progress=False)
    original = trainer._step

    def step(n):  # poison from step 6 on: after the checkpoint at step 4
        task.poison = n >= 6
        return original(n)

    trainer._step = step
    with pytest.raises(DivergenceError, match=r"at step 6: the loss is nan.*learning rate.*checkpoint.*intact") as info:
        trainer.train()
    assert (info.value.step, info.value.cause) == (6, "learning rate")
    assert info.value.__class__ is nn.DivergenceError  # one type, whichever engine diverged
    from llm_workings.train import load_checkpoint

    assert load_checkpoint(tmp_path).step == 4


def test_an_exploding_learning_rate_is_caught() -> None:
    with pytest.raises(DivergenceError, match="training diverged at step"):
        Trainer(tiny_model(), tiny_task(), config(steps=40, lr=1e12, warmup_steps=0, grad_clip=None), progress=False).train()


# -- snapshots ------------------------------------------------------------------------------------
def test_snapshots_keep_the_weights_and_metrics_of_their_step(tmp_path) -> None:
    model = tiny_model()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = config(snapshots="0,5,12")
    Trainer(model, tiny_task(), cfg, run_dir=tmp_path, progress=False).train()
    model.save(tmp_path)  # a run directory holds the final model beside its snapshots
    index = snapshots(tmp_path)
    assert [s["step"] for s in index] == [0, 5, 12]
    first = load_snapshot(tmp_path, 0)
    for name, value in first.state_dict().items():
        torch.testing.assert_close(value, initial[name])
    last = load_snapshot(tmp_path, 12)
    for name, value in last.state_dict().items():
        torch.testing.assert_close(value, model.state_dict()[name])
    assert index[-1]["loss"] == pytest.approx(tiny_task().evaluate(model)["loss"], rel=1e-5)
    with pytest.raises(ValueError, match=r"no snapshot at step 7; it has \[0, 5, 12\]"):
        load_snapshot(tmp_path, 7)
