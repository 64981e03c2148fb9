"""Every checkpoint on the Train page, checked against the trainer on the recipe its query sets up.

The recipe is built as the lab builds a run from that query (`jobs.training.resolve`), and trained
in-process by the same `Trainer` the job runs; docs/lessons/train.md quotes the same answers.
"""

from __future__ import annotations

import math
import re
from html import unescape
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import pytest

from llm_workings.lab.jobs.training import resolve
from llm_workings.train import Trainer
from llm_workings.transformer import Transformer
from llm_workings.zoo.recipes import build_task

pytestmark = pytest.mark.usefixtures("one_thread")
HTML = (resources.files("llm_workings.lab") / "static" / "train.html").read_text()


def checkpoint(name: str) -> tuple[str, dict]:
    """(the checkpoint's reveal text, the recipe and overrides its data-query sets up)."""
    match = re.search(rf'<div class="checkpoint" id="checkpoint-{name}" data-query="([^"]*)">(.*?)</div>\s*</div>', HTML, re.S)
    assert match, f"no checkpoint-{name} in train.html"
    query = {k: v[0] for k, v in parse_qs(urlsplit(unescape(match.group(1))).query).items()}
    recipe = query.pop("recipe")
    overrides = {k: int(v) if v.isdigit() else float(v) for k, v in query.items()}
    return re.sub(r"<[^>]+>", "", match.group(2)), {"recipe": recipe, "overrides": overrides}


def trainer(setup: dict, run_dir=None, stop_at: int | None = None) -> Trainer:
    recipe, _ = resolve(setup["recipe"], setup["overrides"])
    model = Transformer(recipe.model_config()).init_weights(recipe.train["seed"])
    cfg = recipe.train_config()
    cfg.snapshots = "none"  # the claims are about the losses; snapshots only cost time here
    return Trainer(model, build_task(recipe), cfg, run_dir=run_dir, progress=False, on_step=lambda r: r.step == stop_at)


def test_the_first_loss_is_a_uniform_guess_over_the_vocabulary():
    reveal, setup = checkpoint("first-loss")
    assert "within 0.05 of ln 128 ≈ 4.852" in reveal
    first = trainer(setup, stop_at=1).train().losses[0]
    assert abs(first - math.log(128)) < 0.05, first


def test_a_paused_and_resumed_run_repeats_the_uninterrupted_losses_exactly(tmp_path):
    reveal, setup = checkpoint("resume")
    assert "bit for bit" in reveal
    straight = trainer(setup, stop_at=40).train()
    paused = trainer(setup, run_dir=tmp_path, stop_at=15).train()
    assert paused.interrupted and paused.steps_done == 15
    resumed = trainer(setup, run_dir=tmp_path, stop_at=40).train()  # a new trainer: it reads the checkpoint
    assert resumed.losses[:40] == straight.losses[:40]
    assert len(set(straight.losses[:40])) == 40  # each step has its own batch and loss: nothing compared is a constant
