"""The Features page's engine side, over `llm_workings.sae`: every number the page shows comes from here.

    loaded = corpus(held, "shakespeare-char-resid2-topk")   # the SAE, its corpus tokens and every latent's
                                                            # activation on them, computed once per (model, SAE)
    dashboard(held, name, latent)                            # sae.dashboard.latent_dashboard(...).to_dict(), cached
    on_text(held, name, prompt)                              # [pos, d_sae] latents on the learner's text

The corpus is the first CORPUS_TOKENS tokens of the SAE's held-out evaluation tokens
(`sae.bundled.evaluation_tokens`): enough for a dashboard's examples and histogram, small enough that
the first request for an SAE takes about a second on a laptop CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ApiError
from ..memo import Lru
from . import training

CORPUS_TOKENS = 4096
TEXT_TOP = 16  # latents listed per token of the learner's text: all of a bundled TopK SAE's k

CORPORA = Lru(4)  # (model id, model stamp, SAE, its folder) -> Corpus
DASHBOARDS = Lru(256)  # (model id, model stamp, SAE, latent) -> dashboard dict


@dataclass(frozen=True)
class Corpus:
    sae: Any  # the SparseAutoencoder
    tokens: Any  # [n, pos] long
    acts: Any  # [n, pos, d_sae]: every latent on every corpus token
    density: list[float]  # fraction of corpus tokens on which each latent is positive
    max_activation: list[float]


def cards(runs_dir: Path) -> list[dict[str, Any]]:
    """Every bundled SAE's card, then those trained from the page (`training.py`), as the page lists them."""
    from ...sae import bundled as saes

    return [saes.bundled_card(name) for name in saes.list_bundled()] + [
        card(name, runs_dir) for name in training.trained_names(runs_dir)
    ]


def sae_dir(name: str, runs_dir: Path) -> Path:
    from ...sae import bundled as saes

    names = saes.list_bundled()
    if name in names:
        return saes.sae_dir(name)
    trained = training.trained_dir(runs_dir, name)
    if trained is None:
        known = ", ".join(names + training.trained_names(runs_dir))
        raise ApiError(f"unknown SAE {name!r}; the SAEs here are {known}", status=404, field="sae")
    return trained


def card(name: str, runs_dir: Path) -> dict[str, Any]:
    from ...sae import bundled as saes

    return saes.bundled_card(sae_dir(name, runs_dir))


def _load(held: Any, name: str, runs_dir: Path) -> Corpus:
    import torch

    from ...sae import bundled as saes
    from ...sae.activations import check_sae_fits
    from ...sae.config import SAEError
    from ...sae.dashboard import latent_activations

    info = card(name, runs_dir)
    sae = saes.load_bundled(sae_dir(name, runs_dir))
    try:
        check_sae_fits(sae, held.model)
    except SAEError as e:
        raise ApiError(f"SAE {name!r} does not fit {held.entry.id}: {e}", status=422, field="sae") from None
    if held.entry.id != info["model"]:
        raise ApiError(
            f"SAE {name!r} was trained on {info['model']}, not {held.entry.id}: pick {info['model']}",
            status=422,
            field="sae",
        )
    tokens = saes.evaluation_tokens(info["model"])
    tokens = tokens[: max(1, CORPUS_TOKENS // tokens.shape[1])].long()
    with held.lock, torch.no_grad():
        acts = latent_activations(sae, held.model, tokens)
    fires = acts > 0
    return Corpus(
        sae,
        tokens,
        acts,
        fires.double().mean((0, 1)).tolist(),
        acts.amax((0, 1)).tolist(),
    )


def corpus(held: Any, name: str, runs_dir: Path) -> Corpus:
    key = (held.entry.id, held.entry.stamp, name, str(sae_dir(name, runs_dir)))
    return CORPORA.get(key, lambda: _load(held, name, runs_dir))


def check_latent(loaded: Corpus, name: str, latent: int) -> None:
    d_sae = loaded.sae.cfg.d_sae
    if not 0 <= latent < d_sae:
        raise ApiError(f"latent {latent} is out of range: {name} has latents 0 to {d_sae - 1}", field="latent")


def dashboard(held: Any, name: str, latent: int, runs_dir: Path) -> dict[str, Any]:
    """The engine's dashboard of one latent on the corpus, computed once per (model, SAE, latent)."""
    loaded = corpus(held, name, runs_dir)
    check_latent(loaded, name, latent)

    def build() -> dict[str, Any]:
        from ...sae.dashboard import latent_dashboard

        with held.lock:
            return latent_dashboard(loaded.sae, held.model, loaded.tokens, latent, acts=loaded.acts).to_dict()

    return DASHBOARDS.get((held.entry.id, held.entry.stamp, name, latent), build)


def on_text(held: Any, name: str, ids: list[int], runs_dir: Path) -> Any:
    """Every latent's activation on each token of the learner's text: [pos, d_sae]."""
    import torch

    from ...sae.dashboard import latent_activations

    loaded = corpus(held, name, runs_dir)
    with held.lock, torch.no_grad():
        return latent_activations(loaded.sae, held.model, torch.tensor([ids]))[0]
