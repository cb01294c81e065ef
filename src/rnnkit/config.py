"""Typed, frozen configuration: YAML in, validated objects out.

A run's config file has these sections::

    task: reverse            # a registered task name
    data: {...}              # the task's data config
    model: {...}             # the task's model config (architecture only)
    objective: {...}         # the task's loss options, if it has any (optional)
    train: {...}             # :class:`TrainConfig`, shared by every task

This module knows no task: :func:`rnnkit.tasks.run.build_run_config` looks the task up and
validates its sections with :func:`build_section`.

Every section is a frozen pydantic model that forbids unknown keys. Errors are turned into one-line
:class:`ConfigError` messages that name the bad key and list the valid ones, so the CLI can print
them and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class ConfigError(ValueError):
    """A configuration problem, phrased for the user in one line."""


class FrozenConfig(BaseModel):
    """Base of every config section: keyword-only, immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class TrainConfig(FrozenConfig):
    """How to train: optimiser, schedule, budget, clipping, checkpoints. Holds no architecture.

    Validated on construction: a bad value raises a ``ValidationError`` whose message names the
    bound and the value (``must be >= 1, got 0``); :func:`build_section` reports it as
    ``invalid value for 'train.batch_size': must be >= 1, got 0``. What depends on the task (the
    early-stopping metric's name) or the machine (CUDA for ``device``/``precision``) is checked
    by the trainer. Task-specific options (label smoothing, scheduled sampling, ...) live in the
    task's own ``objective`` section, not here. ``bptt`` (tokens per window) and
    ``variable_bptt`` (AWD-LSTM's random window lengths) are the truncation of
    backpropagation through time of the tasks that carry their state from batch to batch
    (``Task.stateful``: the language model); the others ignore them.
    """

    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    schedule: Literal["constant", "linear", "cosine", "inverse_sqrt"] = "constant"
    warmup_steps: int = 0
    batch_size: int = 64
    max_steps: int | None = None
    epochs: int | None = None
    max_time_s: float | None = None
    clip_grad_norm: float | None = 1.0
    eval_every: int = 200
    early_stopping_metric: str | None = None
    early_stopping_patience: int | None = None
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    nonfinite: Literal["skip", "stop"] = "skip"
    max_nonfinite: int = 50
    log_every: int = 10
    progress: bool | None = None
    threads: int | None = None
    flush_denormal: bool = True
    keep_freed_memory: bool = True
    bptt: int = 35
    variable_bptt: bool = False

    @field_validator(
        "batch_size",
        "max_steps",
        "epochs",
        "eval_every",
        "early_stopping_patience",
        "checkpoint_every",
        "keep_checkpoints",
        "max_nonfinite",
        "log_every",
        "threads",
        "bptt",
    )
    @classmethod
    def _at_least_one(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"must be >= 1, got {value}")
        return value

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        """``auto`` (or null) lets :func:`rnnkit.training.device.choose_threads` decide."""
        if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer >= 1 or 'auto', got {value!r}")
        return value

    @field_validator("lr", "max_time_s")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:  # NaN fails too
            raise ValueError(f"must be > 0, got {value}")
        return value

    @field_validator("weight_decay", "warmup_steps")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if not value >= 0:
            raise ValueError(f"must be >= 0, got {value}")
        return value

    @field_validator("momentum")
    @classmethod
    def _sgd_momentum(cls, value: float, info: ValidationInfo) -> float:
        if not value >= 0:
            raise ValueError(f"must be >= 0, got {value}")
        optimizer = info.data.get("optimizer")
        if value and optimizer != "sgd":
            raise ValueError(f"applies only to optimizer 'sgd', not '{optimizer}'")
        return value

    @field_validator("clip_grad_norm")
    @classmethod
    def _clip(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:
            raise ValueError(f"must be > 0 or null, got {value}")
        return value

    @model_validator(mode="after")
    def _budget_and_schedule(self) -> TrainConfig:
        if self.max_steps is None and self.epochs is None and self.max_time_s is None:
            raise ValueError(
                "no training budget: set at least one of train.max_steps, train.epochs, "
                "train.max_time_s"
            )
        if self.schedule in ("linear", "cosine"):
            if self.max_steps is None and self.epochs is None:
                raise ValueError(
                    f"schedule '{self.schedule}' needs the total number of steps: set "
                    "train.max_steps or train.epochs"
                )
            if self.max_steps is not None and self.max_steps <= self.warmup_steps:
                raise ValueError(
                    f"schedule '{self.schedule}': train.max_steps ({self.max_steps}) must "
                    f"exceed train.warmup_steps ({self.warmup_steps})"
                )
        return self


class EmptySection(FrozenConfig):
    """A config section with no keys (the default ``objective`` of a task without loss options)."""


class RunConfig(FrozenConfig):
    """A whole run: the task name and its config sections.

    ``objective`` holds the task's loss options (label smoothing, scheduled sampling, ...);
    tasks without any have an empty one.
    """

    task: str
    data: FrozenConfig
    model: FrozenConfig
    objective: FrozenConfig = EmptySection()
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what ``config.yaml`` in a run folder holds)."""
        return {
            "task": self.task,
            "data": self.data.model_dump(mode="json"),
            "model": self.model.model_dump(mode="json"),
            "objective": self.objective.model_dump(mode="json"),
            "train": self.train.model_dump(mode="json"),
        }


SECTIONS = ("task", "data", "model", "objective", "train")


def _valid_keys(cls: type[BaseModel]) -> str:
    return ", ".join(sorted(cls.model_fields))


def build_section(cls: type[FrozenConfig], values: Any, section: str) -> FrozenConfig:
    """Validate ``values`` (a mapping) into ``cls``; raise :class:`ConfigError` naming the key."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"config section '{section}' must be a mapping, got {type(values).__name__}"
        )
    try:
        return cls.model_validate(dict(values))
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in (section, *first["loc"]))
        if first["type"] == "extra_forbidden":
            bad = str(first["loc"][-1])
            close = difflib.get_close_matches(bad, list(cls.model_fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"unknown config key '{key}'{hint}; valid keys in '{section}': {_valid_keys(cls)}"
            ) from None
        message = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for ValueError
        raise ConfigError(f"invalid value for '{key}': {message}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"train.lr=3e-4"`` into (["train", "lr"], 0.0003); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    path, _, raw = text.partition("=")
    keys = path.strip().split(".")
    if not all(keys):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return keys, value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of the raw config dict with ``--set`` overrides applied."""
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    for text in overrides:
        keys, value = parse_override(text)
        if keys[0] not in SECTIONS:
            raise ConfigError(
                f"unknown config section '{keys[0]}' in override '{text}'; valid sections: "
                + ", ".join(SECTIONS)
            )
        if len(keys) == 1:
            out[keys[0]] = value
            continue
        node = out.setdefault(keys[0], {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set '{text}': '{keys[0]}' is not a mapping")
        for key in keys[1:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set '{text}': '{key}' is not a mapping")
        node[keys[-1]] = value
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not valid UTF-8 ({err.reason})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the config must be a mapping of sections, got {type(raw).__name__}"
        )
    return raw


def builtin_configs() -> dict[str, Path]:
    """The configs shipped with rnnkit (package data): name -> file, sorted by name."""
    folder = Path(__file__).with_name("configs")
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def config_path(name_or_path: str | Path) -> Path:
    """A config file: ``name_or_path`` when it is a file, else the built-in config of that name.

    Raises:
        ConfigError: neither a file nor a built-in config (listing the built-in ones), or a folder.
    """
    path = Path(name_or_path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a config file")
    if path.is_file():
        return path
    builtin = builtin_configs()
    if str(name_or_path) in builtin:
        return builtin[str(name_or_path)]
    raise ConfigError(
        f"{path}: no such file, nor a built-in config; built-in configs: {', '.join(builtin)}"
    )
