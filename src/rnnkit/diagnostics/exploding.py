r"""The exploding-gradient experiment of ``rnnkit diagnose gradients``: clipping, shown.

An Elman RNN whose ``W_hh`` is rescaled to spectral radius ``radius`` (> 1), trained on the adding
problem (inputs (B, T, 2), target (B, 1), loss MSE) with plain SGD twice from the same weights and
data: without clipping and with ``clip_grad_norm``. Each step records the gradient norm before
clipping and the loss; without clipping a few huge steps throw the weights far away and the loss
blows up (often to inf), with clipping the same run stays finite.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.data.synthetic import adding_batch
from rnnkit.models.classifier import SequenceRegressor, SequenceRegressorConfig
from rnnkit.tasks.generated import epoch_generator
from rnnkit.training.device import apply_threads, step_work

__all__ = ["ClipRun", "ExplodingResult", "exploding_experiment", "scale_spectral_radius"]


@dataclass(frozen=True)
class ClipRun:
    """One SGD run of the exploding-gradient experiment.

    Attributes:
        clip_grad_norm: the clipping threshold, or None for no clipping.
        grad_norm: per step, the gradient norm before clipping.
        loss: per step, the training loss (before the step's update).
        diverged_at: the 1-based step whose loss or gradient was not finite (the run stopped
            there), or None.
    """

    clip_grad_norm: float | None
    grad_norm: list[float]
    loss: list[float]
    diverged_at: int | None

    @property
    def clip_rate(self) -> float:
        """Fraction of steps whose gradient norm was above the threshold (0 without clipping)."""
        if self.clip_grad_norm is None or not self.grad_norm:
            return 0.0
        threshold = self.clip_grad_norm
        return sum(g > threshold for g in self.grad_norm) / len(self.grad_norm)


@dataclass(frozen=True)
class ExplodingResult:
    """The exploding-gradient experiment: the same run without and with clipping.

    Attributes:
        radius: spectral radius W_hh was scaled to. lr: SGD learning rate. length: T.
        hidden_size: H. steps: SGD steps asked for. batch_size: B. seed: weights and data.
        runs: [no clipping, clipping].
    """

    radius: float
    lr: float
    length: int
    hidden_size: int
    steps: int
    batch_size: int
    seed: int
    runs: list[ClipRun]


def scale_spectral_radius(weight: Tensor, radius: float) -> None:
    """Rescale the square matrix ``weight`` (H, H) in place so that its spectral radius is ``radius``."""
    with torch.no_grad():
        current = float(torch.linalg.eigvals(weight.detach().double()).abs().max())
        if current == 0.0:
            raise ValueError("cannot rescale a matrix whose eigenvalues are all zero")
        weight.mul_(radius / current)


def exploding_experiment(
    *,
    radius: float = 2.0,
    lr: float = 0.05,
    length: int = 50,
    hidden_size: int = 64,
    steps: int = 300,
    clip_grad_norm: float = 1.0,
    batch_size: int = 32,
    seed: int = 0,
    threads: int | None = None,
) -> ExplodingResult:
    """Train an Elman RNN with ``W_hh`` at spectral radius ``radius`` by SGD, unclipped and clipped.

    Both runs start from the same weights and see the same batches of the adding problem
    ((B, T, 2) -> (B, 1), MSE). A run stops at the first step whose loss or gradient norm is not
    finite.

    Args:
        radius: spectral radius of the initial ``W_hh`` (above 1 makes gradients explode).
        lr: SGD learning rate (no momentum).
        length: T. hidden_size: H. steps: SGD steps per run. batch_size: B.
        clip_grad_norm: the threshold of the clipped run.
        seed: initial weights and data.
        threads: torch's intra-op threads, set process-wide; None chooses them from the model
            (:func:`~rnnkit.training.device.choose_threads`: 1 for this small one).
    """
    for name, value in (("radius", radius), ("lr", lr), ("clip_grad_norm", clip_grad_norm)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    if length < 2:
        raise ValueError(f"length must be >= 2, got {length}")
    for name, count in (("hidden_size", hidden_size), ("steps", steps), ("batch_size", batch_size)):
        if count < 1:
            raise ValueError(f"{name} must be >= 1, got {count}")
    torch.manual_seed(seed)
    start = SequenceRegressor(SequenceRegressorConfig(cell="rnn", hidden_size=hidden_size), 2, 1)
    w_hh = start.rnn.weight_hh_l0  # (H, H)
    assert isinstance(w_hh, Tensor)
    scale_spectral_radius(w_hh, radius)
    apply_threads(threads, step_work(start, batch_size))
    runs = []
    for clip in (None, clip_grad_norm):
        model = copy.deepcopy(start)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        generator = epoch_generator(seed, 0, "exploding")
        norms: list[float] = []
        losses: list[float] = []
        diverged_at = None
        for step in range(1, steps + 1):
            batch = adding_batch(batch_size, length, generator)
            loss = F.mse_loss(model(batch.inputs), batch.targets)  # (B, 1) vs (B, 1)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            max_norm = clip if clip is not None else math.inf
            norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm))
            norms.append(norm)
            losses.append(float(loss.detach()))
            if not (math.isfinite(norm) and math.isfinite(losses[-1])):
                diverged_at = step
                break
            optimizer.step()
        runs.append(ClipRun(clip, norms, losses, diverged_at))
    return ExplodingResult(
        radius=radius,
        lr=lr,
        length=length,
        hidden_size=hidden_size,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        runs=runs,
    )
