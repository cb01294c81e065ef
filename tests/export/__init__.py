"""Tests of ``rnnkit export`` and the torch-free runtime (:mod:`rnnkit.runtime`); the helpers
they share."""

from __future__ import annotations

import math
from typing import Any


def cli_exports() -> bool:
    """Whether the CLI has the ``export`` verb (``rnnkit export --help`` exits 0)."""
    from rnnkit.cli.main import main

    try:
        main(["export", "--help"])
    except SystemExit as stop:
        return stop.code == 0
    return True


ROUNDED = 1.5e-4
"""Tolerance for values the JSON rounds to 4 decimals: two values a hair either side of a rounding
boundary come out one unit of the last place (1e-4) apart, plus float slack."""


def json_close(got: Any, want: Any, tol: float = ROUNDED) -> bool:
    """Whether two decoded JSON values are equal, floats within ``tol`` (absolute)."""
    if isinstance(want, float) or isinstance(got, float):
        if got is None or want is None:
            return got is want
        return math.isclose(float(got), float(want), rel_tol=0.0, abs_tol=tol)
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(json_close(got[k], want[k], tol) for k in want)
        )
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(json_close(g, w, tol) for g, w in zip(got, want, strict=True))
        )
    return bool(got == want)


def max_diff(got: Any, want: Any) -> float:
    """The largest absolute difference between the floats of two JSON values of one shape."""
    if isinstance(want, dict):
        return max((max_diff(got[k], want[k]) for k in want), default=0.0)
    if isinstance(want, list):
        return max((max_diff(g, w) for g, w in zip(got, want, strict=True)), default=0.0)
    if isinstance(want, float) and isinstance(got, float):
        return abs(got - want)
    return 0.0
