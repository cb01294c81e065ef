r"""The gradient experiments behind ``rnnkit diagnose gradients``: BPTT made visible.

Two experiments on the adding problem (inputs (B, T, 2), target (B, 1), loss MSE):

1. **Vanishing gradients.** For each cell, ``||dL/dh_t||`` for every step t of a length-T batch,
   with L the model's own MSE loss (its Linear head applied to h_T), at initialisation and after
   training for a fixed time budget (the same run as the memory benchmark's). The Elman RNN's
   gradient decays geometrically with the distance T - t, like the product of Jacobians
   ``diag(1 - h_k^2) W_hh``; the LSTM's and GRU's gated paths (``c_t = f * c_{t-1} + i * g``,
   ``h_t = (1 - z) * n + z * h_{t-1}``) let a trained model keep it alive. Computed in float64 so
   that values below float32's range (1e-38) still show. The spectral radius of every gate block
   of ``W_hh`` is reported with each curve.
2. **Exploding gradients.** An Elman RNN whose ``W_hh`` is rescaled to spectral radius ``radius``
   (> 1), trained with plain SGD twice from the same weights and data: without clipping and with
   ``clip_grad_norm``. Each step records the gradient norm before clipping and the loss; without
   clipping a few huge steps throw the weights far away and the loss blows up (often to inf),
   with clipping the same run stays finite.
"""

from __future__ import annotations

import copy
import math
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.diagnostics.gradients import gradient_flow, spectral_radius
from rnnkit.diagnostics.memory import CELLS, MemoryResult, RunSpec, run_many
from rnnkit.models.classifier import SequenceRegressor, SequenceRegressorConfig
from rnnkit.nn.recurrent import GRU, LSTM, RNN

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


@dataclass(frozen=True)
class GradientReport:
    """Both experiments of ``rnnkit diagnose gradients``."""

    flow: GradientFlowResult
    exploding: ExplodingResult

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what ``--json`` prints), with each curve's ratio and each run's clip rate.

        Non-finite floats (a diverged run's last loss, say) become None, so the JSON is strict.
        """
        out = asdict(self)
        for curve, data in zip(self.flow.curves, out["flow"]["curves"], strict=True):
            data["ratio"] = curve.ratio
        for run, data in zip(self.exploding.runs, out["exploding"]["runs"], strict=True):
            data["clip_rate"] = run.clip_rate
        plain: dict[str, Any] = _finite(out)
        return plain


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float inside dicts and lists replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def initial_model(cell: str, length: int, hidden_size: int, seed: int) -> SequenceRegressor:
    """The adding-problem model the memory benchmark's run of (cell, length, seed) starts from.

    Built as the :class:`~rnnkit.training.Trainer` builds it: ``torch.manual_seed(seed)``, then the
    task's ``build_model()``; (B, T, 2) -> (B, 1).
    """
    from rnnkit.config import build_run_config
    from rnnkit.diagnostics.memory import memory_config
    from rnnkit.registry import get_task

    spec = RunSpec("adding", cell, length, seed, hidden_size, max_time_s=1.0)
    task = get_task("adding")(build_run_config(memory_config(spec)))
    torch.manual_seed(seed)
    model = task.build_model()
    assert isinstance(model, SequenceRegressor)
    return model


def probe_batch(length: int, batch_size: int, seed: int) -> Any:
    """A fixed adding batch, inputs (B, T, 2) and targets (B, 1), from its own data stream."""
    from rnnkit.data.synthetic import adding_batch
    from rnnkit.models.generated import epoch_generator

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
    batch_size: int = 64,
    seed: int = 0,
    jobs: int | None = None,
    on_result: Callable[[MemoryResult], None] | None = None,
) -> GradientFlowResult:
    """``||dL/dh_t||`` per cell on the adding problem of length T, at init and after training.

    Args:
        cells: any of "rnn", "lstm", "gru".
        length: T.
        hidden_size: H.
        train_time_s: each cell's training budget (the memory benchmark's run; it stops early once
            solved); 0 skips training and gives the initial curves only.
        batch_size: B of the probe batch the gradients are measured on.
        seed: initial weights (the training run's) and data.
        jobs: worker processes for the training runs (default: the CPU cores, at most 4).
        on_result: called with each finished training run (progress reporting).
    """
    from rnnkit.diagnostics.memory import check_grid
    from rnnkit.io import load_safetensors

    check_grid(cells, "adding", [length])
    if hidden_size < 1:
        raise ValueError(f"hidden_size must be >= 1, got {hidden_size}")
    if train_time_s < 0:
        raise ValueError(f"train_time_s must be >= 0, got {train_time_s}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch = probe_batch(length, batch_size, seed)
    models = {cell: initial_model(cell, length, hidden_size, seed) for cell in cells}
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
                    run_dir=f"{tmp}/{cell}",
                )
                for cell in cells
            ]
            training = run_many(specs, jobs=jobs, on_result=on_result)
            for cell in cells:
                best = Path(tmp) / cell / "best.safetensors"
                final = Path(tmp) / cell / "model.safetensors"
                models[cell].load_state_dict(load_safetensors(best if best.exists() else final))
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
    )


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
    """
    from rnnkit.data.synthetic import adding_batch
    from rnnkit.models.generated import epoch_generator

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
    scale_spectral_radius(start.rnn.weight_hh_l0, radius)
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


def gradient_diagnostics(
    *,
    cells: Sequence[str] = CELLS,
    length: int = 100,
    hidden_size: int = 64,
    train_time_s: float = 30.0,
    radius: float = 2.0,
    lr: float = 0.05,
    steps: int = 300,
    clip_grad_norm: float = 1.0,
    seed: int = 0,
    jobs: int | None = None,
    on_result: Callable[[MemoryResult], None] | None = None,
) -> GradientReport:
    """Both experiments with their defaults (what ``rnnkit diagnose gradients`` runs).

    ``cells``, ``length``, ``hidden_size``, ``train_time_s``, ``jobs`` and ``on_result`` go to
    :func:`gradient_flow_experiment`; ``radius``, ``lr``, ``steps`` and ``clip_grad_norm`` to
    :func:`exploding_experiment` (its T and H are its own defaults, 50 and 64, or ``length`` and
    ``hidden_size`` when those are smaller); ``seed`` to both.
    """
    from rnnkit.diagnostics.memory import check_grid

    check_grid(cells, "adding", [length])
    exploding = exploding_experiment(
        radius=radius,
        lr=lr,
        length=min(length, 50),
        hidden_size=min(hidden_size, 64),
        steps=steps,
        clip_grad_norm=clip_grad_norm,
        seed=seed,
    )
    flow = gradient_flow_experiment(
        cells=cells,
        length=length,
        hidden_size=hidden_size,
        train_time_s=train_time_s,
        seed=seed,
        jobs=jobs,
        on_result=on_result,
    )
    return GradientReport(flow=flow, exploding=exploding)


def _radius_text(radius: dict[str, float]) -> str:
    return " ".join(f"{name} {value:.2f}" for name, value in radius.items())


def format_gradient_report(report: GradientReport) -> str:
    """Both experiments as text tables."""
    flow = report.flow
    lines = [
        f"gradient flow on the adding problem: T={flow.length}, H={flow.hidden_size}, "
        f"L = MSE of the model's prediction from h_T (float64; batch mean of ||dL/dh_t||)",
    ]
    rows = [["cell", "stage", "||dL/dh_1||", "||dL/dh_T||", "ratio 1/T", "spectral radius W_hh"]]
    for c in flow.curves:
        rows.append(
            [
                c.cell,
                c.stage,
                f"{c.norms[0]:.2e}",
                f"{c.norms[-1]:.2e}",
                f"{c.ratio:.1e}",
                _radius_text(c.spectral_radius),
            ]
        )
    lines += _columns(rows)
    for r in flow.training:
        state = "solved" if r.solved else "not solved"
        lines.append(
            f"trained {r.cell}: test mse {r.metric:.4f} ({state}) after {r.steps} steps, "
            f"{r.seconds:.1f} s"
        )
    ex = report.exploding
    lines.append("")
    lines.append(
        f"exploding gradients: Elman RNN, W_hh scaled to spectral radius {ex.radius:g}, SGD "
        f"lr {ex.lr:g}, T={ex.length}, H={ex.hidden_size}, B={ex.batch_size}, {ex.steps} steps"
    )
    rows = [["clipping", "steps", "max grad norm", "median grad norm", "clip rate", "final loss"]]
    for run in ex.runs:
        finite = [g for g in run.grad_norm if math.isfinite(g)]
        tail = [v for v in run.loss[-20:] if math.isfinite(v)]
        final = (
            f"diverged at step {run.diverged_at}"
            if run.diverged_at is not None
            else f"{statistics.fmean(tail):.4f} (mean of last 20)"
        )
        rows.append(
            [
                "none" if run.clip_grad_norm is None else f"norm {run.clip_grad_norm:g}",
                str(len(run.grad_norm)),
                f"{max(run.grad_norm):.2e}",
                f"{statistics.median(finite):.2e}" if finite else "nan",
                f"{run.clip_rate:.2f}",
                final,
            ]
        )
    lines += _columns(rows)
    return "\n".join(lines)


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def plot_gradient_report(report: GradientReport, path: Path) -> Path:
    """A 2 x 2 PNG: ||dL/dh_t|| at init and after training; grad norm and loss per SGD step."""
    from rnnkit.viz.figures import CELL_COLOURS, LinePanel, plot_panels

    flow, ex = report.flow, report.exploding
    panels = []
    stages: list[tuple[Stage, str]] = [("init", "at initialisation")]
    if any(c.stage == "trained" for c in flow.curves):
        stages.append(("trained", f"after training ({flow.train_time_s:g} s budget)"))
    for stage, caption in stages:
        series = {
            c.cell: (list(range(1, len(c.norms) + 1)), c.norms)
            for c in flow.curves
            if c.stage == stage
        }
        panels.append(
            LinePanel(
                series={k: (_floats(x), y) for k, (x, y) in series.items()},
                title=f"||dL/dh_t||, adding problem T={flow.length}, {caption}",
                xlabel="time step t",
                ylabel="||dL/dh_t|| (log)",
                log_y=True,
                styles={cell: {"color": CELL_COLOURS.get(cell)} for cell in series},
            )
        )
    norm_series = {}
    loss_series = {}
    for run in ex.runs:
        clip = run.clip_grad_norm
        label = "no clipping" if clip is None else f"clip_grad_norm {clip:g}"
        xs = _floats(range(1, len(run.grad_norm) + 1))
        norm_series[label] = (xs, run.grad_norm)
        loss_series[label] = (xs, run.loss)
    styles = {"no clipping": {"color": "tab:red"}}
    clip = ex.runs[-1].clip_grad_norm
    panels.append(
        LinePanel(
            series=norm_series,
            title=f"Elman RNN, W_hh radius {ex.radius:g}: grad norm before clipping",
            xlabel="SGD step",
            ylabel="||grad|| (log)",
            log_y=True,
            hline=(clip, "clipping threshold") if clip is not None else None,
            styles=styles,
        )
    )
    panels.append(
        LinePanel(
            series=loss_series,
            title=f"training loss (SGD lr {ex.lr:g}, T={ex.length})",
            xlabel="SGD step",
            ylabel="MSE (log)",
            log_y=True,
            styles=styles,
        )
    )
    return plot_panels(panels, path)


def _floats(values: Sequence[int] | range) -> list[float]:
    return [float(v) for v in values]
