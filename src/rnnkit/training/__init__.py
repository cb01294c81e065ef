"""rnnkit.training: one :class:`Trainer` for every task.

``train_task(task, run_dir, resume=False)`` is the entry point used by :func:`rnnkit.api.train`;
:class:`Trainer` gives the same with an explicit :class:`~rnnkit.config.TrainConfig`, model or
extra callbacks. The trainer reads a task only through
:class:`~rnnkit.training.protocol.TrainableTask` and imports nothing above this package.

Modules: :mod:`~rnnkit.training.trainer` (the loop), :mod:`~rnnkit.training.callbacks`
(metrics.csv, early stopping, progress, TensorBoard, checkpoint schedule),
:mod:`~rnnkit.training.device` (device, precision, threads, denormals),
:mod:`~rnnkit.training.checkpoint` (checkpoint files and RNG state),
:mod:`~rnnkit.training.state` (the run's position), :mod:`~rnnkit.training.optim` (optimisers
and schedules), :mod:`~rnnkit.training.losses` (shared losses).
See ``docs/training.md`` for the run folder layout, checkpoints and exact resumption.
"""

from rnnkit.training.callbacks import Callback, metric_mode
from rnnkit.training.checkpoint import CheckpointWarning, list_checkpoints
from rnnkit.training.device import Device, flush_denormals
from rnnkit.training.optim import build_optimizer, build_scheduler, lr_multiplier
from rnnkit.training.protocol import StepOutput, TrainableTask
from rnnkit.training.state import TrainResult
from rnnkit.training.trainer import Trainer, TrainingError, train_task

__all__ = [
    "Callback",
    "CheckpointWarning",
    "Device",
    "StepOutput",
    "TrainResult",
    "TrainableTask",
    "Trainer",
    "TrainingError",
    "build_optimizer",
    "build_scheduler",
    "flush_denormals",
    "list_checkpoints",
    "lr_multiplier",
    "metric_mode",
    "train_task",
]
