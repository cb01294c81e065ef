"""rnnkit.diagnostics: backpropagation through time made visible.

- :mod:`rnnkit.diagnostics.gradients`: ``hidden_states``, ``gradient_flow`` (``||dL/dh_t||`` for
  every t) and ``spectral_radius`` (per gate block of ``W_hh``).
- :mod:`rnnkit.diagnostics.memory_span`: ``memory_benchmark`` (every cell on a long-memory task
  at growing lengths under one budget), ``largest_solved`` and ``MemoryResult``;
  :mod:`rnnkit.diagnostics.memory_report`: its table and figure.
- :mod:`rnnkit.diagnostics.vanishing`: ``gradient_flow_experiment`` (vanishing gradients at init
  and after training); :mod:`rnnkit.diagnostics.exploding`: ``exploding_experiment`` (with and
  without clipping); :mod:`rnnkit.diagnostics.gradient_report`: ``gradient_diagnostics`` (both),
  their text and figure.

Names are resolved on first access, so importing one submodule does not import the others. No
submodule is named like a public function (``rnnkit.diagnostics.memory_benchmark`` is the
function, whichever submodules were imported before).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnkit.diagnostics.exploding import ClipRun, ExplodingResult, exploding_experiment
    from rnnkit.diagnostics.gradient_report import GradientReport, gradient_diagnostics
    from rnnkit.diagnostics.gradients import gradient_flow, hidden_states, spectral_radius
    from rnnkit.diagnostics.memory_span import MemoryResult, largest_solved, memory_benchmark
    from rnnkit.diagnostics.vanishing import (
        FlowCurve,
        GradientFlowResult,
        gradient_flow_experiment,
    )

_WHERE = {
    "hidden_states": "rnnkit.diagnostics.gradients",
    "gradient_flow": "rnnkit.diagnostics.gradients",
    "spectral_radius": "rnnkit.diagnostics.gradients",
    "MemoryResult": "rnnkit.diagnostics.memory_span",
    "memory_benchmark": "rnnkit.diagnostics.memory_span",
    "largest_solved": "rnnkit.diagnostics.memory_span",
    "ClipRun": "rnnkit.diagnostics.exploding",
    "ExplodingResult": "rnnkit.diagnostics.exploding",
    "exploding_experiment": "rnnkit.diagnostics.exploding",
    "FlowCurve": "rnnkit.diagnostics.vanishing",
    "GradientFlowResult": "rnnkit.diagnostics.vanishing",
    "gradient_flow_experiment": "rnnkit.diagnostics.vanishing",
    "GradientReport": "rnnkit.diagnostics.gradient_report",
    "gradient_diagnostics": "rnnkit.diagnostics.gradient_report",
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
