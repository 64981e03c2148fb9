"""Training a small TopK SAE from the Features page, as a lab job (kind "sae-train"):

    POST /api/features/train {"model": "shakespeare-char", "layer": 1, "d_sae": 256, "k": 8, "steps": 200}

The job reads the model's residual stream entering block `layer` (`blocks.L.hook_resid_pre`) on the
tokens the model was trained on, through the SAE engine's streaming buffer, and trains in a
worker thread on its own copy of the model (requests keep theirs). It writes the SAE into
`<runs>/saes/<name>/` (SAELens's format, from `sae.SAETrainer`), then `card.json` last: a folder with a
card is a finished SAE, which the page lists beside the bundled ones as `trained.<name>`. Cancel stops
it at the next step; its folder keeps the trainer's checkpoint and is never listed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import ApiError

KIND = "sae-train"
PREFIX = "trained."
CARD = "card.json"


def root(runs_dir: Path) -> Path:
    return Path(runs_dir) / "saes"


def trained_names(runs_dir: Path) -> list[str]:
    folder = root(runs_dir)
    if not folder.is_dir():
        return []
    return sorted(PREFIX + p.name for p in folder.iterdir() if (p / CARD).is_file())


def trained_dir(runs_dir: Path, name: str) -> Path | None:
    """The folder of a finished SAE named `trained.<folder>`, or None."""
    if not name.startswith(PREFIX) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name[len(PREFIX) :]):
        return None
    folder = root(runs_dir) / name[len(PREFIX) :]
    return folder if (folder / CARD).is_file() else None


def free_name(runs_dir: Path, base: str, jobs: Any) -> str:
    for n in range(1, 10_000):
        name = f"{base}-run{n}"
        if not (root(runs_dir) / name).exists() and not jobs.reserved(KIND, "name", name):
            return name
    raise ApiError(f"no free SAE name for {base} in {root(runs_dir)}", status=409)


def prepare(held: Any, settings: dict[str, int], runs_dir: Path, jobs: Any) -> tuple[Any, dict[str, Any]]:
    """Check the request against the model, and return the job's function and its params."""
    from ...sae.config import SAEConfig, SAEError, SAETrainConfig

    model_id, cfg = held.entry.id, held.model.cfg
    if not 0 <= settings["layer"] < cfg.n_layers:
        raise ApiError(f"layer must be from 0 to {cfg.n_layers - 1} ({model_id} has {cfg.n_layers} layers)", field="layer")
    if held.entry.source != "zoo":
        raise ApiError(f"{model_id} is not a bundled model: SAEs train on a bundled model's own corpus", field="model")
    hook = f"blocks.{settings['layer']}.hook_resid_pre"
    try:
        sae_cfg = SAEConfig("topk", cfg.d_model, settings["d_sae"], k=settings["k"], hook_name=hook, model_name=model_id)
        train_cfg = SAETrainConfig(
            steps=settings["steps"], batch_size=512, lr=1e-3, buffer_tokens=8192, dead_after_tokens=50_000,
            checkpoint_every=max(settings["steps"], 1),
        )  # fmt: skip
    except SAEError as e:
        raise ApiError(str(e), field="d_sae") from None
    name = free_name(runs_dir, f"{model_id}-resid{settings['layer']}-topk{settings['d_sae']}-k{settings['k']}", jobs)
    out = root(runs_dir) / name

    def run(ctx: Any) -> dict[str, Any]:
        return train(ctx, model_id, sae_cfg, train_cfg, out)

    return run, {"name": name, "sae": PREFIX + name, "model": model_id, "hook_name": hook, **settings}


def train(ctx: Any, model_id: str, sae_cfg: Any, train_cfg: Any, out: Path) -> dict[str, Any]:
    import time

    from ...atomic import write_json
    from ...sae import bundled
    from ...sae.activations import ModelActivations
    from ...sae.metrics import evaluate_sae
    from ...sae.training import SAETrainer
    from ...zoo import load

    model, _ = load(model_id)
    source = ModelActivations(
        model, sae_cfg.hook_name, bundled.token_source(model_id), train_cfg.buffer_tokens, train_cfg.harvest_batch, train_cfg.seed
    )
    steps, started = train_cfg.steps, time.perf_counter()

    def on_step(step: int, metrics: dict[str, float]) -> None:
        rate = step * train_cfg.batch_size / max(time.perf_counter() - started, 1e-9)
        ctx.progress(
            step / steps, f"step {step} of {steps}", step=step, steps=steps, loss=metrics["loss"], mse=metrics["mse"],
            l0=metrics["l0"], tokens_per_second=rate,
        )  # fmt: skip
        ctx.check_cancelled()  # its exception stops the run, the checkpoint intact

    result = SAETrainer(sae_cfg, train_cfg, source, run_dir=out, progress=False, on_step=on_step).train()
    tokens = bundled.evaluation_tokens(model_id)
    metrics = evaluate_sae(result.sae, model, tokens).scalars()
    card = {
        "name": PREFIX + out.name,
        "summary": f"TopK SAE trained in the lab on {sae_cfg.hook_name} of {model_id}",
        "model": model_id,
        "hook_name": sae_cfg.hook_name,
        "architecture": "topk",
        "sae_config": sae_cfg.to_dict(),
        "train_config": train_cfg.to_dict(),
        "metrics": metrics,
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out / CARD, card)
    return {"sae": card["name"], "metrics": metrics}
