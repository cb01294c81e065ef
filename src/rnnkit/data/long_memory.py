"""Long-memory problems for recurrent networks (besides the adding problem in :mod:`.synthetic`).

- copy memory (Arjovsky, Shah & Bengio 2016): ``recall`` symbols from an alphabet of ``symbols``,
  then ``T - 1`` blanks, a delimiter, and ``recall`` more blanks; the model must output blanks and
  then, after the delimiter, the symbols it saw ``T + recall`` steps earlier. A memoryless model that
  outputs blanks and then guesses scores a cross-entropy of ``recall * log(symbols) / (T + 2 recall)``.
- first token: a random token sequence of length T labelled with its first token; a model without
  memory is right one time in V.

Token ids for copy memory: 0 blank, 1..symbols the alphabet, symbols + 1 the delimiter.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

BLANK = 0


class LabelledBatch(NamedTuple):
    """Token inputs (B, T) with labels: (B, T) per position or (B,) per sequence."""

    tokens: Tensor
    labels: Tensor


def copy_memory_batch(
    batch_size: int, length: int, symbols: int, recall: int, generator: torch.Generator
) -> LabelledBatch:
    """A copy-memory batch: tokens and labels both (B, length + 2 * recall)."""
    delimiter = symbols + 1
    memory = torch.randint(1, symbols + 1, (batch_size, recall), generator=generator)  # (B, R)
    total = length + 2 * recall
    tokens = torch.full((batch_size, total), BLANK, dtype=torch.long)
    tokens[:, :recall] = memory
    tokens[:, length + recall - 1] = delimiter
    labels = torch.full((batch_size, total), BLANK, dtype=torch.long)
    labels[:, -recall:] = memory
    return LabelledBatch(tokens, labels)


def copy_memory_baseline(length: int, symbols: int, recall: int) -> float:
    """Cross-entropy of the memoryless strategy: ``recall log(symbols) / (length + 2 recall)``."""
    return recall * math.log(symbols) / (length + 2 * recall)


def first_token_batch(
    batch_size: int, length: int, vocab_size: int, generator: torch.Generator
) -> LabelledBatch:
    """Random tokens (B, length) labelled with their first token (B,)."""
    tokens = torch.randint(0, vocab_size, (batch_size, length), generator=generator)
    return LabelledBatch(tokens, tokens[:, 0].clone())
