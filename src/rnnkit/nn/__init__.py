"""rnnkit.nn: the recurrent cores and attention.

- :mod:`rnnkit.nn.functional`: the cell equations as pure functions.
- :mod:`rnnkit.nn.cells`: ``RNNCell``, ``LSTMCell``, ``GRUCell`` modules.
- :mod:`rnnkit.nn.recurrent`: ``RNN``, ``LSTM``, ``GRU`` layers (batch first, ``lengths``, two backends).
- :mod:`rnnkit.nn.attention`: ``Attention`` (additive, dot, general, scaled dot).

Names are resolved on first access so that importing one submodule does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnkit.nn.attention import Attention
    from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
    from rnnkit.nn.recurrent import GRU, LSTM, RNN

_WHERE = {
    "RNNCell": "rnnkit.nn.cells",
    "LSTMCell": "rnnkit.nn.cells",
    "GRUCell": "rnnkit.nn.cells",
    "RNN": "rnnkit.nn.recurrent",
    "LSTM": "rnnkit.nn.recurrent",
    "GRU": "rnnkit.nn.recurrent",
    "Attention": "rnnkit.nn.attention",
}

__all__ = ["GRU", "LSTM", "RNN", "Attention", "GRUCell", "LSTMCell", "RNNCell"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'rnnkit.nn' has no attribute '{name}'")
