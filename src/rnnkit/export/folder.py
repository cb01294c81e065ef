"""An export folder: the task's graphs and files, and ``config.json``, written all at once.

:func:`export_run` builds the folder under a temporary name next to ``out`` and renames it into
place, so an interrupted export leaves nothing half written; an earlier export at ``out`` is
replaced, anything else there is refused.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rnnkit.tasks.base import TaskError
from rnnkit.tasks.run import Weights, load_predictor

__all__ = ["CONFIG_FILE", "FORMAT", "VERSION", "export_run", "is_export", "read_export_config"]

FORMAT = "rnnkit-onnx"
"""The ``format`` of an export's ``config.json``."""
VERSION = 1
"""Its ``version``."""
CONFIG_FILE = "config.json"


def read_export_config(folder: Path) -> dict[str, Any] | None:
    """The ``config.json`` of an export folder, or None when ``folder`` is not one."""
    path = Path(folder) / CONFIG_FILE
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return body if isinstance(body, dict) and body.get("format") == FORMAT else None


def is_export(folder: Path) -> bool:
    """True when ``folder`` holds an rnnkit ONNX export (a ``config.json`` of :data:`FORMAT`)."""
    return read_export_config(folder) is not None


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise TaskError(f"{out}: is a file; give a folder for the export")
    if out.is_dir() and any(out.iterdir()) and not is_export(out):
        raise TaskError(
            f"{out}: the folder is not empty and holds no rnnkit export; give a new or empty folder"
        )


def export_run(run_dir: Path, out: Path, weights: Weights = "best") -> list[Path]:
    """Export a trained run as ONNX graphs into ``out`` (see :mod:`rnnkit.export`).

    Args:
        run_dir: the run folder.
        out: the export folder: new, empty, or an earlier export (then replaced).
        weights: ``"best"`` or ``"final"``.

    Returns:
        The files written, ``out/config.json`` first, then the task's in name order.

    Raises:
        TaskError: the task cannot be exported, or ``out`` is a file or a foreign folder.
    """
    out = Path(out)
    _check_out(out)
    predictor = load_predictor(Path(run_dir), weights)
    task = predictor.task
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        entries = predictor.export_onnx(scratch)
        module = entries.pop("runtime", task.name)
        config: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "task": task.name,
            "runtime": f"rnnkit.runtime.{module}",
            "weights": weights,
            "flags": {o.name: o.flag for o in task.predict_options},
            **entries,
        }
        (scratch / CONFIG_FILE).write_text(
            json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if out.exists():
            old = out.with_name(f".{out.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            scratch.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            scratch.rename(out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    names = sorted(p.name for p in out.iterdir() if p.name != CONFIG_FILE)
    return [out / CONFIG_FILE, *(out / n for n in names)]
