"""Task registry: tasks register themselves by name; configs, ``evaluate`` and ``predict`` look
them up here. The built-in tasks are imported lazily on the first lookup, so importing rnnkit does
no work."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from rnnkit.training.task import Task

T = TypeVar("T", bound="type[Task]")

_TASKS: dict[str, type[Task]] = {}
_BUILTIN_MODULES = (
    "rnnkit.models.synthetic",
    "rnnkit.models.memory",
    "rnnkit.models.forecaster",
    "rnnkit.models.translation",
)


def register_task(cls: T) -> T:
    """Class decorator: make ``cls`` available as ``task: <cls.name>`` in configs."""
    if cls.name in _TASKS and _TASKS[cls.name] is not cls:
        raise ValueError(f"task '{cls.name}' is already registered")
    _TASKS[cls.name] = cls
    return cls


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def task_names() -> list[str]:
    """Sorted names of every registered task."""
    _load_builtins()
    return sorted(_TASKS)


def get_task(name: str) -> type[Task]:
    """The task class registered as ``name``; a ConfigError lists the valid names otherwise."""
    from rnnkit.config import ConfigError

    _load_builtins()
    if name not in _TASKS:
        raise ConfigError(f"unknown task '{name}'; valid tasks: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]
