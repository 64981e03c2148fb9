"""The conventions every analysis shares: one token check (vocabulary included), one component
parser, and one error type for bad input that the CLI reports as it is."""

from __future__ import annotations

import pytest
import torch

from llm_workings import cli
from llm_workings.analysis.ablation import ablate
from llm_workings.analysis.conventions import AnalysisError, Component, check_tokens, component, hook_name, parse_component
from llm_workings.analysis.heads import attention_patterns, head_pattern, head_scores
from llm_workings.analysis.logit_lens import logit_lens
from llm_workings.analysis.path_patching import path_patch
from llm_workings.analysis.probing import harvest


def test_the_error_is_a_value_error_and_nothing_else():
    assert issubclass(AnalysisError, ValueError)
    assert not issubclass(AnalysisError, (KeyError, TypeError))


@pytest.mark.parametrize(
    "analysis",
    [
        lambda model, tokens: head_scores(model, tokens),
        lambda model, tokens: attention_patterns(model, tokens),
        lambda model, tokens: head_pattern(model, tokens, 0, 0),
        lambda model, tokens: logit_lens(model, tokens),
        lambda model, tokens: ablate(model, tokens, "L0H0"),
        lambda model, tokens: harvest(model, tokens, ("resid_pre", 0), progress=False),
    ],
    ids=["head_scores", "attention_patterns", "head_pattern", "logit_lens", "ablate", "harvest"],
)
def test_every_analysis_checks_tokens_against_the_vocabulary(induction_model, analysis):
    d_vocab = induction_model.cfg.d_vocab
    too_big = torch.full((1, 6), d_vocab)
    with pytest.raises(AnalysisError, match=rf"tokens: token ids must lie in \[0, {d_vocab}\); got {d_vocab}\.\.{d_vocab}"):
        analysis(induction_model, too_big)
    with pytest.raises(AnalysisError, match="integer tensor"):
        analysis(induction_model, too_big.float())


def test_check_tokens_names_the_argument(induction_model):
    with pytest.raises(AnalysisError, match=r"^reference tokens: expected tokens of shape \[batch, pos\]"):
        check_tokens(induction_model, torch.zeros(1, 2, 3, dtype=torch.long), "reference tokens")
    assert check_tokens(induction_model, torch.tensor([1, 2, 3])).shape == (1, 3)


@pytest.mark.parametrize(
    "label, expected",
    [
        ("L1H2", Component("head", 1, 2)),
        ("L1H2.k", Component("head", 1, 2, "k")),
        ("L0N17", Component("neuron", 0, 17)),
        ("L0 attn", Component("attn", 0)),
        ("L3 mlp", Component("mlp", 3)),
        (("head", 1, 2), Component("head", 1, 2)),
    ],
)
def test_one_parser_reads_every_label(label, expected):
    parsed = parse_component(label)
    assert parsed == expected
    assert parse_component(parsed.label) == parsed  # the label reads back as the same component


@pytest.mark.parametrize("label", ["L1H", "layer 1 head 0", "L1H2.z", "L1 ffn", ("attention", 0), 3])
def test_unreadable_labels_are_none(label):
    assert parse_component(label) is None


def test_component_checks_form_and_range(induction_model, modadd_model):
    with pytest.raises(AnalysisError, match=r"cannot read the sender 'L1H0\.q'; a sender is a head 'L1H2' or an MLP 'L0 mlp'"):
        component(induction_model, "L1H0.q", ("head", "mlp"), role="sender")
    with pytest.raises(AnalysisError, match=r"^L1H4: head 4 is out of range \[0, 4\)$"):
        component(induction_model, "L1H4")
    with pytest.raises(AnalysisError, match=r"^L0 mlp: this model is attention-only"):
        component(induction_model, "L0 mlp")
    with pytest.raises(AnalysisError, match=r"neuron must be a whole number .* got 1\.5"):
        component(modadd_model, ("neuron", 0, 1.5))
    assert component(induction_model, "L1H2.v", ("head input",)).hook == "blocks.1.attn.hook_v"


def test_hook_names_keep_their_did_you_mean(induction_model):
    with pytest.raises(AnalysisError, match="did you mean blocks.0.hook_resid_pre"):
        hook_name(induction_model, "blocks.0.hook_resid_pr")
    with pytest.raises(AnalysisError, match="unknown activation 'resid'"):
        hook_name(induction_model, ("resid", 0))
    assert hook_name(induction_model, ("resid_post", 1)) == "blocks.1.hook_resid_post"


def test_the_cli_prints_an_analysis_error_as_it_is(tmp_path, capsys):
    """An unknown activation was a KeyError, which printed with quotes around it until the CLI unwrapped it."""
    assert cli.main(["analyze", "induction-2l", "patching", "--activation", "zz", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("llmw analyze: patch_residual patches resid_pre")


def test_path_patching_names_the_receiver_forms(induction_model):
    tokens = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(AnalysisError, match=r"a receiver is a head input .*, an MLP 'L0 mlp' or 'logits'"):
        path_patch(induction_model, tokens, tokens, lambda logits: logits.sum(), receivers=["L1H0"])


def test_the_package_exports_analyses_and_results_not_helpers():
    import llm_workings.analysis as analysis

    exported = set(analysis.__all__)
    assert all(hasattr(analysis, name) for name in exported)
    assert not exported & {"compare", "pearson", "normalized", "logit_diff", "control_labels", "key_frequencies"}
    assert {"AnalysisError", "Result", "PatchingResult", "patch_residual", "logit_lens"} <= exported


def test_every_import_the_readme_and_docs_show_works():
    """The README and the guides import from llm_workings.analysis; a smaller surface must keep those."""
    import importlib
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    texts = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    imports = [
        (module, name.strip())
        for text in texts
        for module, names in re.findall(r"from (llm_workings\.analysis[\w.]*) import ([\w, ]+)", text.read_text())
        for name in names.split(",")
    ]
    assert ("llm_workings.analysis", "LogitDiff") in imports  # the README's, at least
    missing = [f"{module}.{name}" for module, name in imports if not hasattr(importlib.import_module(module), name)]
    assert not missing


def test_a_saved_result_is_its_json_on_one_line(tmp_path):
    from llm_workings.analysis.heads import HeadScores

    scores = HeadScores({"induction": torch.tensor([[0.5, float("nan")]])})
    path = scores.save_json(tmp_path / "scores.json")
    assert path.read_text() == scores.to_json() + "\n"
    assert scores.to_dict()["result_type"] == "head_scores" and scores.to_dict()["scores"]["induction"] == [[0.5, None]]
