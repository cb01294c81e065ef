"""rnnkit.training: one :class:`Trainer` for every :class:`Task`.

``train_task(task, run_dir, resume=False)`` is the entry point used by :func:`rnnkit.api.train`;
:class:`Trainer` gives the same with an explicit :class:`~rnnkit.config.TrainConfig` or model.
See ``docs/training.md`` for the run folder layout, checkpoints and exact resumption.
"""

from rnnkit.training.checkpoint import CheckpointWarning, list_checkpoints
from rnnkit.training.optim import build_optimizer, build_scheduler, lr_multiplier
from rnnkit.training.task import StepOutput, Task
from rnnkit.training.trainer import Trainer, TrainingError, TrainResult, train_task

__all__ = [
    "CheckpointWarning",
    "StepOutput",
    "Task",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "build_optimizer",
    "build_scheduler",
    "list_checkpoints",
    "lr_multiplier",
    "train_task",
]
