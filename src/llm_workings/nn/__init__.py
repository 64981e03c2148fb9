"""A from-scratch neural network engine in NumPy: the "no magic" layer behind the backprop lab.

from llm_workings.nn import MLP, Trainer
from llm_workings.data import make_dataset

data = make_dataset("xor")
net = MLP.create([2, 4, 1], hidden="tanh", output="sigmoid", loss="bce", seed=0)
trainer = Trainer(net, data.X_train, data.y_train, learning_rate=0.3, batch_size=4)
trace = trainer.step(trace=True)   # every number of the step
"""

from .functions import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, check_output_and_loss
from .mlp import MLP, ForwardPass, Gradients, classes_from_output
from .trainer import REGULARIZATIONS, DivergenceError, LayerTrace, StepTrace, Trainer, TrainerState

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
    "StepTrace",
    "Trainer",
    "TrainerState",
    "check_output_and_loss",
    "classes_from_output",
]
