"""Data-parallel SAE training on torch.distributed: two CPU processes over gloo give one process's weights."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from llm_workings.sae import (
    CachedActivations,
    CorpusTokens,
    ModelActivations,
    SAEConfig,
    SAETrainConfig,
    SAETrainer,
    cache_activations,
    load_sae,
)

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]
HOOK = "blocks.1.hook_resid_pre"


def _configs(architecture: str):
    k = 4 if architecture == "topk" else None
    train = SAETrainConfig(steps=6, batch_size=64, buffer_tokens=512, init_batches=2, dead_after_tokens=128, lr=3e-3,
                           resample_every=3, checkpoint_every=3)  # fmt: skip
    return SAEConfig(architecture, 16, 32, k=k, hook_name=HOOK), train


def _rank(rank: int, world: int, init_file: str, cache_dir: str, run_dir: str, architecture: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        sae_cfg, train_cfg = _configs(architecture)
        SAETrainer(sae_cfg, train_cfg, CachedActivations(cache_dir), run_dir=run_dir, progress=False).train()
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("architecture", ["standard"])  # resampling and the dead-latent counts both cross ranks
def test_two_gloo_processes_train_the_weights_one_process_trains(tmp_path, tiny_model, tiny_ids, architecture):
    source = ModelActivations(tiny_model, HOOK, CorpusTokens(tiny_ids, 16), buffer_tokens=512, harvest_batch=8)
    cache = cache_activations(source, tmp_path / "cache", n_tokens=1024, progress=False)
    sae_cfg, train_cfg = _configs(architecture)
    single = SAETrainer(sae_cfg, train_cfg, cache, progress=False).train()
    run_dir = tmp_path / "ddp"
    mp.spawn(_rank, args=(2, str(tmp_path / "init"), str(cache.directory), str(run_dir), architecture), nprocs=2)
    both = load_sae(run_dir)  # written by rank 0 alone
    for name, value in single.sae.saved_tensors().items():
        torch.testing.assert_close(both.saved_tensors()[name], value, atol=1e-5, rtol=1e-5)
    assert not list(run_dir.glob(".tmp-*"))
