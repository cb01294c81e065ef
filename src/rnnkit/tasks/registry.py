"""Finding tasks by name: entry points of the ``rnnkit.tasks`` group.

Every task, built-in or from another package, is declared in its distribution's metadata::

    [project.entry-points."rnnkit.tasks"]
    translation = "rnnkit.tasks.translation:TranslationTask"

and looked up here through :mod:`importlib.metadata`, so a third-party package adds a task
without touching rnnkit. A task module is imported only when its task is first asked for.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from rnnkit.config import ConfigError
from rnnkit.tasks.base import Task

GROUP = "rnnkit.tasks"
"""The entry-point group that declares tasks."""


def _entry_points() -> dict[str, EntryPoint]:
    # Two distributions may declare the same name (e.g. an editable install next to a wheel of
    # the same project): the first one on sys.path wins, as for console scripts.
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return found


def task_names() -> list[str]:
    """Sorted names of every declared task."""
    return sorted(_entry_points())


@cache
def _load(name: str, value: str) -> type[Task]:
    ep = EntryPoint(name=name, value=value, group=GROUP)
    try:
        cls = ep.load()
    except (ImportError, AttributeError) as err:
        raise ConfigError(
            f"task '{name}' is declared as '{value}' but cannot be loaded: {err}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigError(f"task '{name}' ({value}) is not a subclass of rnnkit.tasks.Task")
    if getattr(cls, "name", None) != name:
        raise ConfigError(
            f"task '{name}' ({value}) calls itself '{getattr(cls, 'name', None)}'; "
            "the entry point's name and the class's name must agree"
        )
    return cls


def get_task(name: str) -> type[Task]:
    """The task class declared as ``name``; a ConfigError lists the valid names otherwise."""
    found = _entry_points()
    if name not in found:
        raise ConfigError(f"unknown task '{name}'; valid tasks: {', '.join(sorted(found))}")
    return _load(name, found[name].value)
