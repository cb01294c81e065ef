"""A run folder that stopped before its first checkpoint never blocks the next command.

A kill after ``config.yaml`` is written but before the first checkpoint, or a failure while the
task sets up, used to leave a folder that neither ``--resume`` ("no usable checkpoint") nor a new
run ("already holds a run") would take.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from rnnkit import api
from rnnkit.cli.main import main
from rnnkit.data.parallel import write_tsv

PAIRS = [("red apple", "pomme rouge"), ("green tree", "arbre vert"), ("blue car", "voiture bleue")]


def adding(steps: int = 6) -> list[str]:
    return ["--set", f"train.max_steps={steps}", "--set", "train.checkpoint_every=3"]


def killed_before_first_checkpoint(run: Path) -> None:
    """What SIGKILL before the first checkpoint leaves: config.yaml and what prepare() wrote."""
    for name in ("model.safetensors", "best.safetensors", "metrics.csv"):
        (run / name).unlink(missing_ok=True)
    shutil.rmtree(run / "checkpoints")


def test_resume_without_a_checkpoint_starts_from_step_0_and_matches_a_straight_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    straight, stuck = tmp_path / "straight", tmp_path / "stuck"
    assert main(["train", "adding", "--out", str(straight), *adding()]) == 0
    assert main(["train", "adding", "--out", str(stuck), *adding()]) == 0
    killed_before_first_checkpoint(stuck)
    assert main(["train", "adding", "--out", str(stuck), *adding(), "--resume"]) == 0
    assert "trained adding to step 6" in capsys.readouterr().out
    want, got = load_file(straight / "model.safetensors"), load_file(stuck / "model.safetensors")
    assert want.keys() == got.keys()
    assert all(bool((want[k] == got[k]).all()) for k in want)  # bitwise


def test_a_new_run_may_start_over_where_the_last_one_never_checkpointed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["train", "adding", "--out", str(run), *adding()]) == 0
    killed_before_first_checkpoint(run)
    fixed = [*adding(), "--set", "model.hidden_size=8"]
    assert main(["train", "adding", "--out", str(run), *fixed]) == 0
    assert api.read_run_config(run).model.model_dump()["hidden_size"] == 8
    capsys.readouterr()
    # Once a checkpoint exists, the folder is a run: a new one is refused.
    assert main(["train", "adding", "--out", str(run), *fixed]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_a_failed_setup_leaves_nothing_that_blocks_the_corrected_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, valid = tmp_path / "train.tsv", tmp_path / "valid.tsv"
    train.write_text("", encoding="utf-8")  # empty: the tokeniser cannot be trained
    write_tsv(PAIRS, valid)
    config = tmp_path / "t.yaml"
    config.write_text(
        f"task: translation\ndata: {{train: {train}, valid: {valid}, tokenizer: word}}\n"
        "model: {hidden_size: 8, embedding_size: 8}\n"
        "train: {max_steps: 2, eval_every: 2, progress: false}\n",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run)]) == 2
    assert "rnnkit: error:" in capsys.readouterr().err
    assert not (run / "config.yaml").exists()
    write_tsv(PAIRS, train)
    assert main(["train", str(config), "--out", str(run)]) == 0
    assert (run / "model.safetensors").is_file()
