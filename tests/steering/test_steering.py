"""The steering engine against hand computations on a tiny model: building, applying (with and
without the KV cache), ablation, saving, the batched sweep, and every refusal."""

from __future__ import annotations

import pytest
import torch

from llm_workings.steering import (
    SteeringError,
    SteeringVector,
    TargetProbability,
    aggregate,
    contrast_readings,
    from_contrast,
    from_decoder_row,
    from_probe,
    from_tensor,
    steer,
    steering_sweep,
)
from llm_workings.transformer.generate import generate

HOOK = "blocks.1.hook_resid_pre"


PAIRS = [
    (torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 3, 5])),
    (torch.tensor([6, 7, 8]), torch.tensor([6, 7, 9])),
    (torch.tensor([10, 2, 11, 12, 13]), torch.tensor([10, 2, 11, 12, 14])),
    (torch.tensor([3, 3, 4]), torch.tensor([3, 3, 15])),
]


def resid_at(model, ids, hook=HOOK):
    _, cache = model.run_with_cache(ids[None], names_filter=[hook])
    return cache[hook][0]


def test_mean_difference_equals_a_hand_computation(tiny_model):
    v = from_contrast(tiny_model, PAIRS, HOOK)
    by_hand = torch.stack([resid_at(tiny_model, p)[-1] - resid_at(tiny_model, n)[-1] for p, n in PAIRS]).mean(0)
    torch.testing.assert_close(v.vector, by_hand, rtol=1e-5, atol=1e-6)
    assert "raw mean difference" in repr(v) and v.hook == HOOK
    at_one = from_contrast(tiny_model, PAIRS, HOOK, read_at=1)  # pairs are equal length within each pair
    by_hand = torch.stack([resid_at(tiny_model, p)[1] - resid_at(tiny_model, n)[1] for p, n in PAIRS]).mean(0)
    torch.testing.assert_close(at_one.vector, by_hand, rtol=1e-5, atol=1e-6)


def test_pca_is_the_top_singular_vector_with_positives_projecting_higher(tiny_model):
    pos, neg = contrast_readings(tiny_model, PAIRS, HOOK)
    v = from_contrast(tiny_model, PAIRS, HOOK, aggregation="pca")
    top = torch.linalg.svd(pos - neg).Vh[0]
    torch.testing.assert_close(v.vector.abs(), top.abs(), rtol=1e-4, atol=1e-5)
    assert float(((pos - neg) @ v.vector).mean()) > 0
    assert abs(float(v.vector.norm()) - 1) < 1e-5 and "unit norm" in repr(v)
    swapped, _, _ = aggregate(neg, pos, "pca")  # swapping the sides flips the sign, not the line
    torch.testing.assert_close(swapped, -v.vector, rtol=1e-4, atol=1e-5)


def test_logistic_weight_points_to_the_positives():
    gen = torch.Generator().manual_seed(0)
    shift = torch.zeros(8)
    shift[2] = 3.0
    neg = torch.randn(40, 8, generator=gen)
    pos = torch.randn(40, 8, generator=gen) + shift
    direction, normalisation, meta = aggregate(pos, neg, "logistic")
    assert int(direction.abs().argmax()) == 2 and float(direction[2]) > 0.8
    assert normalisation == "unit norm (logistic probe weight)" and meta["probe_test_accuracy"] > 0.8


def test_a_probe_direction_is_the_unit_norm_weight_of_the_toolkits_probe(tiny_model):
    from llm_workings.analysis.probing import harvest, train_probe

    gen = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, tiny_model.cfg.d_vocab, (6, 10), generator=gen)
    labels = (tokens % 2 == 0).long()  # a property of each token the stream holds
    v = from_probe(tiny_model, tokens, labels, HOOK)
    probe = train_probe(harvest(tiny_model, tokens, [HOOK], progress=False)[HOOK], labels.flatten())
    assert torch.allclose(v.vector, probe.weights[0] / probe.weights[0].norm())
    assert v.normalisation == "unit norm (logistic probe weight)" and v.metadata["probe_test_accuracy"] == probe.test_score
    with pytest.raises(SteeringError, match="labels of both classes"):
        from_probe(tiny_model, tokens, torch.zeros_like(labels), HOOK)
    with pytest.raises(SteeringError, match="got 30 labels for 60 positions"):
        from_probe(tiny_model, tokens, labels[:3], HOOK)


def test_applying_equals_adding_through_a_manual_hook(tiny_model):
    direction = torch.randn(16, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    with steer(tiny_model, from_tensor(HOOK, direction, coefficient=2.5)):
        steered = tiny_model(ids)
    manual = tiny_model.run_with_hooks(ids, fwd_hooks=[(HOOK, lambda x, hook: x + 2.5 * direction)])
    torch.testing.assert_close(steered, manual)
    with steer(tiny_model, from_tensor(HOOK, direction, coefficient=2.5, positions=3)):
        from_three = tiny_model(ids)

    def from_position_three(x, hook):
        x = x.clone()
        x[:, 3:] += 2.5 * direction
        return x

    torch.testing.assert_close(from_three, tiny_model.run_with_hooks(ids, fwd_hooks=[(HOOK, from_position_three)]))
    assert not tiny_model.hook_dict[HOOK].fwd_fns, "the hook must be removed on exit"


def test_several_vectors_at_once_add_up(tiny_model):
    a, b = torch.randn(2, 16, generator=torch.Generator().manual_seed(2))
    ids = torch.tensor([[3, 1, 4, 1, 5]])
    with steer(tiny_model, [from_tensor(HOOK, a), from_tensor("blocks.0.hook_mlp_out", b, coefficient=-1)]):
        both = tiny_model(ids)
    manual = tiny_model.run_with_hooks(
        ids, fwd_hooks=[(HOOK, lambda x, hook: x + a), ("blocks.0.hook_mlp_out", lambda x, hook: x - b)]
    )
    torch.testing.assert_close(both, manual)


@pytest.mark.parametrize("positions", ["all", "prompt", "generated", 2, 7])
def test_generation_with_a_kv_cache_equals_generation_without_under_steering(tiny_model, positions):
    direction = 3 * torch.randn(16, generator=torch.Generator().manual_seed(4))
    v = from_tensor(HOOK, direction, positions=positions)
    prompt = torch.tensor([[1, 2, 3, 4, 5]])
    runs = {}
    for cached in (True, False):
        with steer(tiny_model, v):
            runs[cached] = generate(tiny_model, prompt, 12, use_kv_cache=cached, stop_at_eos=False)
    assert torch.equal(runs[True], runs[False])
    assert not torch.equal(runs[True], generate(tiny_model, prompt, 12, stop_at_eos=False)), "steering changed nothing"


def test_generated_positions_leave_the_prompt_alone(tiny_model):
    v = from_tensor(HOOK, 5 * torch.ones(16), positions="generated")
    prompt = torch.tensor([[1, 2, 3, 4, 5]])
    seen = []
    with steer(tiny_model, v), tiny_model.hooks([("blocks.1.hook_resid_mid", lambda x, hook: seen.append(x.shape[1]))]):
        first_logits = tiny_model(prompt)
    torch.testing.assert_close(first_logits, tiny_model(prompt))  # a forward over the prompt alone is not steered
    assert seen == [5]


def test_ablation_leaves_a_zero_projection(tiny_model):
    direction = torch.randn(16, generator=torch.Generator().manual_seed(5))
    unit = direction / direction.norm()
    ids = torch.tensor([[2, 4, 6, 8, 10, 12]])
    seen = {}
    read = ("blocks.1.hook_resid_pre", lambda x, hook: seen.__setitem__("x", x.clone()))
    with torch.no_grad(), steer(tiny_model, from_tensor(HOOK, direction, mode="ablate")), tiny_model.hooks([read]):
        tiny_model(ids)
    before = resid_at(tiny_model, ids[0])
    assert float((before @ unit).abs().min()) > 1e-3  # there was something to remove
    assert float((seen["x"] @ unit).abs().max()) < 1e-5
    torch.testing.assert_close(seen["x"][0], before - (before @ unit)[:, None] * unit)


def test_save_and_load_round_trip(tmp_path, tiny_model):
    v = from_contrast(tiny_model, PAIRS, HOOK, aggregation="pca", coefficient=4, positions="generated")
    v.save(tmp_path / "v")
    back = SteeringVector.load(tmp_path / "v")
    assert torch.equal(back.vector, v.vector) and repr(back) == repr(v) and back.metadata == v.metadata
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["steering_vector.json", "steering_vector.safetensors"]
    with pytest.raises(SteeringError, match="not a saved steering vector"):
        SteeringVector.load(tmp_path)
    row = from_decoder_row(HOOK, torch.ones(16), coefficient=100)
    assert "SAE decoder row" in repr(row)


def test_batched_sweep_equals_a_plain_loop(tiny_model):
    direction = torch.randn(16, generator=torch.Generator().manual_seed(6))
    prompts = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    neutral = torch.tensor([[4, 3, 2, 1, 0, 1, 2], [7, 7, 8, 8, 9, 9, 10]])
    coefficients = torch.linspace(-4, 4, 5)
    for positions in ("all", 2):
        for mode in ("add", "ablate"):
            v = from_tensor(HOOK, direction, positions=positions, mode=mode)
            metric = TargetProbability([3, 5])
            fast = steering_sweep(tiny_model, v, coefficients, metric, prompts, neutral, batch_size=7)
            slow = steering_sweep(tiny_model, v, coefficients, metric, prompts, neutral, batched=False)
            for name in ("behaviour", "loss", "random_behaviour", "random_loss"):
                torch.testing.assert_close(getattr(fast, name), getattr(slow, name), rtol=1e-5, atol=1e-6)
    assert fast.behaviour.shape == (2, 5) and fast.layers == [0, 1]
    zero = fast.coefficients.index(0.0)
    assert abs(float(fast.loss[0, zero]) - fast.unsteered_loss) < 1e-5
    assert fast.to_dict()["result_type"] == "steering_sweep" and len(fast.to_dict()["perplexity"]) == 2
    fast.plot()


# -- refusals -------------------------------------------------------------------------------------
def test_a_vector_of_the_wrong_width_for_the_hook_is_refused(tiny_model):
    with pytest.raises(SteeringError, match="width 10, but blocks.1.hook_resid_pre holds vectors of width 16"):
        with steer(tiny_model, from_tensor(HOOK, torch.ones(10))):
            pass
    with pytest.raises(SteeringError, match="width 16, but blocks.0.mlp.hook_post holds vectors of width 64"):
        steering_sweep(
            tiny_model,
            from_tensor("blocks.0.mlp.hook_post", torch.ones(16)),
            [1],
            TargetProbability([1]),
            torch.tensor([[1, 2]]),
            torch.tensor([[1, 2]]),
        )
    with pytest.raises(SteeringError, match="cannot be steered"):
        from_tensor("blocks.0.attn.hook_pattern", torch.ones(16)).check_for(tiny_model)


def test_a_read_position_past_the_prompt_is_refused(tiny_model):
    with pytest.raises(SteeringError, match="pair 1: read position 3 is past the positive prompt, which is 3 tokens long"):
        from_contrast(tiny_model, PAIRS, HOOK, read_at=3)
    with pytest.raises(SteeringError, match="read position -6 is past"):
        from_contrast(tiny_model, PAIRS, HOOK, read_at=-6)


def test_pairs_of_different_lengths_are_refused_when_the_position_needs_alignment(tiny_model):
    uneven = [(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3, 4]))]
    with pytest.raises(SteeringError, match="pair 0: the texts are 3 and 4 tokens long, so position 1"):
        from_contrast(tiny_model, uneven, HOOK, read_at=1)
    v = from_contrast(tiny_model, uneven, HOOK)  # the last token needs no alignment
    torch.testing.assert_close(v.vector, resid_at(tiny_model, uneven[0][0])[-1] - resid_at(tiny_model, uneven[0][1])[-1])


def test_an_empty_pair_list_is_refused(tiny_model):
    with pytest.raises(SteeringError, match="the list of contrast pairs is empty"):
        from_contrast(tiny_model, [], HOOK)


def test_other_bad_input_is_refused(tiny_model):
    with pytest.raises(SteeringError, match="positions are 'all', 'prompt', 'generated'"):
        from_tensor(HOOK, torch.ones(16), positions="after")
    with pytest.raises(SteeringError, match="mode is 'add' or 'ablate'"):
        from_tensor(HOOK, torch.ones(16), mode="scale")
    with pytest.raises(SteeringError, match=r"a float tensor \[d\]"):
        SteeringVector(HOOK, torch.ones(2, 16))
    with pytest.raises(SteeringError, match="aggregation is one of"):
        from_contrast(tiny_model, PAIRS, HOOK, aggregation="median")
    with pytest.raises(SteeringError, match="no hook point named"):
        from_contrast(tiny_model, PAIRS, "blocks.9.hook_resid_pre")
    with pytest.raises(SteeringError, match="give at least one coefficient"):
        steering_sweep(
            tiny_model,
            from_tensor(HOOK, torch.ones(16)),
            [],
            TargetProbability([1]),
            torch.tensor([[1, 2]]),
            torch.tensor([[1, 2]]),
        )
