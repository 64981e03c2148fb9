"""Sparse autoencoders: train them on any hook of our transformer, evaluate them, save them as SAELens does.

    from llm_workings import sae
    source = sae.ModelActivations(model, "blocks.2.hook_resid_pre", sae.CorpusTokens(ids, 64))
    result = sae.SAETrainer(sae.SAEConfig("topk", 128, 1024, k=16, hook_name="blocks.2.hook_resid_pre"),
                            sae.SAETrainConfig(steps=2000), source, run_dir="runs/sae").train()
    ev = sae.evaluate_sae(result.sae, model, tokens)
    s = sae.load_sae("runs/sae")                          # or an SAELens directory; sae.load_bundled(...)

A guide is in docs/sae.md.
"""

from .activations import (
    CachedActivations,
    CorpusTokens,
    ModelActivations,
    TaskTokens,
    activation_width,
    cache_activations,
    check_sae_fits,
    hook_reader,
)
from .architectures import BatchTopKSAE, JumpReLUSAE, SparseAutoencoder, StandardSAE, TopKSAE, build_sae
from .config import ARCHITECTURES, SAEConfig, SAEError, SAETrainConfig
from .files import load_log_density, load_sae, save_sae
from .metrics import SAEEvaluation, evaluate_sae, recovered_score, splice
from .training import SAETrainer, SAETrainResult, geometric_median

__all__ = [
    "ARCHITECTURES",
    "BatchTopKSAE",
    "CachedActivations",
    "CorpusTokens",
    "JumpReLUSAE",
    "ModelActivations",
    "SAEConfig",
    "SAEError",
    "SAEEvaluation",
    "SAETrainConfig",
    "SAETrainResult",
    "SAETrainer",
    "SparseAutoencoder",
    "StandardSAE",
    "TaskTokens",
    "TopKSAE",
    "activation_width",
    "build_sae",
    "cache_activations",
    "check_sae_fits",
    "evaluate_sae",
    "geometric_median",
    "hook_reader",
    "load_log_density",
    "load_sae",
    "recovered_score",
    "save_sae",
    "splice",
]
