"""Dashboards: examples, histogram, logit effects and neighbours equal their hand computations; the HTML is
offline; `llmw sae` refuses bad input by name."""

from __future__ import annotations

import json

import pytest
import torch

from llm_workings.cli import main
from llm_workings.sae import SAEError
from llm_workings.sae.dashboard import latent_activations, latent_dashboard, neuron_dashboard, residual_direction
from llm_workings.sae.html import dashboard_html

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tokens():
    return torch.randint(0, 40, (12, 16), generator=torch.Generator().manual_seed(1))


def test_a_latent_dashboard_by_hand(tiny_model, tokens, make_sae):
    sae = make_sae("topk")
    acts = latent_activations(sae, tiny_model, tokens)[..., 3]
    d = latent_dashboard(sae, tiny_model, tokens, 3, context=2, n_top=5)
    values = [ex.value for ex in d.top_examples]
    assert values == sorted(acts.flatten().tolist(), reverse=True)[:5]
    ex = d.top_examples[0]
    assert ex.values[ex.position - ex.start] == ex.value and len(ex.token_ids) <= 5
    assert ex.token_ids == tokens[ex.sequence, ex.start : ex.start + len(ex.token_ids)].tolist()
    assert d.density == pytest.approx((acts > 0).double().mean().item())
    assert sum(d.histogram["counts"]) == int((acts > 0).sum())
    assert sum(g["count"] for g in d.quantile_examples) == int((acts > 0).sum())
    direction = sae.W_dec[3] - sae.W_dec[3].mean()
    logits = (direction * tiny_model.ln_final.w) @ tiny_model.W_U
    assert [r["id"] for r in d.top_logits] == logits.topk(10).indices.tolist()
    assert d.bottom_logits[0]["value"] == pytest.approx(logits.min().item(), abs=1e-5)
    cos = torch.nn.functional.cosine_similarity(sae.W_dec, sae.W_dec[3][None], dim=1)
    cos[3] = -2
    assert d.neighbours[0]["index"] == int(cos.argmax()) and d.neighbours[0]["cosine"] == pytest.approx(
        cos.max().item(), abs=1e-5
    )
    json.dumps(d.to_dict())


def test_a_hook_z_direction_reaches_the_residual_stream_through_w_o(tiny_model):
    direction = torch.randn(16)
    W_O = tiny_model.blocks[0].attn.W_O  # [head, d_head, d_model]
    expected = direction[:8] @ W_O[0] + direction[8:] @ W_O[1]
    torch.testing.assert_close(residual_direction(tiny_model, "blocks.0.attn.hook_z", direction), expected)
    torch.testing.assert_close(
        residual_direction(tiny_model, "blocks.0.attn.hook_z", direction[:8], head_index=1), direction[:8] @ W_O[1]
    )
    assert residual_direction(tiny_model, "blocks.0.attn.hook_pattern", direction) is None


def test_a_neuron_dashboard_reads_the_mlp_neuron(tiny_model, tokens):
    _, cache = tiny_model.run_with_cache(tokens, names_filter="blocks.1.mlp.hook_post")
    acts = cache["blocks.1.mlp.hook_post"][..., 7]
    d = neuron_dashboard(tiny_model, tokens, layer=1, neuron=7)
    assert d.kind == "neuron" and d.max_activation == pytest.approx(acts.max().item(), abs=1e-6)
    W_out = tiny_model.blocks[1].mlp.W_out
    assert d.neighbours[0]["cosine"] <= 1 and d.top_logits[0]["value"] == pytest.approx(
        (((W_out[7] - W_out[7].mean()) * tiny_model.ln_final.w) @ tiny_model.W_U).max().item(), abs=1e-5
    )
    with pytest.raises(SAEError, match=r"neuron must be an integer in \[0, 64\)"):
        neuron_dashboard(tiny_model, tokens, layer=1, neuron=64)


def test_the_html_is_one_offline_file(tiny_model, tokens, make_sae):
    d = latent_dashboard(make_sae("standard"), tiny_model, tokens, 0)
    d.top_examples[0].tokens[0] = "<b>&"
    html = dashboard_html([d], "t")
    assert "&lt;b&gt;&amp;" in html and "<script" not in html
    assert "http" not in html.replace('xmlns="http', "")


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--model", "induction-2l", "--hook", "blocks.0.hook_nope", "--d-sae", "64", "--k", "4"],
            "no hook 'blocks.0.hook_nope'",
        ),
        (
            ["--model", "induction-2l", "--hook", "blocks.0.attn.hook_z", "--d-sae", "0", "--k", "4"],
            "d_sae must be a positive integer",
        ),
        (["--model", "induction-2l", "--hook", "blocks.0.attn.hook_z", "--d-sae", "8", "--k", "9"], "k=9 is larger than d_sae=8"),
        (
            ["--model", "induction-2l", "--hook", "blocks.0.attn.hook_z", "--d-sae", "8", "--k", "2", "--stpes=3"],
            "unknown training setting stpes",
        ),
        (["--recipe", "nope"], "no SAE recipe 'nope'"),
    ],
)
def test_llmw_sae_train_refuses_bad_input_by_name(tmp_path, capsys, argv, message):
    assert main(["sae", "train", *argv, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_llmw_sae_eval_and_dashboard_on_a_bundled_sae(tmp_path, capsys):
    assert main(["sae", "eval", "induction-2l-z0-topk", "--sequences", "4", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["result_type"] == "sae_evaluation" and scores["l0"] == pytest.approx(8.0)
    out = tmp_path / "d.html"
    assert main(["sae", "dashboard", "induction-2l-z0-topk", "--sequences", "4", "--latent", "3", "--out", str(out)]) == 0
    assert "sae latent 3" in out.read_text()
