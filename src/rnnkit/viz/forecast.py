"""Forecast figures: history, forecast, prediction intervals, actuals and attention weights.

Plain data in (arrays and timestamps), a figure out, drawn on
:func:`rnnkit.viz.figures.new_figure` (no global pyplot state); write it with
:func:`~rnnkit.viz.figures.save_png` (atomically), or read its axes in a test. Shapes: N history steps, H
forecast steps, C series, L lookback steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnkit.viz.figures import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Interval:
    """A central prediction interval: ``percent`` % of the mass between ``lower`` and ``upper``,
    each (H, C)."""

    percent: int
    lower: np.ndarray
    upper: np.ndarray


def forecast_figure(
    *,
    names: Sequence[str],
    history_time: Any,
    history: np.ndarray,
    time: Any,
    point: np.ndarray,
    intervals: Sequence[Interval] = (),
    actuals: tuple[Any, np.ndarray] | None = None,
    attention: np.ndarray | None = None,
    context: int | None = None,
) -> Figure:
    """One panel per series (history in black, forecast in blue, intervals as bands, actuals in
    red), and under them a heatmap of the attention weights when given.

    Args:
        names: the C series' names (the panels' titles).
        history_time: (N,) timestamps of ``history``. history: (N, C) values.
        time: (H,) forecast timestamps. point: (H, C) point forecasts.
        intervals: central intervals, drawn widest first (the narrowest darkest).
        actuals: (timestamps (M,), values (M, C)) of known true values; those at forecast
            timestamps are drawn.
        attention: (H, L) weights of each forecast step over the lookback, oldest first.
        context: history steps drawn (default 4 H).

    Returns:
        The figure (axes: C series panels, then the attention panel and its colour bar).
    """
    C = len(names)
    H = len(point)
    show = context if context is not None else 4 * H
    rows = C + (attention is not None)
    figure = new_figure(10.0, 3.2 * rows)
    grid = figure.subplots(rows, 1, squeeze=False)
    widest_first = sorted(intervals, key=lambda i: -i.percent)
    forecast_time = np.asarray(time)
    for c, name in enumerate(names):
        ax = grid[c, 0]
        ax.plot(
            np.asarray(history_time)[-show:], history[-show:, c], color="black", label="history"
        )
        for n, interval in enumerate(widest_first):
            ax.fill_between(
                forecast_time,
                interval.lower[:, c],
                interval.upper[:, c],
                color="tab:blue",
                alpha=0.15 + 0.15 * n,
                label=f"{interval.percent} % interval",
            )
        ax.plot(forecast_time, point[:, c], color="tab:blue", label="forecast")
        if actuals is not None:
            actual_time, values = np.asarray(actuals[0]), actuals[1]
            known = np.isin(actual_time, forecast_time)
            if known.any():
                ax.plot(
                    actual_time[known],
                    values[known, c],
                    color="tab:red",
                    marker=".",
                    label="actual",
                )
        ax.set_title(name)
        ax.legend(loc="upper left")
    if attention is not None:
        ax = grid[C, 0]
        image = ax.imshow(attention, aspect="auto", cmap="viridis")  # (H, L)
        ax.set_xlabel("lookback step (oldest to newest)")
        ax.set_ylabel("forecast step")
        ax.set_title("attention weights")
        figure.colorbar(image, ax=ax)
    figure.tight_layout()
    return figure
