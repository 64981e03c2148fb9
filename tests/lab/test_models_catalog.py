"""The catalog lists the zoo, --model checkpoints and runs, from small files only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from models_helpers import build_finished_run, build_gpt2_dir, build_our_model, build_training_run

from llm_workings.lab.config import LabConfig
from llm_workings.lab.errors import ApiError
from llm_workings.lab.models import ModelCache

ZOO = {
    "austen-bpe": ("bpe-lm", True, 4),
    "induction-2l": ("induction", False, 2),
    "modadd-113": ("modular-addition", False, 1),
    "shakespeare-char": ("char-lm", True, 4),
}


def test_the_four_zoo_models_with_their_cards_facts(tmp_path):
    entries = {e.id: e for e in ModelCache(LabConfig(runs_dir=tmp_path)).catalog()}
    assert set(entries) == set(ZOO)
    for model_id, (task, has_tokenizer, n_layers) in ZOO.items():
        e = entries[model_id]
        assert (e.source, e.task, e.has_tokenizer, e.n_layers, e.available) == ("zoo", task, has_tokenizer, n_layers, True)
        assert e.description and e.parameters > 0
    assert entries["shakespeare-char"].parameters == 805248  # the card's count
    assert (entries["austen-bpe"].d_vocab, entries["modadd-113"].n_ctx) == (4096, 3)


def test_cli_checkpoints_and_runs(tmp_path):
    hf = build_gpt2_dir(tmp_path / "my-gpt2")
    ours = build_our_model(tmp_path / "ours")
    runs = tmp_path / "runs"
    build_finished_run(runs, "induction-2l")  # named like a zoo recipe, as `llmw train` names runs
    build_training_run(runs, "half-done", step=40)
    (runs / "notes").mkdir()  # a folder that is no run is not listed
    build_training_run(runs, ".tmp-induction-2l-run1-x8k2", step=10)  # a lab job's run being written is not listed
    config = LabConfig(models=(str(hf), str(ours), str(tmp_path / "missing"), str(ours)), runs_dir=runs)
    entries = {e.id: e for e in ModelCache(config).catalog()}
    assert set(entries) == set(ZOO) | {"cli.my-gpt2", "cli.ours", "cli.missing", "run.induction-2l", "run.half-done"}

    gpt2 = entries["cli.my-gpt2"]
    assert (gpt2.source, gpt2.task, gpt2.has_tokenizer, gpt2.available) == ("cli", "lm", True, True)
    assert (gpt2.n_layers, gpt2.d_model, gpt2.n_heads, gpt2.n_ctx, gpt2.d_vocab) == (2, 32, 4, 64, 280)
    assert "GPT2LMHeadModel" in gpt2.description
    from safetensors.torch import load_file

    assert gpt2.parameters == sum(t.numel() for t in load_file(hf / "model.safetensors").values())

    mine = entries["cli.ours"]
    assert (mine.has_tokenizer, mine.n_layers, mine.d_model, mine.available) == (True, 2, 32, True)
    assert mine.task == "lm"

    missing = entries["cli.missing"]
    assert not missing.available and "does not exist" in missing.reason and "missing" in missing.reason

    run = entries["run.induction-2l"]
    assert (run.source, run.task, run.description, run.available) == ("run", "char-lm", "a tiny test run", True)
    training = entries["run.half-done"]
    assert not training.available and "step 40" in training.reason


def test_a_new_run_appears_without_a_restart(tmp_path):
    cache = ModelCache(LabConfig(runs_dir=tmp_path))
    assert not [e for e in cache.catalog() if e.source == "run"]
    build_finished_run(tmp_path, "fresh")
    assert cache.entry("run.fresh").available


def test_clashing_names_get_distinct_stable_ids(tmp_path):
    a = build_our_model(tmp_path / "a" / "Model X")
    b = build_our_model(tmp_path / "b" / "Model X")
    ids = [e.id for e in ModelCache(LabConfig(models=(str(a), str(b)), runs_dir=tmp_path)).catalog() if e.source == "cli"]
    assert ids == ["cli.model-x", "cli.model-x-2"]
    assert all(i.replace(".", "").replace("-", "").isalnum() for i in ids)


def test_a_zoo_name_given_as_model_is_not_listed_twice(tmp_path):
    ids = [e.id for e in ModelCache(LabConfig(models=("shakespeare-char",), runs_dir=tmp_path)).catalog()]
    assert ids.count("shakespeare-char") == 1 and len(ids) == 4


def test_a_hub_name_offline_is_listed_unavailable_with_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = ModelCache(LabConfig(models=("no-such-org/no-such-model",), runs_dir=tmp_path)).entry("cli.no-such-org-no-such-model")
    assert not entry.available and "HF_HUB_OFFLINE" in entry.reason and "hf download" in entry.reason


def test_an_unknown_id_is_a_404_listing_the_valid_ones(tmp_path):
    with pytest.raises(ApiError) as e:
        ModelCache(LabConfig(runs_dir=tmp_path)).entry("gpt-7")
    assert e.value.status == 404 and "'gpt-7'" in str(e.value)
    assert all(name in str(e.value) for name in ZOO)


def test_listing_loads_no_weights_and_imports_no_torch(tmp_path):
    code = (
        "import sys; from pathlib import Path; from llm_workings.lab.config import LabConfig; "
        "from llm_workings.lab.models import ModelCache; "
        f"c = ModelCache(LabConfig(runs_dir=Path({str(tmp_path)!r}))); assert len(c.catalog()) == 4; "
        "print('torch' in sys.modules)"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src, "HF_HUB_OFFLINE": "1"}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
