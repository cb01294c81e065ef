"""How far back can each cell remember? Train every cell on a long-memory task at growing lengths
under the same budget, and report the held-out metric against the memoryless baseline.

Each (cell, length, seed) is an ordinary run of the task (:func:`rnnkit.training.train_task`,
stopped early once validation is solved with a margin), evaluated on a test stream the run never
saw. Runs go to worker processes, one intra-op thread each, so two cores train two models.

The tasks (:class:`~rnnkit.tasks.generated.MemoryTask` s: ``adding`` in
:mod:`rnnkit.tasks.synthetic`, ``copy_memory`` and ``first_token`` in
:mod:`rnnkit.tasks.long_memory`): ``adding`` (B, T, 2) -> (B, 1) regression, solved at test
MSE < 0.01 against a baseline of 1/6; ``copy_memory`` (B, T + 20) tokens -> (B, T + 20) labels,
solved below a tenth of the memoryless cross-entropy 10 log 8 / (T + 20); ``first_token`` (B, T)
tokens -> (B,) class, solved at accuracy >= 0.99 against 1/V. Each task's
:class:`~rnnkit.tasks.generated.SolvedRule` is the only definition of "solved" used here.

The results as text and figures: :mod:`rnnkit.diagnostics.memory_report`.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from rnnkit.tasks.generated import MemoryTask
from rnnkit.tasks.registry import get_task

MEMORY_TASKS = ("adding", "copy_memory", "first_token")
"""The tasks ``rnnkit diagnose memory`` runs (each a :class:`~rnnkit.tasks.generated.MemoryTask`)."""
CELLS = ("rnn", "lstm", "gru")
DEFAULT_LENGTHS = (5, 10, 20, 50, 100, 200)
STOP_MARGIN = 2.0
"""A run stops once its validation metric is solved with this margin (see :func:`solved_with_margin`)."""


def memory_task(name: str) -> type[MemoryTask]:
    """The task class of memory task ``name``; a ValueError lists the valid ones."""
    if name not in MEMORY_TASKS:
        raise ValueError(f"unknown memory task '{name}'; valid tasks: {', '.join(MEMORY_TASKS)}")
    task = get_task(name)
    if not issubclass(task, MemoryTask):
        raise ValueError(f"task '{name}' is not a memory task (no baseline or solved rule)")
    return task


@dataclass(frozen=True)
class MemoryResult:
    """One cell at one length: held-out metric, the memoryless baseline, solved or not."""

    cell: str
    task: str
    length: int
    seed: int
    metric: float
    baseline: float
    solved: bool
    seconds: float
    steps: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (one entry of ``--json``'s ``results``)."""
        return asdict(self)


LEARNING_RATES = {"rnn": 1e-3, "lstm": 1e-2, "gru": 1e-2}
"""Adam learning rate of each cell, the best of 1e-3, 3e-3 and 1e-2 on the adding problem (see
docs/diagnostics.md): at 1e-2 the Elman RNN's loss jumps about and it fails even T=20, at 1e-3 it
solves T=50; the LSTM and GRU learn T=200 two to three times faster at 1e-2 than at 3e-3."""


@dataclass(frozen=True)
class RunSpec:
    """One training run of the benchmark.

    Attributes:
        task, cell, length, seed: what to train (``length`` is T; the seed draws the initial
            weights and the data).
        hidden_size: H.
        max_time_s: training budget in seconds; the run stops earlier once validation is solved.
        max_steps: optional step budget as well (whichever ends first); steps do not depend on
            the machine's speed, so a step budget gives the same result everywhere.
        lr: Adam learning rate; None takes the cell's entry of :data:`LEARNING_RATES`.
        run_dir: keep the run folder there (else a temporary folder).
        threads: the run's ``train.threads`` (1: the workers share the cores; None: auto).
    """

    task: str
    cell: str
    length: int
    seed: int
    hidden_size: int
    max_time_s: float
    max_steps: int | None = None
    lr: float | None = None
    run_dir: str | None = None
    threads: int | None = 1


def memory_config(spec: RunSpec) -> dict[str, Any]:
    """The raw run config of one benchmark run (validated by :func:`build_run_config`).

    Adam at the cell's learning rate, batch 64, gradient norm clipped to 1, validation on 512
    held-out sequences every 100 steps, ``spec.threads`` threads (default one); models of token tasks embed in E = 16.
    """
    model: dict[str, Any] = {"cell": spec.cell, "hidden_size": spec.hidden_size}
    if "embedding_size" in memory_task(spec.task).ModelConfig.model_fields:  # token inputs
        model["embedding_size"] = 16
    return {
        "task": spec.task,
        "data": {
            "length": spec.length,
            "seed": spec.seed,
            "train_size": 1_000_000,
            "valid_size": 512,
        },
        "model": model,
        "train": {
            "lr": spec.lr if spec.lr is not None else LEARNING_RATES.get(spec.cell, 3e-3),
            "batch_size": 64,
            "max_time_s": spec.max_time_s,
            "max_steps": spec.max_steps,
            "eval_every": 100,
            "clip_grad_norm": 1.0,
            "checkpoint_every": 1_000_000,
            "keep_checkpoints": 1,
            "log_every": 50,
            "progress": False,
            "seed": spec.seed,
            "threads": spec.threads,
        },
    }


def solved_with_margin(task: MemoryTask) -> Callable[[float], bool]:
    """When a run may stop: its validation metric is solved with a margin of two.

    Stopping as soon as validation crosses the threshold leaves the test metric (another sample)
    on the threshold, solved or not by chance. So a loss must be below half the threshold (the
    adding problem: validation MSE < 0.005 for a test MSE < 0.01) and an accuracy's error below
    half the allowed error (first token: validation accuracy >= 0.995). The trainer calls it with
    the task's ``best_metric``, which is its solved rule's metric.
    """
    return lambda value: task.memory_solved(value, margin=STOP_MARGIN)


def run_one(spec: RunSpec) -> MemoryResult:
    """Train and test one run: train until solved on validation or out of budget, then test.

    The test set is the task's held-out stream (2000 sequences never seen in training or
    validation), scored with the weights that were best on validation. A run stops early once
    validation is solved with a margin (:func:`solved_with_margin`). A kept run folder
    (``spec.run_dir``) is a normal one (``config.yaml``, ``best.safetensors``, ``metrics.csv``),
    so ``rnnkit evaluate`` and ``rnnkit predict`` work on it.
    """
    from rnnkit.tasks.run import build_run_config, load_run, write_config
    from rnnkit.training import train_task

    config = build_run_config(memory_config(spec))
    with tempfile.TemporaryDirectory(prefix="rnnkit-memory-") as tmp:
        folder = Path(spec.run_dir) if spec.run_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        write_config(config, folder)
        task = memory_task(spec.task)(config, folder)
        start = time.perf_counter()
        result = train_task(task, folder, stop_when=solved_with_margin(task))
        seconds = time.perf_counter() - start
        model = load_run(folder, "best").model  # best.safetensors, else model.safetensors
        metrics = task.evaluate(model, task.test_batches())
    value = metrics[task.solved_rule.metric]
    return MemoryResult(
        cell=spec.cell,
        task=spec.task,
        length=spec.length,
        seed=spec.seed,
        metric=value,
        baseline=task.memory_baseline(),
        solved=task.memory_solved(value),
        seconds=seconds,
        steps=result.step,
    )


def default_jobs() -> int:
    """Worker processes when none are asked for: the CPU cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def worker_setup() -> None:
    """Set up a benchmark worker process for fast, comparable CPU training runs.

    One intra-op thread (the workers share the cores); denormal floats flushed to zero (vanishing
    gradients underflow into them, and the CPU handles them up to 10x slower: an LSTM step at T=200
    took 160 ms instead of 27 ms); and, with glibc, freed memory kept for reuse rather than
    returned to the OS (which cost a page fault per page on every step, about 40% of a step at
    T=200). Meant for worker processes: the settings are process-wide.
    """
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 1 << 30)
    mallopt(m_trim_threshold, 1 << 30)


def run_many(
    specs: Sequence[RunSpec],
    *,
    jobs: int | None = None,
    on_result: Callable[[MemoryResult], None] | None = None,
) -> list[MemoryResult]:
    """Run every spec in ``jobs`` spawned worker processes; return the results in spec order.

    Every run goes to a worker (set up by :func:`worker_setup`), even with ``jobs=1``, so that the
    calling process keeps its settings and every run sees the same ones. The longest sequences
    start first, so the pool does not end waiting on one slow run. ``on_result`` is called in this
    process with each result as it arrives.
    """
    jobs = jobs or default_jobs()
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if not specs:
        return []
    order = sorted(range(len(specs)), key=lambda i: -specs[i].length)
    results: dict[int, MemoryResult] = {}
    workers = min(jobs, len(specs))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=worker_setup
    ) as pool:
        futures = {pool.submit(run_one, specs[i]): i for i in order}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            if on_result is not None:
                on_result(results[i])
    return [results[i] for i in range(len(specs))]


def min_length(task: str) -> int:
    """The shortest sequence length memory task ``task``'s data config accepts."""
    field = memory_task(task).DataConfig.model_fields["length"]
    return max((int(getattr(m, "ge", 1)) for m in field.metadata), default=1)


def check_grid(cells: Sequence[str], task: str, lengths: Sequence[int]) -> None:
    """Raise ValueError naming the first unknown cell, unknown task or bad length."""
    if not cells:
        raise ValueError(f"no cells given; valid cells: {', '.join(CELLS)}")
    for cell in cells:
        if cell not in CELLS:
            raise ValueError(f"unknown cell '{cell}'; valid cells: {', '.join(CELLS)}")
    minimum = min_length(task)
    if not lengths or min(lengths) < minimum:
        raise ValueError(
            f"lengths must be integers >= {minimum} for task '{task}', got {list(lengths)}"
        )


def memory_benchmark(
    *,
    cells: Sequence[str] = CELLS,
    task: str = "adding",
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    hidden_size: int = 64,
    max_time_s: float = 90.0,
    max_steps: int | None = None,
    lr: float | None = None,
    seeds: int = 1,
    jobs: int | None = None,
    out: Path | None = None,
    on_result: Callable[[MemoryResult], None] | None = None,
    threads: int | None = 1,
) -> list[MemoryResult]:
    """Train every cell at every length (``seeds`` times) and test it.

    Args:
        cells: any of "rnn", "lstm", "gru".
        task: "adding", "copy_memory" or "first_token".
        lengths: sequence lengths T (the delay for copy_memory).
        hidden_size: H of every model.
        max_time_s: training budget of each run (a run stops earlier once solved on validation).
        max_steps: optional step budget of each run as well (whichever ends first).
        lr: Adam learning rate of every cell; None: each cell's :data:`LEARNING_RATES` entry.
        seeds: runs per (cell, length), with seeds 0 .. seeds-1.
        jobs: worker processes (default: the CPU cores available, at most 4).
        out: keep each run folder under ``out/<task>-<cell>-T<length>-s<seed>``.
        on_result: called with each result as it arrives (progress reporting).
        threads: intra-op threads of each worker (default 1: the workers share the cores;
            None: the auto policy of :func:`~rnnkit.training.device.choose_threads`).

    Returns:
        Results ordered by cell, length, seed.
    """
    check_grid(cells, task, lengths)
    if hidden_size < 1:
        raise ValueError(f"hidden_size must be >= 1, got {hidden_size}")
    if not max_time_s > 0:
        raise ValueError(f"max_time_s must be > 0, got {max_time_s}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if lr is not None and not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    specs = [
        RunSpec(
            task=task,
            cell=cell,
            length=length,
            seed=seed,
            hidden_size=hidden_size,
            max_time_s=max_time_s,
            max_steps=max_steps,
            lr=lr,
            run_dir=None if out is None else str(out / f"{task}-{cell}-T{length}-s{seed}"),
            threads=threads,
        )
        for cell in cells
        for length in lengths
        for seed in range(seeds)
    ]
    return run_many(specs, jobs=jobs, on_result=on_result)


def largest_solved(results: Sequence[MemoryResult]) -> dict[str, int | None]:
    """For each cell, the largest length at which every seed solved the task (None if none)."""
    out: dict[str, int | None] = {}
    for cell in dict.fromkeys(r.cell for r in results):
        lengths = sorted({r.length for r in results if r.cell == cell})
        solved = [
            n for n in lengths if all(r.solved for r in results if r.cell == cell and r.length == n)
        ]
        out[cell] = max(solved) if solved else None
    return out
