"""What a lab training run may change, per recipe: a settings table built from the recipe's own fields.

Each row is a field of the recipe's model, training or data table (`zoo/recipes.py`), with its
default read from the recipe and a range that keeps a run to minutes on a laptop's CPU. The same
table checks a posted run (an out-of-range value is refused naming the field and its range) and
builds the Train page's form (`GET /api/train/schema`).

    table = RECIPE_SETTINGS["modadd-113"]      # a SettingsTable
    clean = check_overrides("modadd-113", {"p": 59})   # {"p": 59}; {"p": 0} raises ApiError (field "p")
    warnings("modadd-113", {"p": 100})          # [{"field": "p", "message": "p = 100 is not prime: ..."}]

Only the recipes the lab can stop within a step are offered: austen-bpe trains a BPE vocabulary
before its first step, which no cancel can interrupt.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import ValidationError

from ..errors import ApiError, describe_validation_error
from ..settings import Setting, SettingsTable

MAX_STEPS = 5000  # minutes, not hours, on a laptop's CPU for the bundled recipes
LabRecipe = Literal["induction-2l", "modadd-113", "shakespeare-char"]
LAB_RECIPES: tuple[str, ...] = LabRecipe.__args__

# name -> (kind, min, max, label, help, log scale). Defaults come from each recipe.
FIELDS: dict[str, tuple[str, float, float, str, str, bool]] = {
    "steps": ("int", 1, MAX_STEPS, "Steps", "Optimizer updates: the length of the run.", False),
    "batch_size": ("int", 1, 256, "Batch size", "Sequences in each update.", False),
    "lr": ("float", 1e-5, 1.0, "Learning rate", "The peak step size of AdamW, reached after the warmup.", True),
    "warmup_steps": (
        "int",
        0,
        MAX_STEPS,
        "Warmup steps",
        "Updates over which the learning rate rises from 0 to its peak.",
        False,
    ),
    "weight_decay": ("float", 0.0, 10.0, "Weight decay", "How hard AdamW pulls every matrix towards zero at each update.", False),
    "seed": ("int", 0, 99999, "Seed", "Fixes the initial weights and every batch: the same seed repeats the run exactly.", False),
    "eval_every": ("int", 1, MAX_STEPS, "Evaluate every", "Updates between two evaluations (the eval curves' points).", False),
    "d_model": ("int", 8, 256, "Width (d_model)", "The residual stream's size; a multiple of the number of heads.", False),
    "n_layers": ("int", 1, 4, "Layers", "Transformer blocks, one after the other.", False),
    "n_heads": ("int", 1, 16, "Heads", "Attention heads per layer; d_model must divide evenly among them.", False),
    "n_ctx": ("int", 8, 256, "Context (n_ctx)", "How many characters the model reads at once.", False),
    "d_mlp": ("int", 16, 2048, "MLP width (d_mlp)", "Neurons in the MLP layer.", False),
    "p": (
        "int",
        3,
        227,
        "Modulus p",
        "The model learns a + b mod p from a share of all p² pairs; the vocabulary grows to p + 1 tokens.",
        False,
    ),
    "train_fraction": (
        "float",
        0.05,
        0.95,
        "Training share",
        "The share of all pairs it trains on; the rest measure whether it generalises.",
        False,
    ),
}
OFFERED: dict[str, tuple[str, ...]] = {
    "induction-2l": ("steps", "batch_size", "lr", "warmup_steps", "weight_decay", "seed", "eval_every", "d_model", "n_heads"),
    "modadd-113": (
        "p",
        "train_fraction",
        "steps",
        "lr",
        "warmup_steps",
        "weight_decay",
        "seed",
        "eval_every",
        "d_model",
        "d_mlp",
    ),
    "shakespeare-char": (
        "d_model",
        "n_layers",
        "n_heads",
        "n_ctx",
        "steps",
        "batch_size",
        "lr",
        "warmup_steps",
        "weight_decay",
        "seed",
        "eval_every",
    ),
}


@functools.cache
def recipe_table(recipe_name: str) -> SettingsTable:
    from ...zoo.recipes import RECIPES  # here, not at the top: zoo loads torch, and the lab starts without it

    recipe = RECIPES[recipe_name]
    tables = {"model": recipe.model, "train": recipe.train, "data": recipe.data}
    rows = []
    for name in OFFERED[recipe_name]:
        kind, lo, hi, label, help, log = FIELDS[name]
        group = next(table for table, values in tables.items() if name in values)
        rows.append(Setting(name, kind, tables[group][name], label, help, min=lo, max=hi, log_scale=log, group=group))
    return SettingsTable(tuple(rows))


def check_overrides(recipe_name: str, overrides: Any) -> dict[str, Any]:
    """The posted settings, clean; a 400 naming the first bad one (its range, or the names it may have)."""
    table = recipe_table(recipe_name)
    model = table.model("Overrides", unknown=f"{recipe_name} has no setting {{name!r}} the lab can change; it has {{known}}")
    try:
        return model.model_validate(overrides).model_dump(exclude_unset=True)
    except ValidationError as e:
        message, field = describe_validation_error(e.errors())
        raise ApiError(message, field=field or "overrides") from None


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def warnings(recipe_name: str, overrides: dict[str, Any]) -> list[dict[str, str]]:
    """Settings that train, but not into what the lessons describe."""
    found = []
    p = overrides.get("p")
    if recipe_name == "modadd-113" and p is not None and not is_prime(p):
        found.append(
            {
                "field": "p",
                "message": f"p = {p} is not prime. The run is allowed, but the grokking lesson's Fourier circuit "
                "assumes a prime modulus: with a composite one, a + b mod p splits into smaller problems "
                "and the key frequencies need not behave as published.",
            }
        )
    return found
