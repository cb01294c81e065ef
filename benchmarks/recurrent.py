"""Forward + backward time of rnnkit's recurrent layers against torch.nn, on the CPU.

Usage: ``python benchmarks/recurrent.py [--quick]``

For LSTM, GRU and RNN (tanh) at B=64, T=50, I=256, H=512 (one layer, unidirectional) it prints the
median time of a forward and backward pass (``out.sum() + h.sum()`` backpropagated to the input and
every parameter) over a few repeats after warm-up, for

- torch.nn (batch_first), rnnkit ``backend="fused"`` and ``backend="explicit"``, on the full batch;
- a batch with lengths drawn uniformly from [5, 50]: rnnkit fused and explicit with ``lengths``,
  against torch.nn on the padded batch without lengths (fast but wrong: padding leaks into the
  final state) and torch.nn on packed sequences (right but slow).

The variants are timed in interleaved rounds so that a busy machine slows them all alike; each row
gives the median and the fastest run, and the load average is printed before and after (other
processes on the CPU inflate every number). Each row gives the ratio of its median to torch.nn on
the padded batch and the achieved GFLOP/s: the matmul FLOPs of the
layer, forward (input projection and recurrent product, 2 (I + H) G per token with G the gate rows)
and backward (twice that), counted over all B * T positions for full-batch rows and over the real
tokens only for rows that skip padding (packed and rnnkit with lengths). The machine's matmul peak is
measured in the same run as the GFLOP/s of ``torch.matmul`` on (B*T, H) x (H, 4H) in float32.
On the CPU only torch's LSTM is one fused oneDNN kernel; its GRU and RNN run a C++ loop of cells.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit.nn import make_layer

B, T, I, H = 64, 50, 256, 512  # noqa: E741 (I: input features)
MIN_LEN, MAX_LEN = 5, 50
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def matmul_peak() -> float:
    """GFLOP/s of a float32 (B*T, H) x (H, 4H) matmul into a preallocated output, best of 10."""
    a, b = torch.randn(B * T, H), torch.randn(H, 4 * H)
    out = torch.empty(B * T, 4 * H)
    best = float("inf")
    for _ in range(10):
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * B * T * H * 4 * H / best / 1e9


def load() -> str:
    """The 1-minute load average: above the thread count, other processes compete for the CPU."""
    return f"{os.getloadavg()[0]:.2f}"


def step_fn(layer: torch.nn.Module, x: Tensor, **kwargs: Any) -> Callable[[], None]:
    """One forward + backward pass of ``layer`` on ``x`` (gradients cleared each time)."""

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        out, state = layer(x, **kwargs)
        h = state[0] if isinstance(state, tuple) else state
        data = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
        (data.sum() + h.sum()).backward()

    return step


def time_rounds(
    fns: dict[str, Callable[[], None]], warmup: int, repeats: int
) -> dict[str, list[float]]:
    """Seconds per call of each function, ``repeats`` times, timed in interleaved rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def bench_kind(kind: str, warmup: int, repeats: int, peak: float) -> None:
    torch.manual_seed(0)
    ref_cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[kind]
    ref = ref_cls(I, H, batch_first=True)
    fused = make_layer(kind.lower(), I, H, backend="fused")
    explicit = make_layer(kind.lower(), I, H, backend="explicit")
    fused.load_state_dict(ref.state_dict())
    explicit.load_state_dict(ref.state_dict())
    x = torch.randn(B, T, I, requires_grad=True)
    lengths = torch.randint(MIN_LEN, MAX_LEN + 1, (B,))
    lengths[0] = MAX_LEN  # the padded batch is exactly T long
    tokens = int(lengths.sum())

    fns = {
        "torch.nn": step_fn(ref, x),
        "rnnkit fused": step_fn(fused, x),
        "rnnkit explicit": step_fn(explicit, x),
        "torch.nn packed (right)": step_fn_packed(ref, x, lengths),
        "rnnkit fused, lengths": step_fn(fused, x, lengths=lengths),
        "rnnkit explicit, lengths": step_fn(explicit, x, lengths=lengths),
    }
    times = time_rounds(fns, warmup, repeats)
    base = statistics.median(times["torch.nn"])
    flop_per_token = 3 * 2 * (I + H) * GATES[kind] * H  # forward + backward matmuls

    def row(name: str, runs: list[float], useful_tokens: int) -> None:
        seconds = statistics.median(runs)
        gflops = flop_per_token * useful_tokens / seconds / 1e9
        print(
            f"  {name:38s} {seconds * 1e3:8.1f} {min(runs) * 1e3:8.1f} {seconds / base:8.2f}x "
            f"{gflops:8.1f} {100 * gflops / peak:6.1f}%"
        )

    print(f"\n{kind}  B={B} T={T} I={I} H={H}, forward+backward, median of {repeats}")
    print(f"  {'':38s} {'ms':>8s} {'min ms':>8s} {'/torch':>9s} {'GFLOP/s':>8s} {'%peak':>7s}")
    for name in ("torch.nn", "rnnkit fused", "rnnkit explicit"):
        row(name, times[name], B * T)
    print(f"  lengths uniform in [{MIN_LEN}, {MAX_LEN}]: {tokens} of {B * T} tokens real")
    row("torch.nn padded, no lengths (wrong)", times["torch.nn"], B * T)
    for name in ("torch.nn packed (right)", "rnnkit fused, lengths", "rnnkit explicit, lengths"):
        row(name, times[name], tokens)


def step_fn_packed(layer: torch.nn.Module, x: Tensor, lengths: Tensor) -> Callable[[], None]:
    """Forward + backward of torch.nn on packed sequences (packing included in the time)."""

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = layer(packed)
        h = state[0] if isinstance(state, tuple) else state
        (out.data.sum() + h.sum()).backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a rough check)")
    args = parser.parse_args()
    warmup, repeats = (1, 3) if args.quick else (2, 7)
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {load()}")
    print(f"matmul peak: {peak:.1f} GFLOP/s (float32 ({B * T}, {H}) x ({H}, {4 * H}))")
    for kind in ("LSTM", "GRU", "RNN"):
        bench_kind(kind, warmup, repeats, peak)
    print(f"\nload average at the end: {load()} (other work on the machine slows every row)")


if __name__ == "__main__":
    main()
