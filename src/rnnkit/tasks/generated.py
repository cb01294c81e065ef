"""Base of the tasks whose data is generated on the fly (copy, reverse, adding, copy memory, ...).

Batches come from ``make_batch(batch_size, generator)`` with a ``torch.Generator`` seeded from
``(data.seed, epoch, stream)``, so every epoch is reproducible and a resumed run sees the same data.
Validation and test sets come from their own streams and never overlap the training stream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch

from rnnkit.training.task import Task


def epoch_generator(seed: int, epoch: int, stream: str) -> torch.Generator:
    """A torch generator seeded from (seed, epoch, stream), independent of the global RNG."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{stream}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


class GeneratedTask(Task):
    """A task with generated data. The data config must have ``train_size``, ``valid_size``, ``seed``.

    Subclasses implement :meth:`make_batch`; tasks used by ``rnnkit diagnose memory`` also set
    ``memory_metric`` and implement :meth:`memory_baseline` and :meth:`memory_solved`.
    """

    memory_metric: ClassVar[str] = "loss"

    def make_batch(self, batch_size: int, generator: torch.Generator) -> Any:
        """One batch of ``batch_size`` fresh examples drawn with ``generator``."""
        raise NotImplementedError

    def _batches(self, count: int, stream: str, epoch: int = 0) -> Iterator[Any]:
        data: Any = self.config.data
        generator = epoch_generator(data.seed, epoch, stream)
        size = self.config.train.batch_size
        for start in range(0, count, size):
            yield self.make_batch(min(size, count - start), generator)

    def train_batches(self, epoch: int) -> Iterator[Any]:
        data: Any = self.config.data
        return self._batches(data.train_size, "train", epoch)

    def valid_batches(self) -> list[Any]:
        data: Any = self.config.data
        return list(self._batches(data.valid_size, "valid"))

    def test_batches(self, count: int = 2000) -> list[Any]:
        """A held-out set from its own stream, never seen in training or validation."""
        return list(self._batches(count, "test"))

    def memory_baseline(self) -> float:
        """The headline metric of a model without memory."""
        raise NotImplementedError(f"task '{self.name}' is not a memory task")

    def memory_solved(self, value: float) -> bool:
        """Whether the headline metric ``value`` counts as solving the task."""
        raise NotImplementedError(f"task '{self.name}' is not a memory task")
