"""Single-step cell modules ``RNNCell``, ``LSTMCell``, ``GRUCell``.

Parameter names, shapes and initialisation are those of ``torch.nn.RNNCell/LSTMCell/GRUCell``
(``weight_ih`` (G, I), ``weight_hh`` (G, H), ``bias_ih`` and ``bias_hh`` (G,), all drawn from
uniform(-1/sqrt(H), 1/sqrt(H))), so state dicts load both ways. The maths lives in
:mod:`rnnkit.nn.functional`. Shapes: B batch, I input features, H hidden units.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rnnkit.nn.functional import (
    NONLINEARITIES,
    Nonlinearity,
    gru_cell_input,
    lstm_cell_input,
    rnn_cell_input,
)


class _Cell(torch.nn.Module):
    """Parameters and checks shared by the cells; ``gates`` is k in G = k * H."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, gates: int) -> None:
        super().__init__()
        name = type(self).__name__
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(
                f"{name}: input_size and hidden_size must be positive, "
                f"got {input_size} and {hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = torch.nn.Parameter(torch.empty(gates * hidden_size, input_size))
        self.weight_hh = torch.nn.Parameter(torch.empty(gates * hidden_size, hidden_size))
        self.bias_ih: torch.nn.Parameter | None
        self.bias_hh: torch.nn.Parameter | None
        if bias:
            self.bias_ih = torch.nn.Parameter(torch.empty(gates * hidden_size))
            self.bias_hh = torch.nn.Parameter(torch.empty(gates * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter from uniform(-1/sqrt(H), 1/sqrt(H)), as torch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            torch.nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"

    def _check(self, x: Tensor, state: tuple[Tensor | None, ...]) -> None:
        name = type(self).__name__
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"{name}: expected x of shape (B, I) with I = {self.input_size}, "
                f"got shape {tuple(x.shape)}"
            )
        expected = (x.shape[0], self.hidden_size)
        for s in state:
            if s is not None and tuple(s.shape) != expected:
                raise ValueError(
                    f"{name}: expected state of shape (B, H) = {expected}, got {tuple(s.shape)}"
                )

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)  # (B, H)


class RNNCell(_Cell):
    """Elman RNN cell: ``h_t = tanh(W_hh h_{t-1} + W_ih x_t + b)`` (or relu).

    Args:
        input_size: I. hidden_size: H.
        bias: use ``bias_ih`` and ``bias_hh``.
        nonlinearity: ``"tanh"`` or ``"relu"``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: Nonlinearity = "tanh",
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}; valid: 'tanh', 'relu'")
        super().__init__(input_size, hidden_size, bias, gates=1)
        self.nonlinearity: Nonlinearity = nonlinearity

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        """One step: x (B, I) and h (B, H) (zeros when None) -> h_t (B, H)."""
        self._check(x, (state,))
        h = self._zeros(x) if state is None else state
        return rnn_cell_input(
            x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity
        )


class LSTMCell(_Cell):
    """LSTM cell (gate order i, f, g, o; equations in :func:`~rnnkit.nn.functional.lstm_cell`).

    Args:
        input_size: I. hidden_size: H.
        bias: use ``bias_ih`` and ``bias_hh``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias, gates=4)

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """One step: x (B, I) and (h, c), each (B, H) (zeros when None) -> (h_t, c_t)."""
        if state is not None and (not isinstance(state, tuple) or len(state) != 2):
            raise ValueError("LSTMCell: state must be a tuple (h, c) of (B, H) tensors")
        self._check(x, state or ())
        h, c = (self._zeros(x), self._zeros(x)) if state is None else state
        return lstm_cell_input(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class GRUCell(_Cell):
    """GRU cell (gate order r, z, n; equations in :func:`~rnnkit.nn.functional.gru_cell`).

    Args:
        input_size: I. hidden_size: H.
        bias: use ``bias_ih`` and ``bias_hh``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias, gates=3)

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        """One step: x (B, I) and h (B, H) (zeros when None) -> h_t (B, H)."""
        self._check(x, (state,))
        h = self._zeros(x) if state is None else state
        return gru_cell_input(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
