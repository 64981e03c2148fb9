"""Our own model files: save and load round-trip exactly; damaged or foreign files fail clearly."""

from __future__ import annotations

import json

import pytest
import torch

from llm_workings.tokenizers import CharTokenizer
from llm_workings.transformer import LoadError, Transformer, TransformerConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("tie", [False, True])
def test_round_trip_is_exact(tmp_path, tie) -> None:
    cfg = TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=11, n_ctx=8, tie_embeddings=tie, name="t")
    model = Transformer(cfg, CharTokenizer.train("hello world")).init_weights(3)
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    loaded = Transformer.load(tmp_path)
    assert loaded.cfg == cfg
    tokens = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded(tokens), model(tokens))
    assert loaded.to_str_tokens("hello") == list("hello")
    if tie:
        assert loaded.unembed.weight is loaded.embed.W_E


def test_a_hugging_face_config_is_pointed_at_from_hf(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    with pytest.raises(LoadError, match="not an llm_workings model config.*from_hf"):
        Transformer.load(tmp_path)


def test_damaged_files_fail_with_the_file_named(tmp_path) -> None:
    Transformer(TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_vocab=5, n_ctx=4)).save(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(LoadError, match="model.safetensors is not a readable safetensors file"):
        Transformer.load(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "llm_workings.transformer", "config": {"d_model": 8')
    with pytest.raises(LoadError, match="config.json is not valid JSON"):
        Transformer.load(tmp_path)
    with pytest.raises(LoadError, match="has no config.json"):
        Transformer.load(tmp_path / "nowhere")


def test_weights_for_another_shape_are_refused(tmp_path) -> None:
    Transformer(TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_vocab=5, n_ctx=4)).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["config"]["d_vocab"] = 6
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(LoadError, match=r"embed.W_E has shape \[5, 8\], the model expects \[6, 8\]"):
        Transformer.load(tmp_path)
