"""Checkpoints survive a kill in the middle of being written, and damaged ones are refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from llm_workings.train import TrainConfig, Trainer, load_checkpoint
from llm_workings.train.checkpoint import CheckpointError
from llm_workings.transformer import Transformer, TransformerConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SETUP = """
import torch
torch.set_num_threads(1)
from llm_workings.train import InductionTask, TrainConfig, Trainer
from llm_workings.transformer import Transformer, TransformerConfig
cfg = TransformerConfig(d_model=32, n_layers=2, n_heads=2, d_vocab=16, n_ctx=17, attn_only=True, positions="rotary",
                        default_prepend_bos=False)
model = Transformer(cfg).init_weights(0)
task = InductionTask(d_vocab=16, half=8, min_half=4, eval_size=16)
train_cfg = TrainConfig(steps=16, batch_size=4, lr=3e-3, warmup_steps=2, eval_every=4, checkpoint_every=4)
"""


def build():
    namespace: dict = {}
    exec(SETUP, namespace)  # the same model, task and settings as the killed process
    return namespace["model"], namespace["task"], namespace["train_cfg"]


def test_a_kill_during_a_checkpoint_write_loses_nothing_and_resuming_repeats_the_run(tmp_path) -> None:
    """The child is killed (SIGKILL, no clean-up) halfway through writing its third checkpoint's
    tensors. The second checkpoint must still load, and resuming must give the uninterrupted losses."""
    script = SETUP + textwrap.dedent(f"""
        import os, signal
        import llm_workings.train.checkpoint as checkpoint
        real_save, calls = checkpoint.save_file, []
        def dying_save(tensors, path, metadata=None):
            calls.append(path)
            real_save(tensors, path, metadata)
            if len(calls) == 3:
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)  # half the bytes are on disk...
                os.kill(os.getpid(), signal.SIGKILL)     # ...when the machine loses power
        checkpoint.save_file = dying_save
        Trainer(model, task, train_cfg, run_dir={str(tmp_path)!r}, progress=False).train()
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert child.returncode == -9, child.stderr
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert any(name.startswith(".tmp-checkpoint-0000012") for name in leftovers), leftovers  # the torn write
    assert load_checkpoint(tmp_path).step == 8

    model, task, train_cfg = build()
    uninterrupted = Trainer(model, task, train_cfg, progress=False).train()
    model, task, train_cfg = build()
    resumed = Trainer(model, task, train_cfg, run_dir=tmp_path, progress=False).train()
    assert resumed.losses == uninterrupted.losses
    assert resumed.evals == uninterrupted.evals
    assert load_checkpoint(tmp_path).step == 16
    assert sorted(p.name for p in tmp_path.glob("*checkpoint-*")) == ["checkpoint-0000016.safetensors"]  # torn file gone


@pytest.fixture
def run_dir(tmp_path):
    model, task, train_cfg = build()
    Trainer(model, task, TrainConfig(**{**train_cfg.to_dict(), "steps": 4}), run_dir=tmp_path, progress=False).train()
    return tmp_path


def test_a_truncated_tensor_file_is_caught_by_its_hash(run_dir) -> None:
    tensors = run_dir / "checkpoint-0000004.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="checkpoint-0000004.safetensors is damaged: its SHA-256 does not match"):
        load_checkpoint(run_dir)


def test_a_flipped_byte_is_caught(run_dir) -> None:
    tensors = run_dir / "checkpoint-0000004.safetensors"
    data = bytearray(tensors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(run_dir)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text[: len(text) // 2], "checkpoint.json is not valid JSON"),
        (lambda text: json.dumps({**json.loads(text), "format": "something else"}), "not an llm_workings checkpoint"),
        (lambda text: json.dumps({**json.loads(text), "version": 99}), "version 99"),
        (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "sha256"}), "lacks sha256"),
        (
            lambda text: json.dumps({**json.loads(text), "tensors": "gone.safetensors"}),
            "names gone.safetensors, which is missing",
        ),
    ],
)
def test_a_damaged_record_is_refused(run_dir, edit, message) -> None:
    record = run_dir / "checkpoint.json"
    record.write_text(edit(record.read_text()))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(run_dir)


def test_no_checkpoint_and_a_checkpoint_of_another_model(run_dir, tmp_path_factory) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint in .*checkpoint.json is missing"):
        load_checkpoint(tmp_path_factory.mktemp("empty"))
    other = Transformer(TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_vocab=16, n_ctx=17, attn_only=True))
    with pytest.raises(CheckpointError, match="different model"):
        load_checkpoint(run_dir).restore(other)


def test_the_checkpoint_holds_model_optimizer_rng_and_history(run_dir) -> None:
    ckpt = load_checkpoint(run_dir)
    assert ckpt.step == 4 and len(ckpt.state["losses"]) == 4
    assert {k.split(".")[0] for k in ckpt.tensors} == {"model", "optim", "rng"}
    assert ckpt.tensors["rng.torch"].dtype == torch.uint8
    assert ckpt.state["train_config"]["steps"] == 4 and ckpt.state["model_config"]["d_model"] == 32
    assert all(g["lr"] > 0 for g in ckpt.param_groups)
