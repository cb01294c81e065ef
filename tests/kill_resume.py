"""Kill ``rnnkit train`` at random moments, recover as a user would, compare with a straight run.

Each trial starts ``rnnkit train adding`` (a checkpoint after every step) in a fresh folder, sends
SIGKILL after a delay drawn uniformly from the whole length of an uninterrupted run, start-up and
checkpoint writes included, then recovers the way a user would: ``--resume`` when the folder exists,
the same command again when it does not. A trial passes when the recovered run ends with weights
bitwise equal to the uninterrupted run's. ``tests/test_kill_resume.py`` runs a few trials; the full
count is::

    python tests/kill_resume.py --trials 100

It prints one line per trial (delay, what the kill left, how it recovered) and ``K/N recovered``,
and exits non-zero unless every trial recovered.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file

STEPS = 150


def train_command(run: Path, steps: int) -> list[str]:
    """The ``rnnkit train`` command line of one trial's run in folder ``run``."""
    return [
        sys.executable,
        "-m",
        "rnnkit",
        "train",
        "adding",
        "--out",
        str(run),
        "--set",
        f"train.max_steps={steps}",
        "--set",
        "train.checkpoint_every=1",
        "--set",
        "train.threads=1",
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def straight_run(run: Path, steps: int = STEPS) -> float:
    """Train without interruption into ``run``; return the wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(train_command(run, steps), env=_env(), check=True, capture_output=True)
    return time.perf_counter() - start


def _left(run: Path) -> str:
    """What a kill left in ``run``, in a few words."""
    if not run.exists():
        return "no folder"
    if not (run / "config.yaml").exists():
        return "folder, no config"
    checkpoints = sorted((run / "checkpoints").glob("*")) if (run / "checkpoints").exists() else []
    if (run / "model.safetensors").exists():
        return "finished"
    return f"config, {len(checkpoints)} checkpoint files"


@dataclass(frozen=True)
class Trial:
    """One kill and its recovery."""

    delay_s: float
    left: str
    recovery: str
    returncode: int
    identical: bool
    error: str


def kill_and_recover(run: Path, delay_s: float, reference: Path, steps: int = STEPS) -> Trial:
    """Start a run in ``run``, SIGKILL it after ``delay_s``, recover, compare with ``reference``."""
    proc = subprocess.Popen(
        train_command(run, steps),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=delay_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = _left(run)
    recovery = "--resume" if run.exists() else "rerun"
    command = train_command(run, steps) + (["--resume"] if run.exists() else [])
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    identical = False
    if done.returncode == 0:
        want, got = load_file(reference / "model.safetensors"), load_file(run / "model.safetensors")
        identical = want.keys() == got.keys() and all(bool((want[k] == got[k]).all()) for k in want)
    error = done.stderr.strip().splitlines()[-1] if done.returncode else ""
    return Trial(delay_s, left, recovery, done.returncode, identical, error)


def run_trials(
    trials: int,
    workdir: Path,
    *,
    seed: int = 0,
    steps: int = STEPS,
    report: Callable[[str], None] = print,
) -> list[Trial]:
    """``trials`` kills at delays uniform over the straight run's wall time; one line each."""
    reference = workdir / "straight"
    wall = straight_run(reference, steps)
    report(f"straight run: {steps} steps in {wall:.1f} s (start-up included)")
    rng = random.Random(seed)
    results = []
    for i in range(trials):
        trial = kill_and_recover(workdir / f"trial-{i}", rng.uniform(0.0, wall), reference, steps)
        results.append(trial)
        verdict = "identical" if trial.identical else f"FAILED rc={trial.returncode} {trial.error}"
        report(
            f"trial {i + 1:3d}: killed at {trial.delay_s:5.2f} s, left {trial.left}; "
            f"{trial.recovery}: {verdict}"
        )
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--trials N`` (100), ``--seed S``, ``--steps N``, ``--keep DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--keep", type=Path, help="keep the run folders here (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = run_trials(args.trials, workdir, seed=args.seed, steps=args.steps)
    ok = sum(t.identical for t in results)
    print(f"{ok}/{len(results)} recovered with weights bitwise equal to the straight run")
    return 0 if ok == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
