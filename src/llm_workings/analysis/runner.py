"""Every analysis by name, on a bundled or local model, with inputs that suit the model's task:
what `llmw analyze MODEL ANALYSIS` runs.

    result, headline = run_analysis("induction-2l", "heads")
    result.save_json("heads.json"); result.plot("heads.png")

Default inputs, seeded:
- induction (and any model without a tokenizer but modular addition): repeated random tokens
  [BOS, A, A]; for patching, the corrupted run replaces the first copy ([BOS, A', A]) and the
  metric is the loss on the repeated half;
- modular addition: pairs (a, b, '='); patching changes a, with the logit difference between the
  clean and the corrupted answer as metric;
- language models: windows of the validation text of the corpus the model was trained on (or
  `prompt`); patching replaces one token in the middle and scores the loss after it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data import load_corpus
from ..transformer import LoadError, Transformer
from ..transformer.loading import read_config
from ..transformer.saving import FORMAT
from .conventions import AnalysisError
from .metrics import LogitDiff, Metric, NextTokenLoss
from .results import Result

PROPERTIES = ("speaker-line", "next-space", "inside-quotation")


@dataclass
class Inputs:
    """What analyses run on: `tokens` for one run, a clean/corrupted pair with a metric for patching."""

    tokens: torch.Tensor
    clean: torch.Tensor
    corrupted: torch.Tensor
    metric: Metric
    card: dict[str, Any]


def load_any(source: str | os.PathLike) -> tuple[Transformer, dict[str, Any]]:
    """A bundled model, a directory written by `llmw train` / `Transformer.save`, or a Hugging Face
    checkpoint directory; with its card ({} when it has none)."""
    from .. import zoo

    try:
        folder = zoo.model_dir(source)
    except LoadError as not_local:
        try:  # a Hugging Face hub name, on a machine that can download it
            return Transformer.from_hf(source).eval(), {}
        except LoadError as e:
            raise LoadError(f"{not_local}; as a Hugging Face hub name: {e}") from e
    if (folder / "config.json").is_file() and read_config(folder).get("format") != FORMAT:  # not one of ours
        return Transformer.from_hf(folder).eval(), {}
    model, _ = zoo.load(folder)
    return model, zoo.card(folder) if (folder / zoo.registry.CARD).is_file() else {}


def default_inputs(model: Transformer, card: dict[str, Any], seed: int = 0, prompt: str | None = None, batch: int = 8) -> Inputs:
    gen = torch.Generator().manual_seed(seed)
    task = card.get("task", "")
    if task == "modular-addition":
        p = int(card["data"]["p"])
        a, b = torch.randint(0, p, (2, batch), generator=gen)
        other = (a + torch.randint(1, p, (batch,), generator=gen)) % p  # a different first number
        equals = torch.full((batch,), p)
        clean, corrupted = torch.stack([a, b, equals], 1), torch.stack([other, b, equals], 1)
        answers = torch.stack([(a + b) % p, (other + b) % p], 1)
        return Inputs(clean, clean, corrupted, LogitDiff(answers), card)
    if model.tokenizer is None:  # induction-style: the task every small model can be probed with
        from .heads import repeated_random_tokens

        half = min(16, (model.cfg.n_ctx - 1) // 2)
        clean = repeated_random_tokens(model, batch=batch, half=half, seed=seed)
        corrupted = clean.clone()
        corrupted[:, 1 : half + 1] = repeated_random_tokens(model, batch=batch, half=half, seed=seed + 1)[:, 1 : half + 1]
        mask = torch.zeros(batch, 2 * half, dtype=torch.bool)
        mask[:, half + 1 :] = True  # predictions inside the repeated half, where only induction helps
        return Inputs(clean, clean, corrupted, NextTokenLoss(clean, mask), card)
    if prompt is not None:
        tokens = model.to_tokens(prompt)
    else:
        corpus = card.get("data", {}).get("corpus")
        if corpus is None:
            raise AnalysisError("this model has no card naming its corpus: give a --prompt")
        ids = model.tokenizer.encode(load_corpus(corpus).val[:20_000], add_special_tokens=False)
        length = min(32, model.cfg.n_ctx)
        tokens = torch.tensor(ids[: batch * length]).view(batch, length)
    middle = tokens.shape[1] // 2
    corrupted = tokens.clone()
    corrupted[:, middle] = torch.randint(0, model.cfg.d_vocab, (tokens.shape[0],), generator=gen)
    mask = torch.zeros(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool)
    mask[:, middle:] = True  # the predictions the replaced token can reach
    return Inputs(tokens, tokens, corrupted, NextTokenLoss(tokens, mask), card)


# -- the analyses ---------------------------------------------------------------------------------
def _logit_lens(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from .logit_lens import logit_lens

    tokens, target = inputs.tokens[:1], None
    if inputs.card.get("task") == "modular-addition":  # only the answer, read at '=', is predicted
        target = torch.full_like(tokens, -1)
        target[:, -1] = inputs.metric.answers[:1, 0]
    result = logit_lens(model, tokens, target=target)
    final = result.target_rank[-1, 0]
    valid = final >= 0
    return result, f"final layer ranks the next token first at {float((final[valid] == 0).float().mean()):.0%} of positions"


def _dla(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from .attribution import direct_logit_attribution

    tokens = inputs.tokens
    if inputs.card.get("task") == "modular-addition":
        position, correct = -1, inputs.metric.answers[:, 0]  # the answer is read at '='
    else:
        position, correct = -2, tokens[:, -1]  # the last prediction whose true next token is known
    with torch.no_grad():
        logits = model(tokens)[:, position]
    wrong = logits.scatter(1, correct[:, None], float("-inf")).argmax(-1)  # the model's best other guess
    result = direct_logit_attribution(model, tokens, torch.stack([correct, wrong], 1), position=position)
    top = result.mean.abs().argsort(descending=True)[:3].tolist()
    return result, "largest contributions: " + ", ".join(f"{result.labels[i]} {float(result.mean[i]):+.2f}" for i in top)


def _heads(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from .heads import head_scores, repeated_random_tokens

    half = min(20, (model.cfg.n_ctx - 1) // 2)
    result = head_scores(model, repeated_random_tokens(model, batch=8, half=half, seed=options.get("seed", 0)))
    best = {kind: result.top(kind, 1)[0] for kind in ("previous_token", "induction")}
    return result, "; ".join(f"best {k.replace('_', '-')} head L{l}H{h} ({s:.2f})" for k, (l, h, s) in best.items())


def _composition(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from .circuits import composition_scores

    result = composition_scores(model, options.get("composition", "K"))
    (l1, h1), (l2, h2), score = result.top(1)[0]
    return result, (
        f"strongest {result.composition}-composition L{l1}H{h1} -> L{l2}H{h2}: {score:.3f} "
        f"(random {result.baseline:.3f} ± {result.baseline_std:.3f})"
    )


def _patching(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from .patching import HEAD_VECTORS, patch_heads, patch_residual

    activation = options.get("activation", "resid_pre")
    if activation in HEAD_VECTORS or activation == "pattern":
        result = patch_heads(
            model,
            inputs.clean,
            inputs.corrupted,
            inputs.metric,
            activation=activation,
            by_position=options.get("by_position", False),
        )
    else:
        result = patch_residual(model, inputs.clean, inputs.corrupted, inputs.metric, activation=activation)
    return result, f"clean {result.clean:.3f}, corrupted {result.corrupted:.3f}; {_best_cell(result)}"


def _best_cell(result) -> str:
    flat = result.normalized.flatten().abs().argmax()
    index = torch.unravel_index(flat, result.values.shape)
    where = ", ".join(f"{axis} {int(i)}" for axis, i in zip(result.axes, index))
    return f"largest effect at {where}: {float(result.normalized[index]):.2f} normalized"


def _path_patching(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from .path_patching import path_patch

    receivers = options.get("receivers") or ["logits"]
    result = path_patch(model, inputs.clean, inputs.corrupted, inputs.metric, receivers=receivers)
    best = int((result.normalized - float(result.direction == "noise")).abs().argmax())
    return result, f"strongest sender into {', '.join(receivers)}: {result.senders[best]} ({float(result.normalized[best]):.2f})"


def _attribution_patching(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from .attribution_patching import compare

    activation = options.get("activation", "resid_pre")
    indexed = ("head",) if activation in ("z", "q", "k", "v", "result", "pattern") else ("pos",)
    result = compare(model, inputs.clean, inputs.corrupted, inputs.metric, activation, indexed)
    return result, f"correlation with activation patching ({activation}): r = {result.pearson:.3f}"


def _ablation(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from .ablation import ablate_heads

    result = ablate_heads(model, inputs.clean, method=options.get("method", "mean"), metric=inputs.metric)
    i = int(result.change.abs().argmax())
    return result, f"baseline {result.baseline:.3f}; largest change {result.labels[i]} {float(result.change.flatten()[i]):+.3f}"


def _fourier(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from .fourier import fourier_analysis

    if inputs.card.get("task") != "modular-addition":
        raise AnalysisError("the Fourier analysis is for modular-addition models (e.g. modadd-113)")
    result = fourier_analysis(model, int(inputs.card["data"]["p"]))
    return result, (
        f"key frequencies {result.key_freqs}: accuracy {result.accuracy_full:.3f} full, "
        f"{result.accuracy_key:.3f} with only them, {result.accuracy_control:.3f} with as many others"
    )


def _probe(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from ..data import text_labels
    from .probing import probe_layers

    corpus = inputs.card.get("data", {}).get("corpus")
    if model.tokenizer is None or corpus is None:
        raise AnalysisError("probes need a language model trained on a bundled corpus (shakespeare-char, austen-bpe)")
    prop = options.get("property") or ("inside-quotation" if corpus == "austen" else "speaker-line")
    label_fns: dict[str, Callable[[str], Any]] = {
        "speaker-line": text_labels.speaker_line,
        "next-space": text_labels.next_char_is,
        "inside-quotation": text_labels.inside_quotation,
    }
    if prop not in label_fns:
        raise AnalysisError(f"unknown property {prop!r}; choose one of {', '.join(PROPERTIES)}")
    text = load_corpus(corpus).val[:20_000]
    length = min(128, model.cfg.n_ctx)
    tokens, labels = text_labels.text_windows(text, label_fns[prop](text), model.tokenizer, length)
    tokens, labels = torch.from_numpy(tokens[:32]), torch.from_numpy(labels[:32])
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, length // 4 :] = True  # the first positions cannot see far enough back
    result = probe_layers(model, tokens, labels, mask=mask)
    best = int(result.test_score.argmax())
    line = f"{prop}: best layer {result.layer_labels[best]} test accuracy {float(result.test_score[best]):.3f}"
    if result.selectivity is not None:
        line += f", selectivity {float(result.selectivity[best]):+.3f} (majority class {result.baseline:.3f})"
    return result, line


def _saliency(model: Transformer, inputs: Inputs, options: dict[str, Any]) -> tuple[Result, str]:
    from .saliency import attention_rollout, gradient_x_input, integrated_gradients

    tokens = inputs.tokens[:1]
    with torch.no_grad():
        logits = model(tokens)[0, -1]
    if inputs.card.get("task") == "modular-addition":  # the answer is read at '='
        correct = int(inputs.metric.answers[0, 0])
    else:
        correct = int(logits.argmax())  # what the model predicts after the prompt
    wrong = int(logits.scatter(0, torch.tensor([correct]), float("-inf")).argmax())  # its best other guess
    target = LogitDiff(torch.tensor([[correct, wrong]]))
    baseline = options.get("baseline", "zero")
    baseline = int(baseline) if isinstance(baseline, str) and baseline.isdigit() else baseline
    result = integrated_gradients(model, tokens, target, baseline=baseline, steps=options.get("steps", 64))
    others = gradient_x_input(model, tokens, target), attention_rollout(model, tokens)
    tops = ", ".join(f"{r.method.replace('_', ' ')} {int(r.scores[0].abs().argmax())}" for r in (result, *others))
    return result, (
        f"integrated gradients of the logit difference {result.metric:.3f} (at the baseline {result.baseline_metric:.3f}): "
        f"completeness error {result.completeness_error:+.3g} ({result.relative_error:.2%}); "
        f"most salient position by {tops}"
    )


ANALYSES: dict[str, Callable[[Transformer, Inputs, dict[str, Any]], tuple[Result, str]]] = {
    "logit-lens": _logit_lens,
    "dla": _dla,
    "heads": _heads,
    "composition": _composition,
    "patching": _patching,
    "path-patching": _path_patching,
    "attribution-patching": _attribution_patching,
    "ablation": _ablation,
    "fourier": _fourier,
    "probe": _probe,
    "saliency": _saliency,
}


def run_analysis(
    source: str | os.PathLike, analysis: str, seed: int = 0, prompt: str | None = None, **options: Any
) -> tuple[Result, str]:
    """(result, a one-line summary) of `analysis` on the model at `source`."""
    if analysis not in ANALYSES:
        raise AnalysisError(f"unknown analysis {analysis!r}; choose one of {', '.join(ANALYSES)}")
    model, card = load_any(source)
    inputs = default_inputs(model, card, seed=seed, prompt=prompt)
    return ANALYSES[analysis](model, inputs, {"seed": seed, **options})


def write_outputs(result: Result, out: str | os.PathLike, name: str, figure_format: str = "png") -> list[Path]:
    """`<out>/<name>.json` and `<out>/<name>.<png|svg>`, each written atomically."""
    figure = Path(out) / f"{name}.{figure_format}"
    result.plot(figure)
    return [result.save_json(Path(out) / f"{name}.json"), figure]
