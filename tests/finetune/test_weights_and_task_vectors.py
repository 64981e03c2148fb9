"""Weight-change analysis finds a constructed rank; task vectors are parameter differences that undo."""

from __future__ import annotations

import math

import pytest
import torch
from lora_helpers import randomize, tiny, tokens

from llm_workings.finetune import LoRAConfig, TaskVector, add_lora, change_of, merged_copy, weight_changes

pytestmark = pytest.mark.usefixtures("one_thread")


def low_rank(d_out, d_in, rank, seed, size=1.0):
    gen = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(d_out, rank, generator=gen))[0]
    v = torch.linalg.qr(torch.randn(d_in, rank, generator=gen))[0]
    return size * u @ v.T  # equal singular values `size`


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_a_constructed_change_of_known_rank_is_found(rank):
    w0 = torch.randn(48, 32, generator=torch.Generator().manual_seed(0))
    change = change_of("w", w0, w0 + low_rank(48, 32, rank, seed=rank, size=0.5))
    assert change.rank == rank
    assert change.effective_rank == pytest.approx(rank, rel=1e-4)  # equal singular values: entropy is log r
    assert change.singular_values[rank - 1] == pytest.approx(0.5, rel=1e-4)
    assert change.relative_norm == pytest.approx(0.5 * math.sqrt(rank) / w0.norm().item(), rel=1e-4)


def test_an_intruder_is_a_new_top_direction():
    """W_0 = diag-like with known directions; adding a large change along a direction orthogonal to W_0's
    top ones, but mixing its tail ones, gives one top singular vector unlike all of W_0's."""
    gen = torch.Generator().manual_seed(0)
    u0 = torch.linalg.qr(torch.randn(32, 32, generator=gen))[0]
    v0 = torch.linalg.qr(torch.randn(32, 32, generator=gen))[0]
    w0 = u0 @ torch.diag(torch.linspace(10, 1, 32)) @ v0.T
    new = (u0[:, -1] + u0[:, -2]) / math.sqrt(2)  # halfway between two base directions: |cos| 0.71 with each
    assert change_of("w", w0, w0 + 20 * torch.outer(new, v0[:, 0])).intruders == []
    new = u0[:, -4:].sum(1) / 2  # spread over four: |cos| 0.5 at most
    change = change_of("w", w0, w0 + 20 * torch.outer(new, v0[:, -1]), threshold=0.6)
    assert change.intruders == [0] and change.rank == 1
    assert change_of("w", w0, w0 + 1e-3 * torch.randn(32, 32, generator=gen)).intruders == []


def test_weight_changes_of_a_lora_model_see_its_rank_merged_or_not():
    base, tuned = tiny("llama"), tiny("llama")
    adapter = add_lora(tuned, LoRAConfig(rank=3, targets=("attn.q", "mlp.out")))
    randomize(adapter)
    unmerged = weight_changes(base, tuned)
    adapter.merge()
    merged = weight_changes(base, tuned)
    by_name = {m.name: m for m in unmerged.modules}
    assert by_name["blocks.0.attn.q"].rank == 3 and by_name["blocks.1.mlp.out"].rank == 3
    assert by_name["blocks.0.attn.k"].rank == 0 and by_name["blocks.0.attn.k"].relative_norm == 0
    for a, b in zip(unmerged.modules, merged.modules):
        assert a.rank == b.rank and a.relative_norm == pytest.approx(b.relative_norm, rel=1e-4, abs=1e-9)
    assert unmerged.to_dict()["result_type"] == "weight_changes"


@pytest.mark.parametrize("shape", ["gpt2", "llama"])  # gpt2's embeddings are tied here
def test_task_vectors_are_the_parameter_difference_and_undo_exactly(shape):
    base, tuned = tiny(shape), tiny(shape, seed=3)
    tau = TaskVector.between(base, tuned)
    tied = base.cfg.tie_embeddings
    assert ("unembed.weight" in tau.deltas) is not tied
    for name, p in base.named_parameters():
        assert torch.equal(tau.deltas[name], dict(tuned.named_parameters())[name] - p)
    x = tokens()
    assert torch.allclose(tau.apply_to(base)(x), tuned(x), atol=1e-5)
    assert torch.equal(tau.apply_to(base, 0.0)(x), base(x))
    back = (-tau).apply_to(tau.apply_to(base))
    for k, v in base.state_dict().items():
        assert torch.allclose(back.state_dict()[k], v, atol=1e-6)
    assert (tau + -tau).norm() == 0


def test_a_lora_task_vector_is_its_merged_update_and_the_tuned_model_keeps_its_adapter():
    base = tiny("gpt2")
    tuned = tiny("gpt2")
    adapter = add_lora(tuned, LoRAConfig(rank=2, targets=("attn.o",)))
    randomize(adapter)
    tau = TaskVector.between(base, tuned)
    assert set(k for k, v in tau.deltas.items() if v.abs().max() > 0) == {"blocks.0.attn.w_o", "blocks.1.attn.w_o"}
    assert torch.allclose(tau.deltas["blocks.1.attn.w_o"], adapter.modules["blocks.1.attn.o"].delta_weight())
    assert not adapter.modules["blocks.1.attn.o"].merged  # the tuned model was not touched
    x = tokens()
    assert torch.allclose(tau.apply_to(base)(x), merged_copy(tuned)(x), atol=1e-5)
