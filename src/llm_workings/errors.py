"""Errors more than one layer raises for the same event, so callers catch one type whichever engine ran.

try:
    trainer.train()                # train.Trainer, or nn.MLPTrainer.step()
except DivergenceError as e:
    print(e.step, e.cause)         # "learning rate" or "regularization rate"
"""

from __future__ import annotations


class DivergenceError(ArithmeticError):
    """Training produced a non-finite loss or gradient, or exploding weights, and stopped before committing
    the step. The message says why and what to try; `step` is the step that diverged, `cause` the setting
    most likely to blame ("learning rate" or "regularization rate")."""

    def __init__(self, message: str, step: int, cause: str):
        super().__init__(message)
        self.step = step
        self.cause = cause
