"""Recipes: everything needed to train one bundled model from nothing, as plain data.

A recipe names its task, its model, its training settings and its data settings. Any of those
settings can be overridden by name (`llmw train induction-2l --steps=500 --d_model=32`), because the
three tables never share a key.

    recipe = RECIPES["modadd-113"].with_overrides({"steps": "500"})
    tokenizer = build_tokenizer(recipe)          # None for the synthetic tasks
    task = build_task(recipe, tokenizer)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..data.corpora import load_corpus
from ..data.tasks import modular_addition
from ..train.config import TrainConfig
from ..train.tasks import InductionTask, LanguageModelTask, ModularAdditionTask, Task
from ..transformer.config import TransformerConfig

TASKS = ("induction", "modular-addition", "char-lm", "bpe-lm")  # what a recipe trains on; its card's "task"


@dataclass(frozen=True)
class Recipe:
    name: str
    task: str  # one of TASKS
    summary: str
    model: dict[str, Any]  # TransformerConfig fields
    train: dict[str, Any]  # TrainConfig fields
    data: dict[str, Any] = field(default_factory=dict)  # the task's own settings
    references: dict[str, Any] = field(default_factory=dict)  # published figures to compare with, with credit
    # Where the behaviour the model exists to show happens, as thresholds on one of its eval metrics:
    # {"name", "metric", "start", "end"}; the card finds the steps (see runner.locate_transition).
    transition: dict[str, Any] = field(default_factory=dict)

    def model_config(self) -> TransformerConfig:
        return TransformerConfig(name=self.name, **self.model)

    def train_config(self) -> TrainConfig:
        return TrainConfig(**self.train)

    def with_overrides(self, overrides: dict[str, str]) -> Recipe:
        """Override settings by name; values are given as text (from the command line) and parsed as the
        type of the value they replace."""
        tables = {"model": dict(self.model), "train": dict(self.train), "data": dict(self.data)}
        defaults = {"model": _defaults(TransformerConfig), "train": _defaults(TrainConfig), "data": {}}
        for key, text in overrides.items():
            table = next((t for t in ("train", "model", "data") if key in tables[t] or key in defaults[t]), None)
            if table is None or key == "name":
                known = sorted((set(tables["data"]) | set(defaults["train"]) | set(defaults["model"])) - {"name"})
                raise ValueError(f"{self.name} has no setting {key!r}; settings are: {', '.join(known)}")
            current = tables[table].get(key, defaults[table].get(key))
            tables[table][key] = parse_value(key, text, current)
        recipe = dataclasses.replace(self, **tables)
        recipe.model_config(), recipe.train_config()  # fail now on a bad combination, not mid-run
        return recipe


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: (f.default if f.default is not dataclasses.MISSING else None) for f in dataclasses.fields(cls)}


def parse_value(key: str, text: str, current: Any) -> Any:
    if not isinstance(text, str):
        return text
    if isinstance(current, str):
        return text
    if text.lower() == "none":
        return None
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
    except ValueError:
        raise ValueError(f"{key}={text!r}: expected a {type(current).__name__}, like its current value {current!r}") from None
    if current is None:  # an optional number (e.g. min_lr, grad_clip) or text
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                pass
    return text


def build_tokenizer(recipe: Recipe) -> Any:
    """The tokenizer a language-model recipe trains on its corpus' training split (None for synthetic tasks)."""
    if recipe.task == "char-lm":
        from ..tokenizers import CharTokenizer

        # nanoGPT's shakespeare_char builds its vocabulary from the whole text; doing the same keeps ids comparable
        return CharTokenizer.train(load_corpus(recipe.data["corpus"]).text)
    if recipe.task == "bpe-lm":
        from ..tokenizers import BPETokenizer

        return BPETokenizer.train(load_corpus(recipe.data["corpus"]).train, recipe.data["vocab_size"])
    return None


def build_task(recipe: Recipe, tokenizer: Any = None) -> Task:
    d = recipe.data
    if recipe.task == "induction":
        return InductionTask(recipe.model["d_vocab"], d["half"], d["min_half"])
    if recipe.task == "modular-addition":
        return ModularAdditionTask(modular_addition(d["p"], d["train_fraction"], d["split_seed"]))
    if recipe.task in ("char-lm", "bpe-lm"):
        if tokenizer is None:
            raise ValueError(f"{recipe.name} is a language model: its task needs the tokenizer (see build_tokenizer)")
        corpus = load_corpus(d["corpus"])
        return LanguageModelTask(
            tokenizer.encode_array(corpus.train),
            tokenizer.encode_array(corpus.val),
            block=recipe.model["n_ctx"],
            val_bytes=len(corpus.val.encode()),
        )
    raise ValueError(f"recipe {recipe.name} has task {recipe.task!r}; expected one of {', '.join(TASKS)}")


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe(
            name="induction-2l",
            task="induction",
            summary="2-layer attention-only model on repeated random tokens: a previous-token head in layer 0 and an "
            "induction head in layer 1 form together, in a sudden drop of the loss on the repeated half",
            model=dict(
                d_model=64,
                n_layers=2,
                n_heads=4,
                d_vocab=128,
                n_ctx=49,
                attn_only=True,
                positions="rotary",
                bias_qkv=False,
                bias_attn_out=False,
                default_prepend_bos=False,
            ),
            train=dict(
                steps=1500,
                batch_size=32,
                lr=1e-3,
                warmup_steps=50,
                schedule="constant",
                weight_decay=0.01,
                beta2=0.99,
                grad_clip=1.0,
                eval_every=25,
                checkpoint_every=500,
                snapshots="every:100+every:25:300-800",  # the phase change (about 425 to 600) spans 8 or more
                snapshot_dtype="float16",
                seed=0,
            ),
            data=dict(half=24, min_half=8),
            references={"phase change": "Olsson et al. 2022, 'In-context learning and induction heads'"},
            transition=dict(name="phase change", metric="repeated_over_first", start=0.88, end=0.13),
        ),
        Recipe(
            name="modadd-113",
            task="modular-addition",
            summary="1-layer transformer on a + b mod 113 from 30% of all pairs, with weight decay 1.0: it memorises the "
            "training pairs first, and only later generalises (groks)",
            model=dict(
                d_model=128,
                n_layers=1,
                n_heads=4,
                d_vocab=114,
                n_ctx=3,
                d_mlp=512,
                act="relu",
                bias_qkv=False,
                bias_attn_out=False,
                default_prepend_bos=False,
            ),
            train=dict(
                steps=1500,
                lr=3e-3,
                warmup_steps=10,
                schedule="cosine",
                weight_decay=1.0,
                beta1=0.9,
                beta2=0.98,
                grad_clip=None,
                eval_every=25,
                checkpoint_every=250,
                snapshots="every:50:0-700+800,1000,1500",  # grokking (about 275 to 700) spans 8 or more
                snapshot_dtype="float16",
                seed=0,
            ),
            data=dict(p=113, train_fraction=0.3, split_seed=0),
            references={
                "setup": "Nanda et al. 2023, 'Progress measures for grokking via mechanistic interpretability' "
                "(p = 113, 30% train, weight decay 1.0, full batch)"
            },
            transition=dict(name="grokking", metric="test_accuracy", start=0.35, end=0.99),
        ),
        Recipe(
            name="shakespeare-char",
            task="char-lm",
            summary="character-level GPT on tinyshakespeare, nanoGPT's CPU configuration",
            model=dict(
                d_model=128,
                n_layers=4,
                n_heads=4,
                d_vocab=65,
                n_ctx=64,
                act="gelu",
                tie_embeddings=True,
                bias_qkv=False,
                bias_attn_out=False,
                bias_mlp=False,
                default_prepend_bos=False,
            ),
            train=dict(
                steps=2000,
                batch_size=12,
                lr=1e-3,
                min_lr=1e-4,
                warmup_steps=100,
                weight_decay=0.1,
                beta2=0.99,
                grad_clip=1.0,
                eval_every=250,
                checkpoint_every=500,
                snapshots="none",
                seed=0,
            ),
            data=dict(corpus="tinyshakespeare"),
            references={
                "nanoGPT CPU config val loss": 1.88,
                "nanoGPT baby GPT (GPU) val loss": 1.47,
                "source": "nanoGPT README (Karpathy), shakespeare_char",
            },
        ),
        Recipe(
            name="austen-bpe",
            task="bpe-lm",
            summary="byte-level BPE (4k vocabulary) GPT on Jane Austen's six novels",
            model=dict(
                d_model=128,
                n_layers=4,
                n_heads=4,
                d_vocab=4096,
                n_ctx=128,
                act="gelu",
                tie_embeddings=True,
                bias_qkv=False,
                bias_attn_out=False,
                bias_mlp=False,
                default_prepend_bos=False,
            ),
            train=dict(
                steps=3000,
                batch_size=16,
                lr=1e-3,
                min_lr=1e-4,
                warmup_steps=100,
                weight_decay=0.1,
                beta2=0.99,
                grad_clip=1.0,
                eval_every=250,
                checkpoint_every=500,
                snapshots="none",
                seed=0,
            ),
            data=dict(corpus="austen", vocab_size=4096),
        ),
    ]
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"no recipe {name!r}; recipes are: {', '.join(RECIPES)}")
    return RECIPES[name]
