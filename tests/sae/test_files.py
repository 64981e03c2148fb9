"""SAELens's on-disk format, checked against the real library both ways, and every malformed file refused by name."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from llm_workings.sae import SAEError, check_sae_fits, load_log_density, load_sae, save_sae

pytestmark = pytest.mark.usefixtures("one_thread")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sae_lens
    from sae_lens import SAE


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("architecture", ["standard", "topk", "batchtopk", "jumprelu"])
def test_sae_lens_reads_ours_with_the_same_outputs(tmp_path, architecture, make_sae):
    ours = make_sae(architecture)
    save_sae(ours, tmp_path, log_density=torch.linspace(-5, 0, 48))
    theirs = SAE.load_from_disk(tmp_path)
    assert theirs.cfg.architecture() == ("jumprelu" if architecture == "batchtopk" else architecture)
    assert theirs.cfg.metadata.hook_name == "blocks.1.hook_resid_pre"
    x = torch.randn(200, 16)
    acts = ours.encode(x)
    assert (acts != 0).any() and (acts == 0).any()  # a comparison on all-zero latents would prove nothing
    _close(theirs.encode(x), acts)
    _close(theirs.decode(acts), ours.decode(acts))
    _close(theirs(x), ours(x))
    assert set(load_file(tmp_path / "sae_weights.safetensors")) == set(theirs.state_dict())
    _close(load_log_density(tmp_path), torch.linspace(-5, 0, 48))


def test_a_hook_z_sae_reads_heads_as_sae_lens_does(tmp_path, make_sae):
    ours = make_sae("topk", d_in=16, hook_name="blocks.0.attn.hook_z")
    save_sae(ours, tmp_path)
    theirs = SAE.load_from_disk(tmp_path)
    assert theirs.cfg.reshape_activations == "hook_z"
    z = torch.randn(30, 5, 2, 8)  # [batch, pos, head, d_head]
    _close(theirs.encode(z), ours.encode(z))
    _close(theirs(z).flatten(-2), ours(z))


def _theirs(architecture: str, **extra):
    """A random SAELens inference SAE, every parameter drawn."""
    classes = {
        "standard": (sae_lens.StandardSAE, sae_lens.StandardSAEConfig),
        "topk": (sae_lens.TopKSAE, sae_lens.TopKSAEConfig),
        "jumprelu": (sae_lens.JumpReLUSAE, sae_lens.JumpReLUSAEConfig),
    }
    cls, cfg_cls = classes[architecture]
    sae = cls(cfg_cls(d_in=16, d_sae=40, **extra))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        if architecture == "jumprelu":
            sae.threshold.copy_(torch.rand(40, generator=gen) * 0.2)
    return sae


@pytest.mark.parametrize(
    "architecture, extra",
    [
        ("standard", {}),
        ("topk", {"k": 5}),
        ("topk", {"k": 5, "rescale_acts_by_decoder_norm": True}),
        ("jumprelu", {}),
        ("jumprelu", {"apply_b_dec_to_input": False}),
    ],
)
def test_we_read_sae_lens_files_with_the_same_outputs(tmp_path, architecture, extra):
    theirs = _theirs(architecture, **extra)
    theirs.save_model(tmp_path)
    ours = load_sae(tmp_path)
    x = torch.randn(200, 16)
    _close(ours.encode(x), theirs.encode(x))
    _close(ours(x), theirs(x))


def test_we_read_a_batchtopk_sae_that_sae_lens_trained_and_saved(tmp_path):
    theirs = sae_lens.BatchTopKTrainingSAE(sae_lens.BatchTopKTrainingSAEConfig(d_in=16, d_sae=40, k=4))
    with torch.no_grad():
        theirs.topk_threshold.fill_(0.05)
        theirs.b_enc.normal_(0, 0.1)
    theirs.save_inference_model(tmp_path)
    ours, reference = load_sae(tmp_path), SAE.load_from_disk(tmp_path)
    x = torch.randn(100, 16)
    assert ours.architecture == "jumprelu"
    _close(ours(x), reference(x))


def _saved(tmp_path, make_sae, architecture="topk"):
    save_sae(make_sae(architecture), tmp_path)
    return tmp_path


def test_an_unknown_architecture_is_refused_by_name(tmp_path, make_sae):
    cfg = json.loads((_saved(tmp_path, make_sae) / "cfg.json").read_text())
    (tmp_path / "cfg.json").write_text(json.dumps(cfg | {"architecture": "gated"}))
    with pytest.raises(SAEError, match="unknown architecture 'gated'"):
        load_sae(tmp_path)


def test_a_missing_tensor_is_refused_by_name(tmp_path, make_sae):
    weights = load_file(_saved(tmp_path, make_sae) / "sae_weights.safetensors")
    del weights["b_enc"]
    save_file(weights, tmp_path / "sae_weights.safetensors")
    with pytest.raises(SAEError, match="missing tensor b_enc"):
        load_sae(tmp_path)


def test_a_jumprelu_file_without_its_threshold_is_refused(tmp_path, make_sae):
    weights = load_file(_saved(tmp_path, make_sae, "jumprelu") / "sae_weights.safetensors")
    del weights["threshold"]
    save_file(weights, tmp_path / "sae_weights.safetensors")
    with pytest.raises(SAEError, match="missing tensor threshold"):
        load_sae(tmp_path)


def test_a_shape_that_contradicts_the_config_is_refused(tmp_path, make_sae):
    cfg = json.loads((_saved(tmp_path, make_sae) / "cfg.json").read_text())
    (tmp_path / "cfg.json").write_text(json.dumps(cfg | {"d_in": 17}))
    with pytest.raises(SAEError, match=r"W_enc has shape \[16, 48\].*d_in=17"):
        load_sae(tmp_path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "cfg.json").unlink(), "cfg.json is missing"),
        (lambda p: (p / "cfg.json").write_text("{"), "not valid JSON"),
        (lambda p: (p / "sae_weights.safetensors").write_bytes(b"junk"), "not a readable safetensors"),
        (lambda p: (p / "sae_weights.safetensors").unlink(), "no sae_weights.safetensors"),
    ],
)
def test_damaged_directories_are_refused(tmp_path, damage, message, make_sae):
    damage(_saved(tmp_path, make_sae))
    with pytest.raises(SAEError, match=message):
        load_sae(tmp_path)


def test_an_sae_is_refused_by_a_model_whose_hook_has_another_width(tmp_path, tiny_model, make_sae):
    sae = make_sae("topk", d_in=12)
    with pytest.raises(SAEError, match=r"d_in=12, but blocks.1.hook_resid_pre of tiny is 16 wide"):
        check_sae_fits(sae, tiny_model)
    sae.cfg.hook_name = "blocks.1.hook_resid_mdi"
    with pytest.raises(SAEError, match=r"no hook 'blocks.1.hook_resid_mdi'.*did you mean blocks.1.hook_resid_mid"):
        check_sae_fits(sae, tiny_model)


def test_float16_files_load_as_float32_within_float16_rounding(tmp_path, make_sae):
    ours = make_sae("standard")
    save_sae(ours, tmp_path, dtype=torch.float16)
    assert load_file(tmp_path / "sae_weights.safetensors")["W_enc"].dtype == torch.float16
    loaded = load_sae(tmp_path)
    assert loaded.W_enc.dtype == torch.float32
    torch.testing.assert_close(loaded.W_enc, ours.W_enc, atol=1e-3, rtol=1e-3)
