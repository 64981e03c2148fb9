"""Full fine-tuning and LoRA through the one trainer: adapter-only checkpoints, exact resumption, saved files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lora_helpers import tiny, tokens
from safetensors.torch import load_file

from llm_workings.finetune import LoRAConfig, LoRAError, finetune, load_adapter
from llm_workings.train import LanguageModelTask, TrainConfig
from llm_workings.transformer import Transformer

pytestmark = pytest.mark.usefixtures("one_thread")

LORA = LoRAConfig(rank=2, alpha=4, targets=("attn.qkv", "mlp.out"))
TRAIN = TrainConfig(steps=6, batch_size=4, lr=1e-2, eval_every=3, checkpoint_every=3)


def task():
    ids = np.random.default_rng(0).integers(0, 50, 2000)
    return LanguageModelTask(ids[:1600], ids[1600:], block=8, val_bytes=400, eval_batches=2, eval_batch_size=4)


class Stop(Exception):
    pass


def stop_at(step):
    def on_step(report):
        if report.step == step:
            raise Stop

    return on_step


def test_lora_trains_only_the_adapter_and_saves_only_it(tmp_path):
    model = tiny("gpt2")
    base = {k: v.clone() for k, v in model.state_dict().items()}
    result = finetune(model, task(), TRAIN, lora=LORA, run_dir=tmp_path, progress=False)
    assert result.train.steps_done == 6
    assert all(torch.equal(model.state_dict()[k], v) for k, v in base.items())  # the base never moved
    assert any(m.B.abs().max() > 0 for m in result.adapter.modules.values())  # the adapter did
    checkpoint = load_file(next(tmp_path.glob("checkpoint-*.safetensors")))
    weights = {k for k in checkpoint if k.startswith("model.")}
    assert weights == {f"model.{k}" for k in result.adapter.state_dict()}
    assert {p.name for p in tmp_path.iterdir()} >= {"lora.json", "lora.safetensors", "adapter", "finetune.json"}
    x = tokens()
    expected = model(x)
    fresh = tiny("gpt2")
    load_adapter(fresh, tmp_path)
    assert torch.equal(fresh(x), expected)


def test_an_interrupted_lora_run_resumes_exactly(tmp_path):
    straight = finetune(tiny("gpt2"), task(), TRAIN, lora=LORA, progress=False).train.losses
    with pytest.raises(Stop):
        finetune(tiny("gpt2"), task(), TRAIN, lora=LORA, run_dir=tmp_path, progress=False, on_step=stop_at(4))
    resumed = finetune(tiny("gpt2"), task(), TRAIN, lora=LORA, run_dir=tmp_path, progress=False)
    assert resumed.train.losses == straight
    with pytest.raises(LoRAError, match="a different base model"):
        finetune(tiny("gpt2", seed=5), task(), TRAIN, lora=LORA, run_dir=tmp_path, progress=False)
    with pytest.raises(LoRAError, match="other LoRA settings"):
        finetune(tiny("gpt2"), task(), TRAIN, lora=LoRAConfig(rank=3), run_dir=tmp_path, progress=False)


def test_full_fine_tuning_moves_every_weight_and_saves_the_model(tmp_path):
    model = tiny("gpt2")
    base = {k: v.clone() for k, v in model.state_dict().items()}
    result = finetune(model, task(), TRAIN, run_dir=tmp_path, progress=False)
    assert result.adapter is None
    assert all(not torch.equal(model.state_dict()[k], v) for k, v in base.items() if "ln" not in k)
    assert torch.equal(Transformer.load(tmp_path / "model")(tokens()), model(tokens()))


def test_a_damaged_or_foreign_adapter_file_is_refused_by_name(tmp_path):
    model = tiny("gpt2")
    finetune(model, task(), TrainConfig(steps=1, batch_size=2), lora=LORA, run_dir=tmp_path, progress=False)
    other = Transformer(tiny("gpt2").cfg.__class__(**{**tiny("gpt2").cfg.to_dict(), "d_model": 48}))
    with pytest.raises(LoRAError, match="needs \\[2, 48\\]: the adapter was made for a different base"):
        load_adapter(other, tmp_path)
    (tmp_path / "lora.safetensors").write_bytes(b"\x01" * 16)
    fresh = tiny("gpt2")
    with pytest.raises(LoRAError, match="lora.safetensors is not a readable safetensors file"):
        load_adapter(fresh, tmp_path)
    assert not any(".lora." in k for k in fresh.state_dict())
