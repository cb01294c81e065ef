"""``rnnkit diagnose``: how far back each cell remembers, and how gradients flow through time.

- ``rnnkit diagnose memory``: every cell on a long-memory task at growing lengths under the same
  budget; a table of the held-out metric (``--json``: the results as JSON; ``--plot``: a PNG).
- ``rnnkit diagnose gradients``: ``||dL/dh_t||`` per cell at initialisation and after training,
  spectral radii of ``W_hh``, and an exploding-gradient run with and without clipping.

Each sub-verb parses its arguments, calls one function of :mod:`rnnkit.diagnostics` and prints or
writes the result; progress goes to stderr (a bar on a terminal, else one line per finished run).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def parse_cells(text: str) -> list[str]:
    """``"rnn,lstm"`` -> ["rnn", "lstm"]; ValueError naming an unknown cell."""
    from rnnkit.diagnostics.memory_span import CELLS

    cells = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not cells:
        raise ValueError(f"--cells is empty; valid cells: {', '.join(CELLS)}")
    for cell in cells:
        if cell not in CELLS:
            raise ValueError(f"--cells: unknown cell '{cell}'; valid cells: {', '.join(CELLS)}")
    if len(set(cells)) != len(cells):
        raise ValueError(f"--cells names a cell twice: {text}")
    return cells


def parse_lengths(text: str) -> list[int]:
    """``"5,10,20"`` -> [5, 10, 20]; ValueError unless every entry is a positive integer."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        lengths = [int(part) for part in parts]
    except ValueError:
        lengths = []
    if not lengths or min(lengths) < 1:
        raise ValueError(f"--lengths must be comma-separated positive integers, got '{text}'")
    if len(set(lengths)) != len(lengths):
        raise ValueError(f"--lengths names a length twice: {text}")
    return lengths


def parse_task(text: str) -> str:
    """``copy-memory`` and ``copy_memory`` both name the copy-memory task."""
    from rnnkit.diagnostics.memory_span import MEMORY_TASKS

    task = text.strip().lower().replace("-", "_")
    if task not in MEMORY_TASKS:
        valid = ", ".join(t.replace("_", "-") for t in MEMORY_TASKS)
        raise ValueError(f"--task: unknown memory task '{text}'; valid tasks: {valid}")
    return task


class _Progress:
    """A tqdm bar with a line per finished run on a terminal; the lines alone otherwise."""

    def __init__(self, total: int) -> None:
        self.done = 0
        self.total = total
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, file=sys.stderr, unit="run", dynamic_ncols=True)

    def __call__(self, result: Any) -> None:
        from rnnkit.diagnostics.memory_report import format_result

        self.done += 1
        line = f"[{self.done}/{self.total}] {format_result(result)}"
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
            self.bar.update(1)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Close the bar, if there is one."""
        if self.bar is not None:
            self.bar.close()


def _with_progress(total: int, work: Callable[[_Progress], Any]) -> Any:
    progress = _Progress(total)
    try:
        return work(progress)
    finally:
        progress.close()


def _memory(args: argparse.Namespace) -> int:
    from rnnkit.diagnostics.memory_report import format_table, plot_memory
    from rnnkit.diagnostics.memory_span import check_grid, largest_solved, memory_benchmark

    cells = parse_cells(args.cells)
    lengths = parse_lengths(args.lengths)
    task = parse_task(args.task)
    check_grid(cells, task, lengths)
    total = len(cells) * len(lengths) * args.seeds
    results = _with_progress(
        total,
        lambda progress: memory_benchmark(
            cells=cells,
            task=task,
            lengths=lengths,
            hidden_size=args.hidden_size,
            max_time_s=args.max_time_s,
            max_steps=args.max_steps,
            lr=args.lr,
            seeds=args.seeds,
            jobs=args.jobs,
            out=Path(args.out) if args.out else None,
            on_result=progress,
            threads=args.threads,
        ),
    )
    if args.plot:
        plot_memory(results, Path(args.plot))
    if args.json:
        payload = {
            "results": [r.to_dict() for r in results],
            "largest_solved": largest_solved(results),
        }
        print(json.dumps(payload))
    else:
        print(format_table(results))
        if args.plot:
            print(f"figure: {args.plot}")
    return 0


def _gradients(args: argparse.Namespace) -> int:
    from rnnkit.diagnostics.gradient_report import (
        format_gradient_report,
        gradient_diagnostics,
        plot_gradient_report,
    )

    cells = parse_cells(args.cells)
    total = len(cells) if args.train_time_s > 0 else 0
    report = _with_progress(
        total,
        lambda progress: gradient_diagnostics(
            cells=cells,
            length=args.length,
            hidden_size=args.hidden_size,
            train_time_s=args.train_time_s,
            max_steps=args.max_steps,
            radius=args.radius,
            lr=args.lr,
            steps=args.steps,
            clip_grad_norm=args.clip,
            seed=args.seed,
            jobs=args.jobs,
            on_result=progress,
            threads=args.threads,
        ),
    )
    if args.plot:
        plot_gradient_report(report, Path(args.plot))
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(format_gradient_report(report))
        if args.plot:
            print(f"figure: {args.plot}")
    return 0


def add_parser(verbs: Any) -> None:
    """Register ``rnnkit diagnose`` and its sub-verbs on the top-level subparsers ``verbs``."""
    from rnnkit.cli.main import add_threads_option

    parser: argparse.ArgumentParser = verbs.add_parser(
        "diagnose", help="measure memory and gradient flow of the cells"
    )
    what = parser.add_subparsers(dest="what", required=True, metavar="WHAT")

    memory = what.add_parser(
        "memory",
        help="train every cell on a long-memory task at growing lengths; table of test metrics",
        description=(
            "Train every cell on a long-memory task at every length under the same time budget "
            "(a run stops early once solved on validation), test it on held-out data and print "
            "a table of the test metric per cell and length with a solved flag. Runs go to "
            "--jobs worker processes (one thread each). The defaults (3 cells x 6 lengths x 1 "
            "seed, at most 90 s each, 2 workers on 2 cores) take about 3 minutes, and under 15 "
            "minutes even if every run used its whole budget."
        ),
    )
    memory.add_argument(
        "--cells", default="rnn,lstm,gru", help="comma-separated cells (default: rnn,lstm,gru)"
    )
    memory.add_argument(
        "--task",
        default="adding",
        help="adding, copy-memory or first-token; the table ends with the task's memoryless "
        "baseline and its rule for solved (default: adding)",
    )
    memory.add_argument(
        "--lengths",
        default="5,10,20,50,100,200",
        help="comma-separated sequence lengths T (default: 5,10,20,50,100,200)",
    )
    memory.add_argument(
        "--hidden-size", type=int, default=64, help="H of every model (default: 64)"
    )
    memory.add_argument(
        "--max-time-s",
        type=float,
        default=90.0,
        help="training budget of each run in seconds (default: 90)",
    )
    memory.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="also stop each run after this many steps (a budget independent of the machine)",
    )
    memory.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate of every cell (default: rnn 1e-3, lstm and gru 1e-2)",
    )
    memory.add_argument(
        "--seeds", type=int, default=1, help="runs per cell and length, seeds 0.. (default: 1)"
    )
    memory.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: CPU cores, at most 4)"
    )
    add_threads_option(
        memory,
        help="torch's CPU threads of each worker, N >= 1 or auto (default: 1, as the workers "
        "share the cores; auto chooses from the model's size and the cores)",
        default=1,
    )
    memory.add_argument("--out", metavar="DIR", help="keep every run folder under DIR")
    memory.add_argument("--json", action="store_true", help="print the results as JSON")
    memory.add_argument("--plot", metavar="FILE", help="write metric against length as a PNG")
    memory.set_defaults(handler=_memory)

    gradients = what.add_parser(
        "gradients",
        help="||dL/dh_t|| per cell at init and after training; exploding gradients and clipping",
        description=(
            "Vanishing gradients: ||dL/dh_t|| for every step t of the adding problem of length "
            "--length, per cell, at initialisation and after --train-time-s of training, with "
            "the spectral radius of W_hh per gate. Exploding gradients: an Elman RNN whose W_hh "
            "is scaled to spectral radius --radius, trained by SGD for --steps steps without "
            "and with gradient clipping; the gradient norm before clipping and the loss per "
            "step. The defaults take about a minute on 2 cores."
        ),
    )
    gradients.add_argument(
        "--cells", default="rnn,lstm,gru", help="comma-separated cells (default: rnn,lstm,gru)"
    )
    gradients.add_argument("--length", type=int, default=100, help="T (default: 100)")
    gradients.add_argument("--hidden-size", type=int, default=64, help="H (default: 64)")
    gradients.add_argument(
        "--train-time-s",
        type=float,
        default=30.0,
        help="training budget per cell in seconds; 0 = initial curves only (default: 30)",
    )
    gradients.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="also stop each training run after this many steps (a budget independent of the "
        "machine)",
    )
    gradients.add_argument(
        "--radius",
        type=float,
        default=2.0,
        help="spectral radius of W_hh, exploding run (default: 2)",
    )
    gradients.add_argument(
        "--lr", type=float, default=0.05, help="SGD lr, exploding run (default: 0.05)"
    )
    gradients.add_argument(
        "--steps", type=int, default=300, help="SGD steps, exploding run (default: 300)"
    )
    gradients.add_argument(
        "--clip", type=float, default=1.0, help="clip_grad_norm of the clipped run (default: 1.0)"
    )
    gradients.add_argument("--seed", type=int, default=0, help="weights and data seed (default: 0)")
    gradients.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: CPU cores, at most 4)"
    )
    add_threads_option(
        gradients,
        help="torch's CPU threads of this process and of each training worker, N >= 1 or auto "
        "(default: auto here, which is 1 for these small models, and 1 per worker)",
    )
    gradients.add_argument("--json", action="store_true", help="print the results as JSON")
    gradients.add_argument(
        "--plot", metavar="FILE", help="write the four panels (flow, grad norm, loss) as a PNG"
    )
    gradients.set_defaults(handler=_gradients)
