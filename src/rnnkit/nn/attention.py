r"""Attention: a query reads a weighted average of a set of feature vectors.

The letters are the lecture's, and those of :mod:`rnnkit.nn.decoder` and
:mod:`rnnkit.models.seq2seq`: ``h_i`` the encoder states (the keys), ``s`` the query (a decoder
state), ``e`` the scores, ``a`` the weights, ``c`` the context.

The general attention layer
---------------------------
Given encoder states ``h`` (a sequence, ``S x Dk``, or an image grid, ``H x W x Dk``, read as
``S = H*W`` positions) and a query ``s`` (a decoder state), attention computes one score per
position, normalises the scores into weights and returns the weighted average of the values::

    e_i = score(s, h_i)                          for i = 1..S       e: (B, S)
    a   = softmax(e)        over the real positions only            a: (B, S),  sum_i a_i = 1
    c   = sum_i a_i v_i     (values v default to the states h)      c: (B, Dv)

The weights ``a`` say where the model "looks"; they are returned, ready to plot.

Scores
------
With the query ``s`` (B, Dq) and the keys ``h_i`` (B, S, Dk):

``"additive"`` (Bahdanau et al., 2015, an MLP with one hidden layer of size Ha)::

    e_i = v^T tanh(W s + U h_i + b)          W: (Ha, Dq), U: (Ha, Dk), b: (Ha,), v: (Ha,)

  ``W`` (``query_proj``) has no bias; the single bias ``b`` lives in the key projection ``U``
  (``key_proj``). ``Ha = hidden_size`` (default: ``key_size``).

``"dot"`` (Luong et al., 2015; needs ``Dq == Dk``)::

    e_i = s^T h_i

``"general"`` (Luong et al., 2015, a bilinear form)::

    e_i = s^T W_a h_i                        W_a: (Dq, Dk)

``"scaled_dot"`` (Vaswani et al., 2017; needs ``Dq == Dk``)::

    e_i = s^T h_i / sqrt(Dk)

Projected keys
--------------
Every score applies a fixed map to the keys that does not depend on the query: ``U h_i + b``
(additive), ``W_a h_i`` (general), ``h_i / sqrt(Dk)`` (scaled_dot), ``h_i`` (dot). A decoder asks
the same source many questions, so :meth:`Attention.project_keys` computes that map once per
source, ``(B, S, Dk) -> (B, S, Dp)``, and ``forward(..., projected_keys=...)`` reuses it at every
step. The layer never keeps it on ``self``: the caller owns it. ``Dp = Ha`` for additive, ``Dq``
for the others. With projected keys ``p_i`` the scores become ``v^T tanh(W s + p_i)`` (additive)
and ``s^T p_i`` (the rest).

Masking
-------
``mask`` is bool, True = real position. Masked scores are set to ``-inf`` before the softmax, so
their weights are exactly 0 and their keys and values cannot change the output. A query whose mask
has no real position at all has no defined weights (they come out NaN). ``forward`` checks only
shapes and dtypes, never values, so it makes no host sync and can run at every decoder step;
:func:`check_mask` checks that every example has a real position, at the cost of one host sync on
an accelerator: call it once per batch, at the boundary (a model's ``encode``, say).

Shapes
------
Queries may come one per example, ``(B, Dq)``, or ``Tq`` per example, ``(B, Tq, Dq)``; keys, values
and mask may be a sequence ``(B, S, .)`` or a grid ``(B, H, W, .)``. Outputs follow::

    query (B, Dq)      -> context (B, Dv),      weights (B, S)      or (B, H, W) for a grid
    query (B, Tq, Dq)  -> context (B, Tq, Dv),  weights (B, Tq, S)  or (B, Tq, H, W)
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

Score = Literal["additive", "dot", "general", "scaled_dot"]
SCORES: tuple[str, ...] = ("additive", "dot", "general", "scaled_dot")


def _shape(t: Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def check_mask(mask: Tensor) -> Tensor:
    """Check that every example of a mask has a real position; one host sync, once per batch.

    Args:
        mask: bool (B, S) or a grid (B, H, W), True = real position.

    Returns:
        ``mask`` itself, so that ``mask = check_mask(mask)`` reads as one step.

    Raises:
        ValueError: if the mask is not bool, or some example has no real position.
    """
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = real), got {mask.dtype}")
    if mask.dim() < 2:
        raise ValueError(f"mask must be (B, S) or (B, H, W), got shape {_shape(mask)}")
    if not bool(mask.reshape(mask.shape[0], -1).any(dim=1).all()):
        raise ValueError("mask has no real position for some example; cannot attend")
    return mask


class Attention(nn.Module):
    """Attention of a query over a set of keys and values (see the module docstring for formulas).

    Args:
        query_size: Dq, the size of each query vector.
        key_size: Dk, the size of each key vector.
        score: ``"additive"`` (Bahdanau), ``"dot"``, ``"general"`` (Luong) or ``"scaled_dot"``.
        hidden_size: Ha, the hidden size of the additive score's MLP (default ``key_size``); only
            valid with ``score="additive"``.

    Parameters (by score):
        additive: ``query_proj.weight`` = W (Ha, Dq), ``key_proj.weight`` = U (Ha, Dk),
            ``key_proj.bias`` = b (Ha,), ``v.weight`` = v^T (1, Ha).
        general: ``key_proj.weight`` (Dq, Dk), the ``W_a`` of ``s^T W_a h_i``.
        dot, scaled_dot: none.

    Example::

        attn = Attention(query_size=7, key_size=5)
        h = torch.randn(3, 4, 5)                          # (B, S, Dk) encoder states
        mask = check_mask(torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]).bool())
        projected = attn.project_keys(h)                  # (B, S, Ha), once per source
        s = torch.randn(3, 7)                             # (B, Dq) decoder state
        c, a = attn(s, h, mask=mask, projected_keys=projected)
        # context c (B, Dk), weights a (B, S)
    """

    query_proj: nn.Linear | None
    key_proj: nn.Linear | None
    v: nn.Linear | None

    def __init__(
        self,
        query_size: int,
        key_size: int,
        score: Score = "additive",
        hidden_size: int | None = None,
    ) -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"unknown score '{score}'; valid scores: {', '.join(SCORES)}")
        for name, size in (("query_size", query_size), ("key_size", key_size)):
            if size <= 0:
                raise ValueError(f"{name} must be positive, got {size}")
        if hidden_size is not None and score != "additive":
            raise ValueError(f"hidden_size is only used by score='additive', not score='{score}'")
        if hidden_size is not None and hidden_size <= 0:
            raise ValueError(f"hidden_size must be positive, got {hidden_size}")
        if score in ("dot", "scaled_dot") and query_size != key_size:
            raise ValueError(
                f"score='{score}' needs query_size == key_size, got query_size={query_size} "
                f"and key_size={key_size}; use score='general' or 'additive' for different sizes"
            )
        self.query_size = query_size
        self.key_size = key_size
        self.score = score
        self.query_proj = None
        self.key_proj = None
        self.v = None
        if score == "additive":
            self.hidden_size = key_size if hidden_size is None else hidden_size
            self.query_proj = nn.Linear(query_size, self.hidden_size, bias=False)
            self.key_proj = nn.Linear(key_size, self.hidden_size, bias=True)
            self.v = nn.Linear(self.hidden_size, 1, bias=False)
        elif score == "general":
            self.hidden_size = query_size
            self.key_proj = nn.Linear(key_size, query_size, bias=False)
        else:
            self.hidden_size = query_size

    @property
    def projected_size(self) -> int:
        """Dp, the last dimension of :meth:`project_keys`' output."""
        return self.hidden_size

    def extra_repr(self) -> str:
        extra = f", hidden_size={self.hidden_size}" if self.score == "additive" else ""
        return (
            f"query_size={self.query_size}, key_size={self.key_size}, score='{self.score}'{extra}"
        )

    def project_keys(self, keys: Tensor) -> Tensor:
        """The query-independent part of the score, computed once per source.

        Args:
            keys: (B, S, Dk) or a grid (B, H, W, Dk).

        Returns:
            (B, S, Dp) or (B, H, W, Dp): ``U h + b`` (additive, Dp = Ha), ``W_a h`` (general,
            Dp = Dq), ``h / sqrt(Dk)`` (scaled_dot), ``h`` itself (dot).
        """
        self._check_keys(keys)
        if self.key_proj is not None:
            projected: Tensor = self.key_proj(keys)  # (B, S, Dp)
            return projected
        if self.score == "scaled_dot":
            return keys / math.sqrt(self.key_size)  # (B, S, Dk)
        return keys  # (B, S, Dk)

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor | None = None,
        mask: Tensor | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend from ``query`` over ``keys``; return the context and the weights.

        Args:
            query: (B, Dq) or (B, Tq, Dq).
            keys: (B, S, Dk) or a grid (B, H, W, Dk).
            values: (B, S, Dv) or (B, H, W, Dv) with the keys' positions; default: the keys.
            mask: bool (B, S) or (B, H, W), True = real position; default: all real. Its values
                are not checked here (no host sync); see :func:`check_mask`.
            projected_keys: :meth:`project_keys` of these keys, (B, S, Dp) or (B, H, W, Dp), to skip
                recomputing it; it must come from this module's current weights.

        Returns:
            context: (B, Dv) or (B, Tq, Dv).
            weights: (B, S) or (B, Tq, S); (B, H, W) or (B, Tq, H, W) for a grid. They sum to 1
            over the real positions and are exactly 0 on masked ones.
        """
        self._check_keys(keys)
        if query.dim() not in (2, 3):
            raise ValueError(f"query must be (B, Dq) or (B, Tq, Dq), got shape {_shape(query)}")
        if query.shape[-1] != self.query_size:
            raise ValueError(
                f"query has size {query.shape[-1]} in its last dimension, expected "
                f"query_size={self.query_size}"
            )
        if query.shape[0] != keys.shape[0]:
            raise ValueError(
                f"query and keys disagree on the batch size: {query.shape[0]} vs {keys.shape[0]}"
            )
        positions = keys.shape[:-1]  # (B, S) or (B, H, W)
        if values is None:
            values = keys
        elif values.dim() != keys.dim() or values.shape[:-1] != positions:
            raise ValueError(
                f"values must have the keys' positions {tuple(positions)} plus a feature "
                f"dimension, got shape {_shape(values)}"
            )
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        elif projected_keys.shape != (*positions, self.projected_size):
            raise ValueError(
                f"projected_keys must have shape {(*positions, self.projected_size)} "
                f"(see project_keys), got {_shape(projected_keys)}"
            )
        if mask is not None:
            if mask.dtype != torch.bool:
                raise ValueError(f"mask must be a bool tensor (True = real), got {mask.dtype}")
            if mask.shape != positions:
                raise ValueError(
                    f"mask must have the keys' positions {tuple(positions)}, got {_shape(mask)}"
                )

        B = keys.shape[0]
        single = query.dim() == 2
        s = query.unsqueeze(1) if single else query  # (B, Tq, Dq)
        p = projected_keys.reshape(B, -1, self.projected_size)  # (B, S, Dp)
        v = values.reshape(B, -1, values.shape[-1])  # (B, S, Dv)

        e = self._scores(s, p)  # (B, Tq, S)
        if mask is not None:
            e = e.masked_fill(~mask.reshape(B, 1, -1), float("-inf"))  # (B, Tq, S)
        a = torch.softmax(e, dim=-1)  # (B, Tq, S)
        c = torch.bmm(a, v)  # (B, Tq, Dv)

        a = a.reshape(B, s.shape[1], *positions[1:])  # (B, Tq, S) or (B, Tq, H, W)
        if single:
            return c.squeeze(1), a.squeeze(1)  # (B, Dv), (B, S)
        return c, a

    def _scores(self, s: Tensor, p: Tensor) -> Tensor:
        """Scores e of queries s (B, Tq, Dq) against projected keys p (B, S, Dp): (B, Tq, S)."""
        if self.score == "additive":
            assert self.query_proj is not None and self.v is not None
            ws = self.query_proj(s)  # (B, Tq, Ha), W s
            hidden = (ws.unsqueeze(2) + p.unsqueeze(1)).tanh_()  # (B, Tq, S, Ha), in place
            e: Tensor = self.v(hidden).squeeze(-1)  # (B, Tq, S), v^T tanh(W s + U h_i + b)
            return e
        return torch.bmm(s, p.transpose(1, 2))  # (B, Tq, S), s^T p_i

    def _check_keys(self, keys: Tensor) -> None:
        if keys.dim() not in (3, 4):
            raise ValueError(
                f"keys must be (B, S, Dk) or a grid (B, H, W, Dk), got shape {_shape(keys)}"
            )
        if keys.shape[-1] != self.key_size:
            raise ValueError(
                f"keys have size {keys.shape[-1]} in their last dimension, expected "
                f"key_size={self.key_size}"
            )
        if keys.shape[1:-1].numel() == 0:
            raise ValueError(f"keys have no positions, got shape {_shape(keys)}")
