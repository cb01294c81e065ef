"""Training steps per second against the thread count, on an idle and on a busy CPU.

Usage: ``python benchmarks/threads.py [--quick]``

Two translation models (rnnkit's ``Seq2Seq``: bidirectional LSTM encoder, LSTM decoder with
additive attention, batch 64, source and target 20 tokens, Adam), trained on random token batches:

- small: E 32, H 64, 2 000 tokens a side (the size of a first translation experiment);
- large: E 256, encoder 2 x 256, decoder 512, 8 000 tokens a side (the Bible model of
  ``translate-bible-en-fr``).

Each is timed with 1 thread, with 2 threads and with the auto policy
(:func:`rnnkit.training.device.choose_threads`, whose count is printed; a count already timed is
not timed again), first on the machine as it is ("idle") and then with a busy loop pinned to one
of this process's cores ("busy": a ``multiprocessing`` process spinning, started and stopped by
this script), which is what another job on a shared machine does. A row gives steps/s (after one
warm-up step, steps until the time budget is spent, at least two; one with ``--quick``) and the ratio of auto to the
best count of that model and load. The 1-minute load average is printed before each part: above
the cores, other processes were competing as well.

About 2.5 minutes on 2 cores; ``--quick`` (about 1 minute) gives each count a shorter budget.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.training.device import available_cores, choose_threads, step_work

B, S, T = 64, 20, 20


@dataclass(frozen=True)
class Size:
    """One benchmarked model: its name, architecture and vocabulary (both sides)."""

    name: str
    config: Seq2SeqConfig
    vocab: int


SIZES = (
    Size("small", Seq2SeqConfig(embedding_size=32, hidden_size=64), 2000),
    Size(
        "large",
        Seq2SeqConfig(embedding_size=256, hidden_size=512, encoder_hidden_size=256),
        8000,
    ),
)


def spin(core: int) -> None:
    """Busy-loop forever on ``core`` (the busy machine's other job)."""
    os.sched_setaffinity(0, {core})
    while True:
        pass


def steps_per_second(size: Size, threads: int, budget_s: float, min_steps: int) -> float:
    """Training steps/s of ``size`` with ``threads`` intra-op threads: one warm-up step, then
    steps until ``budget_s`` has passed (at least ``min_steps``)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Seq2Seq(size.config, size.vocab, size.vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    src = torch.randint(3, size.vocab, (B, S), generator=generator)  # (B, S)
    lengths = torch.full((B,), S)  # (B,)
    tgt = torch.randint(3, size.vocab, (B, T + 1), generator=generator)  # (B, T + 1)

    def step() -> None:
        logits = model(src, lengths, tgt[:, :-1]).logits  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, size.vocab), tgt[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        optimizer.step()

    step()
    steps, start = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < budget_s:
        step()
        steps += 1
    return steps / (time.perf_counter() - start)


def measure(label: str, budgets: dict[str, float], min_steps: int) -> None:
    """Print one part (idle or busy): each model at 1 thread, 2 threads and auto."""
    print(f"\n{label} (load average {os.getloadavg()[0]:.2f})")
    print(f"{'model':6}  {'work':>7}  {'1 thread':>9}  {'2 threads':>9}  {'auto':>14}  auto/best")
    for size in SIZES:
        model = Seq2Seq(size.config, size.vocab, size.vocab)
        work = step_work(model, B)
        auto = choose_threads(None, work)
        rates = {n: steps_per_second(size, n, budgets[size.name], min_steps) for n in (1, 2)}
        if auto not in rates:
            rates[auto] = steps_per_second(size, auto, budgets[size.name], min_steps)
        best = max(rates.values())
        auto_text = f"{rates[auto]:.2f} ({auto} thr)"
        print(
            f"{size.name:6}  {work:7.1e}  {rates[1]:9.2f}  {rates[2]:9.2f}  {auto_text:>14}  "
            f"{rates[auto] / best:.2f}"
        )


def main() -> None:
    """Time both models with 1, 2 and auto threads, idle and with one core busy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a shorter budget per count")
    args = parser.parse_args()
    budgets = {"small": 2.0, "large": 3.0} if args.quick else {"small": 6.0, "large": 10.0}
    min_steps = 1 if args.quick else 2
    cores = sorted(os.sched_getaffinity(0))
    print(
        f"torch {torch.__version__}, {available_cores()} core(s) available, batch {B}, "
        f"source and target {S} tokens; steps/s (higher is better)"
    )
    measure("idle: nothing started by this script", budgets, min_steps)
    busy = multiprocessing.get_context("spawn").Process(target=spin, args=(cores[-1],))
    busy.start()
    try:
        time.sleep(1.0)  # let the spinner reach its core
        measure(f"busy: a busy loop pinned to core {cores[-1]}", budgets, min_steps)
    finally:
        busy.terminate()
        busy.join()


if __name__ == "__main__":
    main()
