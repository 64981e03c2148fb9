"""Training: tasks, the trainer, its atomic checkpoints and snapshots.

from llm_workings.train import Trainer, TrainConfig, InductionTask
Trainer(model, InductionTask(d_vocab=64, half=24), TrainConfig(steps=1000), run_dir="runs/x").train()
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig, TrainConfigError, lr_at, snapshot_steps
from .tasks import InductionTask, LanguageModelTask, ModularAdditionTask, Task
from .trainer import StepReport, Trainer, TrainingDiverged, TrainResult, parameter_groups

__all__ = [
    "CheckpointError",
    "InductionTask",
    "LanguageModelTask",
    "ModularAdditionTask",
    "StepReport",
    "Task",
    "TrainConfig",
    "TrainConfigError",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "load_checkpoint",
    "lr_at",
    "parameter_groups",
    "save_checkpoint",
    "snapshot_steps",
]
