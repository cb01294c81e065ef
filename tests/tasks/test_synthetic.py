"""The synthetic tasks copy, reverse and adding: their entry points, batches, first loss, data
files (and the exact errors), learning, and their predictors' text."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from rnnkit.data.synthetic import NUM_SPECIAL, PAD
from rnnkit.tasks.base import TaskError
from rnnkit.tasks.registry import get_task
from rnnkit.tasks.run import build_run_config
from rnnkit.tasks.synthetic import (
    AddingInput,
    AddingPredictor,
    AddingTask,
    CopyTask,
    ReverseTask,
    SequencePredictor,
    SequenceTask,
)

V = 5  # symbols; the model sees V + 3 ids


def sequence_task(name: str, **data: Any) -> SequenceTask:
    model = {"embedding_size": 8, "hidden_size": 16, "attention": "additive"}
    config = build_run_config(
        {
            "task": name,
            "data": {"vocab_size": V, "length": 4, **data},
            "model": model,
            "train": {"batch_size": 3, "max_steps": 1},
        }
    )
    made = get_task(name)(config)
    assert isinstance(made, SequenceTask)
    return made


def adding_task(length: int = 5) -> AddingTask:
    config = build_run_config(
        {
            "task": "adding",
            "data": {"length": length},
            "model": {"hidden_size": 7},
            "train": {"batch_size": 3, "max_steps": 1},
        }
    )
    made = get_task("adding")(config)
    assert isinstance(made, AddingTask)
    return made


def test_entry_points_name_the_task_classes() -> None:
    assert get_task("copy") is CopyTask
    assert get_task("reverse") is ReverseTask
    assert get_task("adding") is AddingTask
    assert CopyTask.predictor is ReverseTask.predictor is SequencePredictor
    assert AddingTask.predictor is AddingPredictor


def test_batches_follow_the_rule_and_the_seed() -> None:
    t = sequence_task("reverse", min_length=2)
    batch = next(iter(t.train_batches(0)))
    again = next(iter(t.train_batches(0)))
    assert torch.equal(batch.src, again.src)
    assert not torch.equal(batch.src, next(iter(t.train_batches(1))).src)
    assert batch.src.shape[0] == 3  # B = train.batch_size
    for b in range(3):
        n = int(batch.src_lengths[b])
        assert 2 <= n <= 4
        assert batch.tgt_out[b, :n].tolist() == batch.src[b, :n].flip(0).tolist()


def test_first_loss_is_about_log_v() -> None:
    torch.manual_seed(0)
    t = sequence_task("copy")
    batch = t.test_batches(256)[0]
    with torch.no_grad():
        out = t.step(t.build_model(), batch)
    assert float(out.loss) == pytest.approx(math.log(V + NUM_SPECIAL), abs=0.3)
    assert out.num_tokens == int((batch.tgt_out != PAD).sum())


def test_sequence_files_with_and_without_targets(tmp_path: Path) -> None:
    t = sequence_task("reverse")
    path = tmp_path / "rev.tsv"
    path.write_text("1 2 3\n4 0\t0 4\n\n1 2 3 4\t1 2 3 4\n")
    batches = t.load_examples(path)
    assert [b.src.shape[0] for b in batches] == [3]  # batch_size 3, one batch
    (batch,) = batches
    # the rule's target when the file gives none, the file's own target otherwise
    assert batch.tgt_out[0, :4].tolist() == [x + NUM_SPECIAL for x in [3, 2, 1]] + [2]
    assert batch.tgt_out[2, :4].tolist() == [x + NUM_SPECIAL for x in [1, 2, 3, 4]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2\t2 1\t3\n", r"rev.tsv:1: expected 1 or 2 TAB-separated columns, found 3$"),
        ("1 2\n3 x\n", r"rev.tsv:2: 'x' is not an integer symbol$"),
        ("1 9\n", r"rev.tsv:1: symbol 9 is outside \[0, 5\)$"),
        ("\n\n", r"rev.tsv: no examples$"),
    ],
)
def test_sequence_file_errors_name_file_and_line(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "rev.tsv"
    path.write_text(text)
    with pytest.raises(TaskError, match=message):
        sequence_task("reverse").load_examples(path)


def test_sequence_predictor_text() -> None:
    t = sequence_task("reverse")
    predictor = t.predictor(t, t.build_model())
    assert isinstance(predictor, SequencePredictor)
    assert predictor.parse(" 3 1 4 ") == [3, 1, 4]
    assert predictor.format([4, 1, 3]) == "4 1 3"
    assert predictor.format([]) == ""
    assert predictor.to_json([3, 1], [1, 3]) == {"input": [3, 1], "output": [1, 3]}
    with pytest.raises(TaskError, match=r"^input '3 7': symbol 7 is outside \[0, 5\)$"):
        predictor.parse("3 7")
    with pytest.raises(TaskError, match=r"^input '': empty sequence$"):
        predictor.parse("")
    assert predictor.predict([], {}) == []
    outputs = predictor.predict([[3, 1, 4], [2]], {})  # untrained: any symbols, bounded length
    assert len(outputs) == 2
    assert len(outputs[0]) <= 2 * 3 + 2 and len(outputs[1]) <= 2 * 1 + 2
    assert all(0 <= s < V for out in outputs for s in out)


@pytest.mark.slow
def test_reverse_learned_and_predicted() -> None:
    """Adam on fresh batches until token accuracy > 99 %; the predictor then writes each
    source backwards (greedy search, ragged batch)."""
    torch.manual_seed(0)
    t = sequence_task("reverse", min_length=1)
    model = t.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(300):
        batch = t.make_batch(64, torch.Generator().manual_seed(step))
        loss = t.step(model, batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    metrics = t.evaluate(model, t.test_batches(256))
    assert metrics["token_accuracy"] > 0.99
    predictor = t.predictor(t, model)
    sources = ["3 1 4 0", "2", "4 4 1"]
    outputs = predictor.predict([predictor.parse(s) for s in sources], {})
    assert [predictor.format(o) for o in outputs] == ["0 4 1 3", "2", "1 4 4"]


def test_adding_files_and_predictor(tmp_path: Path) -> None:
    t = adding_task()
    path = tmp_path / "add.txt"
    path.write_text("0.5 0.25* 1 0.5*\n0.1* 0.2 0.3*\t9\n")
    (batch,) = t.load_examples(path)
    assert batch.inputs.shape == (2, 4, 2)
    assert batch.lengths.tolist() == [4, 3]
    assert batch.targets[:, 0].tolist() == pytest.approx([0.75, 9.0])
    assert batch.inputs[1, 3].tolist() == [0.0, 0.0]  # padding
    path.write_text("0.5 0.25* 1 0.5*\n0.1* 0.2\n")
    with pytest.raises(TaskError, match=r"add.txt:2: expected exactly 2 marked values"):
        t.load_examples(path)

    torch.manual_seed(0)
    model = t.build_model()
    predictor = t.predictor(t, model)
    assert isinstance(predictor, AddingPredictor)
    inputs = [predictor.parse("0.5 0.25* 1 0.5*"), predictor.parse("0.1* 0.2 0.3*")]
    assert inputs[1] == AddingInput([0.1, 0.2, 0.3], [1.0, 0.0, 1.0])
    outputs = predictor.predict(inputs, {})
    with torch.no_grad():
        alone = [float(model(i.to_batch().inputs)[0, 0]) for i in inputs]
    assert outputs == pytest.approx(alone, rel=1e-5)  # padding does not change a sequence
    assert predictor.format(outputs[0]) == str(outputs[0])
    assert predictor.to_json(inputs[1], 0.4) == {
        "input": {"values": [0.1, 0.2, 0.3], "markers": [1.0, 0.0, 1.0]},
        "output": 0.4,
    }
    with pytest.raises(TaskError, match=r"^input '1 2': expected exactly 2 marked values"):
        predictor.parse("1 2")


def test_adding_solved_rule_and_baseline() -> None:
    t = adding_task()
    assert t.memory_baseline() == pytest.approx(1 / 6)
    assert t.solved_rule.describe() == "mse < 0.01"
    assert t.memory_solved(0.009) and not t.memory_solved(0.011)
