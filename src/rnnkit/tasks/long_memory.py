"""Long-memory tasks: ``copy_memory`` (many-to-many) and ``first_token`` (many-to-one).

Together with ``adding`` (in :mod:`rnnkit.models.synthetic`) these are the problems on which
``rnnkit diagnose memory`` measures how far back each cell can remember. Each task states its
headline metric, the score of a memoryless model (the baseline) and when it counts as solved:

=============  =================  ===============================  ==========================
task           metric             memoryless baseline              solved when
=============  =================  ===============================  ==========================
adding         mse                1/6 (always predict 1.0)         mse < 0.01
copy_memory    loss (x-entropy)   recall log(symbols) / (T+2 rec)  loss < baseline / 10
first_token    accuracy           1 / vocab_size                   accuracy >= 0.99
=============  =================  ===============================  ==========================

Data files for ``rnnkit evaluate``: one sequence of integer tokens per line (copy_memory: the whole
input including blanks 0 and the delimiter; the labels follow from the rule; first_token: any
tokens in ``[0, vocab_size)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from rnnkit.config import FrozenConfig
from rnnkit.data.memory import (
    LabelledBatch,
    copy_memory_baseline,
    copy_memory_batch,
    first_token_batch,
)
from rnnkit.data.synthetic import LineError, parse_symbols, read_lines
from rnnkit.models.classifier import SequenceClassifier, SequenceClassifierConfig
from rnnkit.models.generated import GeneratedTask
from rnnkit.models.tagger import SequenceTagger
from rnnkit.registry import register_task
from rnnkit.training.task import StepOutput


class CopyMemoryDataConfig(FrozenConfig):
    """Data of the copy-memory task: T blanks between the symbols and their recall."""

    length: int = Field(50, ge=1, description="T, the delay")
    symbols: int = Field(8, ge=2, description="alphabet size")
    recall: int = Field(10, ge=1, description="symbols to remember")
    train_size: int = Field(20_000, ge=1)
    valid_size: int = Field(1000, ge=1)
    seed: int = 0


class FirstTokenDataConfig(FrozenConfig):
    """Data of the first-token task."""

    length: int = Field(50, ge=1)
    vocab_size: int = Field(8, ge=2)
    train_size: int = Field(20_000, ge=1)
    valid_size: int = Field(1000, ge=1)
    seed: int = 0


@register_task
class CopyMemoryTask(GeneratedTask):
    """Arjovsky et al.'s copy-memory problem: recall ``recall`` symbols after T blanks."""

    name = "copy_memory"
    DataConfig: ClassVar[type[FrozenConfig]] = CopyMemoryDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = SequenceClassifierConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "recall_accuracy")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("loss", "min")
    memory_metric: ClassVar[str] = "loss"

    @property
    def data(self) -> CopyMemoryDataConfig:
        assert isinstance(self.config.data, CopyMemoryDataConfig)
        return self.config.data

    def build_model(self) -> nn.Module:
        assert isinstance(self.config.model, SequenceClassifierConfig)
        vocab = self.data.symbols + 2
        return SequenceTagger(self.config.model, vocab, vocab)

    def make_batch(self, batch_size: int, generator: torch.Generator) -> LabelledBatch:
        d = self.data
        return copy_memory_batch(batch_size, d.length, d.symbols, d.recall, generator)

    def step(self, model: nn.Module, batch: LabelledBatch, state: Any = None) -> StepOutput:
        logits = model(batch.tokens)  # (B, T, K)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.labels.flatten())
        recall = self.data.recall
        hits = logits[:, -recall:].detach().argmax(-1) == batch.labels[:, -recall:]
        return StepOutput(
            loss=loss,
            metrics={"recall_accuracy": hits.float().mean()},
            num_tokens=batch.labels.numel(),
        )

    def memory_baseline(self) -> float:
        return copy_memory_baseline(self.data.length, self.data.symbols, self.data.recall)

    def memory_solved(self, value: float) -> bool:
        return value < self.memory_baseline() / 10

    def load_examples(self, path: Path) -> list[LabelledBatch]:
        d = self.data
        expected = d.length + 2 * d.recall
        rows = []
        for number, text in read_lines(path):
            try:
                tokens = parse_symbols(text, d.symbols + 2)
            except ValueError as err:
                raise LineError(path, number, str(err)) from None
            if len(tokens) != expected:
                raise LineError(path, number, f"expected {expected} tokens, found {len(tokens)}")
            rows.append(tokens)
        tokens_t = torch.tensor(rows)
        labels = torch.zeros_like(tokens_t)
        labels[:, -d.recall :] = tokens_t[:, : d.recall]
        return [LabelledBatch(tokens_t, labels)]

    def predict(self, model: nn.Module, inputs: Sequence[str]) -> list[str]:
        d = self.data
        tokens = torch.tensor([parse_symbols(text, d.symbols + 2) for text in inputs])
        model.eval()
        with torch.no_grad():
            out = model(tokens).argmax(-1)[:, -d.recall :]  # (B, recall)
        return [" ".join(str(int(v)) for v in row) for row in out]


@register_task
class FirstTokenTask(GeneratedTask):
    """Classify a sequence by its first token: memory over the whole length T."""

    name = "first_token"
    DataConfig: ClassVar[type[FrozenConfig]] = FirstTokenDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = SequenceClassifierConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "accuracy")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("accuracy", "max")
    memory_metric: ClassVar[str] = "accuracy"

    @property
    def data(self) -> FirstTokenDataConfig:
        assert isinstance(self.config.data, FirstTokenDataConfig)
        return self.config.data

    def build_model(self) -> nn.Module:
        assert isinstance(self.config.model, SequenceClassifierConfig)
        V = self.data.vocab_size
        return SequenceClassifier(self.config.model, V, V, pad_id=0)

    def make_batch(self, batch_size: int, generator: torch.Generator) -> LabelledBatch:
        return first_token_batch(batch_size, self.data.length, self.data.vocab_size, generator)

    def step(self, model: nn.Module, batch: LabelledBatch, state: Any = None) -> StepOutput:
        logits = model(batch.tokens)  # (B, V)
        loss = F.cross_entropy(logits, batch.labels)
        accuracy = (logits.detach().argmax(-1) == batch.labels).float().mean()
        return StepOutput(
            loss=loss, metrics={"accuracy": accuracy}, num_tokens=batch.labels.numel()
        )

    def memory_baseline(self) -> float:
        return 1.0 / self.data.vocab_size

    def memory_solved(self, value: float) -> bool:
        return value >= 0.99

    def load_examples(self, path: Path) -> list[LabelledBatch]:
        rows = []
        for number, text in read_lines(path):
            try:
                rows.append(parse_symbols(text, self.data.vocab_size))
            except ValueError as err:
                raise LineError(path, number, str(err)) from None
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"{path}: all sequences must have the same length")
        tokens = torch.tensor(rows)
        return [LabelledBatch(tokens, tokens[:, 0].clone())]

    def predict(self, model: nn.Module, inputs: Sequence[str]) -> list[int]:
        tokens = torch.tensor([parse_symbols(text, self.data.vocab_size) for text in inputs])
        model.eval()
        with torch.no_grad():
            return [int(v) for v in model(tokens).argmax(-1)]
