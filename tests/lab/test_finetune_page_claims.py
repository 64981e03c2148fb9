"""The Fine-tuning lesson's claims, checked against the engine with the settings its HTML links to:
the rank checkpoint's reveal ("rank 16 forgets more, and learns more", with its four numbers), and
every try-this link (each starts a run the job accepts, except the one that shows a refusal)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

import pytest

from llm_workings import zoo
from llm_workings.finetune import finetune
from llm_workings.finetune.forgetting import domain_shift
from llm_workings.lab.errors import ApiError
from llm_workings.lab.jobs.finetuning import EVAL_BATCH_SIZE, EVAL_BATCHES, check_model, check_settings, lora_config, train_config

HTML = (resources.files("llm_workings.lab") / "static" / "fine-tuning.html").read_text()


class Lesson(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.checkpoints: dict[str, str] = {}
        self.tries: list[str] = []
        self.claims: dict[str, str] = {}
        self._claim: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "checkpoint" in (a.get("class") or "").split():
            self.checkpoints[a["id"]] = a["data-query"]
        if tag == "a" and a.get("class") == "try":
            self.tries.append(a["href"])
        if a.get("data-claim"):
            self._claim = a["data-claim"]

    def handle_data(self, data):
        if self._claim:
            self.claims[self._claim] = data
            self._claim = None


LESSON = Lesson()
LESSON.feed(HTML)


def settings_of(query: str) -> dict:
    """The job's settings a page URL stands for (as static/js/finetune/state.js reads it)."""
    posted = {}
    for key, value in parse_qsl(urlsplit(query).query):
        posted[key] = float(value) if re.fullmatch(r"[+-]?\d*\.\d+|[+-]?\d+\.?\d*e[+-]?\d+", value) else value
        if re.fullmatch(r"[+-]?\d+", value):
            posted[key] = int(value)
    return check_settings(posted)


def final_losses(settings: dict) -> dict:
    model, _ = zoo.load(settings["model"])
    task = domain_shift(settings["model"], settings["corpus"], EVAL_BATCHES, EVAL_BATCH_SIZE)
    run = finetune(model, task, train_config(settings), lora=lora_config(settings), progress=False)
    return run.train.evals[-1]


@pytest.mark.slow
def test_rank_16_forgets_more_than_rank_1_and_learns_more():
    rank16 = settings_of(LESSON.checkpoints["checkpoint-rank"])
    assert (rank16["method"], rank16["rank"], rank16["alpha"], rank16["steps"]) == ("lora", 16, 32.0, 40)
    rank1 = {**rank16, "rank": 1, "alpha": 2.0}  # the same scaling alpha / r = 2, as the question says
    high, low = final_losses(rank16), final_losses(rank1)
    assert high["original_val_loss"] > low["original_val_loss"]  # forgets more
    assert high["target_val_loss"] < low["target_val_loss"]  # learns more
    shown = {
        "rank16-original": high["original_val_loss"],
        "rank1-original": low["original_val_loss"],
        "rank16-target": high["target_val_loss"],
        "rank1-target": low["target_val_loss"],
    }
    for key, value in shown.items():
        assert LESSON.claims[key] == f"{value:.4g}", key


def test_every_try_link_starts_a_run_the_job_accepts_but_the_one_that_shows_a_refusal():
    assert len(LESSON.tries) >= 4
    for href in LESSON.tries:
        settings = settings_of(href)
        if "mlp.gate" in settings["targets"]:
            with pytest.raises(ApiError, match="no linear map 'mlp.gate'; it has"):
                check_model(settings)
        else:
            check_model(settings)
