"""The metrics on hand-computed tiny data, pooled as SAELens pools them, and the CE/KL scores' two anchors."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from llm_workings.sae import SAEConfig, StandardSAE, evaluate_sae, recovered_score
from llm_workings.sae.metrics import ReconstructionStats, density_histogram

pytestmark = pytest.mark.usefixtures("one_thread")


def test_reconstruction_metrics_by_hand():
    x = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    x_hat = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    acts = torch.tensor([[1.0, 0.0, 0.0], [1.0, 3.0, 0.0]])
    stats = ReconstructionStats(3)
    stats.add(x, x_hat, acts)
    m = stats.metrics()
    assert m["l0"] == 1.5  # (1 + 2) / 2 tokens
    assert m["mse"] == 1.0  # |x - x_hat|^2 summed over d_in: 1 per token
    assert m["explained_variance"] == 0.5  # 1 - 1 / (E|x|^2 - |E x|^2) = 1 - 1 / (4 - 2)
    assert m["cosine_similarity"] == 1.0
    assert m["relative_reconstruction_bias"] == 0.5  # E|x_hat|^2 / E[x . x_hat] = 1 / 2
    assert m["dead_fraction"] == pytest.approx(1 / 3)  # latent 2 never fires
    assert m["dense_fraction"] == pytest.approx(2 / 3)  # latents 0 (100%) and 1 (50%) fire on > 10% of tokens
    torch.testing.assert_close(m["log10_density"], torch.log10(torch.tensor([1.0, 0.5, 0.0]) + 1e-10))


def test_explained_variance_is_pooled_over_tokens_as_sae_lens_computes_it():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sae_lens.evals import ExplainedVarianceCalculator
    gen = torch.Generator().manual_seed(0)
    theirs, ours = ExplainedVarianceCalculator(), ReconstructionStats(4)
    for n in (7, 50, 3):  # batches of different sizes weigh every token equally
        x = torch.randn(n, 6, generator=gen) + 3.0
        x_hat = x + 0.5 * torch.randn(n, 6, generator=gen)
        theirs.add_batch(sae_output=x_hat, hidden_acts=x)
        ours.add(x, x_hat, torch.zeros(n, 4))
    assert ours.metrics()["explained_variance"] == pytest.approx(theirs.compute(), abs=1e-6)  # theirs sums squares in float32


def test_the_recovered_score_by_hand():
    assert recovered_score(with_ablation=5.0, with_sae=3.0, clean=1.0) == 0.5
    assert math.isnan(recovered_score(2.0, 2.0, 2.0))


def test_the_density_histogram_counts_every_latent():
    h = density_histogram(torch.tensor([-10.0, -3.2, -0.1, 0.0]), bins=10)
    assert sum(h["counts"]) == 4 and h["counts"][0] == 1 and h["counts"][-1] == 2
    assert h["edges"][0] == -10.0 and h["edges"][-1] == 0.0


def _identity_sae(d: int, hook: str) -> StandardSAE:
    """relu(x) - relu(-x) = x: a standard SAE with 2d latents that reconstructs exactly."""
    sae = StandardSAE(SAEConfig("standard", d, 2 * d, hook_name=hook))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
    return sae


@pytest.mark.parametrize("hook", ["blocks.1.hook_resid_pre", "blocks.0.attn.hook_z", "blocks.0.hook_mlp_out"])
def test_ce_score_is_one_for_an_identity_sae_and_zero_for_a_zero_one(tiny_model, hook):
    tokens = torch.randint(0, 40, (6, 16), generator=torch.Generator().manual_seed(0))
    identity = evaluate_sae(_identity_sae(16, hook), tiny_model, tokens, batch_size=4)
    assert identity.ce_loss_score == pytest.approx(1.0, abs=1e-5)
    assert identity.kl_score == pytest.approx(1.0, abs=1e-5)
    assert identity.explained_variance == pytest.approx(1.0, abs=1e-6) and identity.mse < 1e-10
    assert abs(identity.ce_loss_with_ablation - identity.ce_loss_clean) > 0.01  # the anchors differ: the score means something
    zero = _identity_sae(16, hook)
    with torch.no_grad():
        zero.W_dec.zero_()
    scored = evaluate_sae(zero, tiny_model, tokens, batch_size=4)
    assert scored.ce_loss_score == pytest.approx(0.0, abs=1e-6)
    assert scored.kl_score == pytest.approx(0.0, abs=1e-6)
    assert scored.to_dict()["result_type"] == "sae_evaluation"
