"""Training throughput of 1 process x 2 threads against 2 processes x 1 thread (torchrun, gloo).

Usage: ``python benchmarks/ddp.py [--steps 60] [--hidden 128 512]``

The built-in ``copy`` task (a fixed-context LSTM seq2seq, symbols 4 to 12 long), trained through
the command line with the same global batch of 128 sequences either way:

- ``rnnkit train copy --threads 2`` with ``train.batch_size=128`` (one process, two threads);
- ``torchrun --standalone --nproc-per-node 2 -m rnnkit train copy --threads 1`` with
  ``train.batch_size=64`` (two processes, one thread each, gradients averaged by DDP over gloo).

Throughput is target tokens per second of wall clock between the first and the last metrics row
(a row every 10 steps; start-up, the first 10 steps and the final files are left out), read from
each run's ``metrics.csv`` (whose token counts are global in a distributed run). Validation and
checkpoints are pushed past the budget. The load average before each run is printed: another
process on the 2 cores slows the run that needs both. About 1 to 2 minutes at the defaults.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GLOBAL_BATCH = 128


def throughput(run_dir: Path) -> tuple[float, int]:
    """(target tokens / s between the first and last rows, steps between them)."""
    with (run_dir / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    first, last = rows[0], rows[-1]
    tokens = int(last["target_tokens"]) - int(first["target_tokens"])
    seconds = float(last["elapsed_s"]) - float(first["elapsed_s"])
    return tokens / seconds, int(last["step"]) - int(first["step"])


def train(run_dir: Path, processes: int, hidden: int, steps: int) -> tuple[float, int]:
    """Train copy in ``processes`` processes of ``2 // processes`` threads; its throughput."""
    threads = 2 // processes
    args = [
        "train",
        "copy",
        "--out",
        str(run_dir),
        "--threads",
        str(threads),
        "--set",
        f"train.batch_size={GLOBAL_BATCH // processes}",
        "--set",
        f"model.hidden_size={hidden}",
        "--set",
        f"train.max_steps={steps}",
        "--set",
        "train.max_time_s=600",
        "--set",
        f"train.eval_every={10 * steps}",
        "--set",
        f"train.checkpoint_every={10 * steps}",
        "--set",
        "train.log_every=10",
        "--set",
        "train.progress=false",
    ]
    if processes == 1:
        command = [sys.executable, "-m", "rnnkit", *args]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(processes),
            "-m",
            "rnnkit",
            *args,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=1200)
    return throughput(run_dir)


def main() -> None:
    """Run both layouts for each hidden size and print tokens/s and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="training steps of each run (60)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 512], help="H (128 512)")
    args = parser.parse_args()
    print(f"copy task, global batch {GLOBAL_BATCH}, {args.steps} steps, {os.cpu_count()} cores")
    print(f"  {'H':>5s} {'1 proc x 2 threads':>20s} {'2 procs x 1 thread':>20s} {'2p / 1p':>8s}")
    with tempfile.TemporaryDirectory() as folder:
        for hidden in args.hidden:
            speeds = []
            loads = []
            for processes in (1, 2):
                loads.append(os.getloadavg()[0])
                run_dir = Path(folder) / f"h{hidden}-p{processes}"
                speed, _ = train(run_dir, processes, hidden, args.steps)
                speeds.append(speed)
            print(
                f"  {hidden:5d} {speeds[0]:14.0f} tok/s {speeds[1]:14.0f} tok/s "
                f"{speeds[1] / speeds[0]:7.2f}x   (load before: {loads[0]:.2f}, {loads[1]:.2f})"
            )


if __name__ == "__main__":
    main()
