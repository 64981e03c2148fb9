"""Direct logit attribution: the parts sum to the model's own logit difference on every kind of
model, each head matches TransformerLens, and on induction-2l the layer-1 heads carry the answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm_workings.analysis.attribution import direct_logit_attribution
from llm_workings.analysis.conventions import AnalysisError
from llm_workings.data.tasks import repeated_tokens
from llm_workings.transformer import Transformer, TransformerConfig

HALF = 12


@torch.no_grad()
def small_model(**fields) -> Transformer:
    """A random model with weights wide enough, and norm gains off 1, that every path counts."""
    cfg = TransformerConfig(d_model=32, n_layers=2, n_heads=4, d_vocab=50, n_ctx=16, **fields)
    model = Transformer(cfg).init_weights(seed=1, std=0.3).eval()
    gen = torch.Generator().manual_seed(2)
    for p in model.parameters():
        if p.ndim == 1:  # gains and biases
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return model


def llama_like() -> Transformer:
    return small_model(
        n_kv_heads=2,
        positions="rotary",
        norm="rmsnorm",
        act="silu",
        gated_mlp=True,
        bias_qkv=False,
        bias_attn_out=False,
        bias_mlp=False,
        name="llama-like",
    )


def neox_like() -> Transformer:  # parallel attention and MLP, partial rotary, and an unembedding bias
    return small_model(positions="rotary", rotary_pct=0.25, parallel_residual=True, bias_unembed=True, name="neox-like")


def induction_answers(batch: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeated random tokens, and at the second-to-last position (correct next token, a token absent
    from the sequence)."""
    tokens = torch.tensor(repeated_tokens(np.random.default_rng(seed), batch, HALF, 128))
    wrong = torch.tensor([next(t for t in range(1, 128) if t not in row) for row in tokens.tolist()])
    return tokens, torch.stack([tokens[:, -1], wrong], 1)


def cases(request, name: str) -> tuple[Transformer, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    if name == "induction-2l":
        return (request.getfixturevalue("induction_model"), *induction_answers(batch=8))
    if name == "modadd-113":
        a, b = torch.randint(0, 113, (2, 32), generator=gen)
        return request.getfixturevalue("modadd_model"), torch.stack([a, b, torch.full_like(a, 113)], 1), (a + b) % 113
    if name == "gpt2-reference":
        model = request.getfixturevalue("reference_pair")[0]
    else:
        model = llama_like() if name == "llama-like" else neox_like()
    tokens = torch.randint(0, model.cfg.d_vocab, (4, 12), generator=gen)
    return model, tokens, torch.randint(0, model.cfg.d_vocab, (4, 2), generator=gen)


@pytest.mark.parametrize("name", ["induction-2l", "modadd-113", "gpt2-reference", "llama-like", "neox-like"])
def test_parts_sum_to_the_logit_difference(request, name, no_grad):
    model, tokens, answers = cases(request, name)
    result = direct_logit_attribution(model, tokens, answers)
    logits = model(tokens)[:, -1]
    rows = torch.arange(len(tokens))
    expected = logits[rows, answers[:, 0]] - logits[rows, answers[:, 1]] if answers.ndim == 2 else logits[rows, answers]
    torch.testing.assert_close(result.total, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(result.values.sum(0), result.total, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    cfg = model.cfg
    assert ("pos_embed" in result.labels) == (cfg.positions == "learned")
    assert ("ln_final bias" in result.labels) == (cfg.norm == "layernorm")
    assert ("unembed bias" in result.labels) == cfg.bias_unembed
    assert ("L0 attn bias" in result.labels) == cfg.bias_attn_out
    last = cfg.n_layers - 1
    assert (f"L{last} mlp" in result.labels) == (not cfg.attn_only)
    assert sum(label.startswith(f"L{last}H") for label in result.labels) == cfg.n_heads


@pytest.mark.parametrize("name", ["modadd-113", "llama-like"])
def test_neurons_split_the_mlp(request, name, no_grad):
    """The neurons' parts sum to the MLP's part less its output bias's (none in the Llama-like model)."""
    model, tokens, answers = cases(request, name)
    result = direct_logit_attribution(model, tokens, answers, neurons=True)
    n_layers = model.cfg.n_layers
    assert result.neuron_values.shape == (n_layers, len(tokens), model.cfg.d_mlp)
    _, cache = model.run_with_cache(tokens)
    scale = cache["ln_final.hook_scale"][:, -1, 0]  # [batch]
    W_U = model.W_U
    direction = (W_U[:, answers[:, 0]] - W_U[:, answers[:, 1]] if answers.ndim == 2 else W_U[:, answers]).T
    for layer in range(n_layers):
        b_out = model.blocks[layer].mlp.b_out
        if b_out is None:
            bias_part = torch.zeros(len(tokens))
        else:  # modadd's final norm is a layernorm: centre, divide by the scale, apply the gain
            bias_part = (model.ln_final.w * (b_out - b_out.mean()) * direction).sum(-1) / scale
        mlp = result.values[result.labels.index(f"L{layer} mlp")]
        torch.testing.assert_close(result.neuron_values[layer].sum(-1) + bias_part, mlp, rtol=1e-4, atol=1e-4)
        assert result.neuron_values[layer].abs().max() > 0.01


def test_heads_match_transformer_lens(reference_pair, no_grad):
    from tl_reference import tokens as reference_tokens

    ours, theirs = reference_pair
    tokens = reference_tokens(batch=4, pos=10)
    answers = torch.tensor([[5, 7], [8, 9], [10, 3], [1, 2]])
    result = direct_logit_attribution(ours, tokens, answers)
    _, cache = theirs.run_with_cache(tokens)
    stack = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)  # [layer * head, batch, d_model]
    # TransformerLens's apply_ln_to_stack centres and divides by the final scale but leaves out the
    # norm's gain (it expects it folded into W_U). Folding would also change TL's W_U, so the clean
    # comparison keeps the same weights on both sides and applies the gain here.
    direction = theirs.W_U[:, answers[:, 0]] - theirs.W_U[:, answers[:, 1]]  # [d_model, batch]
    expected = (stack * theirs.ln_final.w * direction.T).sum(-1)  # [layer * head, batch]
    heads = [result.labels.index(f"L{layer}H{head}") for layer in range(3) for head in range(4)]
    torch.testing.assert_close(result.values[heads], expected, atol=1e-5, rtol=1e-4)
    assert expected.abs().max() > 0.05  # the comparison is not between zeros


def test_induction_heads_carry_the_answer(induction_model):
    """Correct next token vs an absent one, on the repeated half: layer 1 carries nearly all of it."""
    tokens, answers = induction_answers()
    result = direct_logit_attribution(induction_model, tokens, answers, position=-2)
    heads = result.head_values()
    print(f"mean logit difference {float(result.total.mean()):.2f}; per head [layer, head] {heads}")
    assert result.total.mean() > 5
    assert heads[1].sum() > 0.8 * result.total.mean()
    assert heads[0].abs().max() < 0.5
    assert result.labels[int(result.mean.argmax())].startswith("L1H")


def test_position_per_prompt_and_single_answer(induction_model, no_grad):
    tokens, answers = induction_answers(batch=4)
    position = torch.tensor([-2, 20, 15, 3])
    result = direct_logit_attribution(induction_model, tokens, answers[:, 0], position=position)
    logits = induction_model(tokens)
    expected = logits[torch.arange(4), position, answers[:, 0]]
    torch.testing.assert_close(result.total, expected)
    torch.testing.assert_close(result.values.sum(0), expected, rtol=1e-4, atol=1e-4)


def test_bad_input(induction_model):
    tokens, answers = induction_answers(batch=2)
    with pytest.raises(AnalysisError, match="answers must be token ids"):
        direct_logit_attribution(induction_model, tokens, answers[:1])
    with pytest.raises(AnalysisError, match="answer ids"):
        direct_logit_attribution(induction_model, tokens, answers + 200)
    with pytest.raises(AnalysisError, match="position 40 is outside"):
        direct_logit_attribution(induction_model, tokens, answers, position=40)
    with pytest.raises(AnalysisError, match="attention-only"):
        direct_logit_attribution(induction_model, tokens, answers, neurons=True)


def test_serializes_and_draws(induction_model):
    tokens, answers = induction_answers(batch=2)
    result = direct_logit_attribution(induction_model, tokens, answers, position=-2)
    assert result.to_dict()["result_type"] == "logit_attribution"
    fig = result.plot(size=(5, 4))
    ax = fig.axes[0]
    assert len(ax.patches) == len(result.labels)  # fewer components than the top 20: one bar each
    assert "attribution" in ax.get_title()
    fig = result.plot()
    fig.clear()
    result.draw(fig, style="heads")
    assert fig.axes[0].get_ylabel() == "layer"
    with pytest.raises(AnalysisError, match="style"):
        result.draw(fig, style="pie")
