"""Sentences per second of the text classifier against a plain torch.nn.LSTM, on the CPU.

Usage: ``python benchmarks/text.py [--quick] [--threads N]``

The model is the ``classification`` task's :class:`~rnnkit.models.classifier.TextClassifier`
(embedding E=128, one bidirectional LSTM layer H=128, last-state pooling, 2 classes, V=20,000),
fed batches of B=32 sentences whose lengths are drawn uniformly from [5, 50] tokens (the Rotten
Tomatoes snippets have 1-53 words, 18 on average), as the task batches them: grouped by length
(:func:`rnnkit.data.parallel.bucket_batches`) and unsorted (a random mix of lengths). It is
timed

- training (forward, cross-entropy, backward, Adam step), with the exact ``lengths``, and
- inference (forward under ``torch.no_grad``, eval mode), with the exact ``lengths``,

against the same network written with ``torch.nn.Embedding`` + ``torch.nn.LSTM`` on the padded
batch without lengths (fast but wrong: the final state has read the padding), with the same
weights. The variants run in interleaved rounds so a busy machine slows them alike; each row
gives the median sentences/s and the ratio to the plain LSTM. The 1-minute load average is
printed before and after (other processes on the CPU deflate every number).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.data.parallel import bucket_batches
from rnnkit.models.classifier import TextClassifier, TextClassifierConfig
from rnnkit.tasks.classification import pad_ids

V, E, H, K, B = 20_000, 128, 128, 2, 32
MIN_LEN, MAX_LEN = 5, 50


class PlainLSTM(nn.Module):
    """Embedding + torch.nn.LSTM over the padded batch (no lengths) + the final states + Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(V, E, padding_idx=0)
        self.rnn = nn.LSTM(E, H, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * H, K)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, T) -> logits (B, K)."""
        _, (h, _) = self.rnn(self.embed(tokens))  # h (2, B, H)
        out: Tensor = self.head(h.permute(1, 0, 2).reshape(len(tokens), -1))  # (B, K)
        return out


def make_batches(count: int, bucketed: bool, seed: int) -> list[tuple[Tensor, Tensor, Tensor]]:
    """``count`` batches of B random sentences: (tokens (B, T), lengths (B,), labels (B,))."""
    g = torch.Generator().manual_seed(seed)
    n = count * B
    lengths = torch.randint(MIN_LEN, MAX_LEN + 1, (n,), generator=g).tolist()
    rows = [torch.randint(4, V, (k,), generator=g).tolist() for k in lengths]
    labels = torch.randint(0, K, (n,), generator=g)
    if bucketed:
        groups = bucket_batches(
            lengths, [0] * n, max_tokens=B * MAX_LEN, max_sentences=B, seed=seed
        )
    else:
        groups = [list(range(i, i + B)) for i in range(0, n, B)]
    out = []
    for group in groups:
        tokens, lens = pad_ids([rows[i] for i in group])
        out.append((tokens, lens, labels[group]))
    return out


def training_fn(
    model: nn.Module, batches: list[tuple[Tensor, Tensor, Tensor]], lengths: bool
) -> Callable[[], int]:
    """One pass of training steps over ``batches``; returns the sentences seen."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run() -> int:
        model.train()
        for tokens, lens, labels in batches:
            logits = model(tokens, lens).logits if lengths else model(tokens)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return sum(len(b[2]) for b in batches)

    return run


def inference_fn(
    model: nn.Module, batches: list[tuple[Tensor, Tensor, Tensor]], lengths: bool
) -> Callable[[], int]:
    """One pass of eval-mode forward calls over ``batches``; returns the sentences seen."""

    def run() -> int:
        model.eval()
        with torch.no_grad():
            for tokens, lens, _ in batches:
                _ = model(tokens, lens).logits if lengths else model(tokens)
        return sum(len(b[2]) for b in batches)

    return run


def rounds(fns: dict[str, Callable[[], int]], repeats: int) -> dict[str, list[float]]:
    """Sentences/s of each function over ``repeats`` interleaved rounds (after one warm-up)."""
    for fn in fns.values():
        fn()
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            sentences = fn()
            rates[name].append(sentences / (time.perf_counter() - start))
    return rates


def report(title: str, rates: dict[str, list[float]], base: str) -> None:
    print(f"\n{title}")
    print(f"  {'':44s} {'sent/s':>9s} {'best':>9s} {'/plain':>7s}")
    reference = statistics.median(rates[base])
    for name, runs in rates.items():
        median = statistics.median(runs)
        print(f"  {name:44s} {median:9.0f} {max(runs):9.0f} {median / reference:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few batches and repeats (a check)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    count, repeats = (2, 2) if args.quick else (20, 5)
    torch.manual_seed(0)
    config = TextClassifierConfig(
        cell="lstm", bidirectional=True, pooling="last", embedding_size=E, hidden_size=H
    )
    ours = TextClassifier(config, V, K)
    plain = PlainLSTM()
    plain.load_state_dict(ours.state_dict())
    print(
        f"B={B} E={E} H={H} V={V}, biLSTM, lengths uniform in [{MIN_LEN}, {MAX_LEN}], "
        f"{torch.get_num_threads()} thread(s), load {os.getloadavg()[0]:.2f}"
    )
    for bucketed in (True, False):
        batches = make_batches(count, bucketed, seed=1)
        kind = "length-bucketed batches" if bucketed else "unsorted batches"
        train = rounds(
            {
                "plain torch.nn.LSTM, padded, no lengths": training_fn(plain, batches, False),
                "TextClassifier, exact lengths": training_fn(ours, batches, True),
            },
            repeats,
        )
        report(f"training, {kind}", train, "plain torch.nn.LSTM, padded, no lengths")
        infer = rounds(
            {
                "plain torch.nn.LSTM, padded, no lengths": inference_fn(plain, batches, False),
                "TextClassifier, exact lengths": inference_fn(ours, batches, True),
            },
            repeats,
        )
        report(f"inference, {kind}", infer, "plain torch.nn.LSTM, padded, no lengths")
    print(f"\nload {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
