"""Path patching against the three-step algorithm run literally with hooks, and on induction-2l,
where the previous-token head must reach the induction head through its keys."""

from __future__ import annotations

import pytest
import torch

from llm_workings.analysis.conventions import AnalysisError
from llm_workings.analysis.metrics import LogitDiff, NextTokenLoss
from llm_workings.analysis.patching import patch_heads
from llm_workings.analysis.path_patching import path_patch
from llm_workings.transformer import Transformer, TransformerConfig


@pytest.fixture(scope="module")
def model():
    cfg = TransformerConfig(d_model=32, n_layers=3, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16)
    return Transformer(cfg).init_weights(seed=1, std=0.2).eval()


def _pair(seed=0):
    gen = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, 50, (2, 8), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 1:4] = torch.randint(0, 50, (2, 3), generator=gen)
    return clean, corrupted


@torch.no_grad()
def literal_path_patch(model, base, source, sender, receivers, metric):
    """Wang et al.'s algorithm step by step: (1) cache both runs; (2) run the base input with every
    head and MLP frozen to its base value except the sender, set to its source value, and record the
    receivers' inputs; (3) run the base input with only those receiver inputs replaced."""
    _, base_cache = model.run_with_cache(base)
    _, source_cache = model.run_with_cache(source)
    s_layer, s_head = sender
    freeze = []
    for layer in range(model.cfg.n_layers):

        def z_hook(z, hook, layer=layer):
            z = base_cache["z", layer].clone()
            if layer == s_layer and s_head is not None:
                z[:, :, s_head] = source_cache["z", layer][:, :, s_head]
            return z

        def mlp_hook(out, hook, layer=layer):
            return (source_cache if (layer, None) == sender else base_cache)["mlp_out", layer]

        freeze += [(f"blocks.{layer}.attn.hook_z", z_hook), (f"blocks.{layer}.hook_mlp_out", mlp_hook)]
    recorded = {}

    def record(x, hook):
        recorded[hook.name] = x.clone()

    names = [
        f"blocks.{layer}.attn.hook_{which}" if which != "mlp" else f"blocks.{layer}.ln2.hook_normalized"
        for layer, _, which in receivers
    ]
    model.run_with_hooks(base, fwd_hooks=freeze + [(n, record) for n in names])
    patches = []
    for name, (_, head, _) in zip(names, receivers):

        def put(x, hook, name=name, head=head):
            if head is None:
                return recorded[name]
            x = x.clone()
            x[:, :, head] = recorded[name][:, :, head]
            return x

        patches.append((name, put))
    return metric(model.run_with_hooks(base, fwd_hooks=patches)).item()


@pytest.mark.parametrize(
    "receivers, direction",
    [(["L2H1.q"], "denoise"), (["L2H0.k", "L2H3.v"], "noise"), (["L1 mlp"], "denoise"), (["L2H2.q", "L2 mlp"], "noise")],
)
def test_matches_the_literal_algorithm(model, receivers, direction):
    clean, corrupted = _pair()
    metric = LogitDiff(torch.tensor([[3, 4], [5, 6]]))
    result = path_patch(model, clean, corrupted, metric, receivers=receivers, direction=direction)
    parsed = []
    for r in receivers:
        name, which = (r.split(".") + [None])[:2] if "." in r else (r, "mlp")
        layer = int(name[1 : name.index("H")]) if which != "mlp" else int(name[1:].split()[0])
        parsed.append((layer, int(name.split("H")[1]) if which != "mlp" else None, which))
    base, source = (corrupted, clean) if direction == "denoise" else (clean, corrupted)
    assert len(result.senders) > 4
    for name, value in zip(result.senders, result.values.tolist()):
        sender = (int(name[1:].split("H")[0].split()[0]), int(name.split("H")[1]) if "H" in name else None)
        expected = literal_path_patch(model, base, source, sender, parsed, metric)
        assert value == pytest.approx(expected, abs=1e-4), name


def test_direct_path_to_logits_of_a_last_layer_head_is_activation_patching():
    """With nothing after the sender (an attention-only model's last layer), its direct path is its whole effect."""
    cfg = TransformerConfig(d_model=32, n_layers=3, n_heads=4, d_vocab=50, n_ctx=16, attn_only=True)
    model = Transformer(cfg).init_weights(seed=2, std=0.2).eval()
    clean, corrupted = _pair(1)
    metric = LogitDiff(torch.tensor([[3, 4], [5, 6]]))
    senders = [f"L2H{h}" for h in range(4)]
    paths = path_patch(model, clean, corrupted, metric, receivers=["logits"], senders=senders)
    heads = patch_heads(model, clean, corrupted, metric, layers=[2], progress=False)
    torch.testing.assert_close(paths.values, heads.values[0], atol=1e-5, rtol=1e-5)
    assert paths.corrupted == pytest.approx(heads.corrupted)


def test_batching_does_not_change_the_answer(model):
    clean, corrupted = _pair(2)
    metric = LogitDiff(torch.tensor([[3, 4], [5, 6]]))
    one = path_patch(model, clean, corrupted, metric, receivers=["L2H0.k"], batch_size=2)
    many = path_patch(model, clean, corrupted, metric, receivers=["L2H0.k"], batch_size=1000)
    torch.testing.assert_close(one.values, many.values, atol=1e-5, rtol=1e-5)


def test_bad_routes_are_named(model):
    clean, corrupted = _pair()
    metric = LogitDiff(torch.tensor([[3, 4], [5, 6]]))
    with pytest.raises(AnalysisError, match="after receiver"):
        path_patch(model, clean, corrupted, metric, receivers=["L1H0.q"], senders=["L2H0"])
    with pytest.raises(AnalysisError, match="receiver is a head input"):
        path_patch(model, clean, corrupted, metric, receivers=["L1H0"])
    with pytest.raises(AnalysisError, match="L7H0.q: layer 7 is out of range"):
        path_patch(model, clean, corrupted, metric, receivers=["L7H0.q"])
    with pytest.raises(AnalysisError, match="L1H9.k: key/value head 9 is out of range"):
        path_patch(model, clean, corrupted, metric, receivers=["L1H9.k"])
    with pytest.raises(AnalysisError, match="on its own"):
        path_patch(model, clean, corrupted, metric, receivers=["logits", "L1H0.q"])
    with pytest.raises(AnalysisError, match="same"):
        path_patch(model, clean, corrupted[:, :5], metric, receivers=["logits"])


def test_induction_runs_through_the_keys(induction_model, induction_heads):
    """Noising the previous-token head's output on its path into the layer-1 heads' keys breaks
    induction (all four layer-1 heads of induction-2l are induction heads); the same path into their
    queries or values does little, and no other layer-0 head matters as much."""
    prev, _ = induction_heads
    clean, corrupted, mask = induction_pair(induction_model)
    metric = NextTokenLoss(clean, mask)
    added = {}
    for which in "qkv":
        r = path_patch(
            induction_model, clean, corrupted, metric, receivers=[f"L1H{h}.{which}" for h in range(4)], direction="noise"
        )
        added[which] = r.values - r.clean  # loss added by the corrupted path, per layer-0 sender
    assert r.clean < 0.1 and r.corrupted > 4
    assert added["k"][prev] > 2.0
    assert added["k"][prev] > 10 * max(added["q"].max(), added["v"].max(), 0.02)
    assert added["k"][prev] > 2 * added["k"][[h for h in range(4) if h != prev]].max()


def induction_pair(model, batch=16, half=12, seed=0):
    """Clean: [BOS, A, A]; corrupted: [BOS, A', A] with a fresh first half, so nothing repeats. The mask
    selects predictions inside the repeated half, where only induction can help."""
    gen = torch.Generator().manual_seed(seed)
    first = torch.randint(1, model.cfg.d_vocab, (batch, half), generator=gen)
    other = torch.randint(1, model.cfg.d_vocab, (batch, half), generator=gen)
    bos = torch.zeros(batch, 1, dtype=torch.long)
    clean = torch.cat([bos, first, first], 1)
    corrupted = torch.cat([bos, other, first], 1)
    mask = torch.zeros(batch, 2 * half, dtype=torch.bool)
    mask[:, half + 1 :] = True  # predicting tokens 2..half of the second copy
    return clean, corrupted, mask
