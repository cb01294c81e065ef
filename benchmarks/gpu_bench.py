"""LSTM layer and translation training speed on a CUDA GPU, each against the matmul roofline.

Usage: ``python benchmarks/gpu_bench.py [--dry-run]`` (``benchmarks/gpu.sh`` runs it after the
``gpu`` tests).

LSTM layer, forward + backward (``out.sum() + h.sum()`` backpropagated to the input and every
parameter, as in ``benchmarks/recurrent.py``, whose step functions it reuses) of rnnkit's
``fused`` and ``explicit`` backends against ``torch.nn.LSTM`` (cuDNN) at B=64 T=50 I=256 H=512 and
B=256 T=100 I=1024 H=1024, on the full batch and with lengths drawn uniformly from [T/10, T]
(rnnkit with ``lengths``; torch.nn on packed sequences, the right answer, and on the padded batch
without lengths, the fast wrong one). Each row: median milliseconds (CUDA-synchronised, rounds
interleaved), the ratio to cuDNN on the full batch, and the matmul TFLOP/s achieved (the FLOPs of
the input and recurrent projections, 3 x 2 (I + H) 4H per real token) as a share of the GPU's
float32 matmul peak, measured in the same run (TF32 off and on are both printed; rows use the
precision torch's default picks, TF32 off).

Translation training: the Bible attention model of ``benchmarks/translation.py`` (its batches,
model and FLOP count), target tokens per second of full training steps (forward, loss, backward,
clipping, fused Adam) at fp32 and at bf16 (autocast, the recurrent cores kept in float32 as
``rnnkit.training.device.keep_recurrent_fp32`` does in training), against the roofline of its
matmuls at the fp32 and at the bf16 matmul peak of this run.

``--dry-run`` runs the same code at tiny sizes on the CPU (or the GPU if there is one) in a few
seconds: it checks the script, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from recurrent import step_fn, step_fn_packed
from rnnkit.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.nn import make_layer
from rnnkit.training.device import keep_recurrent_fp32
from translation import (
    LEARNING_RATE,
    QUICK,
    Batch,
    Settings,
    model_config,
    prepare,
    roofline_flops,
    train_step,
)

LSTM_SIZES = ((64, 50, 256, 512), (256, 100, 1024, 1024))  # (B, T, I, H)
DRY_SIZES = ((4, 6, 8, 16), (8, 10, 16, 16))


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work (nothing on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, tf32: bool = False) -> float:
    """TFLOP/s of an (n, n) x (n, n) matmul in ``dtype`` on ``device``, best of 10 after warm-up."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        out = torch.empty(n, n, device=device, dtype=dtype)
        for _ in range(3):
            torch.matmul(a, b, out=out)
        best = float("inf")
        for _ in range(10):
            sync(device)
            start = time.perf_counter()
            torch.matmul(a, b, out=out)
            sync(device)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return 2 * n**3 / best / 1e12


def time_rounds(
    fns: dict[str, Callable[[], None]], device: torch.device, warmup: int, repeats: int
) -> dict[str, list[float]]:
    """Seconds per call of each function (synchronised), ``repeats`` interleaved rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def bench_lstm(
    size: tuple[int, int, int, int], device: torch.device, peak: float, repeats: int
) -> dict[str, float]:
    """The LSTM rows at one size; returns each row's ratio to cuDNN on the full batch."""
    B, T, I, H = size  # noqa: E741 (I: input features)
    torch.manual_seed(0)
    ref = torch.nn.LSTM(I, H, batch_first=True).to(device)
    fused = make_layer("lstm", I, H, backend="fused").to(device)
    explicit = make_layer("lstm", I, H, backend="explicit").to(device)
    fused.load_state_dict(ref.state_dict())
    explicit.load_state_dict(ref.state_dict())
    x = torch.randn(B, T, I, device=device, requires_grad=True)
    lengths = torch.randint(max(1, T // 10), T + 1, (B,))
    lengths[0] = T
    tokens = int(lengths.sum())
    on_device = lengths.to(device)
    fns = {
        "torch.nn (cuDNN)": step_fn(ref, x),
        "rnnkit fused": step_fn(fused, x),
        "rnnkit explicit": step_fn(explicit, x),
        "torch.nn packed (right)": step_fn_packed(ref, x, lengths),
        "rnnkit fused, lengths": step_fn(fused, x, lengths=on_device),
        "rnnkit explicit, lengths": step_fn(explicit, x, lengths=on_device),
    }
    times = time_rounds(fns, device, warmup=2, repeats=repeats)
    base = statistics.median(times["torch.nn (cuDNN)"])
    flop_per_token = 3 * 2 * (I + H) * 4 * H
    print(f"\nLSTM B={B} T={T} I={I} H={H}, forward+backward, median of {repeats}")
    print(f"  {'':36s} {'ms':>8s} {'/cuDNN':>8s} {'TFLOP/s':>8s} {'%peak':>6s}")
    ratios: dict[str, float] = {}

    def row(name: str, key: str, useful: int) -> None:
        seconds = statistics.median(times[key])
        tflops = flop_per_token * useful / seconds / 1e12
        ratios[name] = seconds / base
        print(
            f"  {name:36s} {seconds * 1e3:8.2f} {seconds / base:7.2f}x {tflops:8.2f} "
            f"{100 * tflops / peak:5.1f}%"
        )

    for name in ("torch.nn (cuDNN)", "rnnkit fused", "rnnkit explicit"):
        row(name, name, B * T)
    print(f"  lengths uniform in [{max(1, T // 10)}, {T}]: {tokens} of {B * T} tokens real")
    row("torch.nn padded, no lengths (wrong)", "torch.nn (cuDNN)", B * T)
    for name in ("torch.nn packed (right)", "rnnkit fused, lengths", "rnnkit explicit, lengths"):
        row(name, name, tokens)
    return ratios


def to_device(batch: Batch, device: torch.device) -> Batch:
    """The batch's tensors on ``device`` (lengths too: the model reads them there)."""
    return Batch(*(t.to(device) for t in batch))


def bench_translation(
    settings: Settings, device: torch.device, peaks: dict[str, float]
) -> dict[str, float]:
    """Training target tokens/s at fp32 and bf16 against the matmul roofline at each peak."""
    with tempfile.TemporaryDirectory() as folder:
        timed = prepare(settings, Path(folder)).timed
    batches = [to_device(b, device) for b in timed]
    tokens = sum(b.target_tokens for b in batches)
    print(
        f"\ntranslation training: E={settings.embedding_size}, He={settings.encoder_hidden_size}"
        f" x 2, H={settings.hidden_size}, V={settings.vocab_size}, batch {settings.batch_size}, "
        f"{len(batches)} batches ({tokens} target tokens) a round, median of {settings.rounds}"
    )
    results: dict[str, float] = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        config = model_config(settings)
        model = Seq2Seq(config, settings.vocab_size, settings.vocab_size, PAD_ID, BOS_ID, EOS_ID)
        model = model.to(device).train()
        amp = precision == "bf16"
        if amp:
            keep_recurrent_fp32(model, device.type)
        fused = device.type == "cuda"
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, fused=fused)
        flops = sum(roofline_flops(config, settings.vocab_size, b) for b in batches)

        def one_round(model: Seq2Seq, optimizer: torch.optim.Optimizer, amp: bool) -> None:
            for batch in batches:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    train_step(model, optimizer, batch)

        one_round(model, optimizer, amp)  # warm-up: allocator, cuDNN plans, Adam state
        speeds = []
        for _ in range(settings.rounds):
            sync(device)
            start = time.perf_counter()
            one_round(model, optimizer, amp)
            sync(device)
            speeds.append(tokens / (time.perf_counter() - start))
        speed = statistics.median(speeds)
        peak = peaks[precision]
        roofline = tokens / (flops / (peak * 1e12))
        results[precision] = speed
        print(
            f"  {precision}: {speed:10.0f} tok/s; roofline {roofline:10.0f} tok/s "
            f"({flops / 1e9:.1f} GFLOP a round at the {precision} peak {peak:.1f} TFLOP/s): "
            f"{speed / roofline:.3f} of it"
        )
    print(f"  bf16 / fp32: {results['bf16'] / results['fp32']:.2f}x")
    return results


def main(argv: list[str] | None = None) -> None:
    """Measure and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, a check (seconds)")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda and not args.dry_run:
        parser.error("no CUDA device; run with --dry-run to check the script on the CPU")
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    print(f"torch {torch.__version__}, {name}" + (", dry run (tiny sizes)" if args.dry_run else ""))
    n = 256 if args.dry_run else 8192
    peaks = {
        "fp32": matmul_peak(device, torch.float32, n),
        "bf16": matmul_peak(device, torch.bfloat16, n),
    }
    tf32 = matmul_peak(device, torch.float32, n, tf32=True) if cuda else peaks["fp32"]
    print(
        f"matmul peak ({n} x {n}): fp32 {peaks['fp32']:.1f}, tf32 {tf32:.1f}, "
        f"bf16 {peaks['bf16']:.1f} TFLOP/s"
    )
    sizes = DRY_SIZES if args.dry_run else LSTM_SIZES
    for size in sizes:
        bench_lstm(size, device, peaks["fp32"], repeats=3 if args.dry_run else 10)
    settings = QUICK if args.dry_run else Settings(train_pairs=20_000, batches=8, rounds=3)
    if args.dry_run:
        settings = replace(settings, train_pairs=400, vocab_size=200, batches=2, rounds=1)
    bench_translation(settings, device, peaks)


if __name__ == "__main__":
    main()
