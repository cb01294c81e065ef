"""rnnkit.training: one :class:`Trainer` for every :class:`Task`.

``train_task(task, run_dir, resume=False)`` is the entry point used by :func:`rnnkit.api.train`;
the trainer reads a task only through :class:`~rnnkit.training.protocol.TrainableTask`;
:class:`Trainer` gives the same with an explicit :class:`~rnnkit.config.TrainConfig` or model.
See ``docs/training.md`` for the run folder layout, checkpoints and exact resumption.
"""

from rnnkit.training.checkpoint import CheckpointWarning, list_checkpoints
from rnnkit.training.optim import build_optimizer, build_scheduler, lr_multiplier
from rnnkit.training.protocol import StepOutput, TrainableTask
from rnnkit.training.trainer import Trainer, TrainingError, TrainResult, train_task

__all__ = [
    "CheckpointWarning",
    "StepOutput",
    "TrainableTask",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "build_optimizer",
    "build_scheduler",
    "list_checkpoints",
    "lr_multiplier",
    "train_task",
]
