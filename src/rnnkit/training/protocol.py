"""The contract between the :class:`~rnnkit.training.Trainer` and whatever it trains.

The trainer knows no model and no task class: it reads an object through the
:class:`TrainableTask` protocol below (:class:`rnnkit.tasks.base.Task` implements it). Everything
the trainer needs for exact resumption is in the task's determinism: ``train_batches(epoch)`` must
yield the same batches in the same order for the same seed and epoch, so a run can skip to
``(epoch, batch_index)`` after a restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from torch import Tensor, nn

from rnnkit.config import RunConfig


@dataclass
class StepOutput:
    """What one training or evaluation step returns.

    Attributes:
        loss: scalar tensor to minimise (mean over the batch's targets).
        metrics: extra scalars to log, e.g. ``{"accuracy": 0.93}``; floats or 0-dim tensors.
        num_tokens: target tokens (or examples) in the batch, summed into ``target_tokens``.
        state: recurrent state to carry into the next batch (truncated BPTT); ``None`` if stateless.
    """

    loss: Tensor
    metrics: dict[str, float | Tensor] = field(default_factory=dict)
    num_tokens: int = 0
    state: Any = None


class TrainableTask(Protocol):
    """What the trainer reads of a task.

    Attributes:
        name: the config's ``task:`` value, for messages.
        config: the whole run config.
        metric_names: names returned by :meth:`evaluate` (columns ``valid_<name>`` in metrics.csv).
        best_metric: (name, "min" | "max") used for ``best.safetensors`` and early stopping unless
            ``train.early_stopping_metric`` names another.
        stateful: True when the recurrent state is carried from batch to batch (truncated BPTT);
            the trainer detaches it between steps and resets it at each epoch.
    """

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> RunConfig: ...

    @property
    def metric_names(self) -> tuple[str, ...]: ...

    @property
    def best_metric(self) -> tuple[str, Literal["min", "max"]]: ...

    @property
    def stateful(self) -> bool: ...

    def build_model(self) -> nn.Module:
        """A freshly initialised model (weights drawn from torch's RNG)."""
        ...

    def train_batches(self, epoch: int) -> Iterator[Any]:
        """Training batches of ``epoch``, deterministic in (seed, epoch)."""
        ...

    def valid_batches(self) -> Iterable[Any]:
        """Validation batches (the same every call)."""
        ...

    def load_data(self) -> None:
        """Read and precompute what the batches need (files, cached features) before the
        clock of ``train.max_time_s`` starts; called once per :meth:`Trainer.fit`."""
        ...

    def begin_step(self, step: int) -> None:
        """Called before training step ``step`` (1-based); for step schedules."""
        ...

    def step(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        """Loss and metrics of ``model`` on one batch (called under ``model.train()``)."""
        ...

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Validation metrics over ``batches`` (called under ``model.eval()``)."""
        ...
