"""The thread policy: a requested count wins, auto follows the work and the cores this process may
use, and every verb that computes takes ``--threads`` and applies it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

import rnnkit.diagnostics.memory_span as memory_span
from rnnkit.cli.main import main
from rnnkit.config import ConfigError, TrainConfig, build_section, builtin_configs
from rnnkit.diagnostics.exploding import exploding_experiment
from rnnkit.training.device import (
    WORK_PER_THREAD,
    Device,
    available_cores,
    choose_threads,
    step_work,
)

REVERSE = builtin_configs()["reverse"]
SEQUENCES = ["3 1 4 1 5 9 2 6", "2 7 1 8 2 8 1 8"]


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the cores this process may use: ``cores(8)`` makes the affinity mask {0, ..., 7}."""

    def set_cores(count: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(count)), raising=False)

    return set_cores


# ------------------------------------------------------------------------------ the policy


def test_a_requested_count_wins(cores: Any) -> None:
    cores(8)
    assert [choose_threads(n, work) for n, work in [(3, 10), (1, 10**12), (8, None)]] == [3, 1, 8]


def test_more_threads_than_cores_are_used_with_a_warning(
    cores: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cores(2)
    with caplog.at_level(logging.WARNING, logger="rnnkit.training"):
        assert choose_threads(3, None) == 3
    assert caplog.messages == [
        "threads: 3 asked for, but this process may run on 2 core(s); the threads will share "
        "cores and wait for each other"
    ]


@pytest.mark.parametrize("requested", [0, -2])
def test_a_count_below_one_is_refused(requested: int) -> None:
    with pytest.raises(ValueError, match=rf"^threads must be >= 1, got {requested}$"):
        choose_threads(requested, None)


def test_auto_gives_small_work_one_thread(cores: Any) -> None:
    cores(16)
    assert choose_threads(None, 1) == 1
    assert choose_threads(None, 2 * WORK_PER_THREAD - 1) == 1
    assert choose_threads(None, None) == 1  # unknown work: the safe choice


def test_auto_gives_a_thread_per_unit_of_work_up_to_the_cores(cores: Any) -> None:
    cores(16)
    assert choose_threads(None, 4 * WORK_PER_THREAD) == 4
    cores(2)
    assert choose_threads(None, 4 * WORK_PER_THREAD) == 2
    cores(1)
    assert choose_threads(None, 10**15) == 1


def test_cores_come_from_the_affinity_mask_else_the_cpu_count(
    cores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cores(3)
    assert available_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    assert available_cores() == 5
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert available_cores() == 1


def test_step_work_counts_parameters_outside_embeddings_times_the_batch() -> None:
    embed = nn.Embedding(10, 4)  # 40 parameters, not counted
    out = nn.Linear(4, 10)  # 40 + 10
    assert step_work(nn.Sequential(embed, nn.Linear(4, 3)), 5) == (12 + 3) * 5
    out.weight = embed.weight  # tied to the embedding: the output layer's product counts
    assert step_work(nn.Sequential(embed, out), 2) == (40 + 10) * 2
    with pytest.raises(ValueError, match=r"^batch_size must be >= 1, got 0$"):
        step_work(out, 0)


def test_the_translation_models_of_the_policy_docstring(cores: Any) -> None:
    from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig

    cores(16)
    small = Seq2Seq(Seq2SeqConfig(embedding_size=32, hidden_size=64), 2000, 2000)
    assert step_work(small, 64) == 13_450_240
    assert choose_threads(None, step_work(small, 64)) == 1
    config = Seq2SeqConfig(embedding_size=256, hidden_size=512, encoder_hidden_size=256)
    large = Seq2Seq(config, 8000, 8000)
    assert choose_threads(None, step_work(large, 64)) == 4


# ------------------------------------------------------------------------ device and config


def test_device_auto_waits_for_the_model_then_logs_once(
    cores: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cores(2)
    torch.set_num_threads(2)
    dev = Device("cpu", threads=None, batch_size=64)
    assert dev.configure_threads() is None
    assert torch.get_num_threads() == 2
    with caplog.at_level(logging.INFO, logger="rnnkit.training"):
        dev.prepare_model(nn.Linear(7, 5))  # 40 parameters x 64
        dev.prepare_model(nn.Linear(7, 5))
    assert (dev.num_threads, torch.get_num_threads()) == (1, 1)
    assert [m for m in caplog.messages if m.startswith("threads:")] == [
        "threads: 1 (auto: work 2.6e+03 per step, 2 core(s) available, a thread per 1e+08)"
    ]


def test_device_applies_a_requested_count_at_once() -> None:
    torch.set_num_threads(1)
    assert Device("cpu", threads=2).configure_threads() == 2
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match=r"^train.threads must be >= 1, got 0$"):
        Device("cpu", threads=0)


@pytest.mark.parametrize(
    ("value", "threads"), [("auto", None), ("AUTO", None), (None, None), (3, 3)]
)
def test_train_threads_takes_a_count_or_auto(value: Any, threads: int | None) -> None:
    section = build_section(TrainConfig, {"max_steps": 1, "threads": value}, "train")
    assert isinstance(section, TrainConfig)
    assert section.threads == threads


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("two", "must be an integer >= 1 or 'auto', got 'two'"),
        (1.5, "must be an integer >= 1 or 'auto', got 1.5"),
        (True, "must be an integer >= 1 or 'auto', got True"),
        (0, "must be >= 1, got 0"),
    ],
)
def test_a_bad_train_threads_is_one_line(value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_section(TrainConfig, {"max_steps": 1, "threads": value}, "train")
    assert str(err.value) == f"invalid value for 'train.threads': {message}"


# ------------------------------------------------------------------------------ the verbs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reverse task, H 8, trained for 4 steps with ``--threads 2``."""
    threads = torch.get_num_threads()
    run = tmp_path_factory.mktemp("runs") / "tiny"
    args = ["train", str(REVERSE), "--out", str(run), "--threads", "2"]
    for value in ("model.hidden_size=8", "model.embedding_size=8", "train.max_steps=4"):
        args += ["--set", value]
    assert main([*args, "--set", "train.progress=false", "--set", "train.threads=1"]) == 0
    torch.set_num_threads(threads)
    return run


def test_train_threads_wins_over_set_and_is_stored(tiny_run: Path) -> None:
    config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert config["train"]["threads"] == 2


def test_train_applies_threads(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    args = ["train", str(REVERSE), "--out", str(tmp_path / "run"), "--threads", "2"]
    args += ["--set", "train.max_steps=1", "--set", "train.progress=false"]
    assert main(args) == 0
    assert torch.get_num_threads() == 2


def test_resume_may_change_the_thread_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", str(REVERSE), "--out", str(tmp_path / "run"), "--set", "train.progress=false"]
    base += ["--set", "train.checkpoint_every=1"]
    assert main([*base, "--set", "train.max_steps=1", "--threads", "2"]) == 0
    assert main([*base, "--set", "train.max_steps=2", "--threads", "1", "--resume"]) == 0
    assert "trained reverse to step 2" in capsys.readouterr().out
    assert torch.get_num_threads() == 1


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "test.tsv"
    data.write_text("".join(s + "\n" for s in SEQUENCES))
    return data


@pytest.mark.parametrize("verb", ["evaluate", "predict", "compare"])
@pytest.mark.parametrize(
    ("flag", "threads"), [(["--threads", "2"], 2), ([], 1), (["--threads", "auto"], 1)]
)
def test_run_verbs_apply_threads(
    tiny_run: Path, tmp_path: Path, verb: str, flag: list[str], threads: int, cores: Any
) -> None:
    cores(2)
    torch.set_num_threads(2 if threads == 1 else 1)  # the verb must change it
    data = _data(tmp_path)
    args = {
        "evaluate": ["evaluate", str(tiny_run), "--data", str(data)],
        "predict": ["predict", str(tiny_run), *SEQUENCES],
        "compare": ["compare", str(tiny_run), str(tiny_run), "--data", str(data)],
    }[verb]
    assert main([*args, *flag]) == 0
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize(
    "args",
    [
        ["train", "reverse", "--out", "x"],
        ["evaluate", "x", "--data", "y"],
        ["predict", "x"],
        ["compare", "x", "--data", "y"],
        ["diagnose", "memory"],
        ["diagnose", "gradients"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_threads_option_is_one_line_exit_2(
    args: list[str], value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--threads", value])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith(
        f"error: argument --threads: must be an integer >= 1 or 'auto', got '{value}'"
    )


# ----------------------------------------------------------------------------- diagnostics

SMALL_GRADIENTS = ["diagnose", "gradients", "--cells", "rnn", "--length", "10"]
SMALL_GRADIENTS += ["--hidden-size", "8", "--train-time-s", "0", "--steps", "3", "--json"]


def test_diagnose_gradients_defaults_to_one_thread(
    cores: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cores(2)
    torch.set_num_threads(2)  # torch's default on 2 cores, 10x slower with one of them busy
    assert main(SMALL_GRADIENTS) == 0
    assert torch.get_num_threads() == 1


def test_diagnose_gradients_applies_threads(capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    assert main([*SMALL_GRADIENTS, "--threads", "2"]) == 0
    assert torch.get_num_threads() == 2


def test_exploding_experiment_runs_on_one_thread(cores: Any) -> None:
    cores(2)
    seen: list[int] = []
    original = torch.nn.utils.clip_grad_norm_

    def record(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    torch.set_num_threads(2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.utils, "clip_grad_norm_", record)
        exploding_experiment(steps=2, length=5, hidden_size=8)
    assert seen == [1, 1, 1, 1]  # 2 steps, unclipped and clipped


@pytest.mark.parametrize(
    ("flag", "threads"), [([], 1), (["--threads", "3"], 3), (["--threads", "auto"], None)]
)
def test_diagnose_memory_passes_threads_to_the_workers(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: list[str],
    threads: int | None,
) -> None:
    seen: dict[str, Any] = {}

    def fake(**kwargs: Any) -> list[Any]:
        seen.update(kwargs)
        return []

    monkeypatch.setattr(memory_span, "memory_benchmark", fake)
    assert main(["diagnose", "memory", "--cells", "rnn", "--lengths", "5", "--json", *flag]) == 0
    assert seen["threads"] == threads
    spec = memory_span.RunSpec("adding", "rnn", 5, 0, 8, 1.0, threads=threads)
    assert memory_span.memory_config(spec)["train"]["threads"] == threads
