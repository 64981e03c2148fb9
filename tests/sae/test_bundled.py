"""The bundled SAEs: every card metric recomputed from the shipped weights, within the size budget, readable by SAELens."""

from __future__ import annotations

import warnings

import pytest
import torch

from llm_workings.sae import evaluate_sae
from llm_workings.sae.bundled import SAE_RECIPES, bundled_card, bundled_root, evaluation_tokens, list_bundled, load_bundled
from llm_workings.zoo import load

pytestmark = pytest.mark.usefixtures("one_thread")
SAE_BUDGET_BYTES = 3_000_000  # every bundled SAE together; models and SAEs together stay under 25 MB


def test_every_recipe_is_bundled():
    assert list_bundled() == sorted(SAE_RECIPES)


@pytest.mark.parametrize("name", sorted(SAE_RECIPES))
def test_every_card_metric_is_recomputed_from_the_bundled_weights(name):
    card = bundled_card(name)
    sae = load_bundled(name)
    model, _ = load(card["model"])
    result = evaluate_sae(sae, model, evaluation_tokens(card["model"])).scalars()
    assert set(result) == set(card["metrics"])
    for key, value in card["metrics"].items():
        assert result[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
        # float16 storage moved no metric by more than the card's tolerance
        assert abs(card["float32_metrics"][key] - value) <= card["tolerance"], key
    assert sae.source_dtype == card["dtype"]
    assert card["reproduce"] == f"llmw sae train --recipe {name} --out runs/saes/{name}"
    assert card["metrics"]["ce_loss_score"] > 0.9 and card["metrics"]["explained_variance"] > 0.8


def test_the_bundle_stays_within_its_size_budget():
    saes = sum(p.stat().st_size for p in bundled_root().rglob("*") if p.is_file())
    models = sum(p.stat().st_size for p in (bundled_root().parent / "models").rglob("*") if p.is_file())
    assert saes <= SAE_BUDGET_BYTES
    assert saes + models <= 25_000_000
    assert not list(bundled_root().rglob("checkpoint*"))


def test_sae_lens_reads_every_bundled_sae():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sae_lens import SAE
    for name in list_bundled():
        theirs, ours = SAE.load_from_disk(bundled_root() / name, dtype="float32"), load_bundled(name)
        if theirs.cfg.reshape_activations == "hook_z":  # SAELens reads per-head activations [..., head, d_head]
            x = torch.randn(20, 4, ours.cfg.d_in // 4)
            torch.testing.assert_close(theirs(x).flatten(-2), ours(x), atol=1e-4, rtol=1e-4)
        else:
            x = torch.randn(20, ours.cfg.d_in)
            torch.testing.assert_close(theirs(x), ours(x), atol=1e-4, rtol=1e-4)
