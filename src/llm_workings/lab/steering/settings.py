"""The Steering page's settings table and request bodies: every bound a request can hit, in one place."""

from __future__ import annotations

from pydantic import Field

from ..prompts import PromptIn
from ..settings import Body, Setting, SettingsTable

MAX_PAIRS_CHARS = 4000
MAX_PAIRS = 64
MAX_NEW_TOKENS = 120
SWEEP_POINTS = 17  # odd, so that the unsteered model (coefficient 0) is one of them

# The probes the page can train: a property of every character of a corpus (data.text_labels).
PROBES = {
    "inside_quotation": ("austen", "inside a quotation (Austen's dialogue)"),
    "speaker_line": ("tinyshakespeare", "on a speaker's name line (Shakespeare)"),
}

SETTINGS = SettingsTable(
    (
        Setting(
            "source",
            "choice",
            "probe",
            "Built from",
            "Prompt pairs: the mean (or PCA, or probe) of positive minus negative activations, read at each text's last token. "
            "Probe: the weight of a logistic probe for a property of the text. "
            "SAE latent: one latent's decoder row from a bundled sparse autoencoder, at the SAE's own hook.",
            choices=("probe", "pairs", "sae"),
            group="vector",
        ),
        Setting(
            "pairs",
            "text",
            "Love | Hate\nI love you | I hate you\nwonderful | terrible",
            "Prompt pairs",
            "One pair per line, positive | negative. Write \\n for a line break inside a text.",
            max_length=MAX_PAIRS_CHARS,
            group="vector",
        ),
        Setting(
            "aggregation",
            "choice",
            "mean_diff",
            "Aggregation",
            "mean_diff: raw mean difference (CAA). pca: top direction of the differences, unit norm. "
            "logistic: a probe telling positives from negatives, unit norm.",
            choices=("mean_diff", "pca", "logistic"),
            group="vector",
        ),
        Setting(
            "probe",
            "choice",
            "inside_quotation",
            "Probe for",
            "The property whose probe weight becomes the direction (unit norm).",
            choices=tuple(PROBES),
            group="vector",
        ),
        Setting(
            "sae",
            "text",
            "austen-bpe-resid2-topk",
            "SAE",
            "A bundled sparse autoencoder of this model (llmw sae list); the vector is added at its hook.",
            max_length=100,
            group="vector",
        ),
        Setting(
            "latent",
            "int",
            276,
            "Latent",
            "The SAE latent whose decoder row is the direction; the coefficient is in units of its activation.",
            min=0,
            max=2**20,
            group="vector",
        ),
        Setting(
            "layer",
            "int",
            3,
            "Layer",
            "The vector is read and added at this layer's hook_resid_pre.",
            min=0,
            max=95,
            group="vector",
        ),
        Setting(
            "positions",
            "choice",
            "all",
            "Added at",
            "all: every position. prompt: the prompt's tokens only. generated: each new token only (CAA adds after the prompt).",
            choices=("all", "prompt", "generated"),
            group="apply",
        ),
        Setting(
            "coefficient",
            "float",
            4.0,
            "Coefficient",
            "What multiplies the vector before it is added (negative pushes the other way).",
            min=-64.0,
            max=64.0,
            group="apply",
        ),
        Setting(
            "new_tokens",
            "int",
            40,
            "New tokens",
            "How many tokens each generation adds.",
            min=1,
            max=MAX_NEW_TOKENS,
            group="generate",
        ),
        Setting(
            "temperature",
            "float",
            0.8,
            "Temperature",
            "Sampling temperature of both generations (0: greedy).",
            min=0.0,
            max=2.0,
            group="generate",
        ),
        Setting(
            "seed",
            "int",
            0,
            "Seed",
            "Both generations draw with this seed, so they differ only by the vector.",
            min=0,
            max=2**31 - 1,
            group="generate",
        ),
        Setting(
            "target",
            "text",
            '"',
            "Behaviour: next token contains",
            "The behaviour is the probability that the token after the prompt contains this text.",
            max_length=20,
            group="measure",
        ),
        Setting(
            "sweep_max",
            "float",
            8.0,
            "Sweep up to ±",
            f"The sweep tries {SWEEP_POINTS} coefficients from minus this to plus this.",
            min=0.5,
            max=64.0,
            group="measure",
        ),
    )
)

Settings = SETTINGS.model("SteeringSettings")


class SteeringBody(Body):
    model: str = Field(max_length=200)
    prompt: PromptIn
    settings: Settings = Field(default_factory=Settings)
