"""Figures as PNG files (matplotlib, no display needed), written atomically.

Every function takes plain data and a path, draws one figure and returns the path.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnkit.io import write_bytes_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CELL_COLOURS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}


def new_figure(width: float = 6.4, height: float = 4.2) -> Figure:
    """A figure on the non-interactive Agg canvas (no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: Path) -> Path:
    """Render ``figure`` to PNG and write it to ``path`` atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    write_bytes_atomic(path, buffer.getvalue())
    return path


def plot_lines(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
    log_x: bool = False,
    hline: tuple[float, str] | None = None,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """One line per entry of ``series`` (label -> (x values, y values)); optional reference line.

    Args:
        series: label -> (xs, ys).
        path: the PNG to write.
        title, xlabel, ylabel: text of the figure.
        log_y, log_x: logarithmic axes.
        hline: (y, label) of a dashed horizontal reference line (e.g. a baseline).
        styles: label -> extra matplotlib keyword arguments (colour, linestyle, marker).
    """
    figure = new_figure()
    axes = figure.add_subplot(1, 1, 1)
    for label, (xs, ys) in series.items():
        style = dict((styles or {}).get(label, {}))
        style.setdefault("marker", "o" if len(xs) < 30 else None)
        axes.plot(list(xs), list(ys), label=label, **style)
    if hline is not None:
        axes.axhline(hline[0], color="grey", linestyle="--", linewidth=1, label=hline[1])
    if log_y:
        axes.set_yscale("log")
    if log_x:
        axes.set_xscale("log")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    axes.legend()
    return save_png(figure, path)


@dataclass(frozen=True)
class LinePanel:
    """One subplot of :func:`plot_panels`: lines (label -> (xs, ys)) and how to draw them.

    Attributes:
        series: label -> (xs, ys).
        title, xlabel, ylabel: text of the subplot.
        log_y: logarithmic y axis (non-positive values are left out by matplotlib).
        hline: (y, label) of a dashed horizontal reference line.
        styles: label -> extra matplotlib keyword arguments (colour, linestyle, marker).
    """

    series: Mapping[str, tuple[Sequence[float], Sequence[float]]]
    title: str
    xlabel: str
    ylabel: str
    log_y: bool = False
    hline: tuple[float, str] | None = None
    styles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def plot_panels(
    panels: Sequence[LinePanel], path: Path, *, title: str | None = None, columns: int = 2
) -> Path:
    """Several line plots in one figure, ``columns`` per row, each with its own legend; a PNG.

    Args:
        panels: the subplots, filled row by row.
        path: the PNG to write.
        title: optional title over the whole figure.
        columns: subplots per row.
    """
    if not panels:
        raise ValueError("plot_panels needs at least one panel")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    figure = new_figure(5.2 * columns, 3.9 * rows)
    for k, panel in enumerate(panels):
        axes = figure.add_subplot(rows, columns, k + 1)
        for label, (xs, ys) in panel.series.items():
            style = dict(panel.styles.get(label, {}))
            style.setdefault("marker", "o" if len(xs) < 30 else None)
            axes.plot(list(xs), list(ys), label=label, **style)
        if panel.hline is not None:
            axes.axhline(
                panel.hline[0], color="grey", linestyle="--", linewidth=1, label=panel.hline[1]
            )
        if panel.log_y:
            axes.set_yscale("log")
        axes.set_title(panel.title, fontsize=10)
        axes.set_xlabel(panel.xlabel)
        axes.set_ylabel(panel.ylabel)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
    if title is not None:
        figure.suptitle(title)
    figure.tight_layout()
    return save_png(figure, path)
