"""The memory benchmark's results as text and figures: a progress line per run, the table of
the held-out metric per cell and length, and the metric against the length as a PNG.

Every "solved" mark and threshold comes from the task's
:class:`~rnnkit.tasks.generated.SolvedRule` (through the result's own ``solved`` flag and
:func:`~rnnkit.diagnostics.memory_span.memory_task`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnkit.diagnostics.memory_span import MemoryResult, largest_solved, memory_task
from rnnkit.viz.figures import CELL_COLOURS, plot_lines

__all__ = ["format_result", "format_table", "plot_memory"]


def _group(results: Sequence[MemoryResult]) -> dict[tuple[str, int], list[MemoryResult]]:
    groups: dict[tuple[str, int], list[MemoryResult]] = {}
    for r in results:
        groups.setdefault((r.cell, r.length), []).append(r)
    return groups


def format_result(result: MemoryResult) -> str:
    """One progress line: ``lstm T=100 seed 0: mse 0.0042 solved (12.3 s, 1400 steps)``."""
    metric = memory_task(result.task).solved_rule.metric
    verdict = "solved" if result.solved else "not solved"
    return (
        f"{result.cell} T={result.length} seed {result.seed}: {metric} {result.metric:.4g} "
        f"{verdict} ({result.seconds:.1f} s, {result.steps} steps)"
    )


def format_table(results: Sequence[MemoryResult]) -> str:
    """The benchmark as text: one row per cell, one column per length, ``*`` marks solved.

    With several seeds a cell shows the mean metric and ``k/n`` seeds solved. The last lines give the
    baseline, the solved rule and the largest length each cell solves.
    """
    if not results:
        return "no results"
    task = results[0].task
    rule = memory_task(task).solved_rule
    metric = rule.metric
    cells = list(dict.fromkeys(r.cell for r in results))
    lengths = sorted({r.length for r in results})
    groups = _group(results)
    seeds = max(len(g) for g in groups.values())
    header = [f"{task} ({metric})", *(f"T={n}" for n in lengths)]
    rows = [header]
    for cell in cells:
        row = [cell]
        for n in lengths:
            group = groups.get((cell, n), [])
            if not group:
                row.append("-")
                continue
            mean = statistics.fmean(r.metric for r in group)
            solved = sum(r.solved for r in group)
            mark = (
                ("*" if solved == len(group) else " ") if seeds == 1 else f" {solved}/{len(group)}"
            )
            row.append(f"{mean:.4f}{mark}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    baselines = sorted({round(r.baseline, 4) for r in results})
    baseline_text = (
        f"{baselines[0]:.4f}"
        if len(baselines) == 1
        else ", ".join(f"T={r.length}: {r.baseline:.4f}" for r in _first_per_length(results))
    )
    solved_mark = "* = solved" if seeds == 1 else "k/n = seeds solved"
    lines.append(
        f"memoryless baseline: {baseline_text}; solved when {rule.describe()} ({solved_mark})"
    )
    best = largest_solved(results)
    lines.append(
        "largest length solved: "
        + ", ".join(f"{cell} {best[cell] if best[cell] is not None else 'none'}" for cell in cells)
    )
    return "\n".join(lines)


def _first_per_length(results: Sequence[MemoryResult]) -> list[MemoryResult]:
    seen: dict[int, MemoryResult] = {}
    for r in results:
        seen.setdefault(r.length, r)
    return [seen[n] for n in sorted(seen)]


def plot_memory(results: Sequence[MemoryResult], path: Path) -> Path:
    """Metric against length, one line per cell (mean over seeds), the baseline dashed; a PNG."""
    if not results:
        raise ValueError("no results to plot")
    task = results[0].task
    rule = memory_task(task).solved_rule
    metric = rule.metric
    groups = _group(results)
    series: dict[str, tuple[list[float], list[float]]] = {}
    styles: dict[str, dict[str, Any]] = {}
    for cell in dict.fromkeys(r.cell for r in results):
        lengths = sorted(n for c, n in groups if c == cell)
        means = [statistics.fmean(r.metric for r in groups[(cell, n)]) for n in lengths]
        series[cell] = ([float(n) for n in lengths], means)
        styles[cell] = {"color": CELL_COLOURS.get(cell), "marker": "o"}
    per_length = _first_per_length(results)
    baselines = {round(r.baseline, 6) for r in per_length}
    hline: tuple[float, str] | None = None
    if len(baselines) == 1:
        hline = (per_length[0].baseline, "memoryless baseline")
    else:
        series["memoryless baseline"] = (
            [float(r.length) for r in per_length],
            [r.baseline for r in per_length],
        )
        styles["memoryless baseline"] = {"color": "grey", "linestyle": "--", "marker": None}
    solved = f"solved: {rule.describe()}"
    series[solved] = (
        [float(r.length) for r in per_length],
        [rule.threshold_for(r.baseline) for r in per_length],
    )
    styles[solved] = {"color": "black", "linestyle": ":", "marker": None}
    return plot_lines(
        series,
        path,
        title=f"{task}: test {metric}, the same time budget per run",
        xlabel="sequence length T",
        ylabel=f"test {metric}",
        log_x=True,
        log_y=metric != "accuracy",
        hline=hline,
        styles=styles,
    )
