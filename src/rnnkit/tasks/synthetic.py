"""The built-in synthetic tasks: ``copy``, ``reverse`` (seq2seq) and ``adding`` (many-to-one).

They exercise the whole engine (layers, attention, trainer, checkpoints, CLI) on problems whose answer is
known, and they double as the long-memory benchmarks of the diagnostics. Data is generated on the fly
from ``(data.seed, epoch)``, so every epoch is reproducible and resumable.

Data files for ``rnnkit evaluate RUN --data FILE``:

- copy / reverse: one example per line, the source symbols (integers in ``[0, vocab_size)``) separated by
  spaces, optionally a TAB and the expected output; without it the task's rule gives the target.
- adding: one sequence per line, values separated by spaces with the two values to add marked by a
  trailing ``*`` (``0.2 0.7* 0.1 0.9*``), optionally a TAB and the expected sum.
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
from rnnkit.data.synthetic import (
    EOS,
    NUM_SPECIAL,
    PAD,
    AddingBatch,
    LineError,
    TokenBatch,
    adding_batch,
    make_token_batch,
    parse_adding,
    parse_symbols,
    random_symbols,
    read_lines,
    transform,
)
from rnnkit.models.classifier import SequenceRegressor, SequenceRegressorConfig
from rnnkit.models.generated import GeneratedTask
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.registry import register_task
from rnnkit.training.losses import token_accuracy, token_cross_entropy
from rnnkit.training.task import StepOutput


class SequenceDataConfig(FrozenConfig):
    """Data of the copy and reverse tasks."""

    vocab_size: int = Field(10, ge=1, description="number of distinct symbols")
    length: int = Field(8, ge=1, description="(maximum) sequence length")
    min_length: int | None = Field(None, ge=1, description="draw lengths in [min_length, length]")
    train_size: int = Field(20_000, ge=1, description="examples per epoch")
    valid_size: int = Field(512, ge=1)
    seed: int = 0


class SequenceTask(GeneratedTask):
    """Shared body of ``copy`` and ``reverse``: symbols in, transformed symbols out."""

    DataConfig: ClassVar[type[FrozenConfig]] = SequenceDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = Seq2SeqConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "token_accuracy", "sequence_accuracy")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("token_accuracy", "max")

    @property
    def data(self) -> SequenceDataConfig:
        assert isinstance(self.config.data, SequenceDataConfig)
        return self.config.data

    def build_model(self) -> nn.Module:
        vocab = self.data.vocab_size + NUM_SPECIAL
        assert isinstance(self.config.model, Seq2SeqConfig)
        return Seq2Seq(self.config.model, vocab, vocab)

    def make_batch(self, batch_size: int, generator: torch.Generator) -> TokenBatch:
        d = self.data
        sources = random_symbols(batch_size, d.vocab_size, d.length, d.min_length, generator)
        return make_token_batch(sources, [transform(self.name, s) for s in sources])

    def step(self, model: nn.Module, batch: TokenBatch, state: Any = None) -> StepOutput:
        out = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = token_cross_entropy(out.logits, batch.tgt_out, PAD)
        token, sequence = token_accuracy(out.logits.detach(), batch.tgt_out, PAD)
        return StepOutput(
            loss=loss,
            metrics={"token_accuracy": token, "sequence_accuracy": sequence},
            num_tokens=int((batch.tgt_out != PAD).sum()),
        )

    def load_examples(self, path: Path) -> list[TokenBatch]:
        sources, targets = [], []
        for number, text in read_lines(path):
            columns = text.split("\t")
            if len(columns) > 2:
                raise LineError(
                    path, number, f"expected 1 or 2 TAB-separated columns, found {len(columns)}"
                )
            try:
                source = parse_symbols(columns[0], self.data.vocab_size)
                target = (
                    parse_symbols(columns[1], self.data.vocab_size)
                    if len(columns) == 2
                    else transform(self.name, source)
                )
            except ValueError as err:
                raise LineError(path, number, str(err)) from None
            sources.append(source)
            targets.append(target)
        size = self.config.train.batch_size
        return [
            make_token_batch(sources[i : i + size], targets[i : i + size])
            for i in range(0, len(sources), size)
        ]

    def predict(self, model: nn.Module, inputs: Sequence[str]) -> list[str]:
        sources = [parse_symbols(text, self.data.vocab_size) for text in inputs]
        batch = make_token_batch(sources, sources)
        assert isinstance(model, Seq2Seq)
        model.eval()
        with torch.no_grad():
            tokens, _ = model.greedy(
                batch.src, batch.src_lengths, max_len=2 * batch.src.size(1) + 2
            )
        outputs = []
        for row in tokens.tolist():
            symbols = []
            for token in row:
                if token == EOS:
                    break
                if token >= NUM_SPECIAL:
                    symbols.append(str(token - NUM_SPECIAL))
            outputs.append(" ".join(symbols))
        return outputs


@register_task
class CopyTask(SequenceTask):
    """Reproduce the source sequence."""

    name = "copy"


@register_task
class ReverseTask(SequenceTask):
    """Reproduce the source sequence backwards."""

    name = "reverse"


class AddingDataConfig(FrozenConfig):
    """Data of the adding problem."""

    length: int = Field(50, ge=2, description="sequence length T")
    train_size: int = Field(20_000, ge=1, description="examples per epoch")
    valid_size: int = Field(1000, ge=1)
    seed: int = 0


@register_task
class AddingTask(GeneratedTask):
    """Hochreiter & Schmidhuber's adding problem: many-to-one regression; solved at MSE < 0.01."""

    name = "adding"
    DataConfig: ClassVar[type[FrozenConfig]] = AddingDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = SequenceRegressorConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "mse")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("mse", "min")
    baseline_mse: ClassVar[float] = 1.0 / 6.0

    @property
    def data(self) -> AddingDataConfig:
        assert isinstance(self.config.data, AddingDataConfig)
        return self.config.data

    def build_model(self) -> nn.Module:
        assert isinstance(self.config.model, SequenceRegressorConfig)
        return SequenceRegressor(self.config.model, input_size=2, output_size=1)

    memory_metric: ClassVar[str] = "mse"

    def make_batch(self, batch_size: int, generator: torch.Generator) -> AddingBatch:
        return adding_batch(batch_size, self.data.length, generator)

    def memory_baseline(self) -> float:
        return self.baseline_mse

    def memory_solved(self, value: float) -> bool:
        return value < 0.01

    def step(self, model: nn.Module, batch: AddingBatch, state: Any = None) -> StepOutput:
        prediction = model(batch.inputs, batch.lengths)  # (B, 1)
        loss = F.mse_loss(prediction, batch.targets)
        return StepOutput(
            loss=loss, metrics={"mse": loss.detach()}, num_tokens=batch.targets.size(0)
        )

    def _parse(self, text: str) -> AddingBatch:
        values, markers = parse_adding(text)
        inputs = torch.tensor([values, markers]).T.unsqueeze(0)  # (1, T, 2)
        target = torch.tensor([[sum(v * m for v, m in zip(values, markers, strict=True))]])
        return AddingBatch(inputs, torch.tensor([len(values)]), target)

    def load_examples(self, path: Path) -> list[AddingBatch]:
        examples = []
        for number, text in read_lines(path):
            columns = text.split("\t")
            if len(columns) > 2:
                raise LineError(
                    path, number, f"expected 1 or 2 TAB-separated columns, found {len(columns)}"
                )
            try:
                example = self._parse(columns[0])
                if len(columns) == 2:
                    example = example._replace(targets=torch.tensor([[float(columns[1])]]))
            except ValueError as err:
                raise LineError(path, number, str(err)) from None
            examples.append(example)
        return [_collate_adding(examples[i : i + 256]) for i in range(0, len(examples), 256)]

    def predict(self, model: nn.Module, inputs: Sequence[str]) -> list[float]:
        batch = _collate_adding([self._parse(text) for text in inputs])
        model.eval()
        with torch.no_grad():
            return [float(v) for v in model(batch.inputs, batch.lengths)[:, 0]]


def _collate_adding(examples: list[AddingBatch]) -> AddingBatch:
    """Pad single-example adding batches (possibly of different lengths) into one batch."""
    T = max(int(e.lengths[0]) for e in examples)
    inputs = torch.zeros(len(examples), T, 2)
    for b, e in enumerate(examples):
        inputs[b, : e.inputs.size(1)] = e.inputs[0]
    lengths = torch.cat([e.lengths for e in examples])
    targets = torch.cat([e.targets for e in examples])
    return AddingBatch(inputs, lengths, targets)
