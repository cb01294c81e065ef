"""The contract between the :class:`~rnnkit.training.Trainer` and a task.

The trainer knows no model. A task owns its data, builds its model, and turns one batch into a loss
and metrics. Everything the trainer needs for exact resumption is in the task's determinism:
``train_batches(epoch)`` must yield the same batches in the same order for the same seed and epoch,
so a run can skip to ``(epoch, batch_index)`` after a restart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from rnnkit.config import FrozenConfig, RunConfig


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


class Task(ABC):
    """A trainable task: data, model factory, loss. Subclasses register with ``@register_task``.

    Class attributes:
        name: the config's ``task:`` value.
        DataConfig / ModelConfig: the frozen config classes for the ``data`` and ``model`` sections.
        metric_names: names returned by :meth:`evaluate` (columns ``valid_<name>`` in metrics.csv).
        best_metric: (name, "min" | "max") used for ``best.safetensors`` and early stopping unless
            ``train.early_stopping_metric`` names another.
        stateful: True when the recurrent state is carried from batch to batch (truncated BPTT);
            the trainer detaches it between steps and resets it at each epoch.
        train_options: the task-specific ``train.*`` keys the task honours (e.g.
            ``label_smoothing``); setting another one to a non-default value is an error.
    """

    name: ClassVar[str]
    DataConfig: ClassVar[type[FrozenConfig]]
    ModelConfig: ClassVar[type[FrozenConfig]]
    metric_names: ClassVar[tuple[str, ...]] = ("loss",)
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("loss", "min")
    stateful: ClassVar[bool] = False
    train_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: RunConfig, run_dir: Path | None = None) -> None:
        self.config = config
        self.run_dir = run_dir

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model for this task's config (weights drawn from torch's RNG)."""

    @abstractmethod
    def train_batches(self, epoch: int) -> Iterator[Any]:
        """Training batches of ``epoch``, deterministic in (seed, epoch)."""

    @abstractmethod
    def valid_batches(self) -> Iterable[Any]:
        """Validation batches (the same every call)."""

    def begin_step(self, step: int) -> None:
        """Called by the trainer before training step ``step`` (1-based); for step schedules."""
        return None

    @abstractmethod
    def step(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        """Loss and metrics of ``model`` on one batch (called under ``model.train()``)."""

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Token-weighted mean of :meth:`step`'s loss and metrics over ``batches``, without grads."""
        totals: dict[str, float] = {}
        weight = 0.0
        with torch.no_grad():
            for batch in batches:
                out = self.step(model, batch)
                w = float(max(out.num_tokens, 1))
                weight += w
                totals["loss"] = totals.get("loss", 0.0) + w * float(out.loss)
                for key, value in out.metrics.items():
                    totals[key] = totals.get(key, 0.0) + w * float(value)
        return {k: v / max(weight, 1.0) for k, v in totals.items()}

    # The CLI's evaluate and predict verbs dispatch to these.

    def load_examples(self, path: Path) -> list[Any]:
        """Read a user's data file into batches for :meth:`evaluate`; errors name file and line."""
        raise NotImplementedError(f"task '{self.name}' cannot read data files")

    def predict(self, model: nn.Module, inputs: Sequence[str]) -> list[Any]:
        """Model outputs for user inputs given as text (one item per input)."""
        raise NotImplementedError(f"task '{self.name}' has no predict")
