"""The long-memory tasks: data streams, baselines, the one solved rule, learning, data files and
their predictors."""

import math
from pathlib import Path

import pytest
import torch

from rnnkit.tasks.base import TaskError
from rnnkit.tasks.generated import MemoryTask, SolvedRule
from rnnkit.tasks.long_memory import CopyMemoryPredictor, FirstTokenPredictor
from rnnkit.tasks.registry import get_task
from rnnkit.tasks.run import build_run_config


def task(name: str, **data: int) -> MemoryTask:
    model = {"hidden_size": 16} if name == "adding" else {"hidden_size": 16, "embedding_size": 8}
    config = build_run_config(
        {"task": name, "data": data, "model": model, "train": {"batch_size": 8, "max_steps": 1}}
    )
    made = get_task(name)(config)
    assert isinstance(made, MemoryTask)
    return made


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
    assert t.solved_rule.metric == metric
    assert t.memory_baseline() == pytest.approx(baseline)
    assert t.memory_solved(solved)
    assert not t.memory_solved(unsolved)


@pytest.mark.parametrize(
    ("name", "words", "threshold"),
    [
        ("adding", "mse < 0.01", 0.01),
        ("first_token", "accuracy >= 0.99", 0.99),
        ("copy_memory", "loss < baseline / 10", math.log(8) / 7 / 10),
    ],
)
def test_each_task_states_its_rule_and_tracks_its_metric(
    name: str, words: str, threshold: float
) -> None:
    t = task(name)
    assert t.solved_rule.describe() == words
    assert t.solved_threshold() == pytest.approx(threshold)
    assert t.best_metric == (t.solved_rule.metric, t.solved_rule.mode)
    assert t.solved_rule.metric in t.metric_names


def test_solved_rule_at_the_threshold_and_with_a_margin() -> None:
    loss = SolvedRule("mse", "min", 0.01)
    assert not loss.solved(0.01, baseline=1 / 6)  # strictly below
    assert loss.solved(0.0049, baseline=1 / 6, margin=2)
    assert not loss.solved(0.0051, baseline=1 / 6, margin=2)
    accuracy = SolvedRule("accuracy", "max", 0.99)
    assert accuracy.solved(0.99, baseline=0.125)  # at or above
    assert accuracy.solved(0.995, baseline=0.125, margin=2)
    assert not accuracy.solved(0.994, baseline=0.125, margin=2)
    relative = SolvedRule("loss", "min", 0.1, of_baseline=True)
    assert relative.threshold_for(0.5) == pytest.approx(0.05)
    assert relative.solved(0.049, baseline=0.5) and not relative.solved(0.051, baseline=0.5)


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

    predictor = t.predictor(t, model)
    assert isinstance(predictor, FirstTokenPredictor)
    inputs = [predictor.parse(text) for text in ["3 0 1 2 1", "1 2 3 0 0", "2 2"]]
    assert predictor.predict(inputs, {}) == [3, 1, 2]  # the short one is padded, not misread
    assert predictor.format(3) == "3"


def test_copy_memory_files(tmp_path: Path) -> None:
    t = task("copy_memory", length=3, recall=2)
    path = tmp_path / "cm.txt"
    path.write_text("1 2 0 0 9 0 0\n3 4 0 0 9 0 0\n")
    (batch,) = t.load_examples(path)
    assert batch.labels[:, -2:].tolist() == [[1, 2], [3, 4]]
    path.write_text("1 2 0 9 0 0\n")
    with pytest.raises(ValueError, match=r"cm.txt:1: expected 7 tokens, found 6"):
        t.load_examples(path)


def test_data_file_errors_are_task_errors(tmp_path: Path) -> None:
    t = task("first_token", length=3, vocab_size=4)
    path = tmp_path / "ft.txt"
    with pytest.raises(TaskError, match=r"ft.txt: no such file"):
        t.load_examples(path)
    path.write_text("1 2 3\n1 7 3\n")
    with pytest.raises(TaskError, match=r"ft.txt:2: symbol 7 is outside \[0, 4\)"):
        t.load_examples(path)
    path.write_text("1 2 3\n1 2\n")
    with pytest.raises(TaskError, match=r"ft.txt: all sequences must have the same length"):
        t.load_examples(path)


def test_copy_memory_predictor_prints_the_recalled_symbols() -> None:
    torch.manual_seed(0)
    t = task("copy_memory", length=3, recall=2)
    predictor = t.predictor(t, t.build_model())
    assert isinstance(predictor, CopyMemoryPredictor)
    inputs = [predictor.parse("1 2 0 0 9 0 0"), predictor.parse("3 4 0 0 9 0 0")]
    outputs = predictor.predict(inputs, {})
    assert len(outputs) == 2 and all(len(o) == 2 for o in outputs)
    assert all(0 <= v < 10 for o in outputs for v in o)
    assert predictor.format([1, 2]) == "1 2"
    assert predictor.to_json(inputs[0], [1, 2]) == {
        "input": [1, 2, 0, 0, 9, 0, 0],
        "output": [1, 2],
    }
    with pytest.raises(TaskError, match=r"^input '1 2 0 9': expected 7 tokens, found 4$"):
        predictor.parse("1 2 0 9")
    assert predictor.predict([], {}) == []
