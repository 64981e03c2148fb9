"""Two steering demonstrations on the bundled models, built and measured the same way each time,
so the tests, the benchmark and docs/steering.md quote the same numbers.

    demo = quotation_demo(model)     # austen-bpe: a probe's "inside a quotation" direction
    demo = speaker_demo(model)       # shakespeare-char: ROMEO minus JULIET at a speaker cue
    demo = sae_latent_demo(model, sae)   # austen-bpe: a bundled SAE latent's decoder row
    demo.sweep.behaviour, demo.sweep.random_behaviour, demo.sweep.perplexity

Each returns the vector, its sweep over 16 coefficients at the layer it was read at (with the
random baseline and the perplexity cost), and what it was measured on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..analysis.metrics import LogitDiff
from ..data.corpora import load_corpus
from ..data.text_labels import inside_quotation, text_windows
from .build import from_contrast, from_probe
from .sweep import SteeringSweep, TargetProbability, steering_sweep
from .vector import SteeringVector, from_decoder_row

if TYPE_CHECKING:
    from ..transformer import Transformer

COEFFICIENTS = 16


@dataclass
class Demonstration:
    vector: SteeringVector
    sweep: SteeringSweep
    prompts: torch.Tensor  # [batch, pos] the behaviour is measured on
    neutral: torch.Tensor  # [batch, pos] the cost is measured on

    def shift(self, random: bool = False) -> torch.Tensor:
        """The behaviour minus the unsteered behaviour, `[layer, coefficient]`."""
        behaviour = self.sweep.random_behaviour if random else self.sweep.behaviour
        return behaviour - self.sweep.unsteered_behaviour


def speaker_demo(model: Transformer, layer: int = 1, n_pairs: int = 64, n_prompts: int = 64) -> Demonstration:
    """shakespeare-char: the mean difference between "ROMEO:\\n" and "JULIET:\\n" as the next speaker
    cue after the same 40 characters of dialogue (read at the cue's last token), added at the last
    position of other dialogue ending in a blank line; the behaviour is logit("R") - logit("J") for
    the first letter of the next speaker's name. Raw mean difference, coefficients -4..4."""
    text = load_corpus("tinyshakespeare").val
    contexts = [text[end - 40 : end] for end in (m.end() for m in re.finditer(r"\n\n", text)) if end >= 40]
    pairs = [(c + "ROMEO:\n", c + "JULIET:\n") for c in contexts[:n_pairs]]
    held_out = contexts[n_pairs : n_pairs + n_prompts]
    vector = from_contrast(model, pairs, ("resid_pre", layer), positions=39)  # the prompts' last position
    prompts = model.to_tokens(held_out)
    answers = torch.tensor([[model.to_single_token("R"), model.to_single_token("J")]] * len(held_out))
    neutral = model.to_tokens([text[i : i + 64] for i in range(0, 64 * 32, 64)])
    sweep = steering_sweep(model, vector, torch.linspace(-4, 4, COEFFICIENTS), LogitDiff(answers), prompts, neutral, [layer])
    return Demonstration(vector, sweep, prompts, neutral)


def quotation_demo(model: Transformer, layer: int = 3, n_windows: int = 40) -> Demonstration:
    """austen-bpe: the unit-norm weight of the logistic probe for "inside a quotation"
    (data.text_labels) trained on `n_windows` windows of 128 tokens of the validation text, added at
    every position of narrative prompts (48 tokens, none of the last 8 inside a quotation); the
    behaviour is the probability that the next token holds a double quote. Coefficients -8..8, about
    the residual stream's median norm at layer 3 (7.9)."""
    tokenizer = model.tokenizer
    text = load_corpus("austen").val
    windows, labels = text_windows(text, inside_quotation(text), tokenizer, length=128, n_windows=2 * n_windows)
    windows, labels = torch.from_numpy(windows), torch.from_numpy(labels)
    vector = from_probe(
        model,
        windows[:n_windows],
        labels[:n_windows],
        ("resid_pre", layer),
        metadata={"built_from": f"{n_windows} windows of 128 tokens"},
    )
    prompts = []
    for w in range(n_windows, 2 * n_windows):  # held out from the probe
        for end in range(48, 129, 40):
            if int(labels[w, end - 8 : end].sum()) == 0:
                prompts.append(windows[w, end - 48 : end])
                break
    quote_ids = [i for i in range(model.cfg.d_vocab) if '"' in tokenizer.decode([i])]
    neutral = windows[n_windows : n_windows + 16]
    prompts = torch.stack(prompts)
    sweep = steering_sweep(
        model, vector, torch.linspace(-8, 8, COEFFICIENTS), TargetProbability(quote_ids), prompts, neutral, [layer]
    )
    return Demonstration(vector, sweep, prompts, neutral)


def sae_latent_demo(model: Transformer, sae: Any, tokens: torch.Tensor | None = None) -> Demonstration:
    """austen-bpe with its bundled SAE (`austen-bpe-resid2-topk`): the decoder row of one latent,
    added at every position of 32 held-out sequences (48 tokens) at the SAE's hook; the behaviour is
    the probability that the next token is one of the latent's 10 top logit tokens
    (`sae.dashboard.logit_effects`). The latent is chosen from the weights alone, before any
    steering: of the latents that fire on the held-out tokens, the one whose decoder row raises a
    single logit the most. Coefficients run from -2 to +2 times its largest activation there
    (SAE steering's units: the latent's own activation)."""
    from ..sae.bundled import evaluation_tokens
    from ..sae.dashboard import latent_activations, logit_effects

    tokens = evaluation_tokens("austen-bpe") if tokens is None else tokens
    acts = latent_activations(sae, model, tokens)  # [batch, pos, d_sae]
    alive = (acts > 0).flatten(0, 1).any(0)
    rows = sae.W_dec.detach().float()
    centred = (rows - rows.mean(1, keepdim=True)) * model.ln_final.w  # the final LayerNorm, folded
    peak = (centred @ model.W_U).max(1).values.masked_fill(~alive, -torch.inf)
    latent = int(peak.argmax())
    top, _ = logit_effects(model, rows[latent], 10)
    scale = float(acts[..., latent].max())
    vector = from_decoder_row(
        sae.cfg.hook_name,
        rows[latent],
        metadata={"latent": latent, "top_logits": [t["token"] for t in top], "max_activation": scale},
    )
    prompts, neutral = tokens[:32, :48], tokens[32:48]
    metric = TargetProbability([t["id"] for t in top])
    coefficients = torch.linspace(-2 * scale, 2 * scale, COEFFICIENTS)
    sweep = steering_sweep(model, vector, coefficients, metric, prompts, neutral, [vector.layer])
    return Demonstration(vector, sweep, prompts, neutral)
