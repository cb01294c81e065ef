"""``rnnkit diagnose`` end to end at tiny sizes: memory --json, gradients with a figure, and the exact
one-line errors for bad --cells, --lengths and --task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnkit.cli.main import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # worker processes, 8-20 s
def test_memory_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "memory.png"
    argv = ["diagnose", "memory", "--cells", "rnn,gru", "--lengths", "3,4", "--hidden-size", "8"]
    argv += ["--max-steps", "30", "--max-time-s", "60", "--jobs", "2", "--json"]
    argv += ["--plot", str(plot), "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    results = data["results"]
    assert [(r["cell"], r["length"]) for r in results] == [
        ("rnn", 3),
        ("rnn", 4),
        ("gru", 3),
        ("gru", 4),
    ]
    for r in results:
        assert r["task"] == "adding" and r["seed"] == 0 and r["steps"] <= 30
        assert r["baseline"] == pytest.approx(1 / 6)
        assert r["solved"] == (r["metric"] < 0.01)
        assert r["seconds"] > 0
    assert set(data["largest_solved"]) == {"rnn", "gru"}
    # progress: one line per finished run on stderr
    lines = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert len(lines) == 4 and lines[-1].startswith("[4/4] ")
    assert plot.read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "runs" / "adding-gru-T4-s0" / "config.yaml").is_file()


@pytest.mark.slow  # worker processes, 8-20 s
def test_memory_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["diagnose", "memory", "--task", "first-token", "--cells", "lstm", "--lengths", "3"]
    argv += ["--hidden-size", "8", "--max-steps", "20", "--max-time-s", "60", "--jobs", "1"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["first_token", "(accuracy)", "T=3"]
    assert lines[1].split()[0] == "lstm"
    assert lines[2] == ("memoryless baseline: 0.1250; solved when accuracy >= 0.99 (* = solved)")


@pytest.mark.slow  # worker processes, 8-20 s
def test_gradients_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "gradients.png"
    argv = ["diagnose", "gradients", "--cells", "rnn,lstm", "--length", "12", "--hidden-size", "8"]
    argv += ["--train-time-s", "1", "--steps", "20", "--jobs", "2", "--json", "--plot", str(plot)]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    curves = data["flow"]["curves"]
    assert [(c["cell"], c["stage"]) for c in curves] == [
        ("rnn", "init"),
        ("lstm", "init"),
        ("rnn", "trained"),
        ("lstm", "trained"),
    ]
    assert all(len(c["norms"]) == 12 for c in curves)
    assert list(curves[1]["spectral_radius"]) == ["i", "f", "g", "o"]
    assert [r["cell"] for r in data["flow"]["training"]] == ["rnn", "lstm"]
    runs = data["exploding"]["runs"]
    assert [r["clip_grad_norm"] for r in runs] == [None, 1.0]
    assert all(len(r["loss"]) <= 20 for r in runs)
    assert plot.read_bytes().startswith(PNG_MAGIC) and plot.stat().st_size > 10_000


@pytest.mark.slow  # a worker process, about 5 s
def test_gradients_max_steps_is_a_step_budget(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["diagnose", "gradients", "--cells", "rnn", "--length", "10", "--hidden-size", "8"]
    argv += ["--train-time-s", "600", "--max-steps", "7", "--steps", "2", "--json"]
    assert main(argv) == 0
    flow = json.loads(capsys.readouterr().out)["flow"]
    assert (flow["max_steps"], [r["steps"] for r in flow["training"]]) == (7, [7])


def test_gradients_text_without_training(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["diagnose", "gradients", "--length", "10", "--hidden-size", "8", "--train-time-s", "0"]
    assert main([*argv, "--steps", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gradient flow on the adding problem: T=10, H=8")
    assert "exploding gradients: Elman RNN, W_hh scaled to spectral radius 2" in out
    assert "trained" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["memory", "--cells", "rnn,tcn"],
            "--cells: unknown cell 'tcn'; valid cells: rnn, lstm, gru",
        ),
        (["memory", "--cells", ","], "--cells is empty; valid cells: rnn, lstm, gru"),
        (["memory", "--cells", "rnn,rnn"], "--cells names a cell twice: rnn,rnn"),
        (
            ["memory", "--lengths", "5,x"],
            "--lengths must be comma-separated positive integers, got '5,x'",
        ),
        (
            ["memory", "--lengths", "0,5"],
            "--lengths must be comma-separated positive integers, got '0,5'",
        ),
        (
            ["memory", "--lengths", "1"],
            "lengths must be integers >= 2 for task 'adding', got [1]",
        ),
        (
            ["memory", "--task", "copy"],
            "--task: unknown memory task 'copy'; valid tasks: adding, copy-memory, first-token",
        ),
        (
            ["gradients", "--cells", "elman"],
            "--cells: unknown cell 'elman'; valid cells: rnn, lstm, gru",
        ),
        (
            ["gradients", "--length", "1"],
            "lengths must be integers >= 2 for task 'adding', got [1]",
        ),
        (["gradients", "--max-steps", "0"], "max_steps must be >= 1, got 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diagnose", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"rnnkit: error: {message}\n"
    assert captured.out == ""
