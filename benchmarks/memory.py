"""The memory benchmark at its defaults: how far back can each cell remember?

Usage: ``python benchmarks/memory.py [--plot docs/figures/memory.png] [--json FILE] [--task TASK]``

Runs exactly what ``rnnkit diagnose memory`` runs by default: the Elman RNN, LSTM and GRU on the
adding problem at T = 5, 10, 20, 50, 100, 200, one seed, H = 64, at most 90 s of training per run
(a run stops as soon as it is solved on validation), in two worker processes on two cores. It prints
a line per finished run, the table of test MSE per cell and length, the largest length each cell
solves, the wall-clock time and the load average before and after (a load above the number of
workers means other processes competed for the CPU and the time budgets bought fewer steps).
Expected: the RNN solves T = 10 but not T = 100; the LSTM and GRU solve T = 100 and T = 200.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from rnnkit.diagnostics.memory_report import format_result, format_table, plot_memory
from rnnkit.diagnostics.memory_span import (
    DEFAULT_LENGTHS,
    MemoryResult,
    largest_solved,
    memory_benchmark,
)


def main() -> int:
    """Run the benchmark and print the table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="adding", help="adding, copy_memory or first_token")
    parser.add_argument("--max-time-s", type=float, default=90.0, help="budget per run (90)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per cell and length (1)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (CPU cores)")
    parser.add_argument("--plot", metavar="PNG", help="write metric against length here")
    parser.add_argument("--json", metavar="FILE", help="write the results here as JSON")
    args = parser.parse_args()

    def progress(result: MemoryResult) -> None:
        print(format_result(result), file=sys.stderr, flush=True)

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    results = memory_benchmark(
        task=args.task,
        lengths=DEFAULT_LENGTHS,
        max_time_s=args.max_time_s,
        seeds=args.seeds,
        jobs=args.jobs,
        on_result=progress,
    )
    wall = time.perf_counter() - start
    print(format_table(results))
    print(
        f"wall clock {wall / 60:.1f} min; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    if args.plot:
        print(f"figure: {plot_memory(results, Path(args.plot))}")
    if args.json:
        payload = {
            "results": [r.to_dict() for r in results],
            "largest_solved": largest_solved(results),
            "wall_s": wall,
        }
        Path(args.json).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
