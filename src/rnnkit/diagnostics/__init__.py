"""rnnkit.diagnostics: backpropagation through time made visible.

- :mod:`rnnkit.diagnostics.gradients`: ``hidden_states``, ``gradient_flow`` (``||dL/dh_t||`` for
  every t) and ``spectral_radius`` (per gate block of ``W_hh``).
- :mod:`rnnkit.diagnostics.memory`: ``memory_benchmark`` (every cell on a long-memory task at
  growing lengths under one budget) and ``largest_solved``.
- :mod:`rnnkit.diagnostics.experiments`: ``gradient_flow_experiment`` (vanishing gradients at init
  and after training), ``exploding_experiment`` (with and without clipping) and
  ``gradient_diagnostics`` (both).

Names are resolved on first access, so importing one submodule does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnkit.diagnostics.experiments import (
        ClipRun,
        ExplodingResult,
        FlowCurve,
        GradientFlowResult,
        GradientReport,
        exploding_experiment,
        gradient_diagnostics,
        gradient_flow_experiment,
    )
    from rnnkit.diagnostics.gradients import gradient_flow, hidden_states, spectral_radius
    from rnnkit.diagnostics.memory import MemoryResult, largest_solved, memory_benchmark

_WHERE = {
    "hidden_states": "rnnkit.diagnostics.gradients",
    "gradient_flow": "rnnkit.diagnostics.gradients",
    "spectral_radius": "rnnkit.diagnostics.gradients",
    "MemoryResult": "rnnkit.diagnostics.memory",
    "memory_benchmark": "rnnkit.diagnostics.memory",
    "largest_solved": "rnnkit.diagnostics.memory",
    "ClipRun": "rnnkit.diagnostics.experiments",
    "ExplodingResult": "rnnkit.diagnostics.experiments",
    "FlowCurve": "rnnkit.diagnostics.experiments",
    "GradientFlowResult": "rnnkit.diagnostics.experiments",
    "GradientReport": "rnnkit.diagnostics.experiments",
    "exploding_experiment": "rnnkit.diagnostics.experiments",
    "gradient_diagnostics": "rnnkit.diagnostics.experiments",
    "gradient_flow_experiment": "rnnkit.diagnostics.experiments",
}

__all__ = [
    "ClipRun",
    "ExplodingResult",
    "FlowCurve",
    "GradientFlowResult",
    "GradientReport",
    "MemoryResult",
    "exploding_experiment",
    "gradient_diagnostics",
    "gradient_flow",
    "gradient_flow_experiment",
    "hidden_states",
    "largest_solved",
    "memory_benchmark",
    "spectral_radius",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'rnnkit.diagnostics' has no attribute '{name}'")
