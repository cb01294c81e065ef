"""A task registered from outside rnnkit trains, evaluates and predicts through the CLI.

The task (``plugin_task.py``, beside this file) is declared in a throwaway ``*.dist-info`` folder
put on ``PYTHONPATH``, exactly as an installed third-party package declares it in its metadata:
no file under ``src/`` names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    info = site / "rnnkit_plugin_sum-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rnnkit-plugin-sum\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[rnnkit.tasks]\nplugin_sum = tests.tasks.plugin_task:SumTask\n"
    )
    paths = [str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@pytest.mark.slow
def test_a_third_party_task_trains_evaluates_and_predicts(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "sum.yaml"
    config.write_text(
        "task: plugin_sum\ndata: {length: 3}\n"
        "train: {lr: 0.05, max_steps: 300, eval_every: 100, progress: false, threads: 1}\n"
    )
    run = tmp_path / "run"
    trained = cli(plugin_env, "train", str(config), "--out", str(run))
    assert trained.returncode == 0, trained.stderr
    assert "trained plugin_sum to step 300" in trained.stdout

    data = tmp_path / "test.tsv"
    data.write_text("0.1 0.2 0.3\t0.6\n0.5 0.5 0.5\t1.5\n")
    evaluated = cli(plugin_env, "evaluate", str(run), "--data", str(data), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["loss"] < 1e-3

    predicted = cli(plugin_env, "predict", str(run), "1 2 3", "0 0 0.5")
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.split() == ["6.00", "0.50"]

    bad = tmp_path / "bad.tsv"
    bad.write_text("1 2\t3\n")
    failed = cli(plugin_env, "evaluate", str(run), "--data", str(bad))
    assert failed.returncode == 2
    assert failed.stderr == f"rnnkit: error: {bad}:1: expected 3 numbers, got 2\n"


def test_without_its_distribution_the_task_is_unknown(tmp_path: Path) -> None:
    config = tmp_path / "sum.yaml"
    config.write_text("task: plugin_sum\n")
    result = cli(dict(os.environ), "train", str(config), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.startswith("rnnkit: error: unknown task 'plugin_sum'; valid tasks: ")
