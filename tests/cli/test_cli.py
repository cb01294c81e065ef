"""The CLI end to end: train the reverse task from a config file, evaluate and predict on real files,
and one-line errors with exit status 2 for bad input."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnkit import __version__
from rnnkit.cli.main import main
from rnnkit.config import builtin_configs
from rnnkit.tasks.registry import get_task
from rnnkit.tasks.run import load_config

REVERSE = builtin_configs()["reverse"]


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped reverse config trained through the CLI (at most 60 s by its own budget)."""
    run = tmp_path_factory.mktemp("runs") / "reverse"
    assert main(["train", str(REVERSE), "--out", str(run), "--set", "train.progress=false"]) == 0
    return run


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnnkit {__version__}"


def test_first_loss_is_about_log_v() -> None:
    config = load_config(REVERSE)
    torch.manual_seed(0)
    task = get_task(config.task)(config)
    model = task.build_model()
    batch = next(iter(task.train_batches(0)))
    with torch.no_grad():
        loss = float(task.step(model, batch).loss)
    vocab = 10 + 3  # symbols + pad, bos, eos
    assert loss == pytest.approx(math.log(vocab), abs=0.15)


@pytest.mark.slow
def test_reverse_task_is_learned(reverse_run: Path) -> None:
    """The shipped config learns the task (> 99 % token accuracy on validation); how long that
    takes is the benchmarks' business, not a test's."""
    history = rows(reverse_run)
    evaluated = [r for r in history if r["valid_token_accuracy"]]
    assert evaluated, "no validation rows in metrics.csv"
    assert max(float(r["valid_token_accuracy"]) for r in evaluated) > 0.99
    for name in ("config.yaml", "model.safetensors", "best.safetensors", "metrics.csv"):
        assert (reverse_run / name).is_file(), name
    assert list((reverse_run / "checkpoints").glob("*.pt"))


@pytest.mark.slow
def test_evaluate_and_predict_on_real_files(
    reverse_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "test.tsv"
    sequences = ["3 1 4 1 5 9 2 6", "2 7 1 8 2 8 1 8", "9 9 8 8 7 7 6 6", "0 1 2 3 4 5 6 7"]
    data.write_text("".join(s + "\n" for s in sequences))
    assert main(["evaluate", str(reverse_run), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"loss", "token_accuracy", "sequence_accuracy"}
    assert metrics["token_accuracy"] > 0.95

    # A file whose second column is deliberately wrong scores lower: the file's targets are used.
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("".join(f"{s}\t{s}\n" for s in sequences))
    assert main(["evaluate", str(reverse_run), "--data", str(wrong), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sequence_accuracy"] < 0.5

    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(sequences) + "\n")
    assert main(["predict", str(reverse_run), "--input", str(inputs)]) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = [" ".join(reversed(s.split())) for s in sequences]
    assert sum(p == e for p, e in zip(printed, expected, strict=True)) >= 3


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=120
    )


def test_malformed_yaml_is_one_line_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("task: reverse\ntrain:\n  lr: [0.1\n")
    result = run_cli("train", str(config), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"rnnkit: error: {config}:")
    assert "malformed YAML" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_unknown_key_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_cli("train", str(REVERSE), "--out", str(tmp_path / "run"), "--set", "train.lrr=1")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("rnnkit: error: unknown config key 'train.lrr'")
    assert "valid keys in 'train'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_bad_data_line_names_file_and_line(
    reverse_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.tsv"
    data.write_text("1 2 3\n4 5 x\n")
    assert main(["evaluate", str(reverse_run), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err == f"rnnkit: error: {data}:2: 'x' is not an integer symbol\n"


def test_existing_run_needs_resume(reverse_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(REVERSE), "--out", str(reverse_run)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_resume_refuses_a_changed_config(
    reverse_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "train",
        str(REVERSE),
        "--out",
        str(reverse_run),
        "--resume",
        "--set",
        "model.hidden_size=8",
    ]
    assert main(args) == 2
    assert (
        "config differs from the run's config.yaml in 'model.hidden_size'"
        in capsys.readouterr().err
    )


def test_resume_of_an_empty_folder_does_not_start_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", str(REVERSE), "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert capsys.readouterr().err == (
        f"rnnkit: error: cannot resume {tmp_path / 'none'}: no such run folder\n"
    )
    assert not (tmp_path / "none").exists()


def test_a_builtin_config_trains_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "show", "reverse"]) == 0
    assert capsys.readouterr().out == REVERSE.read_text(encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "reverse", "--out", str(run), "--set", "train.max_steps=2"]) == 0
    assert "trained reverse to step 2" in capsys.readouterr().out
    assert main(["train", "no-such-config", "--out", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: no-such-config: no such file, nor a built-in config;")
    assert "reverse" in err


def test_a_folder_as_config_or_data_is_one_line(
    reverse_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == f"rnnkit: error: {tmp_path}: is a folder, not a config file\n"
    assert main(["evaluate", str(reverse_run), "--data", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err == f"rnnkit: error: {tmp_path}: is a folder; give the data file\n"
    )


def test_an_option_of_another_task_is_refused(
    reverse_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(reverse_run), "1 2 3", "--beam", "4"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --beam 4" in capsys.readouterr().err
