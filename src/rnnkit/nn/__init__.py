"""rnnkit.nn: the recurrent cores and attention.

- :mod:`rnnkit.nn.functional`: the cell equations as pure functions.
- :mod:`rnnkit.nn.cells`: ``RNNCell``, ``LSTMCell``, ``GRUCell`` modules.
- :mod:`rnnkit.nn.recurrent`: ``RNN``, ``LSTM``, ``GRU`` layers (batch first, ``lengths``, two
  backends; their private parts in ``_chunks`` and ``_explicit``).
- :mod:`rnnkit.nn.decoder`: one decoder step with attention as in the lecture (the reference).
- :mod:`rnnkit.nn.padding`: ``length_mask``, ``reverse_padded`` for padded batches.
- :mod:`rnnkit.nn.attention`: ``Attention`` (additive, dot, general, scaled dot).
- :mod:`rnnkit.nn.factory`: ``make_layer``, ``make_cell``, ``check_cell``: a cell name to a module.

Names are resolved on first access so that importing one submodule does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnkit.nn.attention import Attention, check_mask
    from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
    from rnnkit.nn.factory import check_cell, make_cell, make_layer
    from rnnkit.nn.recurrent import GRU, LSTM, RNN

_WHERE = {
    "RNNCell": "rnnkit.nn.cells",
    "LSTMCell": "rnnkit.nn.cells",
    "GRUCell": "rnnkit.nn.cells",
    "RNN": "rnnkit.nn.recurrent",
    "LSTM": "rnnkit.nn.recurrent",
    "GRU": "rnnkit.nn.recurrent",
    "Attention": "rnnkit.nn.attention",
    "check_mask": "rnnkit.nn.attention",
    "make_layer": "rnnkit.nn.factory",
    "make_cell": "rnnkit.nn.factory",
    "check_cell": "rnnkit.nn.factory",
}

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Attention",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "check_cell",
    "check_mask",
    "make_cell",
    "make_layer",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'rnnkit.nn' has no attribute '{name}'")
