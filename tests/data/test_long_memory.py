"""The long-memory batch generators: copy-memory layout and baseline, first-token labels."""

import math

import pytest
import torch

from rnnkit.data.long_memory import copy_memory_baseline, copy_memory_batch, first_token_batch


def test_copy_memory_layout() -> None:
    batch = copy_memory_batch(
        4, length=6, symbols=8, recall=3, generator=torch.Generator().manual_seed(0)
    )
    assert batch.tokens.shape == batch.labels.shape == (4, 12)
    memory = batch.tokens[:, :3]
    assert bool(((memory >= 1) & (memory <= 8)).all())
    assert bool((batch.tokens[:, 3:8] == 0).all())
    assert bool((batch.tokens[:, 8] == 9).all())  # the delimiter, T + recall - 1
    assert bool((batch.tokens[:, 9:] == 0).all())
    assert bool((batch.labels[:, :9] == 0).all())
    assert torch.equal(batch.labels[:, 9:], memory)
    assert copy_memory_baseline(100, 8, 10) == pytest.approx(10 * math.log(8) / 120)


def test_first_token_labels() -> None:
    batch = first_token_batch(5, 7, 4, torch.Generator().manual_seed(0))
    assert batch.tokens.shape == (5, 7)
    assert torch.equal(batch.labels, batch.tokens[:, 0])
