"""A from-scratch neural network engine in NumPy: the "no magic" layer behind the backprop lab.

from llm_workings.nn import MLP, MLPTrainer
from llm_workings.data import make_dataset

data = make_dataset("xor")
net = MLP.create([2, 4, 1], hidden="tanh", output="sigmoid", loss="bce", seed=0)
trainer = MLPTrainer(net, data.X_train, data.y_train, learning_rate=0.3, batch_size=4)
trace = trainer.step(trace=True)   # every number of the step
"""

from .functions import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, check_output_and_loss
from .mlp import MLP, ForwardPass, Gradients, classes_from_output
from .trainer import REGULARIZATIONS, DivergenceError, LayerTrace, MLPTrainer, StepTrace, TrainerState

__all__ = [
    "HIDDEN_ACTIVATIONS",
    "LOSSES",
    "OUTPUT_ACTIVATIONS",
    "REGULARIZATIONS",
    "MLP",
    "DivergenceError",
    "ForwardPass",
    "Gradients",
    "LayerTrace",
    "MLPTrainer",
    "StepTrace",
    "TrainerState",
    "check_output_and_loss",
    "classes_from_output",
]


def __getattr__(name: str):
    # `Trainer` was this engine's name for MLPTrainer until train.Trainer (the transformer's) took the
    # meaning; the old name keeps working, with a warning, for code written against the README of then.
    if name == "Trainer":
        import warnings

        warnings.warn("llm_workings.nn.Trainer is now MLPTrainer", DeprecationWarning, stacklevel=2)
        return MLPTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
