"""The TeX the Backprop page writes its equations with, keyed by the engine's names.

The engine's own formulas (`Activation.formula`, `Loss.formula`) and which output/loss
pairs it fuses (`FUSED_OUTPUT_GRADIENT`) come from `nn/` itself; this adds the symbols and
gradients the step-by-step equations need. The page reads them from the schema and
repeats none of them, so a rule is written once, here or in `nn/`.
"""

from __future__ import annotations

from ...nn import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, REGULARIZATIONS
from ...nn.functions import FUSED_OUTPUT_GRADIENT

# How a = f(z) is named inside an equation, e.g. a = \tanh(z).
SYMBOLS = {
    "tanh": r"\tanh",
    "sigmoid": r"\sigma",
    "relu": r"\mathrm{ReLU}",
    "linear": r"\mathrm{id}",
    "softmax": r"\mathrm{softmax}",
}

# dL/da at the output layer, for the batch-averaged loss.
LOSS_GRADIENTS = {
    "bce": r"\frac{1}{B}\,\frac{a^{[L]} - y}{a^{[L]}\,(1 - a^{[L]})}",
    "cce": r"-\frac{1}{B}\,\frac{y}{a^{[L]}}",
    "mse": r"\frac{1}{B}\,\big(a^{[L]} - y\big)",
}

# The penalty R and its gradient; "#W" stands for the weight matrix (or row) being written.
PENALTIES = {
    "l1": {"R": r"\lambda\sum_{l}\sum_{i,j}\big|W^{[l]}_{ij}\big|", "dR_dW": r"\lambda\,\operatorname{sign}\big(#W\big)"},
    "l2": {"R": r"\frac{\lambda}{2}\sum_{l}\sum_{i,j}\big(W^{[l]}_{ij}\big)^2", "dR_dW": r"\lambda\,#W"},
}


def formulas() -> dict:
    activations = {**HIDDEN_ACTIVATIONS, **OUTPUT_ACTIVATIONS}
    return {
        "activations": {n: {"symbol": SYMBOLS[n], "f": f.formula, "df": f.derivative} for n, f in activations.items()},
        "losses": {n: {"title": f.title, "f": f.formula, "dL_da": LOSS_GRADIENTS[n]} for n, f in LOSSES.items()},
        "fused": sorted([output, loss] for output, loss in FUSED_OUTPUT_GRADIENT),
        "penalties": {n: PENALTIES[n] for n in REGULARIZATIONS if n != "none"},
    }
