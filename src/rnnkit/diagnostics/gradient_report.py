"""``rnnkit diagnose gradients``: both gradient experiments, as one report, text and figure.

:func:`gradient_diagnostics` runs :func:`~rnnkit.diagnostics.vanishing.gradient_flow_experiment`
and :func:`~rnnkit.diagnostics.exploding.exploding_experiment`; :func:`format_gradient_report`
prints them as tables and :func:`plot_gradient_report` draws them (four panels, through
:func:`rnnkit.viz.figures.plot_panels`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rnnkit.diagnostics.exploding import ExplodingResult, exploding_experiment
from rnnkit.diagnostics.memory_span import CELLS, MemoryResult, check_grid
from rnnkit.diagnostics.vanishing import GradientFlowResult, Stage, gradient_flow_experiment
from rnnkit.tasks.base import to_json
from rnnkit.viz.figures import CELL_COLOURS, LinePanel, plot_panels

__all__ = [
    "GradientReport",
    "format_gradient_report",
    "gradient_diagnostics",
    "plot_gradient_report",
]


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
        plain: dict[str, Any] = to_json(out)
        return plain


def gradient_diagnostics(
    *,
    cells: Sequence[str] = CELLS,
    length: int = 100,
    hidden_size: int = 64,
    train_time_s: float = 30.0,
    max_steps: int | None = None,
    radius: float = 2.0,
    lr: float = 0.05,
    steps: int = 300,
    clip_grad_norm: float = 1.0,
    seed: int = 0,
    jobs: int | None = None,
    on_result: Callable[[MemoryResult], None] | None = None,
    threads: int | None = None,
) -> GradientReport:
    """Both experiments with their defaults (what ``rnnkit diagnose gradients`` runs).

    ``cells``, ``length``, ``hidden_size``, ``train_time_s``, ``max_steps``, ``jobs`` and
    ``on_result`` go to
    :func:`gradient_flow_experiment`; ``radius``, ``lr``, ``steps`` and ``clip_grad_norm`` to
    :func:`exploding_experiment` (its T and H are its own defaults, 50 and 64, or ``length`` and
    ``hidden_size`` when those are smaller); ``seed`` and ``threads`` (torch's intra-op
    threads, None: auto, which is 1 for these small models) to both.
    """
    check_grid(cells, "adding", [length])
    if max_steps is not None and max_steps < 1:  # before the exploding runs, not after
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    exploding = exploding_experiment(
        radius=radius,
        lr=lr,
        length=min(length, 50),
        hidden_size=min(hidden_size, 64),
        steps=steps,
        clip_grad_norm=clip_grad_norm,
        seed=seed,
        threads=threads,
    )
    flow = gradient_flow_experiment(
        cells=cells,
        length=length,
        hidden_size=hidden_size,
        train_time_s=train_time_s,
        max_steps=max_steps,
        seed=seed,
        jobs=jobs,
        on_result=on_result,
        threads=threads,
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
    flow, ex = report.flow, report.exploding
    panels = []
    stages: list[tuple[Stage, str]] = [("init", "at initialisation")]
    if any(c.stage == "trained" for c in flow.curves):
        budget = f"{flow.train_time_s:g} s"
        if flow.max_steps is not None:
            budget = f"{flow.max_steps} steps or {budget}"
        stages.append(("trained", f"after training ({budget} budget)"))
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
