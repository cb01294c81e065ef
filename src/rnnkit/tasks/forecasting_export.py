"""ONNX export of a ``forecasting`` run: the network as one graph, the series facts in the config.

The graph ``forecaster.onnx`` is the :class:`~rnnkit.models.forecaster.Forecaster` in eval mode
(every ensemble member, encoder twinned as a plain ``torch.nn`` layer by
:func:`rnnkit.export.graphs.rnn_graph_module`) on *scaled* values, so that the scaler stays in
NumPy beside it. Shapes: B windows (free), L lookback, H horizon, C targets, P past covariates,
K calendar columns, E members, n distribution parameters::

    scaled (B, L, C)      (f(y) - loc) / scale of the last L values, f = log or identity
    calendar (B, L + H, K)    sine/cosine calendar features of the window and the H steps after
    past (B, L, P)        (x - loc) / scale of the past covariates (only when P > 0)
      -> params (E, B, H, C, n)    each member's distribution parameters, normalised units
         level (B, 1, C)           the window level those units are relative to
         attention (E, B, H, L)    decoder attention (attention head only)

The runtime (:mod:`rnnkit.runtime.forecasting`) reads the history, builds the window and its
calendar features, scales, runs the graph, turns the parameters into quantiles (the Student-t's
by the same bisection as :func:`rnnkit.nn.distributions.student_t_icdf`), averages the members
and scales back: :meth:`Forecaster.predict`'s steps in NumPy.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from rnnkit.models.forecaster import Forecaster
from rnnkit.tasks.base import TaskError

if TYPE_CHECKING:
    from rnnkit.tasks.forecasting import ForecastingTask

__all__ = ["GRAPH_FILE", "ForecasterGraph", "export_forecaster"]

GRAPH_FILE = "forecaster.onnx"


class ForecasterGraph(nn.Module):
    """A :class:`Forecaster` on scaled inputs (see the module docstring): a copy whose scaling
    buffers are the identity (loc 0, scale 1, no log) and whose encoders are plain layers.

    Args:
        model: the trained forecaster (left unchanged).
    """

    def __init__(self, model: Forecaster) -> None:
        super().__init__()
        from rnnkit.export.graphs import rnn_graph_module

        net = copy.deepcopy(model).cpu().float().eval()
        net.log = False
        with torch.no_grad():
            for loc in (net.target_loc, net.past_loc):
                loc.zero_()
            for scale in (net.target_scale, net.past_scale):
                scale.fill_(1.0)
        for member in net.members:
            assert isinstance(member.encoder, nn.RNNBase)
            member.encoder = rnn_graph_module(member.encoder)  # all L steps real: no lengths
        self.net = net

    def forward(
        self, scaled: Tensor, calendar: Tensor, past: Tensor | None = None
    ) -> tuple[Tensor, ...]:
        """params (E, B, H, C, n), level (B, 1, C) (and attention (E, B, H, L)) of scaled
        (B, L, C), calendar (B, L + H, K) and scaled past (B, L, P)."""
        out = self.net(scaled, calendar, past)
        extra = () if out.attention is None else (out.attention,)
        return (out.params, out.level, *extra)


def _scaler(loc: Tensor, scale: Tensor, log: bool) -> dict[str, Any]:
    return {"loc": loc.tolist(), "scale": scale.tolist(), "log": log}


def export_forecaster(task: ForecastingTask, model: nn.Module, folder: Path) -> dict[str, Any]:
    """Write ``forecaster.onnx`` into ``folder``; return the config entries the runtime needs.

    Args:
        task: the run's task (its ``data`` section and ``series.json``).
        model: its trained :class:`Forecaster`.
        folder: the (temporary) export folder.

    Returns:
        ``config.json`` entries: the graph; how to read a history file (time column, targets,
        covariates, frequency, date options, gap filling, transform); the window (lookback,
        horizon, calendar features); the scalers (the model's float32 buffers) and the
        distribution (likelihood, quantile levels) and the calibrated intervals' residuals
        (None without calibration).
    """
    from rnnkit.export.graphs import export_graph
    from rnnkit.tasks.forecasting_panel import refuse_panel

    refuse_panel(task, "rnnkit export")
    assert isinstance(model, Forecaster)
    d, meta = task.data, task.meta()
    if meta.future_covariates:
        raise TaskError(
            "export: a forecaster with future covariates "
            f"({', '.join(meta.future_covariates)}) is not exported yet; its ONNX runtime "
            "reads the calendar features only"
        )
    L, H, C, P, K = model.L, model.H, model.C, model.P, model.K
    generator = torch.Generator().manual_seed(0)
    args: tuple[Tensor, ...] = (
        torch.randn(2, L, C, generator=generator),
        torch.randn(2, L + H, K, generator=generator),
    )
    names = ["scaled", "calendar"]
    if P:
        args, names = (*args, torch.randn(2, L, P, generator=generator)), [*names, "past"]
    outputs = ["params", "level"]
    attention = model.config.head == "attention"
    if attention:
        outputs.append("attention")
    axes = {name: {0: "B"} for name in [*names, "level"]}
    axes.update({"params": {1: "B"}, "attention": {1: "B"}})
    graph = ForecasterGraph(model)
    export_graph(
        graph, args, folder / GRAPH_FILE, names, outputs, {k: axes[k] for k in [*names, *outputs]}
    )
    return {
        "graph": GRAPH_FILE,
        "time_column": d.time_column,
        "targets": list(d.targets),
        "past_covariates": list(d.past_covariates),
        "freq": meta.freq,
        "date_format": d.date_format,
        "dayfirst": d.dayfirst,
        "fill_gaps": d.fill_gaps,
        "transform": task.transform,
        "lookback": L,
        "horizon": H,
        "calendar": list(meta.calendar),
        "target_scaler": _scaler(model.target_loc, model.target_scale, model.log),
        "past_scaler": _scaler(model.past_loc, model.past_scale, False),
        "likelihood": model.config.likelihood,
        "quantiles": list(model.levels),
        "attention": attention,
        "interval_residual": model.interval_residual.tolist() if model.calibrated else None,
    }
