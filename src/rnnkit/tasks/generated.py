"""Base of the tasks whose data is generated on the fly (copy, reverse, adding, copy memory, ...),
and of the long-memory tasks with their one "solved" rule.

Batches come from ``make_batch(batch_size, generator)`` with a ``torch.Generator`` seeded from
``(data.seed, epoch, stream)``, so every epoch is reproducible and a resumed run sees the same data.
Validation and test sets come from their own streams and never overlap the training stream.

A :class:`MemoryTask` (``adding``, ``copy_memory``, ``first_token``) also says how well a model
without memory scores (:meth:`MemoryTask.memory_baseline`) and when the task counts as solved
(:attr:`MemoryTask.solved_rule`, a :class:`SolvedRule`). That rule is the only definition of
"solved": the tasks, ``rnnkit diagnose memory``'s early stop, its table and its figure all read it.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from rnnkit.data.synthetic import LineError, read_lines
from rnnkit.tasks.base import Task, TaskError

__all__ = [
    "GeneratedTask",
    "MemoryTask",
    "SolvedRule",
    "epoch_generator",
    "line_error",
    "read_data_lines",
]


def epoch_generator(seed: int, epoch: int, stream: str) -> torch.Generator:
    """A torch generator seeded from (seed, epoch, stream), independent of the global RNG."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{stream}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def read_data_lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty lines of a user's data file with their 1-based numbers.

    Raises:
        TaskError: naming the file (missing, empty) or the file and line (not UTF-8).
    """
    try:
        return read_lines(path)
    except ValueError as err:
        raise TaskError(str(err)) from None


def line_error(path: Path, line: int, problem: str) -> TaskError:
    """The error for line ``line`` of a user's data file: ``"FILE:LINE: problem"``."""
    return TaskError(str(LineError(path, line, problem)))


class GeneratedTask(Task):
    """A task with generated data. The data config must have ``train_size``, ``valid_size``, ``seed``.

    Subclasses implement :meth:`make_batch`.
    """

    @abstractmethod
    def make_batch(self, batch_size: int, generator: torch.Generator) -> Any:
        """One batch of ``batch_size`` fresh examples drawn with ``generator``."""

    def _batches(self, count: int, stream: str, epoch: int = 0) -> Iterator[Any]:
        data: Any = self.config.data
        generator = epoch_generator(data.seed, epoch, stream)
        size = self.config.train.batch_size
        for start in range(0, count, size):
            yield self.make_batch(min(size, count - start), generator)

    def train_batches(self, epoch: int) -> Iterator[Any]:
        """``data.train_size`` examples of the ``"train"`` stream of ``epoch``."""
        data: Any = self.config.data
        return self._batches(data.train_size, "train", epoch)

    def valid_batches(self) -> list[Any]:
        """``data.valid_size`` examples of the ``"valid"`` stream (the same every call)."""
        data: Any = self.config.data
        return list(self._batches(data.valid_size, "valid"))

    def test_batches(self, count: int = 2000) -> list[Any]:
        """A held-out set from its own stream, never seen in training or validation."""
        return list(self._batches(count, "test"))


@dataclass(frozen=True)
class SolvedRule:
    """When a long-memory task counts as solved: its headline metric beats a threshold.

    Attributes:
        metric: the headline metric, one of the task's ``metric_names``.
        mode: ``"min"``: solved strictly below the threshold (a loss, an MSE); ``"max"``: solved
            at or above it (an accuracy in [0, 1]).
        threshold: the threshold, or with ``of_baseline`` its fraction of the memoryless baseline.
        of_baseline: the threshold is ``threshold * baseline`` (copy memory: a tenth of it).
    """

    metric: str
    mode: Literal["min", "max"]
    threshold: float
    of_baseline: bool = False

    def threshold_for(self, baseline: float) -> float:
        """The metric value at which a task whose memoryless score is ``baseline`` is solved."""
        return self.threshold * baseline if self.of_baseline else self.threshold

    def solved(self, value: float, baseline: float, margin: float = 1.0) -> bool:
        """Whether the metric ``value`` counts as solved, with room to spare when ``margin`` > 1.

        ``"min"``: ``margin * value < threshold``; ``"max"``: the error ``1 - value`` is at most
        ``(1 - threshold) / margin``. With ``margin=2`` the adding problem needs MSE < 0.005 and
        first token accuracy >= 0.995: ``rnnkit diagnose memory`` stops a run once validation is
        solved with this margin, so that the test score (another sample) does not sit on the
        threshold, solved or not by chance.
        """
        threshold = self.threshold_for(baseline)
        if self.mode == "min":
            return margin * value < threshold
        return margin * (1.0 - value) <= 1.0 - threshold

    def describe(self) -> str:
        """The rule in words: ``"mse < 0.01"``, ``"loss < baseline / 10"``, ``"accuracy >= 0.99"``."""
        relation = "<" if self.mode == "min" else ">="
        bound = f"baseline / {1 / self.threshold:g}" if self.of_baseline else f"{self.threshold:g}"
        return f"{self.metric} {relation} {bound}"


class MemoryTask(GeneratedTask):
    """A generated task of ``rnnkit diagnose memory``: how far back can a model remember?

    Class attributes:
        solved_rule: the task's :class:`SolvedRule` (its ``best_metric`` is the rule's metric
            and mode, so validation tracks what "solved" is about).
    """

    solved_rule: ClassVar[SolvedRule]

    @abstractmethod
    def memory_baseline(self) -> float:
        """The headline metric of a model without memory, for this task's data config."""

    def solved_threshold(self) -> float:
        """The metric value at which this task (at its data config) counts as solved."""
        return self.solved_rule.threshold_for(self.memory_baseline())

    def memory_solved(self, value: float, margin: float = 1.0) -> bool:
        """Whether the headline metric ``value`` solves the task (see :meth:`SolvedRule.solved`)."""
        return self.solved_rule.solved(value, self.memory_baseline(), margin)
