r"""Backpropagation through time (BPTT), spelled out in NumPy for the Elman RNN, LSTM and GRU.

This module is the place to learn what autograd does for you. Every forward pass below is plain
NumPy in float64, and every backward pass is written by hand, one line per equation, walking the
sequence from the last step to the first. The results match ``torch.autograd`` on
``torch.nn.RNN / LSTM / GRU`` with the same weights to rounding error (about 1e-15 for B=3, T=6,
I=4, H=5; the tests demand 1e-8). Nothing here is meant to be fast; use :mod:`torch` for
training. The module imports no torch at all except inside :func:`params_from_torch`.
It is longer than the usual 500 lines on purpose: three cells, each forward and backward pass
written out next to the other so the reader sees the whole of BPTT in one place.

Shapes: B batch, T time steps, I input features, H hidden units, G gates (1 for the Elman RNN, 4 for
the LSTM, 3 for the GRU). Everything is batch first: inputs ``x`` are (B, T, I), outputs (B, T, H),
states (B, H). Weights use torch's names, layout and gate order so they can be copied from a
single-layer ``torch.nn.RNN/LSTM/GRU`` (layer 0, see :func:`params_from_torch`):

    weight_ih (G*H, I)   weight_hh (G*H, H)   bias_ih (G*H,)   bias_hh (G*H,)

LSTM gates are stacked in the order i, f, g, o; GRU gates in the order r, z, n.

1. Unrolling
------------
A recurrent layer applies one cell with one set of weights W at every step,
``h_t = cell(x_t, h_{t-1}; W)``. Written out for T = 3 it is an ordinary feed-forward network,
three layers deep, whose layers happen to share their weights::

    h_0 ──cell──> h_1 ──cell──> h_2 ──cell──> h_3
           ↑             ↑             ↑
          x_1           x_2           x_3

(The equations number the steps 1 .. T with h_0 the initial state. The code loops t = 0 .. T-1
over arrays that keep the initial state in front: step t reads ``x[:, t]`` and ``h[:, t]``, which
the comments call x_t and h_{t-1}, and writes ``h[:, t + 1]``, called h_t.) A loss L that
reads the outputs h_1 .. h_T (and perhaps the final state) can be differentiated like any network:
backpropagation through this unrolled graph is *backpropagation through time*.

2. Two sources of gradient for every state
------------------------------------------
h_t is used twice: as an output (the loss reads it directly) and as the input of the next step.
So its gradient is the sum of both paths::

    dL/dh_t = ∂L/∂h_t (direct, ``d_outputs[:, t]``)  +  dL/dh_{t+1} · ∂h_{t+1}/∂h_t (carried)

The backward pass keeps one running variable, ``dh``, the carried part, initialised with the
gradient on the final state, and walks t = T-1 .. 0: add the direct gradient of this step, push the
sum through the cell's equations, and hand ``dh`` for h_{t-1} to the previous step. An LSTM carries
a second variable ``dc`` for the cell state in the same way.

3. Shared weights: a sum of per-step gradients
----------------------------------------------
The same W_hh is used at every step, so by the multivariate chain rule its gradient is the sum of
the gradients each step would give it if it had its own copy::

    dL/dW_hh = Σ_t (dL/da_t)^T h_{t-1}        (a_t = pre-activation at step t)

That is why the backward loops below *accumulate* (``+=``) into ``weight_ih``, ``weight_hh`` and
the biases, while ``x`` gets one gradient per step and the initial state receives whatever ``dh``
is left after step 0.

4. The product of Jacobians: vanishing and exploding gradients
--------------------------------------------------------------
For the Elman RNN, h_t = tanh(a_t) with a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, the Jacobian of
one step is ``∂h_t/∂h_{t-1} = diag(1 - h_t^2) W_hh``. The gradient that reaches an early state
from a loss at step T is the product of T - t of them::

    dL/dh_t = dL/dh_T · Π_{k=t+1..T} diag(1 - h_k^2) W_hh

Each factor has norm at most ||W_hh|| (tanh' ≤ 1), so if the largest singular value of W_hh is
below 1 the product shrinks geometrically with the distance T - t and the early steps learn
nothing from late losses (*vanishing*); if it is well above 1 and the units are not saturated the
product can grow geometrically (*exploding*; the usual cure is gradient-norm clipping). The tests
build this product explicitly and check it equals the ``dh0`` of :func:`rnn_backward`.

5. Why the LSTM helps: an additive path through time
----------------------------------------------------
The LSTM's cell state is updated additively, ``c_t = f_t * c_{t-1} + i_t * g_t``, so along the
cell path the one-step Jacobian is just ``diag(f_t)``: no weight matrix and no squashing
derivative. The gradient that flows from c_T back to c_t along it is::

    dL/dc_t ⊇ dL/dc_T * Π_{k=t+1..T} f_k

which stays close to dL/dc_T as long as the forget gates stay close to 1: the network can *learn*
to keep a gradient alive over many steps (the "constant error carousel"). The GRU has the same
idea in ``h_t = (1 - z_t) * n_t + z_t * h_{t-1}``, whose direct path has Jacobian ``diag(z_t)``.
The tests check the LSTM identity exactly by switching off the other paths (W_hh = 0).

Reading order: :func:`rnn_forward` and :func:`rnn_backward` first (the whole idea in ten lines),
then :func:`lstm_backward` and :func:`gru_backward`, which only add gate algebra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import torch

__all__ = [
    "PARAM_NAMES",
    "Array",
    "GRUCache",
    "LSTMCache",
    "Params",
    "RNNCache",
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_forward",
    "params_from_torch",
    "rnn_backward",
    "rnn_forward",
]

Array = NDArray[np.float64]
"""A float64 NumPy array."""

Params = dict[str, Array]
"""Weights keyed by torch's names: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``
(G*H,), ``bias_hh`` (G*H,)."""

PARAM_NAMES: tuple[str, ...] = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
"""The four parameter names every cell uses, in torch's order."""

Nonlinearity = Literal["tanh", "relu"]


# --------------------------------------------------------------------------------------------
# Small helpers: float64 conversion, shape checks, the logistic function.
# --------------------------------------------------------------------------------------------


def _sigmoid(a: Array) -> Array:
    """Logistic function σ(a) = 1 / (1 + exp(-a)), computed without overflow for large |a|."""
    e = np.exp(-np.abs(a))
    out: Array = np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return out


def _as_float64(value: ArrayLike, name: str) -> Array:
    """Convert to a float64 array, failing with a ValueError that names the argument."""
    try:
        arr: Array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be convertible to a float64 array: {err}") from err
    return arr


def _check_params(params: Params, gates: int, cell: str) -> tuple[Params, int, int]:
    """Validate ``params`` for a cell with ``gates`` gates; return (float64 params, I, H)."""
    missing = [name for name in PARAM_NAMES if name not in params]
    if missing:
        raise ValueError(f"{cell} params are missing {missing}; expected keys {list(PARAM_NAMES)}")
    p = {name: _as_float64(params[name], name) for name in PARAM_NAMES}
    w_ih, w_hh = p["weight_ih"], p["weight_hh"]
    if w_hh.ndim != 2 or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ValueError(f"{cell} weight_hh must have shape ({gates}*H, H), got {w_hh.shape}")
    H = w_hh.shape[1]
    if w_ih.ndim != 2 or w_ih.shape[0] != gates * H:
        raise ValueError(
            f"{cell} weight_ih must have shape ({gates}*H, I) = ({gates * H}, I), got {w_ih.shape}"
        )
    for name in ("bias_ih", "bias_hh"):
        if p[name].shape != (gates * H,):
            raise ValueError(
                f"{cell} {name} must have shape ({gates}*H,) = ({gates * H},), got {p[name].shape}"
            )
    return p, w_ih.shape[1], H


def _check_x(x: ArrayLike, input_size: int) -> Array:
    """Validate the input sequence: float64 of shape (B, T, I) with T >= 1."""
    arr = _as_float64(x, "x")
    if arr.ndim != 3:
        raise ValueError(f"x must have shape (B, T, I), got {arr.ndim} dimensions {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError("x must have at least one time step (T >= 1), got T = 0")
    if arr.shape[2] != input_size:
        raise ValueError(
            f"x has {arr.shape[2]} input features but weight_ih expects I = {input_size}"
        )
    return arr


def _check_state(state: ArrayLike | None, B: int, H: int, name: str) -> Array:
    """Validate an initial or upstream state of shape (B, H); None means zeros."""
    if state is None:
        return np.zeros((B, H), dtype=np.float64)
    arr = _as_float64(state, name)
    if arr.shape != (B, H):
        raise ValueError(f"{name} must have shape (B, H) = ({B}, {H}), got {arr.shape}")
    return arr


def _check_d_outputs(d_outputs: ArrayLike, B: int, T: int, H: int) -> Array:
    """Validate the upstream gradient on the outputs: (B, T, H)."""
    arr = _as_float64(d_outputs, "d_outputs")
    if arr.shape != (B, T, H):
        raise ValueError(f"d_outputs must have shape (B, T, H) = ({B}, {T}, {H}), got {arr.shape}")
    return arr


def _check_cache_matches(x: Array, h: Array, input_size: int, hidden_size: int, cell: str) -> None:
    """Check that a forward cache was made with weights of these sizes (I, H)."""
    if x.shape[2] != input_size or h.shape[2] != hidden_size:
        raise ValueError(
            f"{cell} cache has I = {x.shape[2]}, H = {h.shape[2]} but params have "
            f"I = {input_size}, H = {hidden_size}; pass the params used in the forward pass"
        )


def _zero_grads(p: Params) -> dict[str, Array]:
    """Zero accumulators for dL/dW, one per parameter, with the parameter's shape."""
    return {name: np.zeros_like(p[name]) for name in PARAM_NAMES}


# --------------------------------------------------------------------------------------------
# Elman RNN:  h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RNNCache:
    """What :func:`rnn_backward` needs from :func:`rnn_forward`.

    Attributes:
        x: inputs, (B, T, I).
        h: states, (B, T+1, H); ``h[:, 0]`` is the initial state and ``h[:, t+1]`` the output of
            step t.
        nonlinearity: ``"tanh"`` or ``"relu"``.
    """

    x: Array
    h: Array
    nonlinearity: Nonlinearity


def rnn_forward(
    params: Params,
    x: ArrayLike,
    h0: ArrayLike | None = None,
    nonlinearity: Nonlinearity = "tanh",
) -> tuple[Array, Array, RNNCache]:
    """Run an Elman RNN over a sequence, as ``torch.nn.RNN(batch_first=True)`` does.

    For t = 0 .. T-1::

        a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh      (pre-activation)
        h_t = tanh(a_t)          (or relu(a_t))

    Args:
        params: ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih`` (H,), ``bias_hh`` (H,).
        x: inputs, (B, T, I).
        h0: initial state, (B, H); zeros when None.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.

    Returns:
        ``(outputs, h_n, cache)``: outputs (B, T, H), the final state h_n (B, H) (torch returns it
        as (1, B, H)), and the cache for :func:`rnn_backward`.

    Raises:
        ValueError: on a missing weight, a shape mismatch or an unknown nonlinearity.
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    p, input_size, H = _check_params(params, gates=1, cell="RNN")
    xs = _check_x(x, input_size)  # (B, T, I)
    B, T, _ = xs.shape
    h = np.empty((B, T + 1, H), dtype=np.float64)  # (B, T+1, H)
    h[:, 0] = _check_state(h0, B, H, "h0")
    # The input projection of every step at once: it does not depend on the recurrence.
    x_proj = xs @ p["weight_ih"].T + p["bias_ih"]  # (B, T, H)
    for t in range(T):
        a = x_proj[:, t] + h[:, t] @ p["weight_hh"].T + p["bias_hh"]  # (B, H)
        h[:, t + 1] = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)
    cache = RNNCache(x=xs, h=h, nonlinearity=nonlinearity)
    return h[:, 1:].copy(), h[:, T].copy(), cache


def rnn_backward(
    params: Params,
    cache: RNNCache,
    d_outputs: ArrayLike,
    d_final_state: ArrayLike | None = None,
) -> dict[str, Array]:
    """Backpropagate through time by hand for the Elman RNN.

    Given dL/d(outputs) and dL/dh_n, returns every gradient autograd would compute. The loop walks
    t = T-1 .. 0 carrying ``dh`` = dL/dh_t; with ``da`` = dL/da_t::

        dh      = d_outputs[:, t] + dh                      (direct + carried, section 2)
        da      = dh * (1 - h_t^2)                          (tanh'(a_t) = 1 - h_t^2)
        dW_ih  += da^T x_t,   dW_hh += da^T h_{t-1}         (shared weights: sum over t)
        db_ih  += Σ_B da,     db_hh += Σ_B da
        dx_t    = da W_ih
        dh      = da W_hh                                   (dL/dh_{t-1}, handed back)

    Args:
        params: the weights used in :func:`rnn_forward`.
        cache: from :func:`rnn_forward`.
        d_outputs: dL/d(outputs), (B, T, H).
        d_final_state: dL/dh_n on the final state, (B, H); zeros when None.

    Returns:
        ``{"weight_ih": (H, I), "weight_hh": (H, H), "bias_ih": (H,), "bias_hh": (H,),
        "x": (B, T, I), "h0": (B, H)}``: dL/d of each (``h0`` also when the forward used zeros).

    Raises:
        ValueError: when ``params`` do not match the cache or an upstream gradient has the wrong
            shape.
    """
    p, input_size, H = _check_params(params, gates=1, cell="RNN")
    x, h = cache.x, cache.h  # (B, T, I), (B, T+1, H)
    _check_cache_matches(x, h, input_size, H, "RNN")
    B, T, _ = x.shape
    dy = _check_d_outputs(d_outputs, B, T, H)  # (B, T, H)
    dh = _check_state(d_final_state, B, H, "d_final_state").copy()  # (B, H), dL/dh_T carried so far
    grads = _zero_grads(p)
    dx = np.zeros_like(x)  # (B, T, I)
    for t in reversed(range(T)):
        h_t, h_prev = h[:, t + 1], h[:, t]  # (B, H), (B, H)
        # dL/dh_t = ∂L/∂h_t (the loss reads h_t) + dL/dh_{t+1} ∂h_{t+1}/∂h_t (carried).
        dh = dy[:, t] + dh  # (B, H)
        # dL/da_t = dL/dh_t * f'(a_t): tanh' = 1 - h_t^2, relu' = [a_t > 0] = [h_t > 0].
        tanh = cache.nonlinearity == "tanh"
        da = dh * (1.0 - h_t**2) if tanh else dh * (h_t > 0.0)  # (B, H)
        # a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, so each weight gets da^T (its input):
        grads["weight_ih"] += da.T @ x[:, t]  # dL/dW_ih += Σ_B da_t x_t^T, (H, I)
        grads["weight_hh"] += da.T @ h_prev  # dL/dW_hh += Σ_B da_t h_{t-1}^T, (H, H)
        grads["bias_ih"] += da.sum(axis=0)  # dL/db_ih += Σ_B da_t, (H,)
        grads["bias_hh"] += da.sum(axis=0)  # dL/db_hh += Σ_B da_t, (H,)
        dx[:, t] = da @ p["weight_ih"]  # dL/dx_t = W_ih^T da_t, (B, I)
        dh = da @ p["weight_hh"]  # dL/dh_{t-1} = W_hh^T (dL/dh_t * (1 - h_t^2)), (B, H)
    return {**grads, "x": dx, "h0": dh}


# --------------------------------------------------------------------------------------------
# LSTM:  c_t = f_t * c_{t-1} + i_t * g_t,   h_t = o_t * tanh(c_t)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LSTMCache:
    """What :func:`lstm_backward` needs from :func:`lstm_forward`.

    Attributes:
        x: inputs, (B, T, I).
        h: hidden states, (B, T+1, H); ``h[:, 0]`` is h0.
        c: cell states, (B, T+1, H); ``c[:, 0]`` is c0.
        i, f, g, o: gate activations of every step, each (B, T, H).
    """

    x: Array
    h: Array
    c: Array
    i: Array
    f: Array
    g: Array
    o: Array


def lstm_forward(
    params: Params,
    x: ArrayLike,
    h0: ArrayLike | None = None,
    c0: ArrayLike | None = None,
) -> tuple[Array, tuple[Array, Array], LSTMCache]:
    """Run an LSTM over a sequence, as ``torch.nn.LSTM(batch_first=True)`` does.

    For t = 0 .. T-1, with σ the logistic function and gates stacked i, f, g, o::

        [a_i, a_f, a_g, a_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
        i_t = σ(a_i)    f_t = σ(a_f)    g_t = tanh(a_g)    o_t = σ(a_o)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)

    Args:
        params: ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih`` (4H,), ``bias_hh`` (4H,).
        x: inputs, (B, T, I).
        h0: initial hidden state, (B, H); zeros when None.
        c0: initial cell state, (B, H); zeros when None.

    Returns:
        ``(outputs, (h_n, c_n), cache)``: outputs (B, T, H), final states (B, H) each, and the cache
        for :func:`lstm_backward`.

    Raises:
        ValueError: on a missing weight or a shape mismatch.
    """
    p, input_size, H = _check_params(params, gates=4, cell="LSTM")
    xs = _check_x(x, input_size)  # (B, T, I)
    B, T, _ = xs.shape
    h = np.empty((B, T + 1, H), dtype=np.float64)  # (B, T+1, H)
    c = np.empty((B, T + 1, H), dtype=np.float64)  # (B, T+1, H)
    h[:, 0] = _check_state(h0, B, H, "h0")
    c[:, 0] = _check_state(c0, B, H, "c0")
    i, f, g, o = (np.empty((B, T, H), dtype=np.float64) for _ in range(4))  # (B, T, H) each
    x_proj = xs @ p["weight_ih"].T + p["bias_ih"]  # (B, T, 4H)
    for t in range(T):
        a = x_proj[:, t] + h[:, t] @ p["weight_hh"].T + p["bias_hh"]  # (B, 4H)
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)  # (B, H) each
        i[:, t], f[:, t], g[:, t], o[:, t] = (
            _sigmoid(a_i),
            _sigmoid(a_f),
            np.tanh(a_g),
            _sigmoid(a_o),
        )
        c[:, t + 1] = f[:, t] * c[:, t] + i[:, t] * g[:, t]  # (B, H)
        h[:, t + 1] = o[:, t] * np.tanh(c[:, t + 1])  # (B, H)
    cache = LSTMCache(x=xs, h=h, c=c, i=i, f=f, g=g, o=o)
    return h[:, 1:].copy(), (h[:, T].copy(), c[:, T].copy()), cache


def lstm_backward(
    params: Params,
    cache: LSTMCache,
    d_outputs: ArrayLike,
    d_final_state: tuple[ArrayLike | None, ArrayLike | None] | None = None,
) -> dict[str, Array]:
    """Backpropagate through time by hand for the LSTM.

    Two gradients are carried back through time: ``dh`` = dL/dh_t and ``dc`` = dL/dc_t. At each
    step, t = T-1 .. 0 (⊙ elementwise, tc = tanh(c_t))::

        dh   = d_outputs[:, t] + dh                         (direct + carried)
        do   = dh ⊙ tc                                      (h_t = o_t ⊙ tanh(c_t))
        dc   = dc + dh ⊙ o_t ⊙ (1 - tc^2)                   (carried + through h_t)
        di   = dc ⊙ g_t,   dg = dc ⊙ i_t,   df = dc ⊙ c_{t-1}
        dc   = dc ⊙ f_t                                     (dL/dc_{t-1}: the additive path)
        da   = [di ⊙ i(1-i), df ⊙ f(1-f), dg ⊙ (1-g^2), do ⊙ o(1-o)]
        then, as for the Elman RNN, dW += da^T (input), dx_t = da W_ih, dh = da W_hh.

    Args:
        params: the weights used in :func:`lstm_forward`.
        cache: from :func:`lstm_forward`.
        d_outputs: dL/d(outputs), (B, T, H).
        d_final_state: ``(dL/dh_n, dL/dc_n)``, each (B, H) or None for zeros; None for both zero.

    Returns:
        ``{"weight_ih": (4H, I), "weight_hh": (4H, H), "bias_ih": (4H,), "bias_hh": (4H,),
        "x": (B, T, I), "h0": (B, H), "c0": (B, H)}``.

    Raises:
        ValueError: when ``params`` do not match the cache or an upstream gradient has the wrong
            shape.
    """
    p, input_size, H = _check_params(params, gates=4, cell="LSTM")
    x, h, c = cache.x, cache.h, cache.c  # (B, T, I), (B, T+1, H), (B, T+1, H)
    _check_cache_matches(x, h, input_size, H, "LSTM")
    B, T, _ = x.shape
    dy = _check_d_outputs(d_outputs, B, T, H)  # (B, T, H)
    if d_final_state is not None and len(d_final_state) != 2:
        raise ValueError(
            f"d_final_state must be a pair (dL/dh_n, dL/dc_n), got {len(d_final_state)} items"
        )
    d_h_n, d_c_n = (None, None) if d_final_state is None else d_final_state
    dh = _check_state(d_h_n, B, H, "d_final_state[0] (dL/dh_n)").copy()  # (B, H), dL/dh_T
    dc = _check_state(d_c_n, B, H, "d_final_state[1] (dL/dc_n)").copy()  # (B, H), dL/dc_T
    grads = _zero_grads(p)
    dx = np.zeros_like(x)  # (B, T, I)
    for t in reversed(range(T)):
        i, f, g, o = cache.i[:, t], cache.f[:, t], cache.g[:, t], cache.o[:, t]  # (B, H) each
        c_prev, h_prev = c[:, t], h[:, t]  # (B, H), (B, H)
        tc = np.tanh(c[:, t + 1])  # (B, H), tanh(c_t)
        dh = dy[:, t] + dh  # dL/dh_t = direct + carried, (B, H)
        do = dh * tc  # h_t = o_t tanh(c_t)  =>  dL/do_t = dL/dh_t tanh(c_t), (B, H)
        # c_t reaches the loss through h_t and through c_{t+1} (dc carried so far):
        dc = dc + dh * o * (1.0 - tc**2)  # dL/dc_t = dc + dL/dh_t o_t (1 - tanh^2(c_t)), (B, H)
        # c_t = f_t c_{t-1} + i_t g_t:
        di = dc * g  # dL/di_t = dL/dc_t g_t, (B, H)
        dg = dc * i  # dL/dg_t = dL/dc_t i_t, (B, H)
        df = dc * c_prev  # dL/df_t = dL/dc_t c_{t-1}, (B, H)
        dc = dc * f  # dL/dc_{t-1} (cell path) = dL/dc_t f_t: no matrix, no squashing, (B, H)
        # Through the gate nonlinearities: σ' = σ(1 - σ), tanh' = 1 - tanh^2.
        da = np.concatenate(
            [di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g**2), do * o * (1.0 - o)],
            axis=1,
        )  # (B, 4H), dL/d[a_i, a_f, a_g, a_o]
        grads["weight_ih"] += da.T @ x[:, t]  # dL/dW_ih += Σ_B da_t x_t^T, (4H, I)
        grads["weight_hh"] += da.T @ h_prev  # dL/dW_hh += Σ_B da_t h_{t-1}^T, (4H, H)
        grads["bias_ih"] += da.sum(axis=0)  # (4H,)
        grads["bias_hh"] += da.sum(axis=0)  # (4H,)
        dx[:, t] = da @ p["weight_ih"]  # dL/dx_t = W_ih^T da_t, (B, I)
        dh = da @ p["weight_hh"]  # dL/dh_{t-1} = W_hh^T da_t (gate path), (B, H)
    return {**grads, "x": dx, "h0": dh, "c0": dc}


# --------------------------------------------------------------------------------------------
# GRU:  h_t = (1 - z_t) * n_t + z_t * h_{t-1}
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GRUCache:
    """What :func:`gru_backward` needs from :func:`gru_forward`.

    Attributes:
        x: inputs, (B, T, I).
        h: states, (B, T+1, H); ``h[:, 0]`` is h0.
        r, z, n: reset gate, update gate and candidate of every step, each (B, T, H).
        hn: the hidden part of the candidate's pre-activation, W_hn h_{t-1} + b_hn, (B, T, H);
            the reset gate multiplies it, so its gradient needs it.
    """

    x: Array
    h: Array
    r: Array
    z: Array
    n: Array
    hn: Array


def gru_forward(
    params: Params,
    x: ArrayLike,
    h0: ArrayLike | None = None,
) -> tuple[Array, Array, GRUCache]:
    """Run a GRU over a sequence, as ``torch.nn.GRU(batch_first=True)`` does.

    For t = 0 .. T-1, with gates stacked r, z, n (torch's convention: the reset gate multiplies the
    *projected* previous state, bias included)::

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    Args:
        params: ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` (3H,), ``bias_hh`` (3H,).
        x: inputs, (B, T, I).
        h0: initial state, (B, H); zeros when None.

    Returns:
        ``(outputs, h_n, cache)``: outputs (B, T, H), the final state (B, H), and the cache for
        :func:`gru_backward`.

    Raises:
        ValueError: on a missing weight or a shape mismatch.
    """
    p, input_size, H = _check_params(params, gates=3, cell="GRU")
    xs = _check_x(x, input_size)  # (B, T, I)
    B, T, _ = xs.shape
    h = np.empty((B, T + 1, H), dtype=np.float64)  # (B, T+1, H)
    h[:, 0] = _check_state(h0, B, H, "h0")
    r, z, n, hn = (np.empty((B, T, H), dtype=np.float64) for _ in range(4))  # (B, T, H) each
    x_proj = xs @ p["weight_ih"].T + p["bias_ih"]  # (B, T, 3H)
    for t in range(T):
        xr, xz, xn = np.split(x_proj[:, t], 3, axis=1)  # (B, H) each
        hr, hz, hn[:, t] = np.split(h[:, t] @ p["weight_hh"].T + p["bias_hh"], 3, axis=1)
        r[:, t] = _sigmoid(xr + hr)  # (B, H)
        z[:, t] = _sigmoid(xz + hz)  # (B, H)
        n[:, t] = np.tanh(xn + r[:, t] * hn[:, t])  # (B, H)
        h[:, t + 1] = (1.0 - z[:, t]) * n[:, t] + z[:, t] * h[:, t]  # (B, H)
    cache = GRUCache(x=xs, h=h, r=r, z=z, n=n, hn=hn)
    return h[:, 1:].copy(), h[:, T].copy(), cache


def gru_backward(
    params: Params,
    cache: GRUCache,
    d_outputs: ArrayLike,
    d_final_state: ArrayLike | None = None,
) -> dict[str, Array]:
    """Backpropagate through time by hand for the GRU.

    At each step t = T-1 .. 0, with ``dh`` = dL/dh_t and hn = W_hn h_{t-1} + b_hn::

        dh     = d_outputs[:, t] + dh                        (direct + carried)
        dn     = dh ⊙ (1 - z_t),   dz = dh ⊙ (h_{t-1} - n_t)
        da_n   = dn ⊙ (1 - n_t^2)                            (n_t = tanh(a_n))
        dr     = da_n ⊙ hn,        da_r = dr ⊙ r(1-r),   da_z = dz ⊙ z(1-z)
        input side:   d[W_ih x + b_ih]  = [da_r, da_z, da_n]
        hidden side:  d[W_hh h + b_hh]  = [da_r, da_z, da_n ⊙ r_t]
        dh_{t-1} = dh ⊙ z_t  +  (hidden side) W_hh           (direct path + gate path)

    Args:
        params: the weights used in :func:`gru_forward`.
        cache: from :func:`gru_forward`.
        d_outputs: dL/d(outputs), (B, T, H).
        d_final_state: dL/dh_n on the final state, (B, H); zeros when None.

    Returns:
        ``{"weight_ih": (3H, I), "weight_hh": (3H, H), "bias_ih": (3H,), "bias_hh": (3H,),
        "x": (B, T, I), "h0": (B, H)}``.

    Raises:
        ValueError: when ``params`` do not match the cache or an upstream gradient has the wrong
            shape.
    """
    p, input_size, H = _check_params(params, gates=3, cell="GRU")
    x, h = cache.x, cache.h  # (B, T, I), (B, T+1, H)
    _check_cache_matches(x, h, input_size, H, "GRU")
    B, T, _ = x.shape
    dy = _check_d_outputs(d_outputs, B, T, H)  # (B, T, H)
    dh = _check_state(d_final_state, B, H, "d_final_state").copy()  # (B, H), dL/dh_T
    grads = _zero_grads(p)
    dx = np.zeros_like(x)  # (B, T, I)
    for t in reversed(range(T)):
        r, z, n, hn = cache.r[:, t], cache.z[:, t], cache.n[:, t], cache.hn[:, t]  # (B, H) each
        h_prev = h[:, t]  # (B, H)
        dh = dy[:, t] + dh  # dL/dh_t = direct + carried, (B, H)
        # h_t = (1 - z_t) n_t + z_t h_{t-1}:
        dn = dh * (1.0 - z)  # dL/dn_t = dL/dh_t (1 - z_t), (B, H)
        dz = dh * (h_prev - n)  # dL/dz_t = dL/dh_t (h_{t-1} - n_t), (B, H)
        dh_direct = dh * z  # dL/dh_{t-1} through the update path = dL/dh_t z_t, (B, H)
        # n_t = tanh(a_n),  a_n = W_in x_t + b_in + r_t hn_t:
        da_n = dn * (1.0 - n**2)  # dL/da_n = dL/dn_t (1 - n_t^2), (B, H)
        dr = da_n * hn  # dL/dr_t = dL/da_n hn_t, (B, H)
        # r_t = σ(a_r), z_t = σ(a_z):
        da_r = dr * r * (1.0 - r)  # (B, H)
        da_z = dz * z * (1.0 - z)  # (B, H)
        # The input and hidden projections see different gradients on the n block only,
        # because the reset gate scales the hidden one: d(hn_t) = dL/da_n r_t.
        da_x = np.concatenate([da_r, da_z, da_n], axis=1)  # dL/d(W_ih x_t + b_ih), (B, 3H)
        da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)  # dL/d(W_hh h_{t-1} + b_hh), (B, 3H)
        grads["weight_ih"] += da_x.T @ x[:, t]  # dL/dW_ih += Σ_B da_x x_t^T, (3H, I)
        grads["weight_hh"] += da_h.T @ h_prev  # dL/dW_hh += Σ_B da_h h_{t-1}^T, (3H, H)
        grads["bias_ih"] += da_x.sum(axis=0)  # (3H,)
        grads["bias_hh"] += da_h.sum(axis=0)  # (3H,)
        dx[:, t] = da_x @ p["weight_ih"]  # dL/dx_t = W_ih^T da_x, (B, I)
        dh = dh_direct + da_h @ p["weight_hh"]  # dL/dh_{t-1} = dh z_t + W_hh^T da_h, (B, H)
    return {**grads, "x": dx, "h0": dh}


# --------------------------------------------------------------------------------------------
# Copying weights from torch
# --------------------------------------------------------------------------------------------


def params_from_torch(module: torch.nn.Module) -> Params:
    """Copy a torch recurrent layer's layer-0 weights into a float64 NumPy :data:`Params` dict.

    Works with ``torch.nn.RNN/LSTM/GRU`` (keys ``weight_ih_l0`` ...), with the cells
    ``torch.nn.RNNCell/LSTMCell/GRUCell`` (keys ``weight_ih`` ...), and with any module holding
    exactly one such parameter set under a prefix (e.g. ``rnn.weight_ih_l0``). Only the forward
    direction of layer 0 is read; a missing bias (``bias=False``) is returned as zeros. Torch is
    imported here only.

    Args:
        module: the torch module to read.

    Returns:
        ``{"weight_ih": (G*H, I), "weight_hh": (G*H, H), "bias_ih": (G*H,), "bias_hh": (G*H,)}``.

    Raises:
        ValueError: when the module has no such weights, several candidates, or an LSTM
            projection (``proj_size > 0``), which these references do not implement.
    """
    import torch  # lazily: the rest of this module is pure NumPy

    state = module.state_dict()
    if any("weight_hr" in key for key in state):
        raise ValueError("LSTM with proj_size > 0 (weight_hr_l0) is not supported by the reference")

    def find(name: str) -> torch.Tensor | None:
        hits = [
            key
            for key in state
            for suffix in (f"{name}_l0", name)
            if key == suffix or key.endswith(f".{suffix}")
        ]
        if len(hits) > 1:
            raise ValueError(f"module has several candidates for {name}: {sorted(hits)}")
        return state[hits[0]] if hits else None

    params: Params = {}
    for name in ("weight_ih", "weight_hh"):
        weight = find(name)
        if weight is None:
            raise ValueError(f"module {type(module).__name__} has no {name}_l0 or {name} parameter")
        params[name] = weight.detach().to(device="cpu", dtype=torch.float64).numpy().copy()
    for name in ("bias_ih", "bias_hh"):
        bias = find(name)
        params[name] = (
            np.zeros(params["weight_hh"].shape[0], dtype=np.float64)
            if bias is None
            else bias.detach().to(device="cpu", dtype=torch.float64).numpy().copy()
        )
    return params
