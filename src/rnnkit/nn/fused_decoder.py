r"""The Bahdanau LSTM decoder's whole teacher-forced loop as one autograd function.

What it computes is :func:`rnnkit.nn.decoder.bahdanau_step` (the reference, in the lecture's
letters) for one LSTM layer, over all T target positions, up to the output layer::

    e_{t,i} = v^T tanh(W s_{t-1} + p_i)        p_i = U h_i + b, projected once per source
    a_t     = softmax(e_t)  over the real source positions               (B, S)
    c_t     = sum_i a_{t,i} h_i                                          (B, De)
    gates   = gx_t + W_rec [c_t; s_{t-1}]      gx_t = W_ih[:, :E] x_t + b_ih + b_hh, hoisted
    i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of the gates' quarters
    m_t = f m_{t-1} + i g,    s_t = o tanh(m_t)                           (B, H)

(``m`` is the LSTM's memory cell; ``W_rec = [W_ih[:, E:] | W_hh]``.) It returns s_t, c_t and a_t
for every t; the output layer runs on all steps at once afterwards. Why it is hand-written: the
time goes, once the projections are hoisted, to what autograd does at every step of the loop, and
no library fuses a Bahdanau decoder on a CPU. What this function does instead:

- **No autograd inside the loop.** The forward writes into buffers allocated once per call (the
  states, contexts, weights and gate activations of all T steps); the backward is the loop run
  backwards by hand, each step's gradients written into buffers too.
- **Weight gradients once per call, not once per step** (as cuDNN does): the backward keeps the
  gate gradients dG_t and the query gradients of every step and multiplies them by the saved
  inputs in one large matmul each (``dW_rec = dG^T [c; s_prev]``, T*B rows instead of B), and the
  gradient of the encoder states through the contexts is one batched matmul
  ``dh = A^T dC`` (B, S, T) x (B, T, De) instead of a (B, S, De) outer product added per step.
- **The attention step and the cell as native kernels** (:mod:`rnnkit.nn.native`, on CPU in
  float32 and float64 wherever the kernels could be built): each step's score, softmax and
  context in one pass per sentence over its keys and states, the backward likewise (``tanh``
  recomputed, nothing stored per step but ``W s_{t-1}``), padded positions skipped; the cell's
  nonlinearities and memory update in one pass each way.
- **Otherwise PyTorch operators, with tanh through the logistic function**:
  ``tanh(x) = 2 sigmoid(2x) - 1``, PyTorch's float32 sigmoid being several times faster than its
  tanh on CPU. The score's hidden layer is kept per step as ``z = sigmoid(2 p_i + 2 W s_{t-1})``
  (one (B, S, Ha) tensor each: one (T, B, S, Ha) buffer would be a fresh ``mmap`` whose every
  page faults on first write), the score is ``2 v^T z`` (``v^T tanh(.)`` plus the constant
  ``sum(v)``, which the softmax cancels) and ``1 - tanh^2 = 4 z (1 - z)``. The passes over
  (B, S, Ha) per step: forward an add, a sigmoid and a matrix-vector product; backward
  ``y = z (1 - z)``, batched products of the (B, 1, S) rows ``de`` and ``2 de`` with ``z`` and
  ``y`` (the ``v`` gradient, the query's gradient) and the accumulation of ``2 de y`` into the
  keys' gradient (times ``v`` once, after the loop); the weights' gradient as
  ``dc (B, 1, De) x h^T`` (not ``h x dc``, ten times slower here).
- **oneDNN for the per-step products** (:func:`step_linear`).

``tests/nn/test_fused_decoder.py`` checks both ways against the reference step (outputs and
gradients within 1e-5) and with ``torch.autograd.gradcheck``.

Shapes: B batch, T target steps, S source positions, De encoder state size, Ha attention size,
H decoder size, G = 4H gate rows (PyTorch's order i, f, g, o).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from rnnkit.nn import native

Linear = Callable[[Tensor, Tensor | None], Tensor]
"""``(x, add) -> x W^T + add``, x (B, K), add (B, N) or None, for one fixed weight W (N, K)."""

use_onednn: bool = True
"""Multiply the per-step matrices with oneDNN's prepacked weights where they apply (see
:func:`step_linear`); False: ``torch.addmm`` always (for comparison)."""


def step_linear(weight: Tensor, rows: int) -> Linear:
    """``x W^T + add`` for the loop's many (rows, K) x (K, N) products with one weight W (N, K).

    With float32 on a CPU whose PyTorch has oneDNN, the weight is reordered once into oneDNN's
    blocked layout for ``rows``-row inputs (``torch.ops.mkldnn._reorder_linear_weight``) and each
    product is oneDNN's matmul (``torch.ops.mkldnn._linear_pointwise``): with B = 64 rows these
    small products run markedly faster than MKL's ``addmm`` (``benchmarks/translation.py``
    measures it). Otherwise (another device or dtype, oneDNN missing, :data:`use_onednn` False)
    it is ``torch.addmm``.
    """
    mkldnn = getattr(torch.ops, "mkldnn", None)
    if (
        use_onednn
        and weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
        and mkldnn is not None
        and hasattr(mkldnn, "_linear_pointwise")
        and hasattr(mkldnn, "_reorder_linear_weight")
    ):
        packed = mkldnn._reorder_linear_weight(weight.detach().contiguous(), rows)

        def onednn(x: Tensor, add: Tensor | None) -> Tensor:
            y: Tensor = mkldnn._linear_pointwise(x, packed, None, "none", [], "")
            return y if add is None else y.add_(add)

        return onednn
    weight_t = weight.detach().t()

    def blas(x: Tensor, add: Tensor | None) -> Tensor:
        return torch.mm(x, weight_t) if add is None else torch.addmm(add, x, weight_t)

    return blas


def bahdanau_lstm_loop(
    gates_x: Tensor,
    h0: Tensor,
    m0: Tensor,
    keys: Tensor,
    states: Tensor,
    mask: Tensor,
    w_query: Tensor,
    v: Tensor,
    w_rec: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the Bahdanau LSTM decoder over all T steps (equations in the module docstring).

    Args:
        gates_x: (B, T, G), ``W_ih[:, :E] x_t + b_ih + b_hh`` for every step.
        h0: (B, H), s_0. m0: (B, H), the LSTM's initial memory cell.
        keys: (B, S, Ha), the projected keys ``U h_i + b``.
        states: (B, S, De), the encoder states h_i (the values).
        mask: (B, S) bool, True at real source positions (each row has one).
        w_query: (Ha, H), W. v: (1, Ha) or (Ha,), the score's v.
        w_rec: (G, De + H), ``[W_ih[:, E:] | W_hh]``.

    Returns:
        s (B, T, H), c (B, T, De) and a (B, T, S) of every step; differentiable in every input
        but ``mask``.
    """
    out: tuple[Tensor, Tensor, Tensor] = _BahdanauLSTMLoop.apply(  # type: ignore[no-untyped-call]
        gates_x, h0, m0, keys, states, mask, w_query, v, w_rec
    )
    return out


class _BahdanauLSTMLoop(torch.autograd.Function):
    """Forward and hand-written backward of :func:`bahdanau_lstm_loop`."""

    @staticmethod
    def forward(
        ctx: Any,
        gates_x: Tensor,
        h0: Tensor,
        m0: Tensor,
        keys: Tensor,
        states: Tensor,
        mask: Tensor,
        w_query: Tensor,
        v: Tensor,
        w_rec: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        B, T, G = gates_x.shape
        H, S, Ha, De = G // 4, keys.shape[1], keys.shape[2], states.shape[2]
        new = gates_x.new_empty
        fast = native.attention_applies(keys)  # the attention in one pass (native.py)
        inputs = new(T, B, De + H)  # [c_t; s_{t-1}], what W_rec multiplies
        acts = new(T, B, G)  # i, f, g, o after their nonlinearities
        memory = new(T + 1, B, H)  # m_0 .. m_T
        tanh_m = new(T, B, H)
        s_all, a_all = new(B, T, H), new(B, T, S)
        saved: list[Tensor] = []  # the attention's: W s_{t-1} (fast), else z of every step
        if fast:
            keys, states = keys.contiguous(), states.contiguous()
            mask, v_flat = mask.to(torch.uint8).contiguous(), v.reshape(Ha).contiguous()
        else:
            keys2 = keys * 2.0  # (B, S, Ha)
            v2 = (2.0 * v).reshape(Ha)  # e = 2 v^T z = v^T tanh(.) + sum(v)
            masked = ~mask  # (B, S)
        query, recurrent = step_linear(w_query, B), step_linear(w_rec, B)
        memory[0] = m0
        h = h0
        s_steps = new(T, B, H) if fast else s_all  # fast: s_t as contiguous rows
        for t in range(T):
            if not fast or t == 0:  # else the cell's kernel wrote it
                inputs[t, :, De:] = h  # s_{t-1}
            q = query(h, None)  # (B, Ha), W s_{t-1}
            if fast:
                native.attention_forward(
                    keys, q, v_flat, states, mask, a_all[:, t], inputs[t, :, :De]
                )
                saved.append(q)
            else:  # z = sigmoid(2 p + 2 W s_{t-1}) = (1 + tanh(.)) / 2, (B, S, Ha)
                z_t = torch.add(keys2, q[:, None, :], alpha=2.0).sigmoid_()
                saved.append(z_t)
                e = torch.mv(z_t.view(B * S, Ha), v2).view(B, S)  # (B, S)
                e.masked_fill_(masked, float("-inf"))
                a = torch.softmax(e, dim=1)  # (B, S)
                a_all[:, t] = a
                inputs[t, :, :De] = torch.bmm(a[:, None, :], states)[:, 0]  # c_t, (B, De)
            gates = recurrent(inputs[t], gates_x[:, t])  # (B, G)
            if fast:  # the cell in one pass, s_t also into the next step's inputs
                h = s_steps[t]
                after = inputs[t + 1, :, De:] if t + 1 < T else None
                native.lstm_cell_forward(
                    gates, memory[t], acts[t], memory[t + 1], tanh_m[t], h, after
                )
                continue
            act = acts[t]
            torch.sigmoid(gates, out=act)
            torch.tanh(gates[:, 2 * H : 3 * H], out=act[:, 2 * H : 3 * H])
            i, f, g, o = act.chunk(4, dim=1)
            m = torch.addcmul(f * memory[t], i, g, out=memory[t + 1])  # (B, H)
            tm = torch.tanh(m, out=tanh_m[t])
            h = o * tm  # (B, H), s_t
            s_all[:, t] = h
        c_all = inputs[:, :, :De].transpose(0, 1).contiguous()  # (B, T, De)
        if fast:
            s_all = s_steps.transpose(0, 1).contiguous()  # (B, T, H)
        ctx.fast = fast
        ctx.save_for_backward(
            keys, states, mask, w_query, v, w_rec, inputs, acts, memory, tanh_m, a_all, *saved
        )
        return s_all, c_all, a_all

    @staticmethod
    def backward(
        ctx: Any, d_s: Tensor | None, d_c: Tensor | None, d_a: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        keys, states, mask, w_query, v, w_rec, inputs, acts, memory, tanh_m, a_all = saved[:11]
        per_step = saved[11:]  # W s_{t-1} (fast) or z of every step
        fast: bool = ctx.fast
        (B, S, Ha), T = keys.shape, acts.shape[0]
        De, G = states.shape[2], acts.shape[2]
        H = G // 4
        new = states.new_empty
        d_gates = new(T, B, G)  # dG_t: the gates' gradients, also gates_x's
        d_ctx = new(B, T, De)  # the total gradient of every c_t
        d_query = new(T, B, Ha)  # the gradient of every W s_{t-1}
        d_keys = states.new_zeros(B, S, Ha)
        d_v_flat = states.new_zeros(Ha)  # fast: dL/dv; else dL/d(2 v), from z
        v_flat = v.reshape(Ha).contiguous()
        if not fast:
            scratch = new(B, S, Ha)
            v2 = 2.0 * v_flat
        if d_a is not None:
            d_a = d_a.contiguous()
        if fast and d_s is not None:
            d_s = d_s.contiguous()
        recurrent_t, query_t = step_linear(w_rec.t(), B), step_linear(w_query.t(), B)
        dh = states.new_zeros(B, H)  # dL/ds_t from the steps after t
        dm = states.new_zeros(B, H)  # dL/dm_t from the steps after t
        for t in reversed(range(T)):
            dg_t = d_gates[t]
            if fast:  # the cell's backward in one pass; dm becomes dL/dm_{t-1} in place
                d_s_t = None if d_s is None else d_s[:, t]
                native.lstm_cell_backward(acts[t], memory[t], tanh_m[t], dh, d_s_t, dm, dg_t)
            else:
                if d_s is not None:
                    dh = dh + d_s[:, t]
                i, f, g, o = acts[t].chunk(4, dim=1)
                tm = tanh_m[t]
                di, df, dgg, do = dg_t.chunk(4, dim=1)
                dm = torch.addcmul(dm, dh, o * (1.0 - tm * tm))  # (B, H)
                torch.mul(dm * g, i * (1.0 - i), out=di)
                torch.mul(dm * memory[t], f * (1.0 - f), out=df)
                torch.mul(dm * i, 1.0 - g * g, out=dgg)
                torch.mul(dh * tm, o * (1.0 - o), out=do)
                dm = dm * f
            dx = recurrent_t(dg_t, None)  # (B, De + H), dG_t W_rec
            dc = dx[:, :De] if d_c is None else dx[:, :De] + d_c[:, t]  # (B, De)
            d_ctx[:, t] = dc
            dh = dx[:, De:]  # (B, H), through W_hh
            # the attention: c_t = a_t h, a_t = softmax(e_t), e_t = v^T tanh(p + W s_{t-1})
            a = a_all[:, t]
            da_t = None if d_a is None else d_a[:, t]
            dq = d_query[t]
            if fast:
                native.attention_backward(
                    keys, per_step[t], v_flat, states, mask, a, dc, da_t, dq, d_keys, d_v_flat
                )
            else:
                da = torch.bmm(dc[:, None, :], states.transpose(1, 2))[:, 0]  # (B, S)
                if da_t is not None:
                    da = da + da_t
                de = torch._softmax_backward_data(da, a, 1, a.dtype)  # (B, S)
                z_t = per_step[t]
                d_v_flat.add_(torch.bmm(de[:, None, :], z_t)[:, 0].sum(0))  # sum_{b,i} de z
                # d pre = 2 de v2 * y with y = z (1 - z) = tanh'/4: the sums over the source
                # (the query's gradient) and over the steps (the keys') are taken of 2 de y,
                # times v2 after the loop
                torch.addcmul(z_t, z_t, z_t, value=-1.0, out=scratch)  # y, (B, S, Ha)
                w = 2.0 * de  # (B, S)
                torch.mul(torch.bmm(w[:, None, :], scratch)[:, 0], v2, out=dq)  # (B, Ha)
                d_keys.addcmul_(w[:, :, None], scratch)
            dh = query_t(dq, dh)  # (B, H), + dq W
        rows = T * B
        d_w_rec = torch.mm(d_gates.view(rows, G).t(), inputs.view(rows, De + H))  # (G, De + H)
        d_w_query = torch.mm(d_query.view(rows, Ha).t(), inputs[:, :, De:].reshape(rows, H))
        d_states = torch.bmm(a_all.transpose(1, 2), d_ctx)  # (B, S, De)
        if not fast:
            d_keys.mul_(v2)  # (B, S, Ha), sum_t 2 de_t y_t v2
            d_v_flat.mul_(2.0)
        d_v = d_v_flat.reshape(v.shape)
        return (
            d_gates.transpose(0, 1),  # (B, T, G)
            dh,
            dm,
            d_keys,
            d_states,
            None,
            d_w_query,
            d_v,
            d_w_rec,
        )
