r"""The vanishing-gradient experiment of ``rnnkit diagnose gradients``: ``||dL/dh_t||`` per cell.

For each cell, ``||dL/dh_t||`` for every step t of a length-T batch of the adding problem (inputs
(B, T, 2), target (B, 1)), with L the model's own MSE loss (its Linear head applied to h_T), at
initialisation and after training for a fixed time budget (the same run as the memory
benchmark's, :func:`~rnnkit.diagnostics.memory_span.run_many`). The Elman RNN's gradient decays
geometrically with the distance T - t, like the product of Jacobians ``diag(1 - h_k^2) W_hh``;
the LSTM's and GRU's gated paths (``c_t = f * c_{t-1} + i * g``, ``h_t = (1 - z) * n + z *
h_{t-1}``) let a trained model keep it alive. Computed in float64 so that values below float32's
range (1e-38) still show. The spectral radius of every gate block of ``W_hh`` is reported with
each curve.

The measurement itself is :func:`rnnkit.diagnostics.gradients.gradient_flow`; the exploding
experiment is :mod:`rnnkit.diagnostics.exploding`, both together with text and figure
:mod:`rnnkit.diagnostics.gradient_report`.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.data.synthetic import AddingBatch, adding_batch
from rnnkit.diagnostics.gradients import gradient_flow, spectral_radius
from rnnkit.diagnostics.memory_span import (
    CELLS,
    MemoryResult,
    RunSpec,
    check_grid,
    memory_config,
    memory_task,
    run_many,
)
from rnnkit.models.classifier import SequenceRegressor
from rnnkit.nn.recurrent import GRU, LSTM, RNN
from rnnkit.tasks.generated import epoch_generator
from rnnkit.training.device import apply_threads, step_work

__all__ = [
    "FlowCurve",
    "GradientFlowResult",
    "Stage",
    "gradient_flow_experiment",
    "initial_model",
    "model_gradient_flow",
    "probe_batch",
]

Stage = Literal["init", "trained"]


@dataclass(frozen=True)
class FlowCurve:
    """``||dL/dh_t||`` of one cell at one stage of training.

    Attributes:
        cell: "rnn", "lstm" or "gru".
        stage: "init" (the weights the training run starts from) or "trained".
        norms: T values, entry t - 1 the batch mean of ``||dL/dh_t||_2`` for t = 1 .. T.
        spectral_radius: gate name -> largest |eigenvalue| of that gate's (H, H) block of W_hh.
        loss: the MSE on the probe batch.
    """

    cell: str
    stage: Stage
    norms: list[float]
    spectral_radius: dict[str, float]
    loss: float

    @property
    def ratio(self) -> float:
        """``||dL/dh_1|| / ||dL/dh_T||``: how much of the last step's gradient reaches step 1."""
        return self.norms[0] / self.norms[-1] if self.norms[-1] > 0 else math.nan


@dataclass(frozen=True)
class GradientFlowResult:
    """The vanishing-gradient experiment: curves at init and after training, per cell.

    Attributes:
        length: T. hidden_size: H. train_time_s: the training budget of each cell (0: none).
        max_steps: the step budget of each cell as well, or None.
        seed: seed of the initial weights and of the data.
        curves: a FlowCurve per (cell, stage), init first.
        training: the memory-benchmark result of each trained cell (test MSE, steps, seconds).
    """

    length: int
    hidden_size: int
    train_time_s: float
    seed: int
    curves: list[FlowCurve]
    training: list[MemoryResult]
    max_steps: int | None = None


def initial_model(cell: str, length: int, hidden_size: int, seed: int) -> SequenceRegressor:
    """The adding-problem model the memory benchmark's run of (cell, length, seed) starts from.

    Built as the :class:`~rnnkit.training.Trainer` builds it: ``torch.manual_seed(seed)``, then the
    task's ``build_model()``; (B, T, 2) -> (B, 1).
    """
    from rnnkit.tasks.run import build_run_config

    spec = RunSpec("adding", cell, length, seed, hidden_size, max_time_s=1.0)
    task = memory_task("adding")(build_run_config(memory_config(spec)))
    torch.manual_seed(seed)
    model = task.build_model()
    assert isinstance(model, SequenceRegressor)
    return model


def probe_batch(length: int, batch_size: int, seed: int) -> AddingBatch:
    """A fixed adding batch, inputs (B, T, 2) and targets (B, 1), from its own data stream."""
    return adding_batch(batch_size, length, epoch_generator(seed, 0, "gradient-probe"))


def model_gradient_flow(
    model: SequenceRegressor, inputs: Tensor, targets: Tensor, stage: Stage = "init"
) -> FlowCurve:
    """``||dL/dh_t||`` of a SequenceRegressor's layer for L = MSE(head(h_T), targets), in float64.

    Args:
        model: a :class:`~rnnkit.models.classifier.SequenceRegressor` with one unidirectional
            layer (``model.rnn``) and a Linear head (``model.head``); left unchanged (a float64
            copy is differentiated).
        inputs: (B, T, I) all positions real.
        targets: (B, K).
        stage: the label of the curve ("init" or "trained").
    """
    double = copy.deepcopy(model).double()
    layer, head = double.rnn, double.head
    if not isinstance(layer, RNN | LSTM | GRU):
        raise ValueError(
            f"model.rnn must be an rnnkit RNN, LSTM or GRU, got {type(layer).__name__}"
        )
    y = targets.double()  # (B, K)
    losses: list[float] = []

    def loss_fn(h_last: Tensor) -> Tensor:  # (B, H) -> scalar
        loss = F.mse_loss(head(h_last), y)
        losses.append(float(loss.detach()))
        return loss

    norms = gradient_flow(layer, inputs.double(), loss_fn)  # (T,)
    return FlowCurve(
        cell=model.config.cell,
        stage=stage,
        norms=[float(v) for v in norms],
        spectral_radius=spectral_radius(layer),
        loss=losses[0],
    )


def gradient_flow_experiment(
    *,
    cells: Sequence[str] = CELLS,
    length: int = 100,
    hidden_size: int = 64,
    train_time_s: float = 30.0,
    max_steps: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    jobs: int | None = None,
    on_result: Callable[[MemoryResult], None] | None = None,
    threads: int | None = None,
) -> GradientFlowResult:
    """``||dL/dh_t||`` per cell on the adding problem of length T, at init and after training.

    Args:
        cells: any of "rnn", "lstm", "gru".
        length: T.
        hidden_size: H.
        train_time_s: each cell's training budget (the memory benchmark's run; it stops early once
            solved); 0 skips training and gives the initial curves only.
        max_steps: each cell's step budget as well (whichever ends first); unlike the time
            budget it gives the same curves on every machine.
        batch_size: B of the probe batch the gradients are measured on.
        seed: initial weights (the training run's) and data.
        jobs: worker processes for the training runs (default: the CPU cores, at most 4).
        on_result: called with each finished training run (progress reporting).
        threads: torch's intra-op threads in this process (set process-wide) and in each
            training worker; None: the auto policy
            (:func:`~rnnkit.training.device.choose_threads`) here, which gives these small
            models 1, and 1 in the workers, which share the cores.
    """
    from rnnkit.tasks.run import load_weights, weights_path

    check_grid(cells, "adding", [length])
    if hidden_size < 1:
        raise ValueError(f"hidden_size must be >= 1, got {hidden_size}")
    if train_time_s < 0:
        raise ValueError(f"train_time_s must be >= 0, got {train_time_s}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    batch = probe_batch(length, batch_size, seed)
    models = {cell: initial_model(cell, length, hidden_size, seed) for cell in cells}
    apply_threads(threads, max(step_work(m, batch_size) for m in models.values()))
    curves = [model_gradient_flow(models[c], batch.inputs, batch.targets) for c in cells]
    training: list[MemoryResult] = []
    if train_time_s > 0:
        with tempfile.TemporaryDirectory(prefix="rnnkit-gradients-") as tmp:
            specs = [
                RunSpec(
                    task="adding",
                    cell=cell,
                    length=length,
                    seed=seed,
                    hidden_size=hidden_size,
                    max_time_s=train_time_s,
                    max_steps=max_steps,
                    run_dir=f"{tmp}/{cell}",
                    threads=threads or 1,
                )
                for cell in cells
            ]
            training = run_many(specs, jobs=jobs, on_result=on_result)
            for cell in cells:
                load_weights(models[cell], weights_path(Path(tmp) / cell, "best"))
                curves.append(
                    model_gradient_flow(models[cell], batch.inputs, batch.targets, "trained")
                )
    return GradientFlowResult(
        length=length,
        hidden_size=hidden_size,
        train_time_s=train_time_s,
        seed=seed,
        curves=curves,
        training=training,
        max_steps=max_steps,
    )
