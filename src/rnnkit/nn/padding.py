"""Padded batches: the mask of real positions, and reversing each sequence within its own length.

A padded batch holds B sequences of lengths ``lengths`` (B,) in a (B, T, ...) tensor, each sequence
in positions ``[0, lengths[b])``. Masks are bool with True = real position.
"""

from __future__ import annotations

import torch
from torch import Tensor


def length_mask(lengths: Tensor, T: int) -> Tensor:
    """The real positions of a padded batch.

    Args:
        lengths: (B,) real lengths.
        T: padded length.

    Returns:
        (B, T) bool, True at ``t < lengths[b]``, on ``lengths``' device.
    """
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]  # (B, T)


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse the first ``lengths[b]`` steps of each sequence; padding stays in place.

    Args:
        x: (B, T, ...) batch-first sequences.
        lengths: (B,) real lengths (any device: moved to x's).

    Returns:
        (B, T, ...) with ``out[b, t] = x[b, lengths[b] - 1 - t]`` for ``t < lengths[b]``, else
        ``x[b, t]``. Applying it twice gives ``x`` back.
    """
    B, T = x.shape[0], x.shape[1]
    t = torch.arange(T, device=x.device)[None, :]  # (1, T)
    n = lengths.to(x.device)[:, None]  # (B, 1)
    index = torch.where(t < n, n - 1 - t, t)  # (B, T)
    index = index.reshape(B, T, *([1] * (x.dim() - 2))).expand_as(x)  # (B, T, ...)
    return x.gather(1, index)
