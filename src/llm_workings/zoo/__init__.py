"""The model zoo: recipes that train small models from nothing, and the bundled models they produced.

from llm_workings import zoo
zoo.list_models()                         # ['induction-2l', 'modadd-113', ...]
model, tokenizer = zoo.load("shakespeare-char")
zoo.run_recipe(zoo.get_recipe("induction-2l"), "runs/induction-2l")   # as `llmw train induction-2l`
"""

from .recipes import RECIPES, Recipe, build_task, build_tokenizer, get_recipe
from .registry import card, list_models, load, load_snapshot, model_dir, snapshots
from .runner import run_recipe

__all__ = [
    "RECIPES",
    "Recipe",
    "build_task",
    "build_tokenizer",
    "card",
    "get_recipe",
    "list_models",
    "load",
    "load_snapshot",
    "model_dir",
    "run_recipe",
    "snapshots",
]
