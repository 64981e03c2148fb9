"""`llmw model info`: figures read from config.json alone must match a loaded model's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import transformers

from llm_workings.cli import main
from llm_workings.transformer import Transformer


def llmw(*args: str) -> subprocess.CompletedProcess:
    """The real command, in a fresh process (slow here: importing torch takes seconds)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "llm_workings", *args], capture_output=True, text=True, env=env, timeout=120)


def run_in_process(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    config = transformers.LlamaConfig(
        num_hidden_layers=2,
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=96,
        vocab_size=300,
        max_position_embeddings=128,
    )
    path = tmp_path_factory.mktemp("llama")
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    return path


def test_info_matches_the_loaded_model(llama_dir):
    result = llmw("model", "info", str(llama_dir), "--batch", "2", "--seq", "10", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    model = Transformer.from_hf(llama_dir)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["weights_bytes"] == 4 * info["parameters"]
    assert info["kv_cache_bytes"] == 4 * 2 * 2 * 2 * 10 * 2 * 16  # bytes * (k, v) * layers * batch * seq * kv heads * d_head
    _, cache = model.run_with_cache(torch.zeros(2, 10, dtype=torch.long))
    assert info["activation_cache_bytes"] == 4 * sum(t.numel() for t in cache.cache.values())
    assert info["activation_cache_entries"] == len(cache)


def test_info_prints_a_readable_summary(llama_dir, capsys):
    code, out, err = run_in_process(capsys, "model", "info", str(llama_dir), "--dtype", "bfloat16")
    assert code == 0, err
    assert "LlamaForCausalLM (llama family)" in out
    assert "4 heads (2 key/value) of d_head=16" in out and "gated silu, d_mlp=96" in out
    assert "memory in bfloat16, batch 1 x 128 tokens" in out  # default length: the model's context


def test_info_on_an_offline_hub_name_says_how_to_load_locally(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run_in_process(capsys, "model", "info", "nobody-here/no-such-model")
    assert code == 2
    assert "needs a download" in err and "from_hf('DIR')" in err


def test_info_on_a_directory_without_config(tmp_path, capsys):
    code, _, err = run_in_process(capsys, "model", "info", str(tmp_path))
    assert code == 2 and "has no config.json" in err
