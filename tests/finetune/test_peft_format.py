"""PEFT round trips, both ways, on locally built random GPT-2 and Llama checkpoints, and every bad adapter."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import transformers
from lora_helpers import randomize, tokens
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file

from llm_workings.finetune import LoRAConfig, LoRAError, add_lora, load_peft, save_peft
from llm_workings.transformer import Transformer

pytestmark = pytest.mark.usefixtures("one_thread")

HF = {
    "gpt2": lambda: transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=16, vocab_size=50, attn_implementation="eager")
    ),
    "llama": lambda: transformers.LlamaForCausalLM(
        transformers.LlamaConfig(
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=50,
            max_position_embeddings=16,
            attn_implementation="eager",
        )
    ),
}
# our targets and PEFT's target_modules for the same maps
TARGETS = {
    "gpt2": (("attn.qkv", "attn.o", "mlp.in", "mlp.out"), ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]),
    "llama": (
        ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.in", "mlp.out"),
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    ),
}


def hf_and_ours(family: str, seed: int = 0):
    torch.manual_seed(seed)
    hf = HF[family]().eval()
    return hf, Transformer.from_hf(hf)


def hf_logits(model, x):
    with torch.no_grad():
        return model(x).logits


@pytest.mark.parametrize("family", ["gpt2", "llama"])
@pytest.mark.parametrize("layers", [None, (1,)])
def test_ours_saved_loads_in_peft_with_no_missing_keys_and_the_same_logits(family, layers, tmp_path):
    hf, ours = hf_and_ours(family)
    adapter = add_lora(ours, LoRAConfig(rank=4, alpha=8, targets=TARGETS[family][0], layers=layers, rslora=layers is None))
    randomize(adapter, std=0.5)
    x = tokens()
    with torch.no_grad():
        expected = ours(x)
        base = hf_logits(hf, x)
    assert (expected - base).abs().max() > 1e-2
    save_peft(adapter, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # PEFT warns "Found missing adapter keys" rather than failing
        peft_model = PeftModel.from_pretrained(hf, tmp_path).eval()
    saved = load_file(tmp_path / "adapter_model.safetensors")
    peft_keys = {k.replace(".default", "") for k in peft_model.state_dict() if ".lora_" in k}
    assert set(saved) == peft_keys  # nothing missing, nothing extra
    assert (hf_logits(peft_model, x) - expected).abs().max() < 1e-5


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_a_peft_trained_adapter_loads_into_ours_with_the_same_logits(family, tmp_path):
    hf, ours = hf_and_ours(family, seed=1)
    lora = LoraConfig(r=2, lora_alpha=3, target_modules=TARGETS[family][1], fan_in_fan_out=family == "gpt2")
    peft_model = get_peft_model(hf, lora)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft_model.eval().save_pretrained(tmp_path)
    x = tokens()
    expected = hf_logits(peft_model, x)
    adapter = load_peft(ours, tmp_path)
    assert adapter.config.rank == 2 and adapter.config.alpha == 3
    assert adapter.num_parameters() == sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    with torch.no_grad():
        assert (ours(x) - expected).abs().max() < 1e-5
    # and back again: the same bytes of tensors
    save_peft(adapter, tmp_path / "again")
    again, original = (
        load_file(tmp_path / "again" / "adapter_model.safetensors"),
        load_file(tmp_path / "adapter_model.safetensors"),
    )
    assert set(again) == set(original) and all(torch.equal(again[k], original[k]) for k in original)


def test_a_target_peft_cannot_hold_is_refused_by_name(tmp_path):
    _, ours = hf_and_ours("gpt2")
    adapter = add_lora(ours, LoRAConfig(rank=2, targets=("attn.q",)))
    with pytest.raises(LoRAError, match="attn.q has no Hugging Face gpt2 module of its own.*attn.qkv"):
        save_peft(adapter, tmp_path)
    assert not (tmp_path / "adapter_config.json").exists()


@pytest.fixture
def saved_gpt2(tmp_path):
    """A valid adapter directory for the GPT-2 base, to damage in each test."""
    _, ours = hf_and_ours("gpt2")
    adapter = add_lora(ours, LoRAConfig(rank=2, targets=("attn.qkv", "mlp.out")))
    randomize(adapter)
    save_peft(adapter, tmp_path / "adapter")
    return tmp_path / "adapter"


def edit_config(directory, **changes):
    config = json.loads((directory / "adapter_config.json").read_text())
    config.update(changes)
    (directory / "adapter_config.json").write_text(json.dumps(config))


def edit_weights(directory, edit):
    tensors = load_file(directory / "adapter_model.safetensors")
    save_file(edit(tensors), directory / "adapter_model.safetensors")


def _other_base(tensors):
    return {k: torch.zeros(v.shape[0], 2) if "lora_B" in k and "c_attn" in k else v for k, v in tensors.items()}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: edit_config(d, peft_type="IA3"), "peft_type 'IA3'; only 'LORA'"),
        (lambda d: edit_config(d, use_dora=True), "sets use_dora=True"),
        (lambda d: edit_config(d, target_modules=["attn.c_attn", "attn.c_atn"]), "targets 'attn.c_atn', which this gpt2"),
        (lambda d: edit_config(d, target_modules=["attn.c_attn"]), "weights for untargeted"),
        (lambda d: edit_config(d, target_modules=["attn.c_attn", "mlp.c_proj", "mlp.c_fc"]), "no complete lora_A/lora_B"),
        (lambda d: edit_config(d, r=4), "needs [4, 32] for r=4"),
        (lambda d: (d / "adapter_config.json").write_text("{not json"), "adapter_config.json is not valid JSON"),
        (lambda d: (d / "adapter_model.safetensors").write_bytes(b"\x00" * 20), "not a readable adapter weights file"),
        (lambda d: edit_weights(d, lambda t: {k.replace("h.1.", "h.7."): v for k, v in t.items()}), "h.7.attn.c_attn"),
        (lambda d: edit_weights(d, lambda t: {**t, "base_model.model.extra": t[next(iter(t))].clone()}), "unexpected key"),
        (
            lambda d: edit_weights(d, lambda t: {k: v[:, :16].contiguous() if "lora_A" in k else v for k, v in t.items()}),
            "different base",
        ),
    ],
)
def test_a_bad_adapter_is_refused_by_name_and_the_model_is_untouched(saved_gpt2, damage, message):
    damage(saved_gpt2)
    _, ours = hf_and_ours("gpt2")
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    with pytest.raises(LoRAError) as info:
        load_peft(ours, saved_gpt2)
    assert message in str(info.value)
    assert set(ours.state_dict()) == set(before) and all(torch.equal(ours.state_dict()[k], v) for k, v in before.items())
    assert all(p.requires_grad for p in ours.parameters())


def test_an_adapter_for_a_wider_base_is_refused(saved_gpt2):
    torch.manual_seed(0)
    wider = Transformer.from_hf(
        transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=48, n_layer=2, n_head=4, n_positions=16, vocab_size=50))
    )
    with pytest.raises(LoRAError, match="lora_A of layer 0's attn.qkv has shape \\[2, 32\\]; this model needs \\[2, 48\\]"):
        load_peft(wider, saved_gpt2)
