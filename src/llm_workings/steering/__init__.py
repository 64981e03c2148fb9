"""Steering: add a direction to a model's activations and measure what it does and what it costs.

    v = from_contrast(model, pairs, ("resid_pre", 2))        # build.py: mean_diff, pca or logistic
    with steer(model, v.with_(coefficient=4, positions="generated")):
        model.generate("ROMEO:", 40)                           # apply.py: KV-cache aware
    sweep = steering_sweep(model, v, coefficients, metric, neutral_tokens)   # sweep.py

See docs/steering.md for the conventions (where the vector is added, its normalisation, positions
under the KV cache).
"""

from .apply import position_mask, steer
from .build import AGGREGATIONS, aggregate, contrast_readings, from_contrast, from_probe
from .sweep import SteeringSweep, TargetProbability, steering_sweep
from .vector import SteeringError, SteeringVector, from_decoder_row, from_tensor, hook_width

__all__ = [
    "AGGREGATIONS",
    "SteeringError",
    "SteeringSweep",
    "SteeringVector",
    "TargetProbability",
    "aggregate",
    "contrast_readings",
    "from_contrast",
    "from_decoder_row",
    "from_probe",
    "from_tensor",
    "hook_width",
    "position_mask",
    "steer",
    "steering_sweep",
]
