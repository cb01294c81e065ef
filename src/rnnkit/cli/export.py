"""``rnnkit export RUN --format onnx --out DIR``: a run as ONNX graphs that run without torch.

The folder holds the task's graphs, its tokenisers and ``config.json``; ``rnnkit predict DIR
... --engine onnx`` (or :func:`rnnkit.runtime.load`) runs it with numpy and onnxruntime.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def _export(args: argparse.Namespace) -> int:
    from rnnkit import api

    files = api.export(Path(args.run), Path(args.out), args.weights, format=args.format)
    for path in files:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def add_parser(verbs: Any) -> None:
    """Add the ``export`` verb to the ``rnnkit`` command's sub-parsers ``verbs``."""
    parser = verbs.add_parser(
        "export",
        help="export a trained run as ONNX graphs (run them with --engine onnx)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("run", metavar="RUN", help="run folder")
    parser.add_argument(
        "--format", choices=["onnx"], default="onnx", help="export format (default onnx)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="the export folder to write")
    parser.add_argument(
        "--weights",
        choices=["best", "final"],
        default="best",
        help="weights to export: best on validation (default) or the final ones",
    )
    parser.set_defaults(handler=_export)
