"""Interpretability techniques on the hooked transformer: what each layer predicts, which heads
matter, which activations carry the answer, and what a layer knows.

    from llm_workings import zoo
    from llm_workings.analysis import LogitDiff, head_scores, patch_residual, repeated_random_tokens
    model, tokenizer = zoo.load("induction-2l")
    head_scores(model, repeated_random_tokens(model)).plot("heads.png")
    patch_residual(model, clean, corrupted, LogitDiff(answers)).normalized   # [layer, pos]

Every analysis returns a small dataclass (see results.py) that serializes to JSON for the lab and
draws a static figure; `llmw analyze MODEL ANALYSIS` runs them from the shell. Bad input raises
`AnalysisError`. This package exports the analyses, their result types and the metrics they are
called with; the helpers they are built from stay in their modules (e.g.
`analysis.attribution_patching.compare`, `analysis.metrics.normalized`). The guide is
docs/analysis.md.
"""

from .ablation import AblationResult, ablate, ablate_heads, ablate_layers, ablate_neurons
from .attribution import LogitAttribution, direct_logit_attribution
from .attribution_patching import AttributionCheck, attribution_patch
from .circuits import OV, QK, CompositionScores, FactoredMatrix, composition_scores, copying_scores, full_OV, full_QK
from .conventions import AnalysisError
from .fourier import FourierResult, fourier_analysis
from .heads import (
    AttentionPattern,
    HeadScores,
    attention_patterns,
    detect_head_scores,
    head_pattern,
    head_scores,
    repeated_random_tokens,
)
from .logit_lens import LogitLens, logit_lens
from .metrics import LogitDiff, NextTokenLoss
from .patching import PatchingResult, activation_patch, patch_heads, patch_residual
from .path_patching import PathPatchingResult, path_patch
from .probing import LayerProbes, ProbeResult, harvest, probe_layers, train_probe
from .results import Result
from .saliency import Saliency, attention_rollout, gradient_x_input, integrated_gradients

__all__ = [
    # what goes wrong
    "AnalysisError",
    # metrics the analyses are called with
    "LogitDiff",
    "NextTokenLoss",
    # the analyses
    "OV",
    "QK",
    "ablate",
    "ablate_heads",
    "ablate_layers",
    "ablate_neurons",
    "activation_patch",
    "attention_patterns",
    "attention_rollout",
    "attribution_patch",
    "composition_scores",
    "copying_scores",
    "detect_head_scores",
    "direct_logit_attribution",
    "fourier_analysis",
    "full_OV",
    "full_QK",
    "gradient_x_input",
    "harvest",
    "head_pattern",
    "head_scores",
    "integrated_gradients",
    "logit_lens",
    "patch_heads",
    "patch_residual",
    "path_patch",
    "probe_layers",
    "repeated_random_tokens",
    "train_probe",
    # what they return
    "AblationResult",
    "AttentionPattern",
    "AttributionCheck",
    "CompositionScores",
    "FactoredMatrix",
    "FourierResult",
    "HeadScores",
    "LayerProbes",
    "LogitAttribution",
    "LogitLens",
    "PatchingResult",
    "PathPatchingResult",
    "ProbeResult",
    "Result",
    "Saliency",
]
