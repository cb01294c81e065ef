"""The memory benchmark: the RNN-fails / LSTM-solves pattern at a small size, one run of each
memory task, the table, largest_solved, the figure, the public names and bad input."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from rnnkit.diagnostics.memory_report import format_result, format_table, plot_memory
from rnnkit.diagnostics.memory_span import (
    MEMORY_TASKS,
    MemoryResult,
    RunSpec,
    largest_solved,
    memory_benchmark,
    memory_config,
    memory_task,
    min_length,
    run_one,
    solved_with_margin,
)
from rnnkit.tasks.run import build_run_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def result(cell: str, length: int, metric: float, seed: int = 0) -> MemoryResult:
    return MemoryResult(
        cell=cell,
        task="adding",
        length=length,
        seed=seed,
        metric=metric,
        baseline=1 / 6,
        solved=metric < 0.01,
        seconds=1.0,
        steps=100,
    )


@pytest.mark.slow
def test_rnn_fails_and_lstm_solves_the_adding_problem_at_length_60() -> None:
    """The benchmark's pattern at a small size. Step budgets (not time) keep it the same on any
    machine: the RNN solves T=5 but stays near the baseline at T=60, the LSTM solves both."""
    results = memory_benchmark(
        cells=("rnn", "lstm"), lengths=(5, 60), max_steps=3000, max_time_s=300, jobs=2
    )
    by_key = {(r.cell, r.length): r for r in results}
    assert [(r.cell, r.length) for r in results] == [
        ("rnn", 5),
        ("rnn", 60),
        ("lstm", 5),
        ("lstm", 60),
    ]
    assert by_key[("rnn", 5)].solved
    assert not by_key[("rnn", 60)].solved and by_key[("rnn", 60)].metric > 0.05
    assert by_key[("rnn", 60)].steps == 3000  # it used the whole budget
    assert by_key[("lstm", 60)].solved and by_key[("lstm", 60)].steps < 3000
    for r in results:
        assert r.baseline == pytest.approx(1 / 6)
        assert r.solved == (r.metric < 0.01)
    assert largest_solved(results) == {"rnn": 5, "lstm": 60}


@pytest.mark.parametrize(
    ("task", "length", "baseline"),
    [
        ("copy_memory", 6, 10 * math.log(8) / (6 + 20)),
        ("first_token", 6, 1 / 8),
        ("adding", 6, 1 / 6),
    ],
)
def test_run_one_trains_and_tests_each_memory_task(
    task: str, length: int, baseline: float, tmp_path: Path
) -> None:
    spec = RunSpec(task, "gru", length, seed=0, hidden_size=8, max_time_s=60, max_steps=20)
    r = run_one(RunSpec(**{**spec.__dict__, "run_dir": str(tmp_path / "run")}))
    assert (r.cell, r.task, r.length, r.seed) == ("gru", task, length, 0)
    assert r.baseline == pytest.approx(baseline)
    assert r.steps == 20 and math.isfinite(r.metric) and r.seconds > 0
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert (tmp_path / "run" / "metrics.csv").is_file()


@pytest.mark.parametrize("task", ["adding", "copy_memory", "first_token"])
def test_solved_threshold_agrees_with_the_task(task: str) -> None:
    config = build_run_config(memory_config(RunSpec(task, "gru", 30, 0, 8, max_time_s=1)))
    task_obj = memory_task(task)(config)
    threshold = task_obj.solved_rule.threshold_for(task_obj.memory_baseline())
    assert threshold == task_obj.solved_threshold()
    better = -1e-9 if task != "first_token" else 1e-9
    assert task_obj.memory_solved(threshold + better)
    assert not task_obj.memory_solved(threshold - better)


@pytest.mark.parametrize(
    ("task", "stops", "goes_on"),
    [("adding", 0.0049, 0.0051), ("first_token", 0.995, 0.994)],
)
def test_a_run_stops_once_validation_is_solved_with_a_margin_of_two(
    task: str, stops: float, goes_on: float
) -> None:
    config = build_run_config(memory_config(RunSpec(task, "gru", 30, 0, 8, max_time_s=1)))
    stop_when = solved_with_margin(memory_task(task)(config))
    assert stop_when(stops) and not stop_when(goes_on)


def test_benchmark_configs_follow_the_task() -> None:
    models = {
        t: memory_config(RunSpec(t, "lstm", 9, 0, 8, max_time_s=1))["model"] for t in MEMORY_TASKS
    }
    assert models["adding"] == {"cell": "lstm", "hidden_size": 8}  # float inputs: no embedding
    assert models["copy_memory"]["embedding_size"] == models["first_token"]["embedding_size"] == 16
    assert [min_length(t) for t in MEMORY_TASKS] == [2, 1, 1]
    with pytest.raises(ValueError, match="unknown memory task 'reverse'; valid tasks: adding, "):
        memory_task("reverse")


def test_public_names_stay_functions_after_their_modules_are_imported() -> None:
    import importlib

    import rnnkit.diagnostics as diagnostics

    for module in ("memory_span", "memory_report", "vanishing", "exploding", "gradient_report"):
        importlib.import_module(f"rnnkit.diagnostics.{module}")
    for name in diagnostics.__all__:
        value = getattr(diagnostics, name)
        assert callable(value) and not isinstance(value, type(diagnostics)), name
    from rnnkit.diagnostics import memory_benchmark as imported

    assert imported is memory_benchmark


def test_largest_solved_needs_every_seed() -> None:
    results = [
        result("rnn", 5, 0.001),
        result("rnn", 5, 0.002, seed=1),
        result("rnn", 10, 0.001),
        result("rnn", 10, 0.2, seed=1),
        result("lstm", 5, 0.2),
        result("lstm", 5, 0.2, seed=1),
    ]
    assert largest_solved(results) == {"rnn": 5, "lstm": None}


def test_format_table_one_seed() -> None:
    results = [
        result("rnn", 5, 0.004),
        result("rnn", 100, 0.1651),
        result("lstm", 5, 0.002),
        result("lstm", 100, 0.0061),
    ]
    lines = format_table(results).splitlines()
    assert lines[0].split() == ["adding", "(mse)", "T=5", "T=100"]
    assert lines[1].split() == ["rnn", "0.0040*", "0.1651"]
    assert lines[2].split() == ["lstm", "0.0020*", "0.0061*"]
    assert lines[3] == ("memoryless baseline: 0.1667; solved when mse < 0.01 (* = solved)")
    assert lines[4] == "largest length solved: rnn 5, lstm 100"


def test_format_table_several_seeds_shows_mean_and_count() -> None:
    results = [result("gru", 50, 0.004), result("gru", 50, 0.1, seed=1)]
    lines = format_table(results).splitlines()
    assert lines[1].split() == ["gru", "0.0520", "1/2"]
    assert lines[3] == "largest length solved: gru none"


def test_format_result_names_the_metric() -> None:
    line = format_result(result("lstm", 100, 0.0042))
    assert line == "lstm T=100 seed 0: mse 0.0042 solved (1.0 s, 100 steps)"


def test_plot_memory_draws_each_cell_the_baseline_and_the_threshold(
    tmp_path: Path, drawn: list[Any]
) -> None:
    results = [result(c, n, m) for c, n, m in [("rnn", 5, 0.004), ("rnn", 50, 0.16)]]
    path = plot_memory(results, tmp_path / "memory.png")
    assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 10_000
    (axes,) = drawn[0].axes
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert set(lines) == {"rnn", "memoryless baseline", "solved: mse < 0.01"}
    assert list(lines["rnn"].get_xdata()) == [5.0, 50.0]
    assert list(lines["rnn"].get_ydata()) == [0.004, 0.16]
    assert list(lines["solved: mse < 0.01"].get_ydata()) == [0.01, 0.01]
    assert lines["memoryless baseline"].get_ydata()[0] == pytest.approx(1 / 6)
    assert axes.get_xscale() == axes.get_yscale() == "log"
    assert axes.get_ylabel() == "test mse" and axes.get_title().startswith("adding: test mse")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cells": ("rnn", "tcn")}, "unknown cell 'tcn'; valid cells: rnn, lstm, gru"),
        ({"task": "copy"}, "unknown memory task 'copy'; valid tasks: adding, copy_memory, first_"),
        ({"lengths": (5, 1)}, r"lengths must be integers >= 2 for task 'adding', got \[5, 1\]"),
        ({"lengths": ()}, r"lengths must be integers >= 2 for task 'adding', got \[\]"),
        ({"seeds": 0}, "seeds must be >= 1, got 0"),
        ({"max_time_s": 0}, "max_time_s must be > 0, got 0"),
        ({"max_steps": 0}, "max_steps must be >= 1, got 0"),
        ({"jobs": -1}, "jobs must be >= 1, got -1"),
    ],
)
def test_memory_benchmark_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        memory_benchmark(**{"lengths": (5,), "max_time_s": 1, **kwargs})  # type: ignore[arg-type]
