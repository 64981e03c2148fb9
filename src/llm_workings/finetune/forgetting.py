"""Learning against forgetting: fine-tune a model on a new domain and watch both domains' losses.

    task = domain_shift("shakespeare-char", "austen")
    runs = learning_vs_forgetting("shakespeare-char", task, [Method("full", None, 5e-4), Method("r4", LoRAConfig(4, 8), 5e-3)])
    runs.plot("learning-forgetting.svg")

Learning is the target domain's validation loss going down; forgetting is the original domain's
validation loss going up. Biderman et al. (2024, "LoRA Learns Less and Forgets Less") found, on
Llama-2-7B, that LoRA learns less than full fine-tuning and forgets less, on one trade-off curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..analysis.results import Result
from ..data.corpora import load_corpus
from ..train.config import TrainConfig
from ..train.tasks import LanguageModelTask
from ..transformer.model import Transformer
from ..zoo.registry import card, load
from .lora import LoRAConfig, LoRAError
from .run import finetune


class DomainShiftTask:
    """Trains on the target domain; evaluates on it (learning) and on the original domain (forgetting)."""

    name = "domain-shift"

    def __init__(self, target: LanguageModelTask, original: LanguageModelTask) -> None:
        self.target, self.original = target, original

    def train_batch(self, rng: np.random.Generator, batch_size: int):
        return self.target.train_batch(rng, batch_size)

    def tokens_per_batch(self, batch_size: int) -> int:
        return self.target.tokens_per_batch(batch_size)

    def loss(self, model: Transformer, batch):
        return self.target.loss(model, batch)

    def evaluate(self, model: Transformer, final: bool = False) -> dict[str, float]:
        if final:
            return {
                "target_val_loss": self.target.evaluate(model, True)["val_loss"],
                "original_val_loss": self.original.evaluate(model, True)["val_loss"],
            }
        return {
            "target_val_loss": self.target.split_loss(model, "val"),
            "original_val_loss": self.original.split_loss(model, "val"),
        }


def domain_shift(model_name: str, target_corpus: str, eval_batches: int = 8, eval_batch_size: int = 32) -> DomainShiftTask:
    """A bundled character model's own corpus against a new one. Characters the model's vocabulary lacks
    are dropped from the new corpus (for shakespeare-char on Austen: '"', brackets, digits but 3, '*' and '£': 0.5% of the text)."""
    model, tokenizer = load(model_name)
    block = model.cfg.n_ctx
    corpus = card(model_name).get("data", {}).get("corpus")
    if corpus is None:
        raise LoRAError(f"{model_name} was not trained on a corpus (its card names none); pick a language model")
    original = load_corpus(corpus)
    target = load_corpus(target_corpus)

    def lm(train: str, val: str) -> LanguageModelTask:
        if hasattr(tokenizer, "ids"):  # a character vocabulary
            train, val = ("".join(c for c in text if c in tokenizer.ids) for text in (train, val))
        return LanguageModelTask(
            tokenizer.encode_array(train), tokenizer.encode_array(val), block, len(val.encode()), eval_batches, eval_batch_size
        )

    return DomainShiftTask(lm(target.train, target.val), lm(original.train, original.val))


@dataclass(frozen=True)
class Method:
    label: str
    lora: LoRAConfig | None  # None: full fine-tuning
    lr: float


@dataclass
class Curve:
    label: str
    trainable: int  # parameters trained
    steps: list[int] = field(default_factory=list)
    target_val_loss: list[float] = field(default_factory=list)
    original_val_loss: list[float] = field(default_factory=list)


@dataclass
class LearningForgetting(Result):
    result_type = "learning_vs_forgetting"
    curves: list[Curve] = field(default_factory=list)

    def draw(self, fig) -> None:
        ax = fig.subplots()
        for curve in self.curves:
            (line,) = ax.plot(curve.target_val_loss, curve.original_val_loss, marker=".", ms=3, lw=1.2, label=curve.label)
            ax.plot(curve.target_val_loss[-1:], curve.original_val_loss[-1:], "o", color=line.get_color())
        start = self.curves[0]
        ax.plot(start.target_val_loss[:1], start.original_val_loss[:1], "k*", ms=10, label="base model")
        ax.set(
            xlabel="target-domain validation loss (learning: lower is better)",
            ylabel="original-domain validation loss (forgetting: higher is worse)",
            title="learning against forgetting",
        )
        ax.invert_xaxis()  # learning goes right
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)


def learning_vs_forgetting(
    model_name: str,
    task: DomainShiftTask,
    methods: list[Method],
    steps: int,
    batch_size: int = 32,
    eval_every: int = 25,
    seed: int = 0,
) -> LearningForgetting:
    """Fine-tune a fresh copy of the bundled model with each method; both losses every `eval_every` steps."""
    result = LearningForgetting()
    for method in methods:
        model, _ = load(model_name)
        before = task.evaluate(model.eval())
        cfg = TrainConfig(
            steps=steps, batch_size=batch_size, lr=method.lr, warmup_steps=steps // 10, eval_every=eval_every, seed=seed
        )
        run = finetune(model, task, cfg, lora=method.lora, progress=False)
        trainable = run.adapter.num_parameters() if run.adapter is not None else sum(p.numel() for p in model.parameters())
        curve = Curve(method.label, trainable, [0], [before["target_val_loss"]], [before["original_val_loss"]])
        for e in run.train.evals:
            curve.steps.append(int(e["step"]))
            curve.target_val_loss.append(e["target_val_loss"])
            curve.original_val_loss.append(e["original_val_loss"])
        result.curves.append(curve)
    return result
