"""The public Python API behind every CLI verb: train, evaluate, predict, and loading a run.

A run folder holds ``config.yaml`` (the resolved config), ``model.safetensors`` (final weights),
``best.safetensors`` (best on validation), ``metrics.csv`` and ``checkpoints/``. Weights load with
safetensors, so opening a run never executes code from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from torch import nn

from rnnkit.config import ConfigError, RunConfig, build_run_config, read_yaml
from rnnkit.io import load_safetensors, write_text_atomic
from rnnkit.registry import get_task
from rnnkit.training import TrainResult, train_task
from rnnkit.training.task import Task

Weights = Literal["best", "final"]

# Keys that may change between a run and its resumption: the budget can be extended.
_RESUMABLE_CHANGES = {"train.max_steps", "train.epochs", "train.max_time_s", "train.progress"}


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def write_config(config: RunConfig, run_dir: Path) -> None:
    """Write the resolved config as ``run_dir/config.yaml`` (atomically)."""
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))


def read_run_config(run_dir: Path) -> RunConfig:
    """The resolved config stored in a run folder."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no config.yaml)")
    return build_run_config(read_yaml(path))


def train(config: RunConfig, out: Path, *, resume: bool = False) -> TrainResult:
    """Train ``config``'s task into the run folder ``out``.

    With ``resume=True`` the run continues from its newest valid checkpoint; the config must equal the
    stored one except for the budget (``train.max_steps``, ``train.epochs``, ``train.max_time_s``).
    """
    if not resume and (out / "config.yaml").exists():
        raise ConfigError(
            f"{out} already holds a run; pass --resume to continue it or choose a new folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        stored = _flatten(read_run_config(out).to_dict())
        given = _flatten(config.to_dict())
        changed = sorted(k for k in stored.keys() | given.keys() if stored.get(k) != given.get(k))
        changed = [k for k in changed if k not in _RESUMABLE_CHANGES]
        if changed:
            raise ConfigError(
                f"cannot resume {out}: config differs from the run's config.yaml in '{changed[0]}'"
            )
    task = get_task(config.task)(config, out)
    write_config(config, out)
    return train_task(task, out, resume=resume)


@dataclass(frozen=True)
class LoadedRun:
    """A trained run: its config, its task object and its model (in eval mode)."""

    config: RunConfig
    task: Task
    model: nn.Module


def load_run(run_dir: Path, weights: Weights = "best") -> LoadedRun:
    """Load a run folder. ``weights="best"`` takes ``best.safetensors`` when present, else the final
    ``model.safetensors``; ``"final"`` always takes the final weights."""
    config = read_run_config(run_dir)
    task = get_task(config.task)(config, run_dir)
    candidates = (
        ["best.safetensors", "model.safetensors"] if weights == "best" else ["model.safetensors"]
    )
    path = next((run_dir / c for c in candidates if (run_dir / c).is_file()), None)
    if path is None:
        raise ConfigError(f"{run_dir}: no trained weights ({' or '.join(candidates)})")
    model = task.build_model()
    model.load_state_dict(load_safetensors(path))
    model.eval()
    return LoadedRun(config, task, model)


def evaluate(run_dir: Path, data: Path, *, weights: Weights = "best") -> dict[str, float]:
    """Metrics of a trained run on a user's data file (format defined by the run's task)."""
    run = load_run(run_dir, weights)
    return run.task.evaluate(run.model, run.task.load_examples(data))


def predict(run_dir: Path, inputs: Sequence[str], *, weights: Weights = "best") -> list[Any]:
    """The run's predictions for ``inputs`` (text, one item per input; format defined by the task)."""
    run = load_run(run_dir, weights)
    return run.task.predict(run.model, inputs)
