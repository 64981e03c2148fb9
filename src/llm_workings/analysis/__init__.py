"""Interpretability techniques on the hooked transformer: what each layer predicts, which heads
matter, which activations carry the answer, and what a layer knows.

    from llm_workings import zoo
    from llm_workings.analysis import LogitDiff, head_scores, patch_residual, repeated_random_tokens
    model, tokenizer = zoo.load("induction-2l")
    head_scores(model, repeated_random_tokens(model)).plot("heads.png")
    patch_residual(model, clean, corrupted, LogitDiff(answers)).normalized   # [layer, pos]

Every analysis returns a small dataclass (see results.py) that serializes to JSON for the lab and
draws a static figure; `llmw analyze MODEL ANALYSIS` runs them from the shell. The guide is
docs/analysis.md.
"""

from .ablation import AblationResult, ablate, ablate_heads, ablate_layers, ablate_neurons
from .attribution import LogitAttribution, direct_logit_attribution
from .attribution_patching import AttributionCheck, attribution_patch, compare, pearson
from .circuits import (
    OV,
    QK,
    CompositionScores,
    FactoredMatrix,
    composition_baseline,
    composition_score,
    composition_scores,
    copying_scores,
    full_OV,
    full_QK,
)
from .fourier import (
    FourierResult,
    embedding_spectrum,
    fourier_analysis,
    fourier_basis,
    key_frequencies,
    modular_addition_accuracy,
    restrict_embedding_to_frequencies,
)
from .heads import (
    AttentionPattern,
    HeadScores,
    attention_entropy,
    attention_patterns,
    detect_head_scores,
    detection_patterns,
    detection_score,
    head_pattern,
    head_scores,
    repeated_random_tokens,
)
from .logit_lens import LogitLens, logit_lens
from .metrics import LogitDiff, NextTokenLoss, logit_diff, normalized
from .patching import PatchingResult, activation_patch, patch_heads, patch_residual
from .path_patching import PathPatchingResult, path_patch
from .probing import LayerProbes, ProbeResult, control_labels, harvest, probe_layers, train_probe
from .results import Result

__all__ = [
    "OV",
    "QK",
    "AblationResult",
    "AttentionPattern",
    "AttributionCheck",
    "CompositionScores",
    "FactoredMatrix",
    "FourierResult",
    "HeadScores",
    "LayerProbes",
    "LogitAttribution",
    "LogitDiff",
    "LogitLens",
    "NextTokenLoss",
    "PatchingResult",
    "PathPatchingResult",
    "ProbeResult",
    "Result",
    "ablate",
    "ablate_heads",
    "ablate_layers",
    "ablate_neurons",
    "activation_patch",
    "attention_entropy",
    "attention_patterns",
    "attribution_patch",
    "compare",
    "composition_baseline",
    "composition_score",
    "composition_scores",
    "control_labels",
    "copying_scores",
    "detect_head_scores",
    "detection_patterns",
    "detection_score",
    "direct_logit_attribution",
    "embedding_spectrum",
    "fourier_analysis",
    "fourier_basis",
    "full_OV",
    "full_QK",
    "harvest",
    "head_pattern",
    "head_scores",
    "key_frequencies",
    "logit_diff",
    "logit_lens",
    "modular_addition_accuracy",
    "normalized",
    "patch_heads",
    "patch_residual",
    "path_patch",
    "pearson",
    "probe_layers",
    "repeated_random_tokens",
    "restrict_embedding_to_frequencies",
    "train_probe",
]
