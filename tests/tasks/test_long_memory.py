"""The long-memory tasks: data layout, baselines, solved thresholds, and that they train."""

import math
from pathlib import Path

import pytest
import torch

from rnnkit.config import build_run_config
from rnnkit.data.memory import copy_memory_baseline, copy_memory_batch, first_token_batch
from rnnkit.models.generated import GeneratedTask
from rnnkit.registry import get_task


def task(name: str, **data: int) -> GeneratedTask:
    model = {"hidden_size": 16} if name == "adding" else {"hidden_size": 16, "embedding_size": 8}
    config = build_run_config(
        {"task": name, "data": data, "model": model, "train": {"batch_size": 8, "max_steps": 1}}
    )
    made = get_task(name)(config)
    assert isinstance(made, GeneratedTask)
    return made


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


def test_data_streams_are_reproducible_and_distinct() -> None:
    t = task("copy_memory", length=5, recall=2)
    a = next(iter(t.train_batches(0)))
    assert torch.equal(a.tokens, next(iter(t.train_batches(0))).tokens)
    assert not torch.equal(a.tokens, next(iter(t.train_batches(1))).tokens)
    assert not torch.equal(t.valid_batches()[0].tokens, t.test_batches()[0].tokens)


@pytest.mark.parametrize(
    ("name", "metric", "baseline", "solved", "unsolved"),
    [
        ("adding", "mse", 1 / 6, 0.009, 0.011),
        ("first_token", "accuracy", 1 / 8, 0.995, 0.98),
        ("copy_memory", "loss", 10 * math.log(8) / 70, 0.01, 0.2),
    ],
)
def test_memory_thresholds(
    name: str, metric: str, baseline: float, solved: float, unsolved: float
) -> None:
    t = task(name)
    assert t.memory_metric == metric
    assert t.memory_baseline() == pytest.approx(baseline)
    assert t.memory_solved(solved)
    assert not t.memory_solved(unsolved)


def test_first_losses_match_the_memoryless_level() -> None:
    torch.manual_seed(0)
    t = task("first_token", length=10, vocab_size=8)
    batch = t.test_batches(256)[0]
    with torch.no_grad():
        loss = float(t.step(t.build_model(), batch).loss)
    assert loss == pytest.approx(math.log(8), abs=0.2)


def test_first_token_learned_at_short_length() -> None:
    torch.manual_seed(0)
    t = task("first_token", length=5, vocab_size=4)
    model = t.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for batch in t.train_batches(0):
        loss = t.step(model, batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.01:
            break
    metrics = t.evaluate(model, t.test_batches(512))
    assert metrics["accuracy"] > 0.99


def test_copy_memory_files(tmp_path: Path) -> None:
    t = task("copy_memory", length=3, recall=2)
    path = tmp_path / "cm.txt"
    path.write_text("1 2 0 0 9 0 0\n3 4 0 0 9 0 0\n")
    (batch,) = t.load_examples(path)
    assert batch.labels[:, -2:].tolist() == [[1, 2], [3, 4]]
    path.write_text("1 2 0 9 0 0\n")
    with pytest.raises(ValueError, match=r"cm.txt:1: expected 7 tokens, found 6"):
        t.load_examples(path)
