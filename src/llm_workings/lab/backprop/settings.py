"""The Backprop page's settings table, its limits, and the request bodies its routes take."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from ...data import DATASETS
from ...nn import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, REGULARIZATIONS
from ..settings import Body, Flag, Setting, SettingsTable, bounded_int, refused
from .run import MAX_STEPS

MAX_STEPS_PER_REQUEST = 1_000
MAX_CHANGES = 1_000  # live changes replayed from one URL

SETTINGS = SettingsTable(
    (
        Setting("dataset", "choice", "xor", "Dataset", "The points the network learns to separate.", DATASETS, group="data"),
        Setting(
            "noise",
            "float",
            0.0,
            "Label noise",
            "Probability that a training or test label is flipped.",
            min=0.0,
            max=0.5,
            group="data",
        ),
        Setting(
            "samples",
            "int",
            200,
            "Samples",
            "How many points to draw (the clean XOR set always has 4).",
            min=4,
            max=2000,
            group="data",
        ),
        Setting(
            "train_ratio",
            "float",
            0.5,
            "Train share",
            "Share of the points used for training; the rest are test points.",
            min=0.1,
            max=0.9,
            group="data",
        ),
        Setting(
            "hidden",
            "int_list",
            [4],
            "Hidden layers",
            "Neurons in each hidden layer.",
            min=1,
            max=16,
            max_length=6,
            group="network",
        ),
        Setting(
            "activation",
            "choice",
            "tanh",
            "Activation",
            "The nonlinearity of every hidden neuron.",
            tuple(HIDDEN_ACTIVATIONS),
            group="network",
        ),
        Setting(
            "output", "choice", "sigmoid", "Output", "The output layer's activation.", tuple(OUTPUT_ACTIVATIONS), group="network"
        ),
        Setting("loss", "choice", "bce", "Loss", "What training minimises.", tuple(LOSSES), group="network"),
        Setting(
            "learning_rate",
            "float",
            0.5,
            "Learning rate",
            "Step size of each update. Changes take effect on the next step.",
            min=1e-5,
            max=100.0,
            log_scale=True,
            live=True,
            group="training",
        ),
        Setting("batch_size", "int", 4, "Batch size", "Examples averaged in each step.", min=1, max=256, group="training"),
        Setting(
            "momentum",
            "float",
            0.0,
            "Momentum",
            "Share of the previous update carried into the next.",
            min=0.0,
            max=0.99,
            group="training",
        ),
        Setting(
            "regularization",
            "choice",
            "none",
            "Regularization",
            "Penalty on the weights' size.",
            REGULARIZATIONS,
            group="training",
        ),
        Setting(
            "reg_rate",
            "float",
            0.0,
            "Regularization rate",
            "Strength of the penalty. Changes take effect on the next step.",
            min=0.0,
            max=10.0,
            live=True,
            group="training",
        ),
        Setting(
            "seed",
            "int",
            1,
            "Seed",
            "Seeds the data, the initial weights and the batch order.",
            min=0,
            max=2**31 - 1,
            group="training",
        ),
    )
)
LIVE = tuple(s.name for s in SETTINGS.settings if s.live)

Settings = SETTINGS.model("BackpropSettings")
LiveSettings = SETTINGS.model(
    "LiveSettings", only=LIVE, unknown="{name!r} cannot change mid-run (only {known} can); start a new run instead"
)


def _changes(value: Any) -> list[list]:
    """A replay log: [[step, setting, value], ...] for live settings only."""
    if not isinstance(value, list):
        raise refused("changes must be a list of [step, setting, value] entries", field="changes")
    if len(value) > MAX_CHANGES:
        raise refused(f"changes may have at most {MAX_CHANGES} entries; got {len(value)}", field="changes")
    clean = []
    for entry in value:
        if not (isinstance(entry, list) and len(entry) == 3):
            raise refused(f"each change must be [step, setting, value]; got {str(entry)[:80]}", field="changes")
        step, name, v = entry
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEPS:
            raise refused(f"a change's step must be an integer between 0 and {MAX_STEPS}; got {step!r}", field="changes")
        if name not in LIVE:
            raise refused(f"only {list(LIVE)} can change mid-run; got {str(name)[:80]!r}", field="changes")
        clean.append([step, name, SETTINGS.by_name[name].coerce(v)])
    return clean


Example = bounded_int(0, SETTINGS.by_name["batch_size"].max)  # which example of the batch the trace follows


class View(Body):
    """What every answer with a run's state may ask for: the traced example, and the parameters' history."""

    example: Example = 0
    history: Flag = True


class CreateRun(View):
    settings: Settings = Field(default_factory=Settings)
    step: bounded_int(0, MAX_STEPS) = 0  # replay a shared run up to this step
    changes: Annotated[list[list], BeforeValidator(_changes)] = Field(default_factory=list)


class Step(View):
    steps: bounded_int(1, MAX_STEPS_PER_REQUEST) = 1


class Back(View):
    steps: bounded_int(1, MAX_STEPS) = 1


class SetLive(View):
    settings: LiveSettings = Field(default_factory=LiveSettings)
