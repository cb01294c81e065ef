"""Run configs and run folders: validating a config against its task, and loading a trained run.

A run folder holds ``config.yaml`` (the resolved config), what the task's ``prepare()`` saved
(tokenisers, scalers), ``model.safetensors`` (final weights), ``best.safetensors`` (best on
validation), ``metrics.csv`` and ``checkpoints/``. Loading reads those files and nothing else:
weights load with safetensors, so opening a run never executes code from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from torch import nn

from rnnkit.config import (
    SECTIONS,
    ConfigError,
    RunConfig,
    TrainConfig,
    apply_overrides,
    build_section,
    config_path,
    read_yaml,
)
from rnnkit.io import load_safetensors, write_text_atomic
from rnnkit.tasks.base import Predictor, Task, TaskError
from rnnkit.tasks.registry import get_task

Weights = Literal["best", "final"]

# Keys an earlier rnnkit kept under ``train`` that now belong to the task's ``objective``, with
# their old defaults (a default value is dropped: tasks without the option reject the key).
_MOVED_TO_OBJECTIVE = {
    "label_smoothing": 0.0,
    "scheduled_sampling": 0.0,
    "scheduled_sampling_steps": 5000,
}


def _migrate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A config written by an earlier rnnkit, in today's layout (only moves keys)."""
    out = dict(raw)
    train = out.get("train")
    if isinstance(train, Mapping) and any(k in train for k in _MOVED_TO_OBJECTIVE):
        train = dict(train)
        objective = dict(out.get("objective") or {})
        for key, default in _MOVED_TO_OBJECTIVE.items():
            if key in train and (value := train.pop(key)) != default:
                objective.setdefault(key, value)
        out["train"], out["objective"] = train, objective
    return out


def build_run_config(raw: Mapping[str, Any]) -> RunConfig:
    """Validate a raw mapping (from YAML plus overrides) into a :class:`RunConfig`.

    Raises:
        ConfigError: naming the first unknown section or key, or invalid value.
    """
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise ConfigError(
            f"unknown config section '{unknown[0]}'; valid sections: " + ", ".join(SECTIONS)
        )
    if "task" not in raw:
        raise ConfigError("config has no 'task'")
    task_cls = get_task(str(raw["task"]))
    return RunConfig(
        task=task_cls.name,
        data=build_section(task_cls.DataConfig, raw.get("data"), "data"),
        model=build_section(task_cls.ModelConfig, raw.get("model"), "model"),
        objective=build_section(task_cls.ObjectiveConfig, raw.get("objective"), "objective"),
        train=build_section(TrainConfig, _train_section(task_cls, raw.get("train")), "train"),
    )


BUDGET_KEYS = ("max_steps", "epochs", "max_time_s")


def _train_section(task_cls: type[Task], raw: Any) -> Any:
    """``raw`` (the ``train`` mapping) with the task's :attr:`Task.train_defaults` filled in;
    the defaults' budget keys only when ``raw`` gives no budget."""
    if not task_cls.train_defaults or (raw is not None and not isinstance(raw, Mapping)):
        return raw  # build_section reports a section that is not a mapping
    given = dict(raw or {})
    has_budget = any(given.get(key) is not None for key in BUDGET_KEYS)
    for key, value in task_cls.train_defaults.items():
        if key in BUDGET_KEYS and has_budget:
            continue
        given.setdefault(key, value)
    return given


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a config file (or a built-in config by name, see ``rnnkit config list``), apply
    ``--set`` overrides and validate. Raises :class:`ConfigError`."""
    return build_run_config(apply_overrides(read_yaml(config_path(path)), overrides))


def write_config(config: RunConfig, run_dir: Path) -> None:
    """Write the resolved config as ``run_dir/config.yaml`` (atomically)."""
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))


def read_run_config(run_dir: Path) -> RunConfig:
    """The resolved config stored in a run folder (written by this or an earlier rnnkit)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no config.yaml)")
    return build_run_config(_migrate(read_yaml(path)))


@dataclass(frozen=True)
class LoadedRun:
    """A trained run: its config, its task object and its model (in eval mode)."""

    config: RunConfig
    task: Task
    model: nn.Module


def weights_path(run_dir: Path, weights: Weights = "best") -> Path:
    """``best.safetensors`` when present (``weights="best"``), else ``model.safetensors``."""
    candidates = (
        ["best.safetensors", "model.safetensors"] if weights == "best" else ["model.safetensors"]
    )
    path = next((run_dir / c for c in candidates if (run_dir / c).is_file()), None)
    if path is None:
        raise ConfigError(f"{run_dir}: no trained weights ({' or '.join(candidates)})")
    return path


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a safetensors file into ``model``; a mismatch names the parameter and the cause."""
    state = load_safetensors(path)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        which = f"missing '{missing[0]}'" if missing else f"unexpected '{unexpected[0]}'"
        raise ConfigError(
            f"{path}: the weights do not fit the model of config.yaml ({which}); was the "
            "config edited after training?"
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ConfigError(
                f"{path}: parameter '{key}' has shape {tuple(state[key].shape)} but the model of "
                f"config.yaml wants {tuple(tensor.shape)}; was the config edited after training?"
            )
    model.load_state_dict(state)


def load_run(run_dir: Path, weights: Weights = "best") -> LoadedRun:
    """Load a run folder: config, task (reading only files) and model in eval mode."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run folder")
    config = read_run_config(run_dir)
    task = get_task(config.task)(config, run_dir)
    path = weights_path(run_dir, weights)
    model = task.build_model()
    load_weights(model, path)
    model.eval()
    return LoadedRun(config, task, model)


def load_predictor(run_dir: Path, weights: Weights = "best") -> Predictor[Any, Any]:
    """The run's task :class:`Predictor`, ready for ``predict``."""
    task_cls = get_task(read_run_config(run_dir).task)
    if getattr(task_cls, "predictor", None) is None:
        raise TaskError(f"task '{task_cls.name}' has no predictor: it cannot predict")
    run = load_run(run_dir, weights)
    return task_cls.predictor(run.task, run.model)
