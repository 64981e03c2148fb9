"""The bundled SAEs: small SAEs trained on the zoo's models, shipped with cards that say how and how well.

    list_bundled()                                   # ['austen-bpe-resid2-topk', ...]
    sae = load_bundled("shakespeare-char-resid2-topk")
    bundled_card("shakespeare-char-resid2-topk")["metrics"]
    train_recipe(SAE_RECIPES["induction-2l-z0-topk"], "runs/saes/induction-2l-z0-topk")   # reproduce one

Each recipe trains on tokens its model was trained on (a corpus's training split, or the task's generator)
and is evaluated on held-out tokens (`evaluation_tokens`): the corpus's validation split, or the task's
fixed evaluation seed. Weights are stored in float16 when every card metric stays within `TOLERANCE` of
float32's, and in float32 otherwise.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import write_json
from ..data.corpora import load_corpus
from ..zoo import card, get_recipe, load
from ..zoo.recipes import build_task
from ..zoo.runner import machine_description
from .activations import CorpusTokens, ModelActivations, TaskTokens, TokenSource, activation_width
from .config import SAEConfig, SAEError, SAETrainConfig
from .files import load_sae, save_sae
from .metrics import evaluate_sae
from .training import SAETrainer

CARD = "card.json"
EVAL_SEQUENCES, EVAL_SEED = 64, 1234
TOLERANCE = 2e-3  # largest change in a card metric that float16 storage may cause (absolute)


@dataclass(frozen=True)
class SAERecipe:
    name: str
    model: str  # a bundled model
    hook_name: str
    architecture: str
    d_sae: int
    summary: str
    k: int | None = None
    train: dict[str, Any] = field(default_factory=dict)  # SAETrainConfig fields

    def sae_config(self, model: Any) -> SAEConfig:
        return SAEConfig(
            self.architecture, activation_width(model, self.hook_name), self.d_sae, k=self.k, hook_name=self.hook_name,
            model_name=self.model, context_size=model.cfg.n_ctx, prepend_bos=False, dataset_path=token_source(self.model).name,
        )  # fmt: skip

    def train_config(self) -> SAETrainConfig:
        return SAETrainConfig(**self.train)


SAE_RECIPES: dict[str, SAERecipe] = {
    r.name: r
    for r in [
        SAERecipe(
            name="shakespeare-char-resid2-topk",
            model="shakespeare-char",
            hook_name="blocks.2.hook_resid_pre",
            architecture="topk",
            d_sae=1024,
            k=16,
            summary="TopK SAE (8x expansion) on the residual stream entering block 2 of shakespeare-char",
            train=dict(steps=1200, batch_size=1024, lr=1e-3, lr_decay_steps=300, buffer_tokens=32768, dead_after_tokens=200_000),
        ),
        SAERecipe(
            name="austen-bpe-resid2-topk",
            model="austen-bpe",
            hook_name="blocks.2.hook_resid_pre",
            architecture="topk",
            d_sae=1024,
            k=16,
            summary="TopK SAE (8x expansion) on the residual stream entering block 2 of austen-bpe",
            train=dict(steps=800, batch_size=1024, lr=1e-3, lr_decay_steps=200, buffer_tokens=32768, dead_after_tokens=200_000),
        ),
        SAERecipe(
            name="induction-2l-z0-topk",
            model="induction-2l",
            hook_name="blocks.0.attn.hook_z",
            architecture="topk",
            d_sae=512,
            k=8,
            summary="TopK SAE on the output of layer 0's attention heads (hook_z, all 4 heads) of induction-2l",
            train=dict(steps=1200, batch_size=1024, lr=1e-3, lr_decay_steps=300, buffer_tokens=32768, dead_after_tokens=200_000),
        ),
    ]
}


def _model_recipe(model: str | os.PathLike) -> Any:
    """The recipe a zoo model (or a run trained by `llmw train`) was trained with, from its card."""
    return get_recipe(card(model)["name"])


def token_source(model_name: str | os.PathLike) -> TokenSource:
    """Training tokens for a zoo model or run: its corpus's training split, or its task's generator."""
    recipe = _model_recipe(model_name)
    context = recipe.model["n_ctx"]
    if recipe.task in ("char-lm", "bpe-lm"):
        _, tokenizer = load(model_name)
        return CorpusTokens(tokenizer.encode_array(load_corpus(recipe.data["corpus"]).train), context, recipe.data["corpus"])
    if recipe.task == "induction":
        return TaskTokens(build_task(recipe), context, "repeated-random-tokens")
    raise SAEError(f"{model_name} is a {recipe.task} model; bundled SAEs read language or induction models")


def evaluation_tokens(model_name: str | os.PathLike, n: int = EVAL_SEQUENCES) -> torch.Tensor:
    """Held-out tokens [n, n_ctx]: consecutive windows of the validation split, or the task at a fixed seed."""
    recipe = _model_recipe(model_name)
    context = recipe.model["n_ctx"]
    if recipe.task in ("char-lm", "bpe-lm"):
        _, tokenizer = load(model_name)
        ids = torch.from_numpy(tokenizer.encode_array(load_corpus(recipe.data["corpus"]).val).astype(np.int64))
        return ids[: n * context].view(n, context)
    return TaskTokens(build_task(recipe), context).sequences(np.random.default_rng(EVAL_SEED), n)


def train_recipe(recipe: SAERecipe, out_dir: str | os.PathLike, progress: bool = True, reproduce_out: str | None = None) -> Path:
    """Train one bundled SAE into `out_dir` (resumable), then write its card with the measured metrics;
    `reproduce_out` is the folder the card's command names (by default `out_dir` as given)."""
    reproduce_out = os.fspath(out_dir) if reproduce_out is None else reproduce_out
    out_dir = Path(out_dir)
    model, _ = load(recipe.model)
    train_cfg = recipe.train_config()
    source = ModelActivations(
        model, recipe.hook_name, token_source(recipe.model), train_cfg.buffer_tokens, train_cfg.harvest_batch, train_cfg.seed
    )
    started = time.perf_counter()
    result = SAETrainer(recipe.sae_config(model), train_cfg, source, run_dir=out_dir, progress=progress).train()
    if result.interrupted:
        return out_dir
    tokens = evaluation_tokens(recipe.model)
    float32 = evaluate_sae(result.sae, model, tokens).scalars()
    save_sae(result.sae, out_dir, result.log_density, dtype=torch.float16)
    float16 = evaluate_sae(load_sae(out_dir), model, tokens).scalars()
    worst = max(abs(float16[k] - float32[k]) for k in float32)
    dtype = "float16" if worst <= TOLERANCE else "float32"
    if dtype == "float32":
        save_sae(result.sae, out_dir, result.log_density)
    card = {
        "name": recipe.name,
        "summary": recipe.summary,
        "model": recipe.model,
        "hook_name": recipe.hook_name,
        "architecture": recipe.architecture,
        "sae_config": recipe.sae_config(model).to_dict(),
        "train_config": train_cfg.to_dict(),
        "tokens": {"training": source.tokens.name, "evaluation": f"{len(tokens)} held-out sequences of {tokens.shape[1]} tokens"},
        "reproduce": f"llmw sae train --recipe {recipe.name} --out {shlex.quote(reproduce_out)}",
        "dtype": dtype,
        "metrics": float16 if dtype == "float16" else float32,
        "float32_metrics": float32,
        "tolerance": TOLERANCE,
        "training_seconds": round(result.seconds, 1),
        "session_seconds": round(time.perf_counter() - started, 1),
        "tokens_per_second": round(result.tokens_per_second),
        "peak_buffer_bytes": result.peak_buffer_bytes,
        "machine": machine_description(),
    }
    for stale in out_dir.glob("checkpoint*"):  # the bundle ships the SAE, not the run's optimizer state
        stale.unlink()
    write_json(out_dir / CARD, card)
    return out_dir


def train_on_model(
    model_name: str | os.PathLike,
    sae_config: SAEConfig,
    train_config: SAETrainConfig,
    out_dir: str | os.PathLike,
    progress: bool = True,
) -> Any:
    """Train an SAE on a zoo model or run, at `sae_config.hook_name`, on the tokens the model was trained on."""
    model, _ = load(model_name)
    source = ModelActivations(
        model, sae_config.hook_name, token_source(model_name), train_config.buffer_tokens, train_config.harvest_batch,
        train_config.seed, head_index=sae_config.hook_head_index,
    )  # fmt: skip
    return SAETrainer(sae_config, train_config, source, run_dir=out_dir, progress=progress).train()


def bundled_root() -> Path:
    return Path(str(resources.files("llm_workings.zoo") / "saes"))


def list_bundled() -> list[str]:
    root = bundled_root()
    return sorted(p.name for p in root.iterdir() if (p / CARD).is_file()) if root.is_dir() else []


def sae_dir(name_or_dir: str | os.PathLike) -> Path:
    """A bundled SAE's folder, or any SAE directory."""
    path = Path(name_or_dir)
    if path.is_dir():
        return path
    if (bundled_root() / str(name_or_dir)).is_dir():
        return bundled_root() / str(name_or_dir)
    raise SAEError(f"{name_or_dir!r} is neither a bundled SAE ({', '.join(list_bundled()) or 'none bundled'}) nor a directory")


def load_bundled(name_or_dir: str | os.PathLike) -> Any:
    return load_sae(sae_dir(name_or_dir))


def bundled_card(name_or_dir: str | os.PathLike) -> dict[str, Any]:
    path = sae_dir(name_or_dir) / CARD
    if not path.is_file():
        raise SAEError(f"{path.parent} has no {CARD}")
    return json.loads(path.read_text())
