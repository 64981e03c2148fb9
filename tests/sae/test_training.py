"""The trainer: it learns, resumes exactly, refuses changed settings and bad input without losing a checkpoint,
keeps its buffer bounded, and each of its pieces (STE, aux-k, resampling, folding, geometric median) does its job."""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch

from llm_workings.sae import (
    CachedActivations,
    CorpusTokens,
    ModelActivations,
    SAEConfig,
    SAEError,
    SAETrainConfig,
    SAETrainer,
    activation_width,
    cache_activations,
    geometric_median,
    load_sae,
)
from llm_workings.sae.architectures import JumpReLUSAE, _JumpReLU, _Step
from llm_workings.train.checkpoint import CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread")
HOOK = "blocks.1.hook_resid_pre"


@pytest.fixture
def source(tiny_model, tiny_ids):
    return ModelActivations(tiny_model, HOOK, CorpusTokens(tiny_ids, 16, "random"), buffer_tokens=512, harvest_batch=8)


def _train_cfg(**kw):
    defaults = dict(steps=8, batch_size=64, buffer_tokens=512, checkpoint_every=4, init_batches=2, dead_after_tokens=256, lr=3e-3)
    return SAETrainConfig(**(defaults | kw))


def _sae_cfg(architecture="topk", **kw):
    k = 4 if architecture in ("topk", "batchtopk") else None
    return SAEConfig(architecture, 16, 32, k=kw.pop("k", k), hook_name=HOOK, model_name="tiny", **kw)


@pytest.mark.parametrize("architecture", ["standard", "topk", "batchtopk", "jumprelu"])
def test_training_lowers_the_reconstruction_error_and_writes_a_loadable_sae(tmp_path, source, architecture):
    cfg = _train_cfg(steps=30, l1_coefficient=0.1, l0_coefficient=0.01)
    result = SAETrainer(_sae_cfg(architecture), cfg, source, run_dir=tmp_path, progress=False).train()
    assert result.steps_done == 30 and not result.interrupted
    assert sum(result.mse[-5:]) < 0.75 * sum(result.mse[:5])
    if architecture == "topk":
        assert all(l0 <= 4 for l0 in result.l0)
    loaded = load_sae(tmp_path)
    x = source.batch(0, 64)
    torch.testing.assert_close(loaded(x), result.sae(x), atol=1e-5, rtol=1e-5)


def test_the_saved_sae_reads_raw_activations_the_scale_is_folded_in(source):
    trainer = SAETrainer(_sae_cfg(), _train_cfg(steps=3), source, progress=False)
    result = trainer.train()
    scale = trainer.state.input_scale.item()
    assert scale != 1.0
    x = source.batch(0, 64)
    torch.testing.assert_close(result.sae(x), trainer.sae(x * scale) / scale, atol=1e-5, rtol=1e-5)
    norms = source.batch(0, 64).norm(dim=1).mean() * scale
    assert norms.item() == pytest.approx(16**0.5, rel=0.3)  # E|x| is about sqrt(d_in) after scaling
    torch.testing.assert_close(trainer.sae.W_dec.norm(dim=1), torch.ones(32))  # TopK: unit decoder rows


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.sae.state_dict().items()}


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, source):
    full = SAETrainer(_sae_cfg(), _train_cfg(), source, progress=False)
    full.train()
    first = SAETrainer(_sae_cfg(), _train_cfg(), source, run_dir=tmp_path, progress=False)
    first.on_step = lambda step, m: first.request_stop() if step == 5 else None
    assert first.train().interrupted
    assert not (tmp_path / "cfg.json").exists()  # no final SAE from an interrupted run, only the checkpoint
    resumed = SAETrainer(_sae_cfg(), _train_cfg(), source, run_dir=tmp_path, progress=False)
    result = resumed.train()
    assert result.steps_done == 8 and len(result.losses) == 8
    for name, value in _weights(full).items():
        torch.testing.assert_close(_weights(resumed)[name], value, atol=0, rtol=0)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda: (_sae_cfg(k=3), _train_cfg()), "sae_config.k was 4, now 3"),
        (lambda: (_sae_cfg(), _train_cfg(lr=1e-3)), "train_config.lr was 0.003, now 0.001"),
    ],
)
def test_resuming_with_other_settings_is_refused_and_the_checkpoint_kept(tmp_path, source, change, named):
    first = SAETrainer(_sae_cfg(), _train_cfg(), source, run_dir=tmp_path, progress=False)
    first.on_step = lambda step, m: first.request_stop() if step == 4 else None
    first.train()
    files = {p.name: _digest(p) for p in tmp_path.iterdir()}
    sae_cfg, train_cfg = change()
    with pytest.raises(CheckpointError, match=named):
        SAETrainer(sae_cfg, train_cfg, source, run_dir=tmp_path, progress=False).train()
    assert {p.name: _digest(p) for p in tmp_path.iterdir()} == files
    assert SAETrainer(_sae_cfg(), _train_cfg(), source, run_dir=tmp_path, progress=False).train().steps_done == 8


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: SAEConfig("topk", 16, 0, k=1), "d_sae must be a positive integer, got 0"),
        (lambda: SAEConfig("topk", 16, 8, k=9), "k=9 is larger than d_sae=8"),
        (lambda: SAEConfig("topk", 16, 8), "needs k"),
        (lambda: SAEConfig("gated", 16, 8), "unknown SAE architecture 'gated'"),
        (lambda: SAETrainConfig(buffer_tokens=10, batch_size=64), "must hold at least one batch"),
        (lambda: SAETrainConfig(normalize="layer"), "normalize must be"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(build, message):
    with pytest.raises(SAEError, match=message):
        build()


def test_a_hook_that_does_not_exist_is_refused_with_suggestions(tiny_model, tiny_ids):
    with pytest.raises(SAEError, match=r"no hook 'blocks.1.hook_resid_prex'.*did you mean blocks.1.hook_resid_pre"):
        ModelActivations(tiny_model, "blocks.1.hook_resid_prex", CorpusTokens(tiny_ids, 16))


def test_an_sae_wider_or_narrower_than_its_hook_is_refused(source):
    with pytest.raises(SAEError, match="d_in=12, but its activations .* are 16 wide"):
        SAETrainer(SAEConfig("topk", 12, 32, k=4, hook_name=HOOK), _train_cfg(), source, progress=False)


def test_the_buffer_holds_at_most_its_setting(source):
    for step in range(20):  # 8 batches a refill: two refills and a half
        assert source.batch(step, 64).shape == (64, 16)
    assert source.refills == 3
    chunk = 8 * 16 * 16 * 4  # one harvest chunk: 8 sequences of 16 tokens of 16 floats
    assert source.peak_bytes <= 512 * 16 * 4 + chunk
    torch.testing.assert_close(source.batch(3, 64), source.batch(3, 64))  # a pure function of the step


def test_per_head_hooks_are_flattened_or_one_head_is_read(tiny_model, tiny_ids):
    tokens = CorpusTokens(tiny_ids, 16)
    assert ModelActivations(tiny_model, "blocks.0.attn.hook_z", tokens, buffer_tokens=64).d_in == 16
    assert ModelActivations(tiny_model, "blocks.0.attn.hook_z", tokens, buffer_tokens=64, head_index=1).d_in == 8
    assert activation_width(tiny_model, "ln_final.hook_normalized") == 16  # a hook past the last block
    assert activation_width(tiny_model, "blocks.1.mlp.hook_post") == 64


def test_a_cache_serves_the_rows_it_was_written_with(tmp_path, source):
    cache = cache_activations(source, tmp_path, n_tokens=700, shard_tokens=256, progress=False)
    assert cache.rows == 700 and len(list(tmp_path.glob("shard-*.safetensors"))) == 3
    rows = torch.cat([source.batch(0, 512), source.batch(1, 512)])[:700]  # the stream's own order
    torch.testing.assert_close(CachedActivations(tmp_path).rows_between(0, 700), rows)
    torch.testing.assert_close(cache.batch(1, 200), rows[200:400])
    torch.testing.assert_close(cache.rows_between(650, 760), torch.cat([rows[650:], rows[:60]]))  # wraps around


def test_the_jumprelu_estimator_matches_sae_lens():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sae_lens.saes.jumprelu_sae import JumpReLU, Step
    z = torch.randn(64, 10)
    theta = torch.rand(10) * 0.5
    grad = torch.randn(64, 10)
    for ours_fn, theirs_fn in ((_JumpReLU, JumpReLU), (_Step, Step)):
        grads = []
        for fn, extra in ((ours_fn, ()), (theirs_fn, (False,))):
            z_, t_ = z.clone().requires_grad_(), theta.clone().requires_grad_()
            (fn.apply(z_, t_, 0.3, *extra) * grad).sum().backward()
            grads.append((z_.grad, t_.grad))
        torch.testing.assert_close(grads[0][1], grads[1][1])
        if ours_fn is _JumpReLU:
            torch.testing.assert_close(grads[0][0], grads[1][0])
        assert grads[0][1].abs().sum() > 0


def test_the_aux_k_loss_moves_only_dead_latents(source):
    trainer = SAETrainer(_sae_cfg(), _train_cfg(), source, progress=False)
    trainer._initialise()
    sae = trainer.sae
    x = source.batch(0, 64) * trainer.state.input_scale.float()
    dead = torch.zeros(32, dtype=torch.bool)
    dead[:10] = True
    residual = torch.randn_like(x)
    sae.aux_k_loss(sae.training_pre(x), residual, dead).backward()
    moved = sae.W_dec.grad.abs().sum(1) > 0
    assert moved[:10].any() and not moved[10:].any()


def test_resampling_points_dead_latents_at_badly_reconstructed_inputs(source):
    trainer = SAETrainer(_sae_cfg("standard"), _train_cfg(resample_every=1), source, progress=False)
    trainer._initialise()
    trainer._step(0)
    trainer.state.tokens_since_fired[:5] = 10_000  # five latents dead
    x = source.batch(1, 64) * trainer.state.input_scale.float()
    trainer._resample(1, x)
    sae = trainer.sae
    torch.testing.assert_close(sae.W_dec[:5].norm(dim=1), torch.ones(5))
    assert (sae.b_enc[:5] == 0).all() and (trainer.state.tokens_since_fired[:5] == 0).all()
    cos = torch.nn.functional.normalize(x, dim=1) @ sae.W_dec[:5].T
    assert torch.isclose(cos.max(0).values, torch.ones(5)).all()  # each new row is one of the inputs
    assert (trainer.optimizer.state[sae.W_dec]["exp_avg"][:5] == 0).all()


def test_the_geometric_median_minimises_the_summed_distance():
    x = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0], [100.0, 100.0]])
    m = geometric_median(x, iterations=500)

    def cost(p):
        return (x - p).norm(dim=1).sum()

    assert cost(m) < cost(x.mean(0))
    for d in ([1e-2, 0], [0, 1e-2], [-1e-2, 0], [0, -1e-2]):
        assert cost(m) <= cost(m + torch.tensor(d)) + 1e-6


def test_the_sparsity_penalty_warms_up_linearly(source):
    trainer = SAETrainer(_sae_cfg("jumprelu"), _train_cfg(l0_coefficient=2.0, l1_warmup_steps=4), source, progress=False)
    assert isinstance(trainer.sae, JumpReLUSAE)
    assert [trainer._coefficient(s) for s in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
