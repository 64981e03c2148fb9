"""Loading: every bad input fails with `LoadError` (or a clear ValueError / TypeError) whose message
names the problem; tokenizers and reduced-precision dtypes load as documented."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
import transformers
from hf_helpers import build_hf, max_diff, save_torch_bin, tokens
from safetensors.torch import load_file, save_file

from llm_workings.transformer import LoadError, Transformer
from llm_workings.transformer.loading import LoadError as LoadErrorFromModule

pytestmark = pytest.mark.usefixtures("one_thread")

SUPPORTED = ("GPT2LMHeadModel", "GPTNeoXForCausalLM", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")


def test_load_error_is_a_value_error_exported_at_the_package() -> None:
    assert LoadError is LoadErrorFromModule and issubclass(LoadError, ValueError)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory):
    """Checkpoint directories for each family, saved once; `copy(family)` gives a test its own copy."""
    root = tmp_path_factory.mktemp("saved")
    for family in ("gpt2", "llama", "qwen2"):
        build_hf(family).save_pretrained(root / family)
    counter = iter(range(10**6))

    def copy(family: str) -> Path:
        return Path(shutil.copytree(root / family, root / f"{family}-{next(counter)}"))

    return copy


def edit_config(path: Path, **changes) -> Path:
    config = json.loads((path / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    (path / "config.json").write_text(json.dumps(config))
    return path


def edit_weights(path: Path, drop: str | None = None, **replace: torch.Tensor) -> Path:
    file = path / "model.safetensors"
    state = load_file(file)
    if drop is not None:
        del state[drop]
    for name, tensor in replace.items():
        state[name.replace("__", ".")] = tensor
    save_file(state, file, metadata={"format": "pt"})
    return path


# -- architecture and tensors ----------------------------------------------------------------------
def test_unsupported_architecture_object_names_the_supported_ones() -> None:
    bert = transformers.BertModel(
        transformers.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=50)
    )
    with pytest.raises(LoadError, match="'BertModel' is not supported") as err:
        Transformer.from_hf(bert)
    assert all(arch in str(err.value) for arch in SUPPORTED)


def test_unsupported_architecture_directory(saved) -> None:
    path = edit_config(saved("llama"), architectures=["BertModel"], model_type="bert")
    with pytest.raises(LoadError, match="'BertModel' is not supported") as err:
        Transformer.from_hf(path)
    assert all(arch in str(err.value) for arch in SUPPORTED)


def test_config_without_architecture_falls_back_to_model_type(saved) -> None:
    path = edit_config(saved("qwen2"), architectures=None)
    assert Transformer.from_hf(path).cfg.bias_qkv  # read as Qwen2 (q/k/v biases)
    edit_config(path, model_type="t5")
    with pytest.raises(LoadError, match="no architecture or known model_type") as err:
        Transformer.from_hf(path)
    assert "LlamaForCausalLM" in str(err.value)


def test_missing_tensor_is_named_with_its_expected_shape(saved) -> None:
    path = edit_weights(saved("llama"), drop="model.layers.1.self_attn.k_proj.weight")
    with pytest.raises(LoadError, match=r"no tensor 'model\.layers\.1\.self_attn\.k_proj\.weight' \(expected shape \[32, 32\]"):
        Transformer.from_hf(path)


def test_missing_embedding_asks_whether_it_is_the_right_family(saved) -> None:
    path = edit_weights(saved("gpt2"), drop="transformer.wte.weight")
    with pytest.raises(LoadError, match=r"no token embedding 'transformer\.wte\.weight' or 'wte\.weight'.*gpt2 checkpoint"):
        Transformer.from_hf(path)


def test_base_model_without_lm_head_or_tied_embeddings_says_why() -> None:
    base = build_hf("neox").gpt_neox  # GPTNeoXModel: untied embeddings, no embed_out
    with pytest.raises(LoadError, match=r"no unembedding 'embed_out\.weight' or 'lm_head\.weight'.*ForCausalLM"):
        Transformer.from_hf(base)


def test_unsupported_architecture_is_refused_before_the_weights_are_read(saved) -> None:
    path = edit_config(saved("llama"), architectures=["BertModel"])
    (path / "model.safetensors").unlink()
    with pytest.raises(LoadError, match="'BertModel' is not supported"):
        Transformer.from_hf(path)


def test_misshaped_tensor_names_tensor_expected_and_actual_shape(saved) -> None:
    path = edit_weights(saved("llama"), model__layers__0__mlp__down_proj__weight=torch.zeros(32, 60))
    with pytest.raises(LoadError, match=r"'model\.layers\.0\.mlp\.down_proj\.weight' has shape \[32, 60\]; expected \[32, 64\]"):
        Transformer.from_hf(path)


def test_misshaped_transposed_tensor_reports_the_checkpoint_layout(saved) -> None:
    """GPT-2's Conv1D weights are stored [in, out]; a [out, in] tensor is caught, in the file's own layout."""
    path = edit_weights(saved("gpt2"), transformer__h__0__mlp__c_fc__weight=torch.zeros(128, 32))
    with pytest.raises(LoadError, match=r"'transformer\.h\.0\.mlp\.c_fc\.weight' has shape \[128, 32\]; expected \[32, 128\]"):
        Transformer.from_hf(path)


def test_config_disagreeing_with_weights(saved) -> None:
    path = edit_config(saved("llama"), intermediate_size=80)
    with pytest.raises(LoadError, match=r"gate_proj\.weight' has shape \[64, 32\]; expected \[80, 32\] from config\.json"):
        Transformer.from_hf(path)


# -- sources that are not checkpoints ----------------------------------------------------------------
def test_hub_name_offline_fails_fast_and_says_how_to_load_locally(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # certainly nothing cached
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    with pytest.raises(LoadError) as err:
        Transformer.from_hf("nobody-xyz/not-a-model-123")
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert "'nobody-xyz/not-a-model-123'" in message and "needs a download" in message and "HF_HUB_OFFLINE" in message
    assert "hf download nobody-xyz/not-a-model-123 --local-dir DIR" in message
    assert "Transformer.from_hf('DIR')" in message


@pytest.mark.parametrize("kind", ["missing_absolute", "file"])
def test_not_a_directory(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "nothing" / "here"
    if kind == "file":
        target = tmp_path / "config.json"
        target.write_text("{}")
    with pytest.raises(LoadError, match="is not a directory; expected a checkpoint directory holding config.json"):
        Transformer.from_hf(target)
    with pytest.raises(LoadError, match="is not a directory"):
        Transformer.from_hf(str(target))


def test_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="has no config.json"):
        Transformer.from_hf(tmp_path)


@pytest.mark.parametrize(
    "text, problem", [("{not json", "is not valid JSON"), ("[1, 2]", "should hold a JSON object")], ids=["invalid", "list"]
)
def test_bad_config_json(saved, text: str, problem: str) -> None:
    path = saved("llama")
    (path / "config.json").write_text(text)
    with pytest.raises(LoadError, match=problem):
        Transformer.from_hf(path)


def test_config_without_weights(saved) -> None:
    path = saved("llama")
    (path / "model.safetensors").unlink()
    with pytest.raises(LoadError, match=r"holds no weights: expected model\.safetensors .*pytorch_model\.bin"):
        Transformer.from_hf(path)


def test_corrupt_safetensors(saved) -> None:
    path = saved("llama")
    (path / "model.safetensors").write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(LoadError, match=r"cannot read weights from .*model\.safetensors"):
        Transformer.from_hf(path)


def test_truncated_safetensors(saved) -> None:
    path = saved("llama")
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match=r"cannot read weights from .*model\.safetensors"):
        Transformer.from_hf(path)


EXECUTED: list[str] = []


def _record_execution(marker: str) -> str:
    EXECUTED.append(marker)
    return marker


class Payload:
    """Unpickling this calls `_record_execution`: it shows whether loading ran code from the file."""

    def __reduce__(self):
        return (_record_execution, ("the pickle ran",))


def test_pickled_code_in_torch_file_is_refused_not_run(tmp_path: Path) -> None:
    path = save_torch_bin(build_hf("gpt2"), tmp_path)
    state = torch.load(path / "pytorch_model.bin", weights_only=True)
    torch.save({**state, "x": Payload()}, path / "pytorch_model.bin")
    with pytest.raises(LoadError, match="arbitrary pickles are refused"):
        Transformer.from_hf(path)
    assert EXECUTED == []


def test_torch_file_that_is_not_a_state_dict(tmp_path: Path) -> None:
    path = save_torch_bin(build_hf("gpt2"), tmp_path)
    torch.save(torch.zeros(3), path / "pytorch_model.bin")
    with pytest.raises(LoadError, match="holds a Tensor, not a dict of tensors"):
        Transformer.from_hf(path)


def test_source_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="expected a transformers model, a checkpoint directory or a hub name; got int"):
        Transformer.from_hf(12345)


# -- config values we cannot run ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "family, changes, message",
    [
        (
            "gpt2",
            dict(scale_attn_by_inverse_layer_idx=True),
            "scale_attn_by_inverse_layer_idx=True; only scale_attn_by_inverse_layer_idx=False",
        ),
        ("gpt2", dict(scale_attn_weights=False), "scale_attn_weights=False"),
        ("gpt2", dict(activation_function="quick_gelu"), "activation 'quick_gelu' is not supported"),
        ("llama", dict(hidden_act="quick_gelu"), "activation 'quick_gelu' is not supported"),
        (
            "llama",
            dict(rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0}),
            "rope type 'yarn' is not supported",
        ),
        (
            "llama",
            dict(rope_parameters=None, rope_scaling={"type": "dynamic", "factor": 2.0}),
            "rope type 'dynamic' is not supported",
        ),
        ("qwen2", dict(use_sliding_window=True), "use_sliding_window=True"),
        ("llama", dict(hidden_size=None), "lacks the field 'hidden_size'"),
        ("gpt2", dict(n_head=3), "d_model=32 is not divisible by n_heads=3"),
        ("llama", dict(num_key_value_heads=3), "n_heads=4 must be a multiple of n_kv_heads=3"),
    ],
    ids=[
        "gpt2-inverse_layer_idx",
        "gpt2-unscaled",
        "gpt2-activation",
        "llama-activation",
        "llama-yarn",
        "llama-dynamic",
        "qwen2-sliding",
        "llama-missing_field",
        "gpt2-heads",
        "llama-kv_heads",
    ],
)
def test_unsupported_config_values(saved, family: str, changes: dict, message: str) -> None:
    path = edit_config(saved(family), **changes)
    with pytest.raises(LoadError, match=message.replace("(", r"\(")):
        Transformer.from_hf(path)


def test_incomplete_llama3_rope_scaling_is_refused_at_load(saved) -> None:
    path = edit_config(saved("llama"), rope_parameters={"rope_type": "llama3", "factor": 8.0, "rope_theta": 10000.0})
    with pytest.raises(LoadError, match="rope type 'llama3' needs low_freq_factor"):
        Transformer.from_hf(path)


@pytest.mark.parametrize(
    "family, key, expected",
    [("gpt2", "activation_function", "gelu_tanh"), ("llama", "hidden_act", "silu"), ("qwen2", "hidden_act", "silu")],
)
def test_omitted_config_keys_take_the_defaults_transformers_uses(saved, family: str, key: str, expected: str) -> None:
    assert Transformer.from_hf(edit_config(saved(family), **{key: None})).cfg.act == expected


def test_omitted_mistral_window_is_transformers_default() -> None:
    from llm_workings.transformer.families import llama_config

    config = dict(
        model_type="mistral",
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=97,
        max_position_embeddings=64,
    )
    assert llama_config(config).sliding_window == 4096
    assert llama_config(dict(config, sliding_window=None)).sliding_window is None


@pytest.mark.parametrize("dtype", ["float64", "int8", "fp8", torch.float64, torch.int32], ids=str)
def test_bad_dtype(dtype) -> None:
    with pytest.raises(LoadError, match=r"is not supported; (expected one of float32|use float32)"):
        Transformer.from_hf(build_hf("gpt2"), dtype=dtype)


# -- what the model accepts as tokens ----------------------------------------------------------------
@pytest.fixture(scope="module")
def gpt2() -> Transformer:
    return Transformer.from_hf(build_hf("gpt2"))


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (torch.tensor([[0, 97]]), ValueError, r"token ids must lie in \[0, 97\); got 0\.\.97"),
        (torch.tensor([[-1, 5]]), ValueError, r"token ids must lie in \[0, 97\); got -1\.\.5"),
        (torch.zeros(1, 4), TypeError, "integer tensor .* of torch.float32"),
        (torch.zeros(1, 4, dtype=torch.bool), TypeError, "of torch.bool"),
        (torch.zeros(1, 2, 3, dtype=torch.long), ValueError, r"shape \[batch, pos\], got \[1, 2, 3\]"),
        (torch.tensor(3), ValueError, r"shape \[batch, pos\], got \[\]"),
        (3, TypeError, "got int"),
        ("text", ValueError, "this model has no tokenizer"),
    ],
    ids=["too_big", "negative", "float", "bool", "3d", "scalar", "int", "text_without_tokenizer"],
)
def test_bad_tokens(gpt2: Transformer, bad, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        gpt2(bad)


def test_one_dimensional_tokens_are_one_sequence(gpt2: Transformer) -> None:
    toks = tokens(1, 7)
    assert torch.equal(gpt2(toks[0]), gpt2(toks))
    assert torch.equal(gpt2(toks.int()), gpt2(toks))


# -- tokenizer and dtype -----------------------------------------------------------------------------
def test_tokenizer_from_the_checkpoint_directory(llama_dir: Path) -> None:
    model = Transformer.from_hf(llama_dir)
    assert model.tokenizer is not None
    bos = model.tokenizer.bos_token_id
    toks = model.to_tokens("the cat sat on the mat")
    assert toks.shape == (1, 7) and toks[0, 0] == bos and bos not in toks[0, 1:].tolist()
    assert model.to_str_tokens("the cat sat") == ["<s>", "the", "cat", "sat"]
    assert model.to_string(toks[0, 1:]) == "the cat sat on the mat"
    assert model.to_string(model.to_tokens(["a dog ran", "the bird sang a song"], prepend_bos=False)) == [
        "a dog ran </s> </s>",
        "the bird sang a song",
    ]  # right-padded with EOS, the tokenizer having no pad token
    assert model.to_tokens("the cat", prepend_bos=False).tolist() == [toks[0, 1:3].tolist()]
    assert model.to_single_token("cat") == toks[0, 2]
    with pytest.raises(ValueError, match="is 2 tokens, not one"):
        model.to_single_token("the cat")
    # text goes through the model as its tokens do
    assert torch.equal(model("the cat sat"), model(model.to_tokens("the cat sat")))


def test_tokenizer_follows_a_model_object_loaded_from_a_directory(llama_dir: Path) -> None:
    hf = transformers.AutoModelForCausalLM.from_pretrained(llama_dir)
    assert Transformer.from_hf(hf).tokenizer is not None
    assert Transformer.from_hf(build_hf("llama")).tokenizer is None


def test_explicit_tokenizer_wins(llama_dir: Path) -> None:
    marker = transformers.AutoTokenizer.from_pretrained(llama_dir)
    assert Transformer.from_hf(llama_dir, tokenizer=marker).tokenizer is marker


@pytest.mark.parametrize(
    "dtype, alias, tol",
    [
        (torch.bfloat16, "bfloat16", 0.15),
        (torch.float16, "float16", 0.02),
        (torch.bfloat16, "bf16", 0.15),
        (torch.float16, "fp16", 0.02),
    ],
    ids=["bfloat16", "float16", "bf16", "fp16"],
)
def test_reduced_precision(dtype: torch.dtype, alias: str, tol: float, tmp_path: Path) -> None:
    hf = build_hf("llama", num_key_value_heads=2)
    hf.save_pretrained(tmp_path)
    full = Transformer.from_hf(tmp_path)
    half = Transformer.from_hf(tmp_path, dtype=alias)
    assert {p.dtype for p in half.parameters()} == {dtype}
    toks = tokens(2, 12)
    reference, low = full(toks), half(toks)
    assert low.dtype == dtype
    diff = max_diff(low, reference)
    assert 0 < diff < tol * reference.abs().max().item()  # rounding shows, but stays small
    assert (low.argmax(-1) == reference.argmax(-1)).float().mean() > 0.8
    assert max_diff(Transformer.from_hf(hf, dtype=dtype)(toks), low) == 0  # object and directory agree
