"""What a model is trained on and judged by: a task gives batches, a loss and evaluation metrics.

Every batch is drawn from a generator seeded by (seed, step, micro-batch), so a run resumed from a
checkpoint sees exactly the batches the uninterrupted run would have seen, with no data iterator to save.

    task = InductionTask(d_vocab=64, half=24)
    batch = task.train_batch(np.random.default_rng([0, 0, 0]), batch_size=32)   # [32, 49]
    loss = task.loss(model, batch)
    task.evaluate(model)     # {'loss': ..., 'first_half_loss': ..., 'induction_score_max': ...}
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..data.tasks import ModularAddition, batches_from_text, induction_targets, repeated_tokens
from ..transformer.model import Transformer


class Task(Protocol):
    name: str

    def train_batch(self, rng: np.random.Generator, batch_size: int) -> torch.Tensor: ...
    def tokens_per_batch(self, batch_size: int) -> int: ...
    def loss(self, model: Transformer, batch: torch.Tensor) -> torch.Tensor: ...
    def evaluate(self, model: Transformer, final: bool = False) -> dict[str, float]: ...


def _device(model: Transformer) -> torch.device:
    return model.W_E.device


class LanguageModelTask:
    """Next-token prediction on random windows of a tokenized corpus, as nanoGPT trains.

    evaluate() estimates the loss on `eval_batches` fixed random windows of each split (cheap, for
    the progress log); evaluate(final=True) scores every validation token once, and also reports
    bits per byte of the validation text, which compares across tokenizers."""

    name = "language-model"

    def __init__(
        self,
        train_ids: np.ndarray,
        val_ids: np.ndarray,
        block: int,
        val_bytes: int,
        eval_batches: int = 20,
        eval_batch_size: int = 32,
    ) -> None:
        self.train_ids, self.val_ids = np.asarray(train_ids, np.int64), np.asarray(val_ids, np.int64)
        self.block, self.val_bytes = block, val_bytes
        self.eval_batches, self.eval_batch_size = eval_batches, eval_batch_size

    def train_batch(self, rng: np.random.Generator, batch_size: int) -> torch.Tensor:
        return torch.from_numpy(batches_from_text(self.train_ids, rng, batch_size, self.block))

    def tokens_per_batch(self, batch_size: int) -> int:
        return batch_size * self.block

    def loss(self, model: Transformer, batch: torch.Tensor, total: bool = False) -> torch.Tensor:
        """Predict tokens 1..block of each window from tokens 0..block-1 (as nanoGPT's x and y): the mean
        loss, or with `total` the sum."""
        batch = batch.to(_device(model))
        logits = model(batch[:, :-1])
        losses = F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten(), reduction="none")
        return losses.sum() if total else losses.mean()

    @torch.no_grad()
    def evaluate(self, model: Transformer, final: bool = False) -> dict[str, float]:
        if final:
            nats = self.total_val_nats(model)
            n = len(self.val_ids) - 1
            return {"val_loss": nats / n, "val_bits_per_byte": nats / math.log(2) / self.val_bytes}
        return {f"{split}_loss": self.split_loss(model, split) for split in ("train", "val")}

    @torch.no_grad()
    def split_loss(self, model: Transformer, split: str) -> float:
        """The mean loss on `eval_batches` fixed random windows of the "train" or "val" split."""
        ids = self.train_ids if split == "train" else self.val_ids
        rng = np.random.default_rng(1234)  # the same windows at every evaluation
        losses = [
            self.loss(model, torch.from_numpy(batches_from_text(ids, rng, self.eval_batch_size, self.block))).item()
            for _ in range(self.eval_batches)
        ]
        return float(np.mean(losses))

    @torch.no_grad()
    def total_val_nats(self, model: Transformer, batch_size: int = 64) -> float:
        """The summed loss of predicting every validation token after the first, each from up to
        `block` tokens before it: windows of block + 1 tokens that overlap by one."""
        ids, block = self.val_ids, self.block
        starts = list(range(0, len(ids) - 1, block))
        total = 0.0
        for i in range(0, len(starts), batch_size):
            rows = [torch.from_numpy(ids[s : s + block + 1]) for s in starts[i : i + batch_size]]
            full = [r for r in rows if len(r) == block + 1]
            if full:
                total += self.loss(model, torch.stack(full), total=True).item()
            for r in rows[len(full) :]:  # the last, shorter window
                if len(r) > 1:
                    total += self.loss(model, r[None], total=True).item()
        return total


class InductionTask:
    """Random tokens shown twice after a BOS: the second copy is predictable only by induction.

    The metrics separate the two halves' losses, and score every head: its induction score is the
    mean attention from each token of the second copy to the token after that token's first
    occurrence; its previous-token score is the mean attention to the position just before."""

    name = "induction"

    def __init__(self, d_vocab: int, half: int, min_half: int | None = None, eval_size: int = 200, eval_seed: int = 1234) -> None:
        self.d_vocab, self.half = d_vocab, half
        self.min_half = half // 2 if min_half is None else min_half
        if not 1 <= self.min_half <= half:
            raise ValueError(f"min_half must be in [1, half={half}], got {self.min_half}")
        self.eval_tokens = torch.from_numpy(repeated_tokens(np.random.default_rng(eval_seed), eval_size, half, d_vocab))

    def train_batch(self, rng: np.random.Generator, batch_size: int) -> torch.Tensor:
        # Each batch repeats after its own length. With one fixed length, a single layer-0 head can find the
        # answer by position alone (attend half - 1 back) and no induction circuit is needed.
        half = int(rng.integers(self.min_half, self.half + 1))
        return torch.from_numpy(repeated_tokens(rng, batch_size, half, self.d_vocab))

    def tokens_per_batch(self, batch_size: int) -> int:  # on average
        return batch_size * (self.min_half + self.half + 1)

    def loss(self, model: Transformer, batch: torch.Tensor) -> torch.Tensor:
        return model(batch.to(_device(model)), return_type="loss")

    @torch.no_grad()
    def evaluate(self, model: Transformer, final: bool = False) -> dict[str, float]:
        tokens = self.eval_tokens.to(_device(model))
        losses, cache = model.run_with_cache(
            tokens, return_type="loss", loss_per_token=True, names_filter=lambda name: name.endswith("hook_pattern")
        )
        h = self.half
        # losses[:, t] predicts token t + 1; the copies occupy positions 1..h and h+1..2h. The first token of
        # each copy is unpredictable (it follows BOS, or the last token of the first copy), so it is left out.
        first, repeated = losses[:, 1:h].mean().item(), losses[:, h + 1 :].mean().item()
        scores = self.head_scores(cache)
        metrics = {
            "loss": losses.mean().item(),
            "first_half_loss": first,
            "repeated_half_loss": repeated,
            "repeated_over_first": repeated / first,
        }
        for score, per_head in scores.items():
            for layer, row in enumerate(per_head):
                metrics[f"{score}_max_layer{layer}"] = max(row)
        return metrics

    def head_scores(self, cache) -> dict[str, list[list[float]]]:
        """Per layer and head: 'induction_score' and 'prev_token_score', each the mean attention weight
        on the position an ideal head of that type attends."""
        queries, keys = induction_targets(self.half)
        n_layers = sum(1 for name in cache.keys() if name.endswith("hook_pattern"))
        scores: dict[str, list[list[float]]] = {"induction_score": [], "prev_token_score": []}
        for layer in range(n_layers):
            pattern = cache[f"blocks.{layer}.attn.hook_pattern"]  # [batch, head, query_pos, key_pos]
            scores["induction_score"].append(pattern[:, :, queries, keys].mean((0, 2)).tolist())
            scores["prev_token_score"].append(pattern.diagonal(-1, 2, 3).mean((0, 2)).tolist())
        return scores


class ModularAdditionTask:
    """Full-batch training on a fixed share of all `a + b mod p` facts (tokens a, b, '='); the answer is
    read at the '=' position. Train and test accuracy together show memorisation, then grokking."""

    name = "modular-addition"

    def __init__(self, data: ModularAddition) -> None:
        self.data = data
        self.train_x, self.train_y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
        self.test_x, self.test_y = torch.from_numpy(data.test_x), torch.from_numpy(data.test_y)

    def train_batch(self, rng: np.random.Generator, batch_size: int) -> torch.Tensor:
        return self.train_x  # the whole training set, every step

    def tokens_per_batch(self, batch_size: int) -> int:
        return self.train_x.numel()

    def answer_logits(self, model: Transformer, x: torch.Tensor) -> torch.Tensor:
        return model(x.to(_device(model)))[:, -1, : self.data.p]  # [batch, p]: the '=' token is never an answer

    def loss(self, model: Transformer, batch: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.answer_logits(model, batch).float(), self.train_y.to(_device(model)))

    @torch.no_grad()
    def evaluate(self, model: Transformer, final: bool = False) -> dict[str, float]:
        metrics = {}
        for split, x, y in (("train", self.train_x, self.train_y), ("test", self.test_x, self.test_y)):
            logits = self.answer_logits(model, x).float()
            y = y.to(logits.device)
            metrics[f"{split}_loss"] = F.cross_entropy(logits, y).item()
            metrics[f"{split}_accuracy"] = (logits.argmax(-1) == y).float().mean().item()
        return metrics
