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

- Explicit: a masked update. A sequence's state changes only at its real steps (frozen after its
  end going forward, initial until its last token going backward); the cells compute on the running
  prefix only, so padding costs nothing.
- Fused: the time axis is cut into a few chunks (:func:`plan_chunks` trades padding against the
  fixed cost of a kernel call) and each chunk is one fused call on the sequences still running at
  its start, carrying the state from chunk to chunk. A sequence ending inside a chunk has its
  outputs past its end zeroed and its final h gathered from the outputs at its last step; an LSTM's
  c is frozen past its end by an extra input feature that pins i = 0 and f = 1 exactly (see
  :func:`_freeze_weights`). The backward direction runs the same way on the batch reversed within
  each sequence's own length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.nn.functional import Nonlinearity, gru_cell, lstm_cell, rnn_cell

Backend = Literal["fused", "explicit"]
BACKENDS: tuple[Backend, ...] = ("fused", "explicit")

State = tuple[Tensor, ...]
"""(h,) for RNN and GRU, (h, c) for LSTM; each (L*D, B, H) for a layer, (B, H) for one direction."""

_Mode = Literal["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]
_FREEZE = 1e4  # saturates sigmoid to exactly 0 and 1 (float16 still holds it)
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _check_backend(backend: str) -> Backend:
    for valid in BACKENDS:
        if backend == valid:
            return valid
    raise ValueError(
        f"unknown backend {backend!r}; valid backends: {', '.join(repr(b) for b in BACKENDS)}"
    )


def _fused_kernel(
    mode: _Mode,
    x: Tensor,
    state: State,
    weights: list[Tensor],
    has_bias: bool,
    num_layers: int,
    dropout: float,
    train: bool,
    bidirectional: bool,
) -> tuple[Tensor, State]:
    """One call of torch's fused kernel, batch first: x (B, T, I) -> out (B, T, D*H), state."""
    if mode == "LSTM":
        out, h, c = torch.lstm(
            x, state, weights, has_bias, num_layers, dropout, train, bidirectional, True
        )
        return out, (h, c)
    kernel = {"GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}[mode]
    out, h = kernel(x, state[0], weights, has_bias, num_layers, dropout, train, bidirectional, True)
    return out, (h,)


def plan_chunks(lens: Sequence[int], call_cost: float = 64.0) -> list[int]:
    """Where to cut the time axis of a length-sorted batch: the ends of the fused calls.

    A call over steps [s, e) processes the sequences still running at s (length > s), so it costs
    ``active(s) * (e - s)`` token steps, plus ``call_cost`` token steps of fixed cost (weight
    reorders and kernel start-up). Cutting at every distinct length skips all padding but makes
    many short calls; one cut at max(lens) is the plain padded run. This dynamic programme over the
    distinct lengths minimises the total cost. Every end is a length, the last is max(lens).

    Args:
        lens: the B lengths, in any order.
        call_cost: fixed cost of one fused call, in token steps.

    Returns:
        The chunk ends, strictly increasing.
    """
    cuts = [0, *sorted(set(lens))]
    running = [sum(1 for n in lens if n > c) for c in cuts]  # active(cut)
    best = [0.0] + [float("inf")] * (len(cuts) - 1)
    back = [0] * len(cuts)
    for j in range(1, len(cuts)):
        for i in range(j):
            cost = best[i] + call_cost + running[i] * (cuts[j] - cuts[i])
            if cost < best[j]:
                best[j], back[j] = cost, i
    ends = []
    j = len(cuts) - 1
    while j > 0:
        ends.append(cuts[j])
        j = back[j]
    return ends[::-1]


def _freeze_weights(weights: list[Tensor]) -> list[Tensor]:
    """LSTM weights with one more input column that pins i = 0 and f = 1 (see _fused_direction).

    A ``_FREEZE`` in that column saturates sigmoid exactly (0 and 1 in float32 and float64), so at
    a position whose extra input is 1 the cell keeps c_t = c_{t-1} bit for bit and passes no
    gradient to any gate but o, and o only feeds the h of that position, which is masked out.
    """
    weight_ih = weights[0]  # (4H, I)
    H = weight_ih.shape[0] // 4
    column = weight_ih.new_zeros(4 * H, 1)  # (4H, 1)
    column[:H] = -_FREEZE  # i
    column[H : 2 * H] = _FREEZE  # f
    return [torch.cat([weight_ih, column], dim=1), *weights[1:]]  # (4H, I + 1), ...


def _fused_direction(
    mode: _Mode,
    weights: list[Tensor],
    has_bias: bool,
    x: Tensor,
    lengths: Tensor,
    lens: Sequence[int],
    state: State,
    ends: Sequence[int],
) -> tuple[Tensor, State]:
    """One layer and direction of the fused kernel over exact variable lengths.

    The batch is sorted longest first. Each chunk [start, end) of ``ends`` runs one fused call on
    the sequences still running at ``start`` (a prefix of the batch); sequences whose length is
    ``end`` or more carry their state into the next chunk, the others end inside the chunk: their
    outputs past their end are zeroed, their final h is gathered from the chunk's outputs at their
    last real step and, for the LSTM, their c is kept frozen past their end by an extra input
    feature (``_freeze_weights``) and read at the end of the chunk.

    Args:
        mode: which kernel.
        weights: weight_ih, weight_hh[, bias_ih, bias_hh] of this layer and direction.
        has_bias: whether ``weights`` holds the biases.
        x: (B, T, I), sorted by length, longest first.
        lengths: (B,) the same lengths as ``lens``, on x's device.
        lens: the B lengths, non-increasing, in [1, T].
        state: initial (h,) or (h, c), each (B, H).
        ends: chunk ends from :func:`plan_chunks`.

    Returns:
        out (B, T, H), exactly zero at padded positions, and the state of each sequence at its own
        last step, each (B, H).
    """
    state = tuple(s.unsqueeze(0) for s in state)  # (1, B, H) as the kernels want it
    B, T = x.shape[0], x.shape[1]
    H = weights[1].shape[1]
    frozen: list[Tensor] | None = None
    outs: list[Tensor] = []
    final: list[State] = []
    start, b = 0, B
    for end in ends:
        still = b
        while still > 0 and lens[still - 1] <= end:
            still -= 1  # rows [still, b) end in this chunk
        chunk_x, chunk_weights = x[:b, start:end], weights  # (b, t, I)
        ragged = lens[b - 1] < end  # someone ends before the chunk does
        if ragged:
            steps = torch.arange(start, end, device=x.device)  # (t,)
            real = steps < lengths[:b].unsqueeze(1)  # (b, t)
            if mode == "LSTM":
                frozen = _freeze_weights(weights) if frozen is None else frozen
                past = (~real).unsqueeze(2).to(x.dtype)  # (b, t, 1)
                chunk_x, chunk_weights = torch.cat([chunk_x, past], dim=2), frozen  # (b, t, I+1)
        out, state = _fused_kernel(
            mode, chunk_x, state, chunk_weights, has_bias, 1, 0.0, False, False
        )
        if ragged:
            out = out.masked_fill(~real.unsqueeze(2), 0.0)  # (b, t, H)
        if still < b:
            last = (lengths[still:b] - 1 - start).view(-1, 1, 1).expand(-1, 1, H)  # (n, 1, H)
            h = out[still:b].gather(1, last).transpose(0, 1)  # (1, n, H)
            final.append((h, *(s[:, still:b] for s in state[1:])))
        outs.append(F.pad(out, (0, 0, 0, 0, 0, B - b)))  # (B, t, H)
        state = tuple(s[:, :still] for s in state)
        start, b = end, still
    out = torch.cat(outs, dim=1)  # (B, max(lens), H)
    if start < T:
        out = F.pad(out, (0, 0, 0, T - start))  # (B, T, H)
    return out, tuple(
        torch.cat([f[k] for f in reversed(final)], dim=1)[0] for k in range(len(state))
    )


def _reverse_index(lens: Tensor, T: int) -> Tensor:
    """Index that reverses each sequence within its own length and leaves padding in place.

    Args:
        lens: (B,) lengths.
        T: padded length.

    Returns:
        (B, T) long tensor ``idx`` with ``idx[b, t] = lens[b] - 1 - t`` for ``t < lens[b]``, else t.
        It is its own inverse.
    """
    t = torch.arange(T, device=lens.device)  # (T,)
    n = lens.unsqueeze(1)  # (B, 1)
    return torch.where(t < n, n - 1 - t, t)  # (B, T)


def _reverse_within(x: Tensor, index: Tensor) -> Tensor:
    """Reverse each sequence of x (B, T, E) within its length, with an index from _reverse_index."""
    return x.gather(1, index.unsqueeze(2).expand(-1, -1, x.shape[2]))  # (B, T, E)


def _explicit_direction(
    mode: _Mode,
    nonlinearity: Nonlinearity,
    x: Tensor,
    state: State,
    weights: Sequence[Tensor],
    lens: Sequence[int] | None,
    reverse: bool,
) -> tuple[Tensor, State]:
    """One layer and direction, step by step with the pure cells of :mod:`rnnkit.nn.functional`.

    The input projection of all T steps is one matmul before the loop. With lengths the state of a
    sequence is updated only at its real steps (a masked update): frozen after its end going
    forward, still the initial state before its last token going backward. The batch is sorted
    longest first, so the sequences running at step t are a prefix of the batch and the update
    computes on that prefix only.

    Args:
        mode: which cell.
        nonlinearity: for the Elman RNN.
        x: (B, T, I), sorted by length, longest first, when ``lens`` is given.
        state: initial (h,) or (h, c), each (B, H).
        weights: ``[weight_ih, weight_hh]`` plus ``[bias_ih, bias_hh]`` when the layer has biases.
        lens: the B lengths, non-increasing, in [1, T]; None when every position is real.
        reverse: run from t = T - 1 down to 0.

    Returns:
        out (B, T, H), zero at padded positions, and the final state, each (B, H).
    """
    B, T = x.shape[0], x.shape[1]
    weight_ih, weight_hh = weights[0], weights[1]
    bias_ih, bias_hh = (weights[2], weights[3]) if len(weights) == 4 else (None, None)
    if mode == "GRU":  # b_hn sits inside the reset gate's product: keep b_hh in the cell
        gates_x = F.linear(x, weight_ih, bias_ih)  # (B, T, 3H)
        bias_rec = bias_hh
    else:  # b_ih + b_hh is a plain sum: fold it into the hoisted projection
        both = bias_ih + bias_hh if bias_ih is not None and bias_hh is not None else None
        gates_x = F.linear(x, weight_ih, both)  # (B, T, G)
        bias_rec = None

    def step(g: Tensor, s: State) -> State:
        if mode == "LSTM":
            return lstm_cell(g, s[0], s[1], weight_hh, bias_rec)
        if mode == "GRU":
            return (gru_cell(g, s[0], weight_hh, bias_rec),)
        return (rnn_cell(g, s[0], weight_hh, bias_rec, nonlinearity),)

    steps = gates_x.unbind(1)  # T x (B, G); unbind, not x[:, t], keeps the backward linear in T
    running = [B] * T if lens is None else [sum(1 for n in lens if n > t) for t in range(T)]
    initial, done = state, []  # done: states of the sequences that have ended (going forward)
    rows = 0 if reverse else B  # the state holds rows [0, rows) of the batch
    state = tuple(s[:rows] for s in initial)
    hs: list[Tensor] = []
    for t in reversed(range(T)) if reverse else range(T):
        b = running[t]  # sequences with a real token at t: rows [0, b)
        if b < rows:  # going forward, rows [b, rows) have ended: keep their final state
            done.append(tuple(s[b:rows] for s in state))
            state = tuple(s[:b] for s in state)
        elif b > rows:  # going backward, rows [rows, b) start at their last token
            state = tuple(torch.cat([s, s0[rows:b]]) for s, s0 in zip(state, initial, strict=True))
        rows = b
        if b == 0:
            hs.append(x.new_zeros(B, weight_hh.shape[1]))
            continue
        state = step(steps[t][:b] if b < B else steps[t], state)
        hs.append(F.pad(state[0], (0, 0, 0, B - b)) if b < B else state[0])  # (B, H)
    if reverse:
        hs.reverse()
        final = state
    else:
        final = tuple(torch.cat([s, *(d[k] for d in reversed(done))]) for k, s in enumerate(state))
    return torch.stack(hs, dim=1), final  # (B, T, H)


class _Recurrent(torch.nn.RNNBase):
    """Shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU`."""

    _num_state: int = 1

    def __init__(
        self,
        mode: _Mode,
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

    @property
    def backend(self) -> Backend:
        """``"fused"`` (torch's kernels) or ``"explicit"`` (pure cells, step by step)."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = _check_backend(value)

    @property
    def _mode(self) -> _Mode:
        return _check_mode(self.mode)

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
        if lengths is None or lens is None or all(n == T for n in lens):
            if self.backend == "explicit":
                return self._stack(x, None, None, state)
            return _fused_kernel(
                self._mode,
                x,
                state,
                self._all_flat_weights(),
                self.bias,
                self.num_layers,
                self.dropout,
                self.training,
                self.bidirectional,
            )
        # variable lengths: sort longest first, run, restore the order
        sorted_lengths, order = torch.sort(lengths.to(x.device), descending=True, stable=True)
        unsort = torch.empty_like(order)
        unsort[order] = torch.arange(B, device=order.device)
        out, final = self._stack(
            x.index_select(0, order),  # (B, T, I)
            sorted_lengths,
            sorted(lens, reverse=True),
            tuple(s.index_select(1, order) for s in state),  # (L*D, B, H)
        )
        return out.index_select(0, unsort), tuple(s.index_select(1, unsort) for s in final)

    def _stack(
        self, x: Tensor, lengths: Tensor | None, lens: list[int] | None, state: State
    ) -> tuple[Tensor, State]:
        """All layers and directions, one at a time, with dropout between layers.

        Args:
            x: (B, T, I), sorted longest first when lengths are given.
            lengths: (B,) sorted lengths on x's device, or None (explicit backend only).
            lens: the same lengths as a list, or None.
            state: initial state, each (L*D, B, H).

        Returns:
            out (B, T, D*H) and the final state, each (L*D, B, H).
        """
        D = 2 if self.bidirectional else 1
        fused = self.backend == "fused"
        ends: list[int] = []
        reverse: Tensor | None = None
        if fused:
            assert lengths is not None and lens is not None
            ends = plan_chunks(lens, self.chunk_cost)
            reverse = _reverse_index(lengths, x.shape[1]) if D == 2 else None  # (B, T)
        finals: list[State] = []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(D):
                k = layer * D + direction
                weights = self._weights(layer, direction)
                initial = tuple(s[k] for s in state)  # (B, H)
                if not fused:
                    out, final = _explicit_direction(
                        self._mode, self._nonlinearity, x, initial, weights, lens, direction == 1
                    )
                else:
                    assert lengths is not None and lens is not None
                    flip = reverse if direction == 1 else None  # backward: reverse each sequence
                    out, final = _fused_direction(
                        self._mode,
                        weights,
                        self.bias,
                        x if flip is None else _reverse_within(x, flip),
                        lengths,
                        lens,
                        initial,
                        ends,
                    )
                    out = out if flip is None else _reverse_within(out, flip)
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


def _check_mode(mode: str) -> _Mode:
    for valid in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU"):
        if mode == valid:
            return valid
    raise ValueError(f"unknown recurrent mode {mode!r}")


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
        chunk_cost: fixed cost of one fused call in token steps, for :func:`plan_chunks`.
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
        modes: dict[str, _Mode] = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
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
        chunk_cost: fixed cost of one fused call in token steps, for :func:`plan_chunks`.
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
        chunk_cost: fixed cost of one fused call in token steps, for :func:`plan_chunks`.
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
