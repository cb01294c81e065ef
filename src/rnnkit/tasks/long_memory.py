"""Long-memory tasks: ``copy_memory`` (many-to-many) and ``first_token`` (many-to-one).

Together with ``adding`` (in :mod:`rnnkit.tasks.synthetic`) these are the problems on which
``rnnkit diagnose memory`` measures how far back each cell can remember. Each task states its
headline metric, the score of a memoryless model (the baseline) and when it counts as solved (its
:class:`~rnnkit.tasks.generated.SolvedRule`):

=============  =================  ===============================  ==========================
task           metric             memoryless baseline              solved when
=============  =================  ===============================  ==========================
adding         mse                1/6 (always predict 1.0)         mse < 0.01
copy_memory    loss (x-entropy)   recall log(symbols) / (T+2 rec)  loss < baseline / 10
first_token    accuracy           1 / vocab_size                   accuracy >= 0.99
=============  =================  ===============================  ==========================

Shapes: B sequences of T tokens (copy memory: T + 2 recall); K classes.

Data files for ``rnnkit evaluate``, and inputs of ``rnnkit predict``: one sequence of integer
tokens per line (copy_memory: the whole input including blanks 0 and the delimiter, the labels
follow from the rule, and ``predict`` prints the recalled symbols; first_token: any tokens in
``[0, vocab_size)``, and ``predict`` prints the predicted first token).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from rnnkit.config import FrozenConfig
from rnnkit.data.long_memory import (
    LabelledBatch,
    copy_memory_baseline,
    copy_memory_batch,
    first_token_batch,
)
from rnnkit.data.synthetic import parse_symbols
from rnnkit.models.classifier import SequenceClassifier, SequenceClassifierConfig
from rnnkit.models.tagger import SequenceTagger
from rnnkit.tasks.base import Predictor, StepOutput, TaskError
from rnnkit.tasks.generated import MemoryTask, SolvedRule, line_error, read_data_lines

__all__ = [
    "CopyMemoryDataConfig",
    "CopyMemoryPredictor",
    "CopyMemoryTask",
    "FirstTokenDataConfig",
    "FirstTokenPredictor",
    "FirstTokenTask",
]


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


# ---------------------------------------------------------------------------- copy memory


class CopyMemoryPredictor(Predictor[list[int], list[int]]):
    """Copy memory: a whole input sequence in, the ``recall`` symbols the model recalls out."""

    def parse(self, text: str) -> list[int]:
        """``"1 2 0 0 9 0 0"`` -> its tokens; a :class:`TaskError` unless it has T + 2 recall."""
        task = self.task
        assert isinstance(task, CopyMemoryTask)
        try:
            return task.parse_sequence(text)
        except ValueError as err:
            raise TaskError(f"input '{text}': {err}") from None

    def predict(self, inputs: Sequence[list[int]], options: Mapping[str, Any]) -> list[list[int]]:
        """The model's labels at the last ``recall`` positions of each sequence; no options."""
        if not inputs:
            return []
        task = self.task
        assert isinstance(task, CopyMemoryTask)
        tokens = torch.tensor([list(tokens) for tokens in inputs])  # (B, T + 2 recall)
        self.model.eval()
        with torch.no_grad():
            recalled = self.model(tokens).argmax(-1)[:, -task.data.recall :]  # (B, recall)
        return [[int(v) for v in row] for row in recalled.tolist()]

    def format(self, output: list[int]) -> str:
        """[1, 2] -> ``"1 2"``."""
        return " ".join(str(symbol) for symbol in output)


class CopyMemoryTask(MemoryTask):
    """Arjovsky et al.'s copy-memory problem: recall ``recall`` symbols after T blanks.

    Batches are :class:`~rnnkit.data.long_memory.LabelledBatch` es, tokens and labels both
    (B, T + 2 recall); the model is a :class:`~rnnkit.models.tagger.SequenceTagger` over
    ``symbols + 2`` ids (blank 0, the symbols, the delimiter).
    """

    name = "copy_memory"
    DataConfig: ClassVar[type[FrozenConfig]] = CopyMemoryDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = SequenceClassifierConfig
    solved_rule: ClassVar[SolvedRule] = SolvedRule("loss", "min", 0.1, of_baseline=True)
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "recall_accuracy")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = (
        solved_rule.metric,
        solved_rule.mode,
    )
    predictor: ClassVar[type[Predictor[Any, Any]]] = CopyMemoryPredictor

    @property
    def data(self) -> CopyMemoryDataConfig:
        """The ``data`` section."""
        assert isinstance(self.config.data, CopyMemoryDataConfig)
        return self.config.data

    def build_model(self) -> nn.Module:
        """A SequenceTagger: tokens (B, T') -> logits (B, T', symbols + 2)."""
        assert isinstance(self.config.model, SequenceClassifierConfig)
        vocab = self.data.symbols + 2
        return SequenceTagger(self.config.model, vocab, vocab)

    def make_batch(self, batch_size: int, generator: torch.Generator) -> LabelledBatch:
        """``batch_size`` fresh sequences."""
        d = self.data
        return copy_memory_batch(batch_size, d.length, d.symbols, d.recall, generator)

    def step(self, model: nn.Module, batch: LabelledBatch, state: Any = None) -> StepOutput:
        """Cross-entropy over every position, and the accuracy of the recalled symbols."""
        logits = model(batch.tokens)  # (B, T', K)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.labels.flatten())
        recall = self.data.recall
        hits = logits[:, -recall:].detach().argmax(-1) == batch.labels[:, -recall:]  # (B, recall)
        return StepOutput(
            loss=loss,
            metrics={"recall_accuracy": hits.float().mean()},
            num_tokens=batch.labels.numel(),
        )

    def memory_baseline(self) -> float:
        """``recall log(symbols) / (T + 2 recall)``: blanks, then a guess at each symbol."""
        return copy_memory_baseline(self.data.length, self.data.symbols, self.data.recall)

    def parse_sequence(self, text: str) -> list[int]:
        """One whole input sequence; ValueError unless it has T + 2 recall tokens in range."""
        d = self.data
        tokens = parse_symbols(text, d.symbols + 2)
        expected = d.length + 2 * d.recall
        if len(tokens) != expected:
            raise ValueError(f"expected {expected} tokens, found {len(tokens)}")
        return tokens

    def load_examples(self, path: Path) -> list[LabelledBatch]:
        """A data file (module docstring) as one batch; labels follow from the rule."""
        rows = []
        for number, text in read_data_lines(path):
            try:
                rows.append(self.parse_sequence(text))
            except ValueError as err:
                raise line_error(path, number, str(err)) from None
        tokens = torch.tensor(rows)  # (B, T + 2 recall)
        labels = torch.zeros_like(tokens)
        recall = self.data.recall
        labels[:, -recall:] = tokens[:, :recall]
        return [LabelledBatch(tokens, labels)]


# ---------------------------------------------------------------------------- first token


class FirstTokenPredictor(Predictor[list[int], int]):
    """First token: a token sequence in, the model's guess of its first token out."""

    def parse(self, text: str) -> list[int]:
        """``"3 1 4"`` -> [3, 1, 4]; a :class:`TaskError` for a token outside the vocabulary."""
        task = self.task
        assert isinstance(task, FirstTokenTask)
        try:
            return parse_symbols(text, task.data.vocab_size)
        except ValueError as err:
            raise TaskError(f"input '{text}': {err}") from None

    def predict(self, inputs: Sequence[list[int]], options: Mapping[str, Any]) -> list[int]:
        """The predicted class of each sequence (sequences may differ in length); no options."""
        if not inputs:
            return []
        lengths = torch.tensor([len(tokens) for tokens in inputs])  # (B,)
        tokens = torch.zeros(len(inputs), int(lengths.max()), dtype=torch.long)  # (B, T)
        for b, row in enumerate(inputs):
            tokens[b, : len(row)] = torch.tensor(row)
        self.model.eval()
        with torch.no_grad():
            return [int(v) for v in self.model(tokens, lengths).argmax(-1)]  # (B,)


class FirstTokenTask(MemoryTask):
    """Classify a sequence by its first token: memory over the whole length T.

    Batches are :class:`~rnnkit.data.long_memory.LabelledBatch` es, tokens (B, T) and labels (B,);
    the model is a :class:`~rnnkit.models.classifier.SequenceClassifier` with K = V classes.
    """

    name = "first_token"
    DataConfig: ClassVar[type[FrozenConfig]] = FirstTokenDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = SequenceClassifierConfig
    solved_rule: ClassVar[SolvedRule] = SolvedRule("accuracy", "max", 0.99)
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "accuracy")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = (
        solved_rule.metric,
        solved_rule.mode,
    )
    predictor: ClassVar[type[Predictor[Any, Any]]] = FirstTokenPredictor

    @property
    def data(self) -> FirstTokenDataConfig:
        """The ``data`` section."""
        assert isinstance(self.config.data, FirstTokenDataConfig)
        return self.config.data

    def build_model(self) -> nn.Module:
        """A SequenceClassifier: tokens (B, T) -> logits (B, V)."""
        assert isinstance(self.config.model, SequenceClassifierConfig)
        V = self.data.vocab_size
        return SequenceClassifier(self.config.model, V, V, pad_id=0)

    def make_batch(self, batch_size: int, generator: torch.Generator) -> LabelledBatch:
        """``batch_size`` fresh sequences."""
        return first_token_batch(batch_size, self.data.length, self.data.vocab_size, generator)

    def step(self, model: nn.Module, batch: LabelledBatch, state: Any = None) -> StepOutput:
        """Cross-entropy of the class logits, and the accuracy."""
        logits = model(batch.tokens)  # (B, V)
        loss = F.cross_entropy(logits, batch.labels)
        accuracy = (logits.detach().argmax(-1) == batch.labels).float().mean()
        return StepOutput(
            loss=loss, metrics={"accuracy": accuracy}, num_tokens=batch.labels.numel()
        )

    def memory_baseline(self) -> float:
        """1 / V: a model without memory guesses."""
        return 1.0 / self.data.vocab_size

    def load_examples(self, path: Path) -> list[LabelledBatch]:
        """A data file (module docstring) as one batch; every line must have the same length."""
        rows = []
        for number, text in read_data_lines(path):
            try:
                rows.append(parse_symbols(text, self.data.vocab_size))
            except ValueError as err:
                raise line_error(path, number, str(err)) from None
        if len({len(r) for r in rows}) != 1:
            raise TaskError(f"{path}: all sequences must have the same length")
        tokens = torch.tensor(rows)  # (B, T)
        return [LabelledBatch(tokens, tokens[:, 0].clone())]
