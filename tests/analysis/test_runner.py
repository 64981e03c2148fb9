"""`llmw analyze`: each analysis runs on a bundled model and writes its JSON and figure; bad input is named."""

from __future__ import annotations

import json

import pytest

from llm_workings import cli
from llm_workings.analysis.runner import ANALYSES, run_analysis


@pytest.mark.parametrize(
    "model, analysis, extra, expect",
    [
        ("induction-2l", "heads", [], "best induction head L1"),
        ("induction-2l", "composition", ["--kind", "K"], "K-composition L0H2 -> L1"),
        ("induction-2l", "path-patching", ["--receivers", "L1H0.k,L1H1.k,L1H2.k,L1H3.k"], "L0H2"),
        ("induction-2l", "ablation", ["--method", "zero"], "largest change L0H2"),
        ("modadd-113", "logit-lens", ["--format", "svg"], "first at 100%"),
        ("modadd-113", "dla", [], "L0 mlp"),
        ("shakespeare-char", "patching", ["--activation", "attn_out"], "clean"),
    ],
)
def test_analyze_writes_json_and_figure(tmp_path, capsys, model, analysis, extra, expect):
    assert cli.main(["analyze", model, analysis, "--out", str(tmp_path), *extra]) == 0
    out = capsys.readouterr().out
    assert expect in out
    data = json.loads((tmp_path / f"{analysis}.json").read_text())
    assert data["result_type"] in {
        "head_scores",
        "composition_scores",
        "path_patching",
        "ablation",
        "logit_lens",
        "logit_attribution",
        "activation_patching",
    }
    figure = tmp_path / f"{analysis}.{'svg' if '--format' in extra else 'png'}"
    assert figure.stat().st_size > 2000


def test_help_lists_every_analysis(capsys):
    with pytest.raises(SystemExit):
        cli.main(["analyze", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in ANALYSES)


@pytest.mark.parametrize(
    "args, message",
    [
        (["induction-2l", "lens"], "unknown analysis 'lens'; choose one of logit-lens"),
        (["induction-2l", "fourier"], "for modular-addition models"),
        (["modadd-113", "composition"], "at least two layers"),
        (["induction-2l", "patching", "--activation", "resid"], "patches resid_pre, resid_mid"),
        (["induction-2l", "path-patching", "--receivers", "L5H0.k"], "L5H0.k: layer 5 is out of range [0, 2)"),
    ],
)
def test_bad_requests_are_named(tmp_path, capsys, args, message):
    assert cli.main(["analyze", *args, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_attribution_patching_reports_its_correlation():
    result, line = run_analysis("induction-2l", "attribution-patching", activation="z")
    assert f"r = {result.pearson:.3f}" in line
    assert result.estimate.values.shape == result.actual.values.shape == (2, 4)


def test_a_hugging_face_checkpoint_directory_is_analyzed(tmp_path, capsys):
    """A transformers checkpoint with no tokenizer gets the induction-style inputs any model can take."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=97)).save_pretrained(tmp_path / "gpt2")
    assert cli.main(["analyze", str(tmp_path / "gpt2"), "heads", "--out", str(tmp_path / "out")]) == 0
    assert "best induction head" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "heads.json").read_text())["scores"]["induction"]
