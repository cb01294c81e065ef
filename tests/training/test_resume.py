"""Checkpoints and resumption: bitwise-exact resume, corrupt/unsafe checkpoints, refusals."""

from __future__ import annotations

import csv
import os
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from rnnkit.io import TEMP_PREFIX
from rnnkit.training import CheckpointWarning, Trainer
from rnnkit.training.checkpoint import checkpoint_path, list_checkpoints
from tests.training.test_tasks import CrashError, LinearTask, StreamTask, run_config

TIME_COLUMNS = {"elapsed_s", "tokens_per_s"}


def rows_without_time(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return [
            {k: v for k, v in row.items() if k not in TIME_COLUMNS}
            for row in csv.DictReader(handle)
        ]


# 30 steps of an LSTM stream (7 batches an epoch) with dropout, Adam, warmup + cosine, clipping
EXACT = {
    "max_steps": 30,
    "eval_every": 5,
    "log_every": 3,
    "checkpoint_every": 4,
    "keep_checkpoints": 2,
    "schedule": "cosine",
    "warmup_steps": 3,
    "clip_grad_norm": 0.3,
    "lr": 0.01,
}


def test_resume_is_bitwise_identical_to_a_straight_run(tmp_path: Path) -> None:
    cfg = run_config(**EXACT)
    straight = Trainer(StreamTask(cfg), cfg.train, tmp_path / "straight").fit()

    # crash at step 13: the newest checkpoint is step 12, mid-epoch 1 (batch 5 of 7)
    crashed = tmp_path / "resumed"
    with pytest.raises(CrashError):
        Trainer(StreamTask(cfg, crash_at=13), cfg.train, crashed).fit()
    assert list_checkpoints(crashed)[-1].name == "step_00000012.pt"
    # a row written after the checkpoint (as if the crash came later) must be trimmed on resume
    with (crashed / "metrics.csv").open("a") as handle:
        handle.write("13,1,9.9,0.001,2.0,0.3,0,0,195,100.0,0.1,,\n")
    task = StreamTask(cfg)
    resumed = Trainer(task, cfg.train, crashed).fit(resume=True)

    assert resumed.resumed_from == 12
    assert task.seen[0][:2] == (1, 5)  # the 5 consumed batches of epoch 1 were skipped
    assert task.seen[0][2] is False  # and the carried stream state was restored
    for name in ("model.safetensors", "best.safetensors"):
        assert (crashed / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()
    assert rows_without_time(crashed) == rows_without_time(tmp_path / "straight")
    assert (resumed.step, resumed.best_metric, resumed.best_step) == (
        straight.step,
        straight.best_metric,
        straight.best_step,
    )
    assert resumed.target_tokens == straight.target_tokens


@pytest.mark.parametrize(
    "train",
    [
        {"optimizer": "sgd", "momentum": 0.9, "schedule": "linear", "lr": 0.05},
        {"optimizer": "adamw", "weight_decay": 0.1, "schedule": "inverse_sqrt", "warmup_steps": 2},
    ],
)
def test_resume_is_exact_for_other_optimisers(tmp_path: Path, train: dict[str, Any]) -> None:
    cfg = run_config(max_steps=14, checkpoint_every=3, eval_every=4, log_every=2, **train)
    kwargs = {"dropout": 0.3, "n_batches": 4}
    Trainer(LinearTask(cfg, **kwargs), cfg.train, tmp_path / "a").fit()
    with pytest.raises(CrashError):
        Trainer(LinearTask(cfg, crash_at=8, **kwargs), cfg.train, tmp_path / "b").fit()
    Trainer(LinearTask(cfg, **kwargs), cfg.train, tmp_path / "b").fit(resume=True)
    a = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert (tmp_path / "b" / "model.safetensors").read_bytes() == a


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path: Path) -> None:
    cfg = run_config(max_steps=6, checkpoint_every=2, keep_checkpoints=3, eval_every=100)
    Trainer(LinearTask(cfg), cfg.train, tmp_path / "run").fit()
    newest = checkpoint_path(tmp_path / "run", 6)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    longer = run_config(max_steps=8, checkpoint_every=2, keep_checkpoints=3, eval_every=100)
    with pytest.warns(CheckpointWarning, match=re.escape(f"skipping checkpoint {newest}")):
        result = Trainer(LinearTask(longer), longer.train, tmp_path / "run").fit(resume=True)
    assert result.resumed_from == 4
    assert result.step == 8
    assert newest.with_name("step_00000006.pt.corrupt").exists()
    Trainer(LinearTask(longer), longer.train, tmp_path / "straight").fit()
    model = (tmp_path / "straight" / "model.safetensors").read_bytes()
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == model


class Evil:
    """A pickle payload that would create a marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_code_payload_in_place_of_checkpoint_is_refused_and_never_runs(tmp_path: Path) -> None:
    cfg = run_config(max_steps=4, checkpoint_every=2, eval_every=100)
    run = tmp_path / "run"
    Trainer(LinearTask(cfg), cfg.train, run).fit()
    marker = tmp_path / "pwned"
    evil = checkpoint_path(run, 5)
    with evil.open("wb") as handle:
        pickle.dump({"step": 5, "payload": Evil(marker)}, handle)
    longer = run_config(max_steps=6, checkpoint_every=2, eval_every=100)
    with pytest.warns(CheckpointWarning, match=re.escape(f"{evil}: not a valid checkpoint")):
        result = Trainer(LinearTask(longer), longer.train, run).fit(resume=True)
    assert result.resumed_from == 4
    assert not marker.exists()


def test_fresh_fit_into_a_run_with_checkpoints_is_refused(tmp_path: Path) -> None:
    cfg = run_config(max_steps=2, eval_every=100)
    Trainer(LinearTask(cfg), cfg.train, tmp_path).fit()
    before = (tmp_path / "model.safetensors").read_bytes()
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{tmp_path} already holds checkpoints (newest: step_00000002.pt); pass --resume "
            "to continue that run, or choose a new run folder"
        ),
    ):
        Trainer(LinearTask(cfg), cfg.train, tmp_path).fit()
    assert (tmp_path / "model.safetensors").read_bytes() == before


def test_resume_without_a_usable_checkpoint_is_an_error(tmp_path: Path) -> None:
    cfg = run_config(max_steps=2)
    with pytest.raises(ValueError, match="cannot resume: no usable checkpoint in"):
        Trainer(LinearTask(cfg), cfg.train, tmp_path).fit(resume=True)
    (tmp_path / "checkpoints").mkdir()
    checkpoint_path(tmp_path, 2).write_bytes(b"not a checkpoint")
    with (
        pytest.warns(CheckpointWarning, match="step_00000002.pt"),
        pytest.raises(ValueError, match="cannot resume: no usable checkpoint"),
    ):
        Trainer(LinearTask(cfg), cfg.train, tmp_path).fit(resume=True)


def test_temp_files_are_cleaned_on_resume(tmp_path: Path) -> None:
    cfg = run_config(max_steps=3, checkpoint_every=3, eval_every=100)
    Trainer(LinearTask(cfg), cfg.train, tmp_path).fit()
    stale = [
        tmp_path / f"{TEMP_PREFIX}abc-metrics.csv",
        tmp_path / "checkpoints" / f"{TEMP_PREFIX}def-step_00000004.pt",
    ]
    for path in stale:
        path.write_bytes(b"half")
    longer = run_config(max_steps=4, checkpoint_every=3, eval_every=100)
    Trainer(LinearTask(longer), longer.train, tmp_path).fit(resume=True)
    assert not any(p.exists() for p in stale)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000003.pt", "step_00000004.pt"]


def test_only_the_last_checkpoints_are_kept(tmp_path: Path) -> None:
    cfg = run_config(max_steps=20, checkpoint_every=5, keep_checkpoints=2, eval_every=100)
    Trainer(LinearTask(cfg), cfg.train, tmp_path).fit()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000015.pt", "step_00000020.pt"]


def test_resuming_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    cfg = run_config(max_steps=5, eval_every=2)
    first = Trainer(LinearTask(cfg), cfg.train, tmp_path).fit()
    model = (tmp_path / "model.safetensors").read_bytes()
    rows = rows_without_time(tmp_path)
    task = LinearTask(cfg)
    again = Trainer(task, cfg.train, tmp_path).fit(resume=True)
    assert (again.step, again.stop_reason, again.best_step) == (5, "max_steps", first.best_step)
    assert task.train_modes == []  # no training step ran
    assert (tmp_path / "model.safetensors").read_bytes() == model
    assert rows_without_time(tmp_path) == rows


def test_resume_extends_the_budget(tmp_path: Path) -> None:
    cfg = run_config(max_steps=4, eval_every=100, checkpoint_every=2)
    Trainer(LinearTask(cfg), cfg.train, tmp_path).fit()
    longer = run_config(max_steps=9, eval_every=100, checkpoint_every=2)
    result = Trainer(LinearTask(longer), longer.train, tmp_path).fit(resume=True)
    assert (result.resumed_from, result.step) == (4, 9)
    assert result.target_tokens == 9 * 3


def test_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    cfg = run_config(max_steps=2, eval_every=1)
    Trainer(StreamTask(cfg), cfg.train, tmp_path).fit()
    state = torch.load(checkpoint_path(tmp_path, 2), weights_only=True)
    assert state["format"] == "rnnkit.checkpoint"
    assert state["early_stopping"]["last_eval_step"] == 2
    assert isinstance(state["rng"]["torch"], torch.Tensor)


def test_stop_when_ends_the_run_and_survives_resume(tmp_path: Path) -> None:
    cfg = run_config(max_steps=50, eval_every=2, checkpoint_every=2)
    seen: list[float] = []

    def solved(value: float) -> bool:
        seen.append(value)
        return len(seen) == 3

    result = Trainer(LinearTask(cfg), cfg.train, tmp_path, stop_when=solved).fit()
    assert (result.step, result.stop_reason) == (6, "target_reached")
    assert seen[-1] == result.valid_metrics["loss"]
    again = Trainer(LinearTask(cfg), cfg.train, tmp_path).fit(resume=True)
    assert (again.step, again.stop_reason) == (6, "target_reached")
