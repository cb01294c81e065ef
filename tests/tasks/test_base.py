"""The Task contract's defaults: what a task that lacks a verb says, through the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

import rnnkit.tasks.registry as registry
from rnnkit.cli.main import main
from rnnkit.config import FrozenConfig
from rnnkit.io import save_safetensors
from rnnkit.tasks import StepOutput, Task
from rnnkit.tasks.base import to_json
from rnnkit.tasks.run import build_run_config, write_config


class Empty(FrozenConfig):
    pass


class BareTask(Task):
    """Trains, but reads no data files and has no predictor."""

    name = "bare"
    DataConfig: ClassVar[type[FrozenConfig]] = Empty
    ModelConfig: ClassVar[type[FrozenConfig]] = Empty

    def build_model(self) -> nn.Module:
        return nn.Linear(2, 1)

    def train_batches(self, epoch: int) -> Iterator[Any]:
        return iter([torch.ones(1, 2)])

    def valid_batches(self) -> list[Any]:
        return [torch.ones(1, 2)]

    def step(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        return StepOutput(loss=model(batch).sum(), num_tokens=1)


@pytest.fixture
def bare_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    found = {"bare": EntryPoint("bare", f"{__name__}:BareTask", registry.GROUP)}
    monkeypatch.setattr(registry, "_entry_points", lambda: found)
    run = tmp_path / "run"
    run.mkdir()
    write_config(build_run_config({"task": "bare", "train": {"max_steps": 1}}), run)
    save_safetensors(dict(nn.Linear(2, 1).state_dict()), run / "model.safetensors")
    return run


def test_a_verb_the_task_lacks_is_one_line_exit_2(
    bare_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.txt"
    data.write_text("1 2\n")
    assert main(["evaluate", str(bare_run), "--data", str(data)]) == 2
    assert capsys.readouterr().err == "rnnkit: error: task 'bare' cannot read data files\n"
    assert main(["predict", str(bare_run), "1 2"]) == 2
    assert (
        capsys.readouterr().err
        == "rnnkit: error: task 'bare' has no predictor: it cannot predict\n"
    )


def test_to_json_makes_plain_data() -> None:
    assert to_json({"a": torch.tensor([1.5, float("nan")]), "b": (Path("x"), float("inf"))}) == {
        "a": [1.5, None],
        "b": ["x", None],
    }
