"""Losses and per-batch metrics shared by the tasks (models return logits; losses live here)."""

from __future__ import annotations

from torch import Tensor

from rnnkit.nn import native


def token_cross_entropy(
    logits: Tensor, targets: Tensor, pad_id: int, label_smoothing: float = 0.0
) -> Tensor:
    """Mean cross-entropy over real (non-pad) target tokens (one pass each way: :mod:`rnnkit.nn.native`).

    Args:
        logits: (B, T, V) unnormalised scores.
        targets: (B, T) token ids; positions equal to ``pad_id`` are ignored.
        pad_id: the padding id.
        label_smoothing: as in :func:`torch.nn.functional.cross_entropy`.

    Returns:
        A scalar tensor.
    """
    return native.cross_entropy(
        logits.reshape(-1, logits.size(-1)),  # (B*T, V)
        targets.reshape(-1),  # (B*T,)
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
    )


def token_accuracy(logits: Tensor, targets: Tensor, pad_id: int) -> tuple[Tensor, Tensor]:
    """Token accuracy and whole-sequence accuracy over real target tokens.

    Args:
        logits: (B, T, V); targets: (B, T) with ``pad_id`` at padding.

    Returns:
        (token_accuracy, sequence_accuracy), two 0-dim float tensors.
    """
    real = targets != pad_id  # (B, T)
    correct = (logits.argmax(dim=-1) == targets) & real  # (B, T)
    token = correct.sum().float() / real.sum().clamp(min=1).float()
    sequence = (correct | ~real).all(dim=1).float().mean()
    return token, sequence
