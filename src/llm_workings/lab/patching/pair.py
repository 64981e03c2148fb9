"""A clean and a corrupted prompt that line up token by token, the answers, and the metric they are scored by.

    pair = read_pair(held, body)        # ApiError naming the problem: unequal lengths (with both
                                        # tokenizations), answers that are not one token, ...
    pair.clean, pair.corrupted          # [1, pos] tensors
    pair.metric                         # LogitDiff, AnswerProbability or AnswerLoss, at the last position
    pair.differs                        # the positions where the prompts differ

Every metric scores the prediction after the last token, and scores many runs at once (`batched`),
as the analysis toolkit's sweeps need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ApiError
from ..prompts import Prompt, read_prompt
from .settings import MAX_TOKENS, AnswerIn, PairFields


class AnswerProbability:
    """The answer's probability after the last token, averaged over prompts."""

    name = "probability"

    def __init__(self, answer: int) -> None:
        self.answer = answer

    def __call__(self, logits: Any) -> Any:
        return self.batched(logits[None])[0]

    def batched(self, logits: Any) -> Any:  # [runs, batch, pos, d_vocab] -> [runs]
        return logits[..., -1, :].float().softmax(-1)[..., self.answer].mean(-1)


class AnswerLoss:
    """The answer's loss after the last token, -ln p(answer) in nats, averaged over prompts."""

    name = "loss"

    def __init__(self, answer: int) -> None:
        self.answer = answer

    def __call__(self, logits: Any) -> Any:
        return self.batched(logits[None])[0]

    def batched(self, logits: Any) -> Any:
        return -logits[..., -1, :].float().log_softmax(-1)[..., self.answer].mean(-1)


@dataclass(frozen=True)
class Answer:
    id: int
    text: str


@dataclass(frozen=True)
class Pair:
    clean_prompt: Prompt
    corrupted_prompt: Prompt
    answer: Answer
    wrong: Answer | None
    metric_name: str
    metric: Any
    clean: Any  # [1, pos] long tensors
    corrupted: Any

    @property
    def differs(self) -> list[int]:
        return [i for i, (a, b) in enumerate(zip(self.clean_prompt.ids, self.corrupted_prompt.ids)) if a != b]


def shown(prompt: Prompt) -> str:
    return "[" + ", ".join(repr(s) for s in prompt.str_tokens) + "]"


def read_answer(held: Any, answer: AnswerIn, field: str) -> Answer:
    """One token id, with its text; text that is not exactly one token is refused by name."""
    name, d_vocab = held.entry.id, held.model.cfg.d_vocab
    if answer.id is not None:
        if not 0 <= answer.id < d_vocab:
            raise ApiError(
                f"{field} token id {answer.id} is outside {name}'s vocabulary: ids run from 0 to {d_vocab - 1}",
                status=422,
                field=field,
            )
        text = held.tokenizer.token_text([answer.id])[0] if held.tokenizer is not None else str(answer.id)
        return Answer(answer.id, text)
    if held.tokenizer is None:
        raise ApiError(
            f"{name} has no text tokenizer: give the {field} as a token id from 0 to {d_vocab - 1}", status=422, field=field
        )
    ids = held.tokenizer.encode(answer.text)
    if len(ids) != 1:
        pieces = ", ".join(repr(s) for s in held.tokenizer.token_text(ids)) or "none"
        raise ApiError(
            f"the {field} {answer.text!r} is {len(ids)} tokens for {name} ({pieces}); the metric reads one token: pick a single one",
            status=422,
            field=field,
        )
    return Answer(ids[0], held.tokenizer.token_text(ids)[0])


def read_pair(held: Any, body: PairFields, metric_name: str) -> Pair:
    import torch

    from ...analysis.metrics import LogitDiff

    clean = read_prompt(held, body.clean, field="clean", max_tokens=MAX_TOKENS)
    corrupted = read_prompt(held, body.corrupted, field="corrupted", max_tokens=MAX_TOKENS)
    if len(clean.ids) != len(corrupted.ids):
        raise ApiError(
            f"the clean prompt is {len(clean.ids)} tokens and the corrupted prompt {len(corrupted.ids)}: patching swaps "
            f"activations position by position, so they must be the same length. Clean: {shown(clean)}; corrupted: {shown(corrupted)}",
            status=422,
            field="corrupted",
        )
    answer = read_answer(held, body.answer, "answer")
    wrong = read_answer(held, body.wrong, "wrong") if body.wrong is not None else None
    if metric_name == "logit_diff":
        if wrong is None:
            raise ApiError(
                "the logit difference needs a wrong answer to subtract: give one, or pick another metric", field="wrong"
            )
        if wrong.id == answer.id:
            raise ApiError(
                f"the answer and the wrong answer are the same token {answer.text!r}: their difference is always 0", field="wrong"
            )
        metric = LogitDiff(torch.tensor([[answer.id, wrong.id]]))
    elif metric_name == "probability":
        metric = AnswerProbability(answer.id)
    else:
        metric = AnswerLoss(answer.id)
    device = next(held.model.parameters()).device
    return Pair(clean, corrupted, answer, wrong, metric_name, metric, clean.tensor(device), corrupted.tensor(device))
