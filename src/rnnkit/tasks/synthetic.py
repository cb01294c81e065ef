"""The built-in synthetic tasks: ``copy``, ``reverse`` (seq2seq) and ``adding`` (many-to-one).

They exercise the whole engine (layers, attention, decoding, trainer, checkpoints, CLI) on problems
whose answer is known, and ``adding`` doubles as a long-memory benchmark of the diagnostics (with
``copy_memory`` and ``first_token`` in :mod:`rnnkit.tasks.long_memory`). Data is generated on the
fly from ``(data.seed, epoch)``, so every epoch is reproducible and resumable.

Shapes: B examples, S source and T target tokens; copy and reverse see V = vocab_size + 3 token ids
(pad 0, bos 1, eos 2, then the symbols); adding sees (B, T, 2) of (value, marker) and predicts (B, 1).

Data files for ``rnnkit evaluate RUN --data FILE``:

- copy / reverse: one example per line, the source symbols (integers in ``[0, vocab_size)``) separated by
  spaces, optionally a TAB and the expected output; without it the task's rule gives the target.
- adding: one sequence per line, values separated by spaces with the two values to add marked by a
  trailing ``*`` (``0.2 0.7* 0.1 0.9*``), optionally a TAB and the expected sum.

``rnnkit predict`` takes the same inputs without the expected output and prints the model's
answer: the symbols the model writes (greedy search, ``"3 1 4"`` -> ``"4 1 3"`` for reverse) or
the predicted sum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from rnnkit.config import FrozenConfig
from rnnkit.data.synthetic import (
    NUM_SPECIAL,
    PAD,
    AddingBatch,
    TokenBatch,
    adding_batch,
    make_token_batch,
    parse_adding,
    parse_symbols,
    random_symbols,
    transform,
)
from rnnkit.decoding import greedy_search
from rnnkit.models.classifier import SequenceRegressor, SequenceRegressorConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks.base import Predictor, StepOutput, TaskError
from rnnkit.tasks.generated import (
    GeneratedTask,
    MemoryTask,
    SolvedRule,
    line_error,
    read_data_lines,
)
from rnnkit.training.losses import token_accuracy, token_cross_entropy

__all__ = [
    "AddingDataConfig",
    "AddingInput",
    "AddingPredictor",
    "AddingTask",
    "CopyTask",
    "ReverseTask",
    "SequenceDataConfig",
    "SequencePredictor",
    "SequenceTask",
]

# ---------------------------------------------------------------------------- copy and reverse


class SequenceDataConfig(FrozenConfig):
    """Data of the copy and reverse tasks."""

    vocab_size: int = Field(10, ge=1, description="number of distinct symbols")
    length: int = Field(8, ge=1, description="(maximum) sequence length")
    min_length: int | None = Field(None, ge=1, description="draw lengths in [min_length, length]")
    train_size: int = Field(20_000, ge=1, description="examples per epoch")
    valid_size: int = Field(512, ge=1)
    seed: int = 0


class SequencePredictor(Predictor[list[int], list[int]]):
    """Copy / reverse: source symbols in (``"3 1 4"``), the symbols the model writes out.

    The model writes them by greedy search (:func:`rnnkit.decoding.greedy_search`), at most
    ``2 S + 2`` tokens for a source of S symbols, eos included.
    """

    def parse(self, text: str) -> list[int]:
        """``"3 1 4"`` -> [3, 1, 4]; a :class:`TaskError` for a symbol outside the vocabulary."""
        task = self.task
        assert isinstance(task, SequenceTask)
        try:
            return parse_symbols(text, task.data.vocab_size)
        except ValueError as err:
            raise TaskError(f"input '{text}': {err}") from None

    def predict(self, inputs: Sequence[list[int]], options: Mapping[str, Any]) -> list[list[int]]:
        """The greedy output symbols (eos removed) of each source; no options."""
        if not inputs:
            return []
        model = self.model
        assert isinstance(model, Seq2Seq)
        sources = [list(source) for source in inputs]
        batch = make_token_batch(sources, sources)
        model.eval()
        with torch.no_grad():
            memory = model.encode(batch.src, batch.src_lengths)  # B sources, S <= max length
            found = greedy_search(model, memory, max_len_a=2, max_len_b=2)
        # Greedy search never writes pad or bos and leaves eos out: every id is a symbol's.
        return [[token - NUM_SPECIAL for token in best.tokens] for (best,) in found]

    def format(self, output: list[int]) -> str:
        """[4, 1, 3] -> ``"4 1 3"``."""
        return " ".join(str(symbol) for symbol in output)


class SequenceTask(GeneratedTask):
    """Shared body of ``copy`` and ``reverse``: symbols in, transformed symbols out.

    Batches are :class:`~rnnkit.data.synthetic.TokenBatch` es: src (B, S), tgt_in and tgt_out
    (B, T) with T = S + 1; the model is a :class:`~rnnkit.models.seq2seq.Seq2Seq` over V ids.
    """

    DataConfig: ClassVar[type[FrozenConfig]] = SequenceDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = Seq2SeqConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "token_accuracy", "sequence_accuracy")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("token_accuracy", "max")
    predictor: ClassVar[type[Predictor[Any, Any]]] = SequencePredictor

    @property
    def data(self) -> SequenceDataConfig:
        """The ``data`` section."""
        assert isinstance(self.config.data, SequenceDataConfig)
        return self.config.data

    def build_model(self) -> nn.Module:
        """A Seq2Seq over V = vocab_size + 3 source and target ids."""
        vocab = self.data.vocab_size + NUM_SPECIAL
        assert isinstance(self.config.model, Seq2SeqConfig)
        return Seq2Seq(self.config.model, vocab, vocab)

    def make_batch(self, batch_size: int, generator: torch.Generator) -> TokenBatch:
        """``batch_size`` random sources and their targets under the task's rule."""
        d = self.data
        sources = random_symbols(batch_size, d.vocab_size, d.length, d.min_length, generator)
        return make_token_batch(sources, [transform(self.name, s) for s in sources])

    def step(self, model: nn.Module, batch: TokenBatch, state: Any = None) -> StepOutput:
        """Teacher-forced cross-entropy over the real target tokens, with token and sequence accuracy."""
        out = model(batch.src, batch.src_lengths, batch.tgt_in)  # logits (B, T, V)
        loss = token_cross_entropy(out.logits, batch.tgt_out, PAD)
        token, sequence = token_accuracy(out.logits.detach(), batch.tgt_out, PAD)
        return StepOutput(
            loss=loss,
            metrics={"token_accuracy": token, "sequence_accuracy": sequence},
            num_tokens=int((batch.tgt_out != PAD).sum()),
        )

    def load_examples(self, path: Path) -> list[TokenBatch]:
        """A data file (module docstring) as batches of ``train.batch_size`` examples."""
        sources, targets = [], []
        for number, text in read_data_lines(path):
            columns = text.split("\t")
            if len(columns) > 2:
                raise line_error(
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
                raise line_error(path, number, str(err)) from None
            sources.append(source)
            targets.append(target)
        size = self.config.train.batch_size
        return [
            make_token_batch(sources[i : i + size], targets[i : i + size])
            for i in range(0, len(sources), size)
        ]


class CopyTask(SequenceTask):
    """Reproduce the source sequence."""

    name = "copy"


class ReverseTask(SequenceTask):
    """Reproduce the source sequence backwards."""

    name = "reverse"


# ---------------------------------------------------------------------------- adding


class AddingDataConfig(FrozenConfig):
    """Data of the adding problem."""

    length: int = Field(50, ge=2, description="sequence length T")
    train_size: int = Field(20_000, ge=1, description="examples per epoch")
    valid_size: int = Field(1000, ge=1)
    seed: int = 0


@dataclass(frozen=True)
class AddingInput:
    """One adding-problem sequence: T values and T markers (1.0 on the two values to add)."""

    values: list[float]
    markers: list[float]

    def to_batch(self, target: float | None = None) -> AddingBatch:
        """A batch of one: inputs (1, T, 2), lengths (1,), targets (1, 1) (the marked sum by default)."""
        if target is None:
            target = sum(v * m for v, m in zip(self.values, self.markers, strict=True))
        inputs = torch.tensor([self.values, self.markers]).T.unsqueeze(0)  # (1, T, 2)
        return AddingBatch(inputs, torch.tensor([len(self.values)]), torch.tensor([[target]]))


class AddingPredictor(Predictor[AddingInput, float]):
    """Adding: a sequence in (``"0.2 0.7* 0.1 0.9*"``), the predicted sum of its marked values out."""

    def parse(self, text: str) -> AddingInput:
        """``"0.2 0.7* 0.1 0.9*"`` -> its values and markers; a :class:`TaskError` if malformed."""
        try:
            return AddingInput(*parse_adding(text))
        except ValueError as err:
            raise TaskError(f"input '{text}': {err}") from None

    def predict(self, inputs: Sequence[AddingInput], options: Mapping[str, Any]) -> list[float]:
        """The model's sum for each sequence (sequences may differ in length); no options."""
        if not inputs:
            return []
        batch = _collate_adding([inp.to_batch() for inp in inputs])
        self.model.eval()
        with torch.no_grad():
            return [float(v) for v in self.model(batch.inputs, batch.lengths)[:, 0]]  # (B,)


class AddingTask(MemoryTask):
    """Hochreiter & Schmidhuber's adding problem: many-to-one regression; solved at MSE < 0.01.

    Batches are :class:`~rnnkit.data.synthetic.AddingBatch` es, inputs (B, T, 2) -> targets (B, 1);
    predicting the mean (1.0) scores an MSE of 1/6.
    """

    name = "adding"
    DataConfig: ClassVar[type[FrozenConfig]] = AddingDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = SequenceRegressorConfig
    solved_rule: ClassVar[SolvedRule] = SolvedRule("mse", "min", 0.01)
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "mse")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = (
        solved_rule.metric,
        solved_rule.mode,
    )
    predictor: ClassVar[type[Predictor[Any, Any]]] = AddingPredictor
    baseline_mse: ClassVar[float] = 1.0 / 6.0

    @property
    def data(self) -> AddingDataConfig:
        """The ``data`` section."""
        assert isinstance(self.config.data, AddingDataConfig)
        return self.config.data

    def build_model(self) -> nn.Module:
        """A SequenceRegressor, (B, T, 2) -> (B, 1)."""
        assert isinstance(self.config.model, SequenceRegressorConfig)
        return SequenceRegressor(self.config.model, input_size=2, output_size=1)

    def make_batch(self, batch_size: int, generator: torch.Generator) -> AddingBatch:
        """``batch_size`` fresh sequences of length T."""
        return adding_batch(batch_size, self.data.length, generator)

    def memory_baseline(self) -> float:
        """1/6, the MSE of always predicting the mean sum 1.0."""
        return self.baseline_mse

    def step(self, model: nn.Module, batch: AddingBatch, state: Any = None) -> StepOutput:
        """The MSE of the predicted sums."""
        prediction = model(batch.inputs, batch.lengths)  # (B, 1)
        loss = F.mse_loss(prediction, batch.targets)
        return StepOutput(
            loss=loss, metrics={"mse": loss.detach()}, num_tokens=batch.targets.size(0)
        )

    def load_examples(self, path: Path) -> list[AddingBatch]:
        """A data file (module docstring) as batches of up to 256 sequences."""
        examples = []
        for number, text in read_data_lines(path):
            columns = text.split("\t")
            if len(columns) > 2:
                raise line_error(
                    path, number, f"expected 1 or 2 TAB-separated columns, found {len(columns)}"
                )
            try:
                example = AddingInput(*parse_adding(columns[0]))
                target = float(columns[1]) if len(columns) == 2 else None
            except ValueError as err:
                raise line_error(path, number, str(err)) from None
            examples.append(example.to_batch(target))
        return [_collate_adding(examples[i : i + 256]) for i in range(0, len(examples), 256)]


def _collate_adding(examples: Sequence[AddingBatch]) -> AddingBatch:
    """Pad adding batches of one (possibly of different lengths) into one batch.

    Args:
        examples: N batches of one, inputs (1, T_n, 2).

    Returns:
        inputs (N, max T_n, 2) zero-padded, lengths (N,), targets (N, 1).
    """
    T = max(int(e.lengths[0]) for e in examples)
    inputs = torch.zeros(len(examples), T, 2)
    for b, e in enumerate(examples):
        inputs[b, : e.inputs.size(1)] = e.inputs[0]
    lengths = torch.cat([e.lengths for e in examples])
    targets = torch.cat([e.targets for e in examples])
    return AddingBatch(inputs, lengths, targets)
