"""Run an rnnkit ONNX export with numpy and onnxruntime only: no torch, no training code.

::

    from rnnkit import runtime

    predictor = runtime.load("exports/attention")     # reads config.json
    inputs = [predictor.parse("My son, give ear to my words.")]
    outputs = predictor.predict(inputs, {"beam_size": 5, "n_best": 3})
    predictor.format(outputs[0])               # what `rnnkit predict --engine onnx` prints
    predictor.to_json(inputs[0], outputs[0])   # ... and with --json (the torch engine's JSON)

This package imports only numpy, onnxruntime, sentencepiece, Pillow (captioning) and the
standard library (an import-linter contract and a test keep it so). ``config.json``'s
``runtime`` names the task's module here; it defines ``load(folder, config, threads) ->``
:class:`~rnnkit.runtime.base.RuntimePredictor`.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from rnnkit.runtime.base import FORMAT, RuntimePredictor

__all__ = ["FORMAT", "RuntimePredictor", "load", "read_config"]


def read_config(folder: str | Path) -> dict[str, Any]:
    """The ``config.json`` of an export folder.

    Raises:
        ValueError: no such file, not JSON, or not an rnnkit export (naming the file).
    """
    path = Path(folder) / "config.json"
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; is {folder} an rnnkit export?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable export config ({err})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ValueError(f'{path}: not an rnnkit export (no "format": "{FORMAT}")')
    if body.get("version") != 1:
        raise ValueError(f"{path}: export version {body.get('version')!r}; this runtime reads 1")
    return body


def load(folder: str | Path, threads: int | None = None) -> RuntimePredictor:
    """The predictor of an export folder, ready for ``predict``.

    Args:
        folder: what ``rnnkit export`` wrote.
        threads: onnxruntime's intra-op threads (None: 1, the fastest for small recurrent
            models).

    Raises:
        ValueError: the folder is not an export, or names a runtime this package lacks.
    """
    config = read_config(folder)
    name = str(config.get("runtime", ""))
    if not name.startswith("rnnkit.runtime."):
        raise ValueError(f"{Path(folder) / 'config.json'}: unknown runtime {name!r}")
    try:
        module = importlib.import_module(name)
    except ImportError:
        raise ValueError(f"{Path(folder) / 'config.json'}: unknown runtime {name!r}") from None
    predictor: RuntimePredictor = module.load(Path(folder), config, threads)
    return predictor
