"""Recurrent layers ``RNN``, ``LSTM``, ``GRU``: batch first, exact variable lengths, two backends.

Shapes: B batch, T time, I input features, H hidden units, L layers, D directions (2 when
bidirectional, else 1). ``x`` is (B, T, I), ``out`` is (B, T, D*H) and the state is shaped as in
``torch.nn``: h (L*D, B, H), and for the LSTM the pair (h, c).

The layers subclass :class:`torch.nn.RNNBase`, so parameter names, layout and initialisation are
those of ``torch.nn.RNN/LSTM/GRU`` and state dicts load both ways.

Backends (switchable on an existing layer through the ``backend`` attribute):

- ``"fused"`` calls torch's kernels (``torch.lstm``, ``torch.gru``, ``torch.rnn_tanh``,
  ``torch.rnn_relu``: oneDNN on CPU, cuDNN on GPU).
- ``"explicit"`` runs the pure cells of :mod:`rnnkit.nn.functional` step by step, with the input
  projection of all T steps hoisted out of the time loop.

Variable lengths (``lengths``, (B,), values in [1, T]) are exact with both backends: padding never
changes a real position's output or the final state, the final state of each sequence is its state
at its own last real step, the backward direction starts at each sequence's own last real token and
``out`` is exactly zero at padded positions. The batch is sorted longest first (and restored after),
so the sequences still running at any step are a prefix of the batch, and layers run one at a time.

The padded positions of ``x`` are replaced by zeros first (``torch.where``, so even NaN or huge
values there cannot reach a kernel, a frozen gate or a gradient).

- Explicit (:mod:`rnnkit.nn._explicit`): a masked update. A sequence's state changes only at its
  real steps (frozen after its end going forward, initial until its last token going backward); the
  cells compute on the running prefix only, so padding costs nothing.
- Fused (:mod:`rnnkit.nn._chunks`): the time axis is cut into a few chunks (``plan_chunks`` trades
  padding against the fixed cost of a kernel call) and each chunk is one fused call on the
  sequences still running at its start, carrying the state from chunk to chunk. A sequence ending
  inside a chunk has its outputs past its end zeroed and its final h gathered from the outputs at
  its last step; an LSTM's c is frozen past its end by an extra input feature that pins i = 0 and
  f = 1 exactly. The backward direction runs the same way on the batch reversed within each
  sequence's own length (:func:`~rnnkit.nn.padding.reverse_padded`).

The kernels' ``train`` flag is set in training and whenever gradients flow (cuDNN refuses a backward
through a call made without it); dropout between layers applies in training only, as in torch.nn.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.nn._chunks import Mode, fused_direction, fused_kernel, plan_chunks
from rnnkit.nn._explicit import explicit_direction
from rnnkit.nn.functional import CellKind, Nonlinearity, State
from rnnkit.nn.padding import length_mask, reverse_padded

Backend = Literal["fused", "explicit"]
BACKENDS: tuple[Backend, ...] = ("fused", "explicit")

_CELLS: dict[Mode, CellKind] = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn", "RNN_RELU": "rnn"}
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _check_backend(backend: str) -> Backend:
    for valid in BACKENDS:
        if backend == valid:
            return valid
    raise ValueError(
        f"unknown backend {backend!r}; valid backends: {', '.join(repr(b) for b in BACKENDS)}"
    )


class _Recurrent(torch.nn.RNNBase):
    """Shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU`."""

    _num_state: int = 1

    def __init__(
        self,
        mode: Mode,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        bidirectional: bool,
        dropout: float,
        backend: Backend,
    ) -> None:
        super().__init__(
            mode,
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=True,
            dropout=dropout,
            bidirectional=bidirectional,
        )
        self.backend = backend
        self.chunk_cost = 64.0
        self._mode: Mode = mode

    @property
    def backend(self) -> Backend:
        """``"fused"`` (torch's kernels) or ``"explicit"`` (pure cells, step by step)."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = _check_backend(value)

    @property
    def _nonlinearity(self) -> Nonlinearity:
        return "relu" if self.mode == "RNN_RELU" else "tanh"

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend}"

    def _weights(self, layer: int, direction: int) -> list[Tensor]:
        """Parameters of one layer and direction: weight_ih, weight_hh[, bias_ih, bias_hh]."""
        names = self._all_weights[layer * (2 if self.bidirectional else 1) + direction]
        return [getattr(self, name) for name in names]

    def _all_flat_weights(self) -> list[Tensor]:
        self._update_flat_weights()
        return [w for w in self._flat_weights if w is not None]

    def _run(self, x: Tensor, lengths: Tensor | None, state: State | None) -> tuple[Tensor, State]:
        """Validate, then dispatch to the backend; returns out (B, T, D*H) and the final state."""
        lens = self._check_input(x, lengths)
        B, T = x.shape[0], x.shape[1]
        D = 2 if self.bidirectional else 1
        if state is None:
            zeros = x.new_zeros(self.num_layers * D, B, self.hidden_size)  # (L*D, B, H)
            state = (zeros,) * self._num_state
        else:
            self._check_state(state, B, x)
        # The kernel's train flag: dropout (training only, as torch.nn) and, on cuDNN, what the
        # backward needs, so it is also set in eval mode when gradients flow.
        train = self.training or (torch.is_grad_enabled() and self._needs_grad(x, state))
        if lengths is None or lens is None or all(n == T for n in lens):
            if self.backend == "explicit":
                return self._stack(x, None, None, state, train)
            return fused_kernel(
                self._mode,
                x,
                state,
                self._all_flat_weights(),
                self.bias,
                self.num_layers,
                self.dropout if self.training else 0.0,
                train,
                self.bidirectional,
            )
        # variable lengths: zero the padding (where, not a product, so NaN cannot leak into the
        # kernels or the gradients), sort longest first, run, restore the order
        lengths = lengths.to(x.device)
        x = torch.where(length_mask(lengths, T).unsqueeze(2), x, 0.0)  # (B, T, I)
        sorted_lengths, order = torch.sort(lengths, descending=True, stable=True)
        unsort = torch.empty_like(order)
        unsort[order] = torch.arange(B, device=order.device)
        out, final = self._stack(
            x.index_select(0, order),  # (B, T, I)
            sorted_lengths,
            sorted(lens, reverse=True),
            tuple(s.index_select(1, order) for s in state),  # (L*D, B, H)
            train,
        )
        return out.index_select(0, unsort), tuple(s.index_select(1, unsort) for s in final)

    def _needs_grad(self, x: Tensor, state: State) -> bool:
        tensors = (x, *state, *self.parameters())
        return any(t.requires_grad for t in tensors)

    def _stack(
        self, x: Tensor, lengths: Tensor | None, lens: list[int] | None, state: State, train: bool
    ) -> tuple[Tensor, State]:
        """All layers and directions, one at a time, with dropout between layers.

        Args:
            x: (B, T, I), sorted longest first and zero at padding when lengths are given.
            lengths: (B,) sorted lengths on x's device, or None (explicit backend only).
            lens: the same lengths as a list, or None.
            state: initial state, each (L*D, B, H).
            train: the fused kernel's train flag.

        Returns:
            out (B, T, D*H) and the final state, each (L*D, B, H).
        """
        D = 2 if self.bidirectional else 1
        fused = self.backend == "fused"
        ends = [] if lens is None else plan_chunks(lens, self.chunk_cost)
        finals: list[State] = []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(D):
                k = layer * D + direction
                weights = self._weights(layer, direction)
                initial = tuple(s[k] for s in state)  # (B, H)
                if not fused:
                    out, final = explicit_direction(
                        _CELLS[self._mode],
                        self._nonlinearity,
                        x,
                        initial,
                        weights,
                        lens,
                        direction == 1,
                    )
                else:
                    assert lengths is not None and lens is not None
                    flip = direction == 1  # backward: reverse each sequence within its length
                    out, final = fused_direction(
                        self._mode,
                        weights,
                        self.bias,
                        reverse_padded(x, lengths) if flip else x,
                        lengths,
                        lens,
                        initial,
                        ends,
                        train,
                    )
                    out = reverse_padded(out, lengths) if flip else out
                outs.append(out)  # (B, T, H)
                finals.append(final)
            x = torch.cat(outs, dim=2) if D == 2 else outs[0]  # (B, T, D*H)
            if layer < self.num_layers - 1 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
        return x, tuple(torch.stack([f[i] for f in finals]) for i in range(len(state)))

    def _check_input(self, x: Tensor, lengths: Tensor | None) -> list[int] | None:
        """Check x and lengths; returns the lengths as a list (None when not given)."""
        name = type(self).__name__
        if x.dim() != 3:
            raise ValueError(
                f"{name}: expected x of shape (B, T, I) with I = {self.input_size}, "
                f"got a {x.dim()}-D tensor of shape {tuple(x.shape)}"
            )
        if x.shape[2] != self.input_size:
            raise ValueError(
                f"{name}: expected x of shape (B, T, I) with I = {self.input_size}, "
                f"got shape {tuple(x.shape)}"
            )
        weight = self.weight_ih_l0
        if x.dtype != weight.dtype:
            raise ValueError(
                f"{name}: x has dtype {x.dtype} but the weights have dtype {weight.dtype}"
            )
        if lengths is None:
            return None
        B, T = x.shape[0], x.shape[1]
        if lengths.dim() != 1 or lengths.shape[0] != B:
            raise ValueError(
                f"{name}: lengths must have shape (B,) = ({B},), got {tuple(lengths.shape)}"
            )
        if lengths.dtype not in _INT_DTYPES:
            raise ValueError(f"{name}: lengths must be an integer tensor, got {lengths.dtype}")
        if lengths.device.type != "cpu" and lengths.device != x.device:
            raise ValueError(
                f"{name}: lengths must be on the CPU or on x's device {x.device}, "
                f"got {lengths.device}"
            )
        lens: list[int] = lengths.tolist()
        if B > 0 and (min(lens) < 1 or max(lens) > T):
            raise ValueError(
                f"{name}: lengths must lie in [1, T] = [1, {T}], "
                f"got values from {min(lens)} to {max(lens)}"
            )
        return lens

    def _check_state(self, state: State, B: int, x: Tensor) -> None:
        name = type(self).__name__
        D = 2 if self.bidirectional else 1
        expected = (self.num_layers * D, B, self.hidden_size)
        for part, s in zip(("h", "c"), state, strict=False):
            if tuple(s.shape) != expected:
                raise ValueError(
                    f"{name}: expected initial {part} of shape (L*D, B, H) = {expected}, "
                    f"got {tuple(s.shape)}"
                )
            if s.dtype != x.dtype or s.device != x.device:
                raise ValueError(
                    f"{name}: initial {part} must have x's dtype {x.dtype} and device "
                    f"{x.device}, got {s.dtype} on {s.device}"
                )


class RNN(_Recurrent):
    """Elman RNN layer: ``h_t = tanh(W_hh h_{t-1} + W_ih x_t + b)`` (or relu), batch first.

    Parameters are those of ``torch.nn.RNN`` (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
    ``bias_hh_l0``, ``..._reverse``). See the module docstring for backends and lengths.

    Args:
        input_size: I. hidden_size: H. num_layers: L.
        bidirectional: D = 2 when True.
        dropout: dropout on the outputs of every layer but the last (training only).
        backend: ``"fused"`` or ``"explicit"``.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        bias: use ``bias_ih`` and ``bias_hh``.

    Attributes:
        backend: may be switched on an existing layer.
        chunk_cost: fixed cost of one fused call in token steps, for ``plan_chunks``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        backend: Backend = "fused",
        nonlinearity: Nonlinearity = "tanh",
        *,
        bias: bool = True,
    ) -> None:
        modes: dict[str, Mode] = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
        if nonlinearity not in modes:
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}; valid: 'tanh', 'relu'")
        super().__init__(
            modes[nonlinearity],
            input_size,
            hidden_size,
            num_layers,
            bias,
            bidirectional,
            dropout,
            backend,
        )
        self.nonlinearity = nonlinearity

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Run the layer.

        Args:
            x: (B, T, I).
            lengths: (B,) integer tensor with values in [1, T] (CPU or x's device), or None.
            state: initial h (L*D, B, H), or None for zeros.

        Returns:
            out (B, T, D*H), zero at padded positions, and the final h (L*D, B, H).
        """
        out, (h,) = self._run(x, lengths, None if state is None else (state,))
        return out, h


class GRU(_Recurrent):
    """GRU layer, batch first (gate order r, z, n; equations in
    :func:`~rnnkit.nn.functional.gru_cell`).

    Parameters are those of ``torch.nn.GRU``. See the module docstring for backends and lengths.

    Args:
        input_size: I. hidden_size: H. num_layers: L.
        bidirectional: D = 2 when True.
        dropout: dropout on the outputs of every layer but the last (training only).
        backend: ``"fused"`` or ``"explicit"``.
        bias: use ``bias_ih`` and ``bias_hh``.

    Attributes:
        backend: may be switched on an existing layer.
        chunk_cost: fixed cost of one fused call in token steps, for ``plan_chunks``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        backend: Backend = "fused",
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, bidirectional, dropout, backend
        )

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Run the layer.

        Args:
            x: (B, T, I).
            lengths: (B,) integer tensor with values in [1, T] (CPU or x's device), or None.
            state: initial h (L*D, B, H), or None for zeros.

        Returns:
            out (B, T, D*H), zero at padded positions, and the final h (L*D, B, H).
        """
        out, (h,) = self._run(x, lengths, None if state is None else (state,))
        return out, h


class LSTM(_Recurrent):
    """LSTM layer, batch first (gate order i, f, g, o; equations in
    :func:`~rnnkit.nn.functional.lstm_cell`).

    Parameters are those of ``torch.nn.LSTM``. See the module docstring for backends and lengths.

    Args:
        input_size: I. hidden_size: H. num_layers: L.
        bidirectional: D = 2 when True.
        dropout: dropout on the outputs of every layer but the last (training only).
        backend: ``"fused"`` or ``"explicit"``.
        bias: use ``bias_ih`` and ``bias_hh``.

    Attributes:
        backend: may be switched on an existing layer.
        chunk_cost: fixed cost of one fused call in token steps, for ``plan_chunks``.
    """

    _num_state = 2

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        backend: Backend = "fused",
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(
            "LSTM", input_size, hidden_size, num_layers, bias, bidirectional, dropout, backend
        )

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        state: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the layer.

        Args:
            x: (B, T, I).
            lengths: (B,) integer tensor with values in [1, T] (CPU or x's device), or None.
            state: initial (h, c), each (L*D, B, H), or None for zeros.

        Returns:
            out (B, T, D*H), zero at padded positions, and the final (h, c), each (L*D, B, H).
        """
        if state is not None and (not isinstance(state, tuple) or len(state) != 2):
            raise ValueError("LSTM: state must be a tuple (h, c) of (L*D, B, H) tensors")
        out, (h, c) = self._run(x, lengths, state)
        return out, (h, c)
