"""The cache's residual-stream views give TransformerLens 3.9's numbers and shapes, so its recipes
(`accumulated_resid(apply_ln=True) @ W_U`, direct logit attribution at one position) carry over.

Each family is built once in Hugging Face with random weights and norm gains and biases off their
1 and 0, then loaded into this project and into TransformerLens's `HookedTransformer` unfolded.
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from hf_helpers import build_hf, max_diff, tokens, transformer_lens_twin

from llm_workings.transformer import Transformer

pytest.importorskip("transformer_lens")
pytestmark = pytest.mark.usefixtures("one_thread")

N_LAYERS = 3  # hf_helpers' tiny configs
POS_SLICES = [None, -1, 3, slice(2, 7)]
TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=["gpt2", "neox", "llama"])
def caches(request, tmp_path_factory: pytest.TempPathFactory):
    """(our model, our cache, TransformerLens's cache) on the same weights and tokens."""
    hf = build_hf(request.param)
    path = tmp_path_factory.mktemp(f"tl-twin-{request.param}".replace("llama", "rms"))
    theirs = transformer_lens_twin(hf, path)
    ours = Transformer.from_hf(path).eval()
    toks = tokens()
    with torch.no_grad():
        our_logits, our_cache = ours.run_with_cache(toks)
        their_logits, their_cache = theirs.run_with_cache(toks)
    assert max_diff(our_logits, their_logits) < TOLERANCE  # the same model on both sides
    return ours, our_cache, their_cache


def compare(ours: torch.Tensor, theirs: torch.Tensor, case: str) -> float:
    assert ours.shape == theirs.shape, f"{case}: shape {list(ours.shape)}, TransformerLens {list(theirs.shape)}"
    diff = max_diff(ours, theirs) if ours.numel() else 0.0
    assert diff < TOLERANCE, f"{case}: differs from TransformerLens by {diff:.2e}"
    return diff


def block_inputs(model: Transformer):
    """(layer, mlp_input) pairs to try: every block's attention input, the MLP input where a block
    has its own resid_mid (TransformerLens has no MLP input for a parallel block), and the final norm."""
    mlp = [False] if model.cfg.parallel_residual else [False, True]
    return [*itertools.product(range(N_LAYERS), mlp), (N_LAYERS, False), (None, False)]


def test_accumulated_resid_matches_transformer_lens(caches):
    model, ours, theirs = caches
    for (layer, mlp_input), apply_ln, pos_slice in itertools.product(block_inputs(model), [False, True], POS_SLICES):
        for incl_mid in [False] if model.cfg.parallel_residual else [False, True]:
            args = dict(layer=layer, incl_mid=incl_mid, mlp_input=mlp_input, apply_ln=apply_ln, pos_slice=pos_slice)
            mine, labels = ours.accumulated_resid(**args, return_labels=True)
            reference, reference_labels = theirs.accumulated_resid(**args, return_labels=True)
            compare(mine, reference, f"accumulated_resid({args})")
            assert labels == reference_labels


def test_decompose_resid_matches_transformer_lens(caches):
    model, ours, theirs = caches
    for (layer, mlp_input), apply_ln, pos_slice in itertools.product(block_inputs(model), [False, True], POS_SLICES):
        for incl_embeds in [True, False]:
            if layer == 0 and not incl_embeds and not mlp_input:
                continue  # an empty stack, which TransformerLens cannot build (test_cache.py checks ours)
            args = dict(layer=layer, mlp_input=mlp_input, incl_embeds=incl_embeds, apply_ln=apply_ln, pos_slice=pos_slice)
            mine, labels = ours.decompose_resid(**args, return_labels=True)
            reference, reference_labels = theirs.decompose_resid(**args, return_labels=True)
            compare(mine, reference, f"decompose_resid({args})")
            assert labels == reference_labels


def test_stack_head_results_matches_transformer_lens(caches):
    _, ours, theirs = caches
    for layer, apply_ln, pos_slice in itertools.product([1, 2, N_LAYERS, None], [False, True], POS_SLICES):
        args = dict(apply_ln=apply_ln, pos_slice=pos_slice)
        mine, labels = ours.stack_head_results(layer, **args, return_labels=True)
        reference, reference_labels = theirs.stack_head_results(-1 if layer is None else layer, **args, return_labels=True)
        compare(mine, reference, f"stack_head_results(layer={layer}, {args})")
        assert labels == reference_labels


def test_the_logit_lens_recipe_gives_the_models_logits(caches):
    """`accumulated_resid(apply_ln=True) @ W_U + b_U`: each stream through ln_final, gain and bias
    included, so the final stream's row is the model's own logits, and every row matches TL's."""
    model, ours, theirs = caches
    with torch.no_grad():
        lens = ours.accumulated_resid(apply_ln=True, pos_slice=-1) @ model.W_U  # [component, batch, d_vocab]
        if model.unembed.b_U is not None:
            lens = lens + model.unembed.b_U
        logits = model(tokens())[:, -1]
    assert lens.shape == (N_LAYERS + 1, 2, model.cfg.d_vocab)
    torch.testing.assert_close(lens[-1], logits, atol=TOLERANCE, rtol=TOLERANCE)
    reference = theirs.accumulated_resid(apply_ln=True, pos_slice=-1) @ theirs.model.W_U
    compare(lens - (0 if model.unembed.b_U is None else model.unembed.b_U), reference, "logit lens")


def test_an_integer_position_drops_the_axis_and_a_slice_keeps_it(caches):
    _, ours, _ = caches
    assert ours.decompose_resid(pos_slice=-1).shape[1:] == (2, 32)
    assert ours.decompose_resid(pos_slice=slice(-1, None)).shape[1:] == (2, 1, 32)
    torch.testing.assert_close(ours.stack_head_results(pos_slice=4), ours.stack_head_results()[:, :, 4])


def test_a_parallel_blocks_mlp_input_is_its_resid_pre_through_ln2(caches):
    """TransformerLens has no MLP input for a parallel block (it reads a resid_mid that does not exist):
    here it is what that MLP reads, resid_pre, scaled by the cached ln2 scale, and after folding the
    parts sum to ln2's output."""
    model, ours, _ = caches
    folded = copy.deepcopy(model).fold_layer_norm()
    with torch.no_grad():
        _, cache = folded.run_with_cache(tokens())
    for layer in range(N_LAYERS):
        parts, labels = cache.decompose_resid(layer, mlp_input=True, apply_ln=True, return_labels=True)
        torch.testing.assert_close(parts.sum(0), cache["normalized", layer, "ln2"], atol=TOLERANCE, rtol=TOLERANCE)
        assert (f"{layer}_attn_out" in labels) != model.cfg.parallel_residual
        streams = cache.accumulated_resid(layer, mlp_input=True, apply_ln=True)
        torch.testing.assert_close(streams[-1], cache["normalized", layer, "ln2"], atol=TOLERANCE, rtol=TOLERANCE)
    with pytest.raises(ValueError, match="mlp_input needs a block's layer"):
        ours.decompose_resid(N_LAYERS, mlp_input=True)
