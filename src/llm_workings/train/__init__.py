"""Training: tasks, the trainer, its atomic checkpoints and snapshots.

from llm_workings.train import Trainer, TrainConfig, InductionTask
Trainer(model, InductionTask(d_vocab=64, half=24), TrainConfig(steps=1000), run_dir="runs/x").train()
"""

from ..errors import DivergenceError
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig, TrainConfigError, lr_at, snapshot_steps
from .tasks import InductionTask, LanguageModelTask, ModularAdditionTask, Task
from .trainer import StepReport, Trainer, TrainResult, parameter_groups

__all__ = [
    "CheckpointError",
    "DivergenceError",
    "InductionTask",
    "LanguageModelTask",
    "ModularAdditionTask",
    "StepReport",
    "Task",
    "TrainConfig",
    "TrainConfigError",
    "TrainResult",
    "Trainer",
    "load_checkpoint",
    "lr_at",
    "parameter_groups",
    "save_checkpoint",
    "snapshot_steps",
]
