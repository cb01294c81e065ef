"""Language models: the lecture's claim (recurrence is slow, Transformers parallelise) measured,
and rnnkit's LSTM LM against the plain loop of PyTorch's word_language_model.

Usage::

    python benchmarks/lm.py [--quick] [--budget 600] [--corpus bible-bbe hamlet]
                            [--skip-compare] [--skip-speed] [--threads N] [--out DIR]
                            [--figures DIR] [--json FILE]

Part 1, LSTM against Transformer. For each corpus, the built-in configs ``lm-bible-bbe`` and
``lm-bible-bbe-transformer`` (word level; 5.11M and 5.12M parameters) or ``lm-hamlet-char`` and
``lm-hamlet-char-transformer`` (character level; 1.07M each) are trained with ``rnnkit.api.train``
for the same wall-clock budget (``--budget`` seconds each, ``train.max_time_s``), one after the
other, with the same thread count. Then ``rnnkit.api.compare`` scores both (their
``best.safetensors``) on the corpus's test split and times generation. Printed side by side:
parameters, training tokens/s (the median of ``metrics.csv``'s ``tokens_per_s``, which leaves
evaluation out), time per epoch (the epoch's tokens over that rate), epochs done, validation
perplexity at the end, test perplexity, and generation tokens/s (``--gen-tokens`` sampled tokens
from an empty prompt, batch 1; the Transformer re-reads its context at every step, it has no
key-value cache). ``FIGURES/lm-<corpus>-valid-ppl.png`` (``--figures``, default ``--out``)
draws validation perplexity against wall clock.

Part 2, training speed. One training step of a 2-layer word LSTM LM as in PyTorch's
word_language_model (embedding, ``torch.nn.LSTM`` on a (T, B) batch, dropout, linear decoder;
SGD, gradient clipping at 0.25, the hidden state detached between windows), written here as the
example's plain loop, against rnnkit's ``RecurrentLM`` (batch first, rnnkit's fused layers) doing
the same step (cross-entropy, backward, clipping, SGD, detach). Two sizes: the example's small
model (E = H = 200, dropout 0.2) and its medium one (E = H = 650, dropout 0.5, tied weights);
bptt 35, batch 20, V = 10,000 (Penn Treebank's vocabulary; random ids, the speed does not depend
on them). The steps are timed in interleaved rounds after warm-up; tokens/s is B * T over the
median step time. Next to each, the matmul roofline: the FLOPs of the step's matmuls per token,
2 * 4H (I + H) per LSTM layer plus 2 H V for the decoder, times 3 for forward and backward,
against the machine's float32 matmul peak measured in the same run (``benchmarks/recurrent.py``'s
``matmul_peak``); the fraction is measured / roofline.

``--quick`` shrinks everything (budgets of a few seconds, small models, few steps) to check that
the script runs, in well under a minute; its numbers mean nothing. The machine's other load slows
every number; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from recurrent import matmul_peak
from rnnkit import api
from rnnkit.data.text_stream import load_lm_corpus
from rnnkit.io import atomic_write, write_text_atomic
from rnnkit.models.language_model import LanguageModelConfig, RecurrentLM
from rnnkit.tasks.language_model import LanguageModelTask

CONFIGS = {
    "bible-bbe": ("lm-bible-bbe", "lm-bible-bbe-transformer"),
    "hamlet": ("lm-hamlet-char", "lm-hamlet-char-transformer"),
}
QUICK_MODEL = {  # tiny models for --quick, the same kind for both arches
    "rnn": ["model.embedding_size=32", "model.hidden_size=32"],
    "transformer": ["model.embedding_size=32", "model.hidden_size=64", "model.num_heads=2"],
}
V_SPEED = 10_000
BPTT, BATCH = 35, 20
SIZES = {"small": (200, 0.2, False), "medium": (650, 0.5, True)}  # H = E, dropout, tied
CLIP, SGD_LR = 0.25, 20.0


def load() -> str:
    """The 1-minute load average: above the thread count, other processes compete for the CPU."""
    return f"{os.getloadavg()[0]:.2f}"


# ------------------------------------------------------------------------ part 1: the claim


def read_rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def curve(run: Path) -> list[tuple[float, float]]:
    """(elapsed seconds, validation perplexity) of every evaluation of a run."""
    return [
        (float(r["elapsed_s"]), float(r["valid_ppl"])) for r in read_rows(run) if r["valid_ppl"]
    ]


def training_rate(run: Path) -> float:
    """The median training tokens/s of a run's metrics rows."""
    rates = [float(r["tokens_per_s"]) for r in read_rows(run) if r["tokens_per_s"]]
    rates = [r for r in rates if math.isfinite(r)]
    return statistics.median(rates) if rates else math.nan


def plot_curves(curves: dict[str, list[tuple[float, float]]], title: str, path: Path) -> Path:
    """Validation perplexity against wall clock, one line per run, as a PNG (atomically)."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    for name, points in curves.items():
        ax.plot([t for t, _ in points], [p for _, p in points], marker="o", ms=3, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("wall clock (s)")
    ax.set_ylabel("validation perplexity")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=120)
    return path


def compare_corpus(
    corpus: str,
    budget: float,
    out: Path,
    figures: Path,
    threads: int | None,
    quick: bool,
    gen_tokens: int,
) -> dict[str, Any]:
    """Train the LSTM and the Transformer of ``corpus`` for ``budget`` s each; compare them."""
    runs: dict[str, Path] = {}
    trained_tokens: dict[str, int] = {}
    for config_name in CONFIGS[corpus]:
        arch = "transformer" if config_name.endswith("transformer") else "rnn"
        overrides = [f"train.max_time_s={budget}", "train.progress=false"]
        overrides.append(f"train.threads={threads if threads is not None else 'auto'}")
        if quick:
            overrides += [*QUICK_MODEL[arch], "train.eval_every=5", "train.warmup_steps=0"]
        config = api.load_config(config_name, overrides)
        run = out / config_name
        started = time.perf_counter()
        result = api.train(config, run)
        print(
            f"  trained {config_name}: {result.step} steps, {result.epoch} full epochs, "
            f"{time.perf_counter() - started:.1f} s with start-up"
        )
        runs["lstm" if arch == "rnn" else "transformer"] = run
        trained_tokens["lstm" if arch == "rnn" else "transformer"] = result.target_tokens
    test = out / f"{corpus}-test.txt"
    write_text_atomic(test, "".join(line + "\n" for line in load_lm_corpus(corpus, "test")))
    report = api.compare(
        list(runs.values()), list(runs), test, {"gen_tokens": gen_tokens}, threads=threads
    )
    rows = {r["name"]: r for r in report.metrics["runs"]}
    for name, run in runs.items():
        task = LanguageModelTask(api.read_run_config(run), run)
        per_epoch = (task.stream("train").num_targets // task.config.train.batch_size) * (
            task.config.train.batch_size
        )
        rate = training_rate(run)
        points = curve(run)
        rows[name].update(
            training_tokens_per_s=rate,
            epoch_tokens=per_epoch,
            seconds_per_epoch=per_epoch / rate if rate > 0 else math.nan,
            epochs=trained_tokens[name] / per_epoch,
            final_valid_ppl=points[-1][1] if points else math.nan,
            curve=points,
        )
    png = plot_curves(
        {n: r["curve"] for n, r in rows.items()},
        f"{corpus}: validation perplexity, {budget:g} s each",
        figures / f"lm-{corpus}-valid-ppl.png",
    )
    print(f"\n{corpus} ({'word' if corpus == 'bible-bbe' else 'character'} level), {budget:g} s:")
    keys = [
        ("parameters", "{:,}"),
        ("training_tokens_per_s", "{:.0f}"),
        ("seconds_per_epoch", "{:.1f}"),
        ("epochs", "{:.2f}"),
        ("final_valid_ppl", "{:.2f}"),
        ("perplexity", "{:.2f}"),
        ("generation_tokens_per_s", "{:.1f}"),
    ]
    print(f"  {'':<24}{'lstm':>14}{'transformer':>14}")
    for key, fmt in keys:
        label = "test_perplexity" if key == "perplexity" else key
        cells = "".join(f"{fmt.format(rows[n][key]):>14}" for n in ("lstm", "transformer"))
        print(f"  {label:<24}{cells}")
    print(f"  curves: {png}")
    return {"corpus": corpus, "budget_s": budget, "runs": rows, "plot": str(png)}


# ------------------------------------------------------------------------ part 2: speed


class PlainLSTMLM(nn.Module):
    """PyTorch word_language_model's RNNModel for the LSTM: (T, B) in, (T, B, V) out."""

    def __init__(self, vocab: int, size: int, dropout: float, tied: bool) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab, size)
        self.rnn = nn.LSTM(size, size, 2, dropout=dropout)
        self.decoder = nn.Linear(size, vocab)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        if tied:
            self.decoder.weight = self.encoder.weight

    def forward(self, x: Tensor, hidden: Any) -> tuple[Tensor, Any]:
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)  # (T, B, H)
        return self.decoder(self.drop(out)), hidden  # (T, B, V)


def detach(state: Any) -> Any:
    if isinstance(state, Tensor):
        return state.detach()
    return None if state is None else tuple(detach(s) for s in state)


def step_fn(
    model: nn.Module, x: Tensor, y: Tensor, forward: Callable[[Tensor, Any], tuple[Tensor, Any]]
) -> Callable[[], None]:
    """One training step (forward, cross-entropy, backward, clip, SGD, detach), state carried."""
    optimizer = torch.optim.SGD(model.parameters(), lr=SGD_LR)
    state: list[Any] = [None]

    def run() -> None:
        logits, new = forward(x, state[0])
        loss = F.cross_entropy(logits.reshape(-1, V_SPEED), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state[0] = detach(new)

    return run


def speed(quick: bool) -> dict[str, Any]:
    """Training tokens/s of the plain torch.nn loop and of rnnkit, for both sizes."""
    warmup, rounds, steps = (1, 2, 2) if quick else (3, 7, 5)
    results: dict[str, Any] = {}
    for name, (size, dropout, tied) in SIZES.items():
        if quick and name == "medium":
            continue
        torch.manual_seed(0)
        x = torch.randint(0, V_SPEED, (BATCH, BPTT))  # (B, T)
        y = torch.randint(0, V_SPEED, (BATCH, BPTT))
        plain = PlainLSTMLM(V_SPEED, size, dropout, tied).train()
        config = LanguageModelConfig(
            embedding_size=size,
            hidden_size=size,
            num_layers=2,
            dropout=dropout,
            tie_embeddings=tied,
        )
        ours = RecurrentLM(config, V_SPEED).train()
        x_t, y_t = x.t().contiguous(), y.t().contiguous()  # the example's (T, B) layout
        fns = {
            "torch.nn (plain loop)": step_fn(plain, x_t, y_t, plain),
            "rnnkit RecurrentLM": step_fn(ours, x, y, lambda a, s, m=ours: tuple(m(a, s))),
        }
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        times: dict[str, list[float]] = {n: [] for n in fns}
        peaks = []
        for _ in range(rounds):
            peaks.append(matmul_peak())
            for n, fn in fns.items():
                started = time.perf_counter()
                for _ in range(steps):
                    fn()
                times[n].append((time.perf_counter() - started) / steps)
        peak = max(peaks)  # GFLOP/s
        flops = 3 * (2 * (2 * 4 * size * (size + size)) + 2 * size * V_SPEED)  # per token
        roofline = peak * 1e9 / flops  # tokens/s
        rows = {}
        for n, ts in times.items():
            rate = BATCH * BPTT / statistics.median(ts)
            rows[n] = {"tokens_per_s": rate, "roofline_fraction": rate / roofline}
        ratio = (
            rows["rnnkit RecurrentLM"]["tokens_per_s"]
            / rows["torch.nn (plain loop)"]["tokens_per_s"]
        )
        print(
            f"\n{name} LSTM LM (E = H = {size}, 2 layers, dropout {dropout}, tied {tied}, "
            f"bptt {BPTT}, batch {BATCH}, V {V_SPEED:,}); matmul peak {peak:.1f} GFLOP/s, "
            f"roofline {roofline:,.0f} tokens/s ({flops / 1e6:.1f} MFLOP a token)"
        )
        for n, r in rows.items():
            print(
                f"  {n:<24}{r['tokens_per_s']:>10,.0f} tokens/s  "
                f"{100 * r['roofline_fraction']:5.1f} % of the roofline"
            )
        print(f"  rnnkit / torch.nn: {ratio:.3f}")
        results[name] = {
            "rows": rows,
            "ratio": ratio,
            "peak_gflops": peak,
            "roofline": roofline,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds a part: a smoke run")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training a run")
    parser.add_argument(
        "--corpus", nargs="+", choices=sorted(CONFIGS), default=["bible-bbe", "hamlet"]
    )
    parser.add_argument("--gen-tokens", type=int, default=200, help="tokens generated to time it")
    parser.add_argument("--skip-compare", action="store_true", help="only the speed part")
    parser.add_argument("--skip-speed", action="store_true", help="only the comparison")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: auto)")
    parser.add_argument("--out", type=Path, default=None, help="folder for runs and PNGs")
    parser.add_argument("--figures", type=Path, default=None, help="folder for the PNGs (--out)")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args()
    budget = 3.0 if args.quick else args.budget
    gen_tokens = 20 if args.quick else args.gen_tokens
    print(f"load average {load()}, torch {torch.__version__}")
    scratch = None
    out = args.out
    if out is None:
        scratch = tempfile.TemporaryDirectory(prefix="rnnkit-lm-bench-")
        out = Path(scratch.name)
    out.mkdir(parents=True, exist_ok=True)
    figures = args.figures or out
    figures.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"quick": args.quick}
    if not args.skip_compare:
        results["compare"] = [
            compare_corpus(c, budget, out, figures, args.threads, args.quick, gen_tokens)
            for c in args.corpus
        ]
    if not args.skip_speed:
        torch.set_num_threads(args.threads or 1)
        print(f"\ntraining speed, {torch.get_num_threads()} thread(s):")
        results["speed"] = speed(args.quick)
    print(f"\nload average {load()}")
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(results, indent=1, default=str) + "\n")
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    main()
