"""Synthetic sequence problems used to test recurrent models end to end.

- copy / reverse: a sequence of symbols in, the same sequence (or its reverse) out. Seq2seq-shaped.
- adding (Hochreiter & Schmidhuber 1997): a sequence of (value, marker) pairs; the target is the sum of
  the two marked values. Many-to-one regression. Predicting the mean (1.0) gives MSE 1/6 ~ 0.167.

Every generator takes a ``torch.Generator`` so that a (seed, epoch) pair always yields the same data.
Symbols are user-facing integers ``0 .. V-1``; models see them shifted past the special tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.data.parallel import pad_pairs

PAD, BOS, EOS = 0, 1, 2
NUM_SPECIAL = 3


class TokenBatch(NamedTuple):
    """A padded seq2seq batch of token ids (specials: pad 0, bos 1, eos 2).

    Attributes:
        src: (B, S) source ids, padded with PAD.
        src_lengths: (B,) real source lengths.
        tgt_in: (B, T) decoder input: BOS followed by the target.
        tgt_out: (B, T) decoder target: the target followed by EOS, padded with PAD.
    """

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor


class AddingBatch(NamedTuple):
    """An adding-problem batch: inputs (B, T, 2) of (value, marker), lengths (B,), targets (B, 1)."""

    inputs: Tensor
    lengths: Tensor
    targets: Tensor


def make_token_batch(sources: list[list[int]], targets: list[list[int]]) -> TokenBatch:
    """Pad user-facing symbol lists (``0 .. V-1``) into a :class:`TokenBatch` of model ids."""
    return TokenBatch(
        *pad_pairs(
            [[x + NUM_SPECIAL for x in s] for s in sources],
            [[x + NUM_SPECIAL for x in t] for t in targets],
            pad_id=PAD,
            bos_id=BOS,
            eos_id=EOS,
        )
    )


def transform(kind: str, sequence: list[int]) -> list[int]:
    """The target of ``sequence`` under ``kind`` ("copy" or "reverse")."""
    if kind == "copy":
        return list(sequence)
    if kind == "reverse":
        return sequence[::-1]
    raise ValueError(f"unknown sequence transform '{kind}'; valid: copy, reverse")


def random_symbols(
    batch_size: int,
    vocab_size: int,
    length: int,
    min_length: int | None,
    generator: torch.Generator,
) -> list[list[int]]:
    """``batch_size`` random symbol sequences; lengths uniform in [min_length, length] (or fixed)."""
    low = length if min_length is None else min_length
    lengths = torch.randint(low, length + 1, (batch_size,), generator=generator).tolist()
    symbols = torch.randint(0, vocab_size, (batch_size, length), generator=generator)
    return [symbols[b, :n].tolist() for b, n in enumerate(lengths)]


def adding_batch(batch_size: int, length: int, generator: torch.Generator) -> AddingBatch:
    """The adding problem: one marker in each half of the sequence; target = sum of marked values."""
    values = torch.rand(batch_size, length, generator=generator)  # (B, T)
    half = max(length // 2, 1)
    first = torch.randint(0, half, (batch_size,), generator=generator)
    second = torch.randint(half, max(length, half + 1), (batch_size,), generator=generator)
    second = torch.minimum(second, torch.full_like(second, length - 1))
    markers = torch.zeros(batch_size, length)
    rows = torch.arange(batch_size)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = (values * markers).sum(dim=1, keepdim=True)  # (B, 1)
    inputs = torch.stack([values, markers], dim=-1)  # (B, T, 2)
    lengths = torch.full((batch_size,), length, dtype=torch.long)
    return AddingBatch(inputs, lengths, targets)


class LineError(ValueError):
    """A problem in a user's data file, located by file and line."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path = path
        self.line = line


def parse_symbols(text: str, vocab_size: int) -> list[int]:
    """``"3 1 4"`` -> [3, 1, 4]; every symbol must be an integer in [0, vocab_size)."""
    parts = text.split()
    if not parts:
        raise ValueError("empty sequence")
    out = []
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"'{part}' is not an integer symbol") from None
        if not 0 <= value < vocab_size:
            raise ValueError(f"symbol {value} is outside [0, {vocab_size})")
        out.append(value)
    return out


def parse_adding(text: str) -> tuple[list[float], list[float]]:
    """``"0.2 0.7* 0.1 0.9*"`` -> values and markers (a ``*`` marks a value to add)."""
    values, markers = [], []
    for part in text.split():
        marked = part.endswith("*")
        try:
            values.append(float(part.rstrip("*")))
        except ValueError:
            raise ValueError(
                f"'{part}' is not a number (mark values to add with a trailing *)"
            ) from None
        markers.append(1.0 if marked else 0.0)
    if not values:
        raise ValueError("empty sequence")
    if sum(markers) != 2:
        raise ValueError(f"expected exactly 2 marked values (with *), found {int(sum(markers))}")
    return values, markers


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty lines of a UTF-8 text file with their 1-based numbers; errors name the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    out = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as err:
            raise LineError(path, number, f"not valid UTF-8 ({err.reason})") from None
        if text.strip():
            out.append((number, text))
    if not out:
        raise ValueError(f"{path}: no examples")
    return out
