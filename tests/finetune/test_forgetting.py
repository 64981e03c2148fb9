"""The learning-against-forgetting task on the bundled shakespeare-char, and `llmw finetune`."""

from __future__ import annotations

import pytest

from llm_workings.cli import main
from llm_workings.data.corpora import load_corpus
from llm_workings.finetune import LoRAConfig
from llm_workings.finetune.forgetting import Method, domain_shift, learning_vs_forgetting

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def austen():
    return domain_shift("shakespeare-char", "austen", eval_batches=1, eval_batch_size=4)


def test_the_domain_shift_task_scores_both_corpora(austen, shakespeare_model):
    scores = austen.evaluate(shakespeare_model)
    assert scores == {
        "target_val_loss": austen.target.split_loss(shakespeare_model, "val"),
        "original_val_loss": austen.original.split_loss(shakespeare_model, "val"),
    }
    assert len(austen.original.val_ids) == len(load_corpus("tinyshakespeare").val)
    vocabulary = shakespeare_model.tokenizer.ids  # it lacks '"', brackets, most digits, '*' and '£'
    dropped = sum(c not in vocabulary for c in load_corpus("austen").val)
    assert len(austen.target.val_ids) == len(load_corpus("austen").val) - dropped  # dropped, not mis-encoded


@pytest.mark.slow
def test_a_short_run_learns_the_new_domain(austen, tmp_path):
    result = learning_vs_forgetting(
        "shakespeare-char", austen, [Method("r2", LoRAConfig(rank=2, alpha=4), 1e-2)], steps=4, batch_size=4, eval_every=2
    )
    (curve,) = result.curves
    assert curve.steps == [0, 2, 4] and curve.trainable == 4 * 2 * (128 + 384)
    assert curve.target_val_loss[-1] < curve.target_val_loss[0]
    assert result.to_dict()["result_type"] == "learning_vs_forgetting"
    assert main(["finetune", "shakespeare-char", "austen", "--out", str(tmp_path), "--steps", "2", "--batch-size", "2"]) == 0
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()


def test_llmw_finetune_names_a_bad_setting(capsys, tmp_path):
    assert main(["finetune", "shakespeare-char", "austen", "--out", str(tmp_path), "--targets", "attn.c_attn"]) == 2
    assert "no linear map 'attn.c_attn'; it has attn.qkv" in capsys.readouterr().err
