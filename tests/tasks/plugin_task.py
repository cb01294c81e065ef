"""A task from outside rnnkit: the sum of L numbers, learnt by one linear layer.

It lives in the test suite and reaches rnnkit only through an ``rnnkit.tasks`` entry point that
``test_entry_points.py`` declares in a throwaway distribution, as a third-party package would.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.tasks import Predictor, StepOutput, Task, TaskError


class SumData(FrozenConfig):
    length: int = 4


class SumModel(FrozenConfig):
    bias: bool = True


class SumTask(Task):
    """Predict the sum of ``data.length`` numbers drawn uniformly from [0, 1)."""

    name = "plugin_sum"
    DataConfig: ClassVar[type[FrozenConfig]] = SumData
    ModelConfig: ClassVar[type[FrozenConfig]] = SumModel

    @property
    def length(self) -> int:
        assert isinstance(self.config.data, SumData)
        return self.config.data.length

    def build_model(self) -> nn.Module:
        return nn.Linear(self.length, 1)

    def _batch(self, seed: int) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(32, self.length, generator=g)  # (B, L)
        return x, x.sum(dim=1)  # (B, L), (B,)

    def train_batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        seed = self.config.train.seed
        return iter([self._batch(1000 * (seed + 1) + 10 * epoch + i) for i in range(10)])

    def valid_batches(self) -> list[tuple[Tensor, Tensor]]:
        return [self._batch(-1 - i) for i in range(2)]

    def step(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        x, y = batch
        loss = nn.functional.mse_loss(model(x)[:, 0], y)
        return StepOutput(loss=loss, num_tokens=len(y))

    def load_examples(self, path: Path) -> list[tuple[Tensor, Tensor]]:
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            numbers, _, total = line.partition("\t")
            values = [float(v) for v in numbers.split()]
            if len(values) != self.length:
                raise TaskError(f"{path}:{n}: expected {self.length} numbers, got {len(values)}")
            rows.append((values, float(total)))
        return [(torch.tensor([r[0] for r in rows]), torch.tensor([r[1] for r in rows]))]


class SumPredictor(Predictor[list[float], float]):
    def parse(self, text: str) -> list[float]:
        return [float(v) for v in text.split()]

    def predict(self, inputs: Sequence[list[float]], options: Mapping[str, Any]) -> list[float]:
        with torch.no_grad():
            return self.model(torch.tensor(inputs))[:, 0].tolist()  # type: ignore[no-any-return]

    def format(self, output: float) -> str:
        return f"{output:.2f}"


SumTask.predictor = SumPredictor
