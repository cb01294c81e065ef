"""Checkpoint files of a run folder: naming, discovery, pruning, RNG state and state trees.

Checkpoints live in ``<run_dir>/checkpoints/step_XXXXXXXX.pt`` (8-digit global step). They are
written with :func:`rnnkit.io.save_checkpoint` and read with :func:`rnnkit.io.load_checkpoint`
(``weights_only=True``). :func:`find_resume_checkpoint` returns the newest one that loads cleanly,
warning about (and setting aside) newer files that do not.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnkit.io import CheckpointError, clean_temp_files, fsync_dir, load_checkpoint

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8,})\.pt$")

REQUIRED_KEYS = (
    "step",
    "epoch",
    "batch_index",
    "elapsed_s",
    "model",
    "optimizer",
    "scheduler",
    "rng",
)


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped during resume (the message names the file and the reason)."""


def checkpoint_dir(run_dir: Path) -> Path:
    """``<run_dir>/checkpoints``."""
    return Path(run_dir) / CHECKPOINT_DIR


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """``<run_dir>/checkpoints/step_XXXXXXXX.pt`` for global ``step``."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return checkpoint_dir(run_dir) / f"step_{step:08d}.pt"


def checkpoint_step(path: Path) -> int | None:
    """The step encoded in a checkpoint file name, or None for any other name."""
    match = _NAME.match(path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint files of ``run_dir`` sorted by step, oldest first (temp files excluded)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(checkpoint_step(p), p) for p in folder.iterdir() if p.is_file()]
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def prune_checkpoints(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints; return the deleted paths."""
    if keep < 1:
        raise ValueError(f"keep_checkpoints must be >= 1, got {keep}")
    files = list_checkpoints(run_dir)
    doomed = files[: max(len(files) - keep, 0)]
    for path in doomed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if doomed:
        fsync_dir(checkpoint_dir(run_dir))
    return doomed


def validate_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Raise :class:`~rnnkit.io.CheckpointError` naming ``path`` if a training key is missing."""
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint (missing {', '.join(missing)})")


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a resumed run continues from."""

    path: Path
    state: dict[str, Any]
    skipped: tuple[Path, ...]


def find_resume_checkpoint(run_dir: Path) -> ResumePoint | None:
    """Newest checkpoint of ``run_dir`` that loads cleanly, or None if there is none.

    Temp files of interrupted writes are deleted first. Each newer checkpoint that fails to load
    is reported with a :class:`CheckpointWarning` naming it, and renamed to ``<name>.corrupt`` so
    that later pruning can never keep it in place of a good one.
    """
    clean_temp_files(run_dir)
    clean_temp_files(checkpoint_dir(run_dir))
    skipped: list[Path] = []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            state = load_checkpoint(path)
            validate_checkpoint(state, path)
            if state["step"] != checkpoint_step(path):
                raise CheckpointError(
                    f"{path}: holds step {state['step']}, not the step in its name"
                )
        except CheckpointError as err:
            warnings.warn(f"skipping checkpoint {path}: {err}", CheckpointWarning, stacklevel=2)
            skipped.append(path)
            continue
        for bad in skipped:
            os.replace(bad, bad.with_name(bad.name + ".corrupt"))
        if skipped:
            fsync_dir(checkpoint_dir(run_dir))
        return ResumePoint(path=path, state=state, skipped=tuple(skipped))
    return None


# --------------------------------------------------------------------------- RNG state


def capture_rng_state(cuda: bool) -> dict[str, Any]:
    """Plain-data snapshot of torch's CPU RNG, CUDA RNGs (if ``cuda``), ``random`` and numpy's."""
    version, internal, gauss = random.getstate()
    np_key, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if cuda else None,
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
        "numpy": {
            "key": str(np_key),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None:
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(int(x) for x in internal.tolist()), gauss))
    np_state = state.get("numpy")
    if np_state is not None:
        keys = np_state["keys"].numpy().astype(np.uint32)
        np.random.set_state(
            (
                np_state["key"],
                keys,
                np_state["pos"],
                np_state["has_gauss"],
                np_state["cached_gaussian"],
            )
        )


@contextlib.contextmanager
def preserved_rng(cuda: bool) -> Iterator[None]:
    """Run the body without disturbing any global RNG (used around evaluation)."""
    saved = capture_rng_state(cuda)
    try:
        yield
    finally:
        restore_rng_state(saved)


# --------------------------------------------------------------------------- state trees


def map_tensors(obj: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """Apply ``fn`` to every tensor in nested tuples (named tuples too), lists and dicts.

    Anything else (numbers, strings, None, other objects) is returned unchanged.
    """
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # NamedTuple
        return type(obj)(*(map_tensors(v, fn) for v in obj))
    if isinstance(obj, tuple):
        return tuple(map_tensors(v, fn) for v in obj)
    if isinstance(obj, list):
        return [map_tensors(v, fn) for v in obj]
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn) for k, v in obj.items()}
    return obj


def detach_state(state: Any) -> Any:
    """Recurrent state cut from the autograd graph (truncated BPTT); containers are rebuilt."""
    return map_tensors(state, lambda t: t.detach())


def to_plain(obj: Any) -> Any:
    """A state tree in checkpoint-safe form: tensors on CPU, named tuples as plain tuples.

    Checkpoints can hold no custom classes, so a carried state that is a named tuple comes back
    from a resume as a plain tuple (index access still works; attribute access does not).
    """
    if isinstance(obj, Tensor):
        return obj.detach().to("cpu")
    if isinstance(obj, tuple):
        return tuple(to_plain(v) for v in obj)
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj
