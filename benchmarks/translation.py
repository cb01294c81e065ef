"""Training and decoding speed of the Bahdanau attention model on the Bible (English to French).

Usage: ``python benchmarks/translation.py [--quick] [--threads 2] [--train-seconds 60] [--profile]
[--peer opennmt --peer-python PYTHON [--peer-seconds 300]] [--unmap-freed-memory] [--json FILE]``

The model is the one OpenNMT-py's reference run used: embeddings E = 256, a bidirectional LSTM
encoder with He = 256 per direction (De = 512), an LSTM decoder with H = 512, additive (Bahdanau)
attention with Ha = 512, dropout 0.2, and a joint sentencepiece unigram vocabulary of V = 8000
trained (locally, in a temporary folder) on both sides of the ``bible-en-fr`` training split.
Sources are fed as they are, targets as ``bos y`` in and ``y eos`` out.

Training. Batches of 64 real training pairs from :func:`~rnnkit.data.parallel.bucket_batches`
(similar lengths, shuffled with seed 0); ``--batches`` of them are timed, each step being the
forward pass, the token cross-entropy, the backward pass, gradient-norm clipping at 5 and a (fused)
Adam step. After one warm-up pass the batches are timed in ``--rounds`` rounds; throughput is the
real target tokens (eos included, padding excluded) per second, median of the rounds. Next to it,
the *roofline*: the FLOPs of the model's matmuls -- the encoder LSTM's input and recurrent
projections in both directions, the attention's key and query projections, scores ``v^T tanh(.)``
and context sums, the decoder LSTM and the output layer (deep output and the V-way projection) --
counted over the real tokens only, times 3 for forward + backward, divided by the machine's matmul
peak, measured in the same run (best of a large float32 ``torch.matmul`` before each round, see
``benchmarks/recurrent.py``). The fraction measured / roofline is how close the whole step comes to
doing nothing but those matmuls at peak speed. Three variants are timed, interleaved within each
round (:data:`VARIANTS`): the fused teacher-forced loop of :mod:`rnnkit.nn.fused_decoder` with
the native kernels of :mod:`rnnkit.nn.native` (the attention step, the LSTM cell and the loss,
each one pass; the default), the same loop with PyTorch operators only (``RNNKIT_NATIVE=0``), and
the step-by-step autograd path (``Seq2Seq.fused_loop = False``, PyTorch operators: the code before
both). The whole run has ``rnnkit train``'s
process settings: denormals flushed and large freed buffers kept (``train.keep_freed_memory``;
``--unmap-freed-memory`` gives glibc's default, for the A/B of that setting in a second run).
``--profile`` adds the torch profiler's breakdown of one step of the longest timed batch for each
variant (:mod:`translation_profile`).

Side by side (``--peer opennmt --peer-python PYTHON``): after the rounds, rnnkit trains on random
training batches for ``--peer-seconds``, then OpenNMT-py, in its own environment, trains the same
model as far as it can build it on the same pairs (rnnkit's sentencepiece pieces) for the same
time (:mod:`peer_opennmt`, whose docstring has the set-up); the ratio of their target tokens per
second is printed. The peer is never a dependency of rnnkit.

Decoding. The model is then trained for ``--train-seconds`` on random training batches and
decodes the 266 test verses (books 38-39) in batches of 64 in order of source length: batched beam
search (beam 5, GNMT length penalty 1.0), the same beam search one sentence at a time (on
``--single-sentences`` of them, evenly spread over the length-sorted set, to bound the run time)
and batched greedy search; each timed pass is preceded by a warm-up call, and the faster of two
passes counts. Speeds are sentences per second, with the mean output length (tokens, eos
excluded) and the share of outputs that ended with eos. This runs twice:

- *as trained*: ending at eos or at ``floor(1.5 S + 10)`` tokens (``SearchConfig``'s default
  rule). A model trained for a minute or two is far from converged: greedy search tends to loop
  to the maximum length and beam search to settle on short outputs (while searching on as long as
  a live beam could still beat them), so these outputs are not of translation length and the
  speeds say little on their own;
- *at the reference length*: eos disabled (:func:`never_ending`) and the maximum length set to
  ``floor(a S)`` with ``a`` = reference tokens / source tokens over the test set, so that every
  method produces exactly as many tokens as a translation of reference length. The headline
  ratios are these.

Every ratio has its denominator measured in the same run (the matmul peak, one sentence at a
time); no figure from another run or machine is a denominator. The machine's other load slows
every number; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from peer_opennmt import PeerError, available, train_opennmt
from recurrent import matmul_peak
from rnnkit.data.corpora import load_corpus
from rnnkit.data.parallel import bucket_batches, pad_pairs
from rnnkit.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, build_tokenizer
from rnnkit.decoding.search import Hypothesis, SearchConfig, beam_search, greedy_search
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.nn import native
from rnnkit.training.device import flush_denormals, keep_freed_memory
from rnnkit.training.losses import token_cross_entropy
from translation_profile import Dims, print_profile, profile_step

CLIP_NORM = 5.0
LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class Settings:
    """Sizes and budgets of one run (the full run or ``--quick``)."""

    embedding_size: int = 256
    encoder_hidden_size: int = 256
    hidden_size: int = 512
    vocab_size: int = 8000
    dropout: float = 0.2
    batch_size: int = 64
    batches: int = 8
    rounds: int = 3
    train_seconds: float = 60.0
    beam_size: int = 5
    decode_batch_size: int = 64
    single_sentences: int = 60
    train_pairs: int | None = None  # None: the whole training split
    test_pairs: int | None = None  # None: all 266 test verses


QUICK = Settings(
    embedding_size=32,
    encoder_hidden_size=32,
    hidden_size=64,
    vocab_size=600,
    batch_size=16,
    batches=2,
    rounds=2,
    train_seconds=1.0,
    decode_batch_size=8,
    single_sentences=4,
    train_pairs=3000,
    test_pairs=16,
)


class Batch(NamedTuple):
    """One padded batch: src (B, S), src_lengths (B,), tgt_in (B, T), tgt_out (B, T)."""

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor

    @property
    def target_tokens(self) -> int:
        """Real target tokens (eos included, padding excluded)."""
        return int((self.tgt_out != PAD_ID).sum())


def make_batch(sources: Sequence[list[int]], targets: Sequence[list[int]]) -> Batch:
    """Pad token id lists into a :class:`Batch` (``bos y`` in, ``y eos`` out)."""
    return Batch(*pad_pairs(sources, targets, pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID))


def model_config(settings: Settings) -> Seq2SeqConfig:
    """The benchmarked architecture at ``settings``' sizes."""
    return Seq2SeqConfig(
        cell="lstm",
        embedding_size=settings.embedding_size,
        hidden_size=settings.hidden_size,
        encoder_hidden_size=settings.encoder_hidden_size,
        bidirectional_encoder=True,
        attention="additive",
        dropout=settings.dropout,
    )


def roofline_flops(config: Seq2SeqConfig, vocab_size: int, batch: Batch) -> float:
    """FLOPs of the model's matmuls for one training step on ``batch``, forward + backward.

    Counted over real tokens only: per source token the encoder LSTM (both directions, input and
    recurrent projections) and the attention's key projection; per target token the decoder LSTM
    (input [e; c] and recurrent), the query projection and the output layer (W_s, W_c, W_e and the
    V-way W_out); per (target token, real source token) pair the score ``v^T tanh(.)`` and the
    context sum. A matmul of (m, k) by (k, n) is 2 m k n FLOPs; backward is twice forward.
    """
    if config.cell != "lstm" or config.attention != "additive":
        raise ValueError("roofline_flops counts the LSTM model with additive attention")
    E, H = config.embedding_size, config.hidden_size
    He = config.encoder_hidden_size or H
    De = config.encoder_state_size
    D = 2 if config.bidirectional_encoder else 1
    Ha, V = H, vocab_size  # the model's additive attention has Ha = H
    per_source = D * 2 * (E + He) * 4 * He + 2 * De * Ha
    per_target = 2 * (E + De + H) * 4 * H + 2 * H * Ha + 2 * (H * E + De * E + E * E + E * V)
    per_pair = 2 * Ha + 2 * De
    src_len = batch.src_lengths.double()  # (B,)
    tgt_len = (batch.tgt_out != PAD_ID).sum(dim=1).double()  # (B,)
    forward = (
        per_source * float(src_len.sum())
        + per_target * float(tgt_len.sum())
        + per_pair * float((src_len * tgt_len).sum())
    )
    return 3.0 * forward


def train_step(model: Seq2Seq, optimizer: torch.optim.Optimizer, batch: Batch) -> float:
    """Forward, loss, backward, clip at 5, Adam step; returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    logits = model(batch.src, batch.src_lengths, batch.tgt_in).logits  # (B, T, V)
    loss = token_cross_entropy(logits, batch.tgt_out, PAD_ID)
    torch.autograd.backward(loss)
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
    optimizer.step()
    return float(loss.detach())


def load() -> float:
    """The 1-minute load average (above the thread count, other work competes for the CPU)."""
    return os.getloadavg()[0]


class Prepared(NamedTuple):
    """The data of one run (:func:`prepare`)."""

    timed: list[Batch]  # the batches of the throughput rounds
    pool: list[Batch]  # every full training batch, for training on random ones
    test: list[Batch]  # the test verses in order of source length
    pieces: list[tuple[list[str], list[str]]]  # the training pairs as sentencepiece pieces


def prepare(settings: Settings, folder: Path) -> Prepared:
    """Tokenise the corpus; the timed batches, a pool of training batches, test ones, pieces.

    The test batches hold ``decode_batch_size`` sentences each in order of source length (their
    ``tgt_out`` is the reference, for its length only). The pieces are the training pairs as
    the tokenizer's pieces, for a peer toolkit to train on the same data.
    """
    train = load_corpus("bible-en-fr", "train")[: settings.train_pairs]
    test = load_corpus("bible-en-fr", "test")[: settings.test_pairs]
    tokenizer = build_tokenizer(
        "unigram",
        [side for pair in train for side in pair],
        folder / "bible-unigram",
        vocab_size=settings.vocab_size,
    )
    sources = [tokenizer.encode(en) for en, _ in train]
    targets = [tokenizer.encode(fr) for _, fr in train]
    groups = bucket_batches(
        [len(s) for s in sources],
        [len(t) + 1 for t in targets],
        max_tokens=settings.batch_size * 1000,
        max_sentences=settings.batch_size,
        seed=0,
    )
    full = [g for g in groups if len(g) == settings.batch_size]
    random.Random(0).shuffle(full)
    pool = [make_batch([sources[i] for i in g], [targets[i] for i in g]) for g in full]
    test_src = [tokenizer.encode(en) for en, _ in test]
    test_tgt = [tokenizer.encode(fr) for _, fr in test]
    order = sorted(range(len(test)), key=lambda i: len(test_src[i]))
    n = settings.decode_batch_size
    test_batches = [
        make_batch([test_src[i] for i in order[k : k + n]], [test_tgt[i] for i in order[k : k + n]])
        for k in range(0, len(order), n)
    ]
    pieces = [
        ([tokenizer.id_to_piece(i) for i in src], [tokenizer.id_to_piece(i) for i in tgt])
        for src, tgt in zip(sources, targets, strict=True)
    ]
    return Prepared(pool[: settings.batches], pool, test_batches, pieces)


@dataclass(frozen=True)
class TrainingSpeed:
    """Training throughput against the roofline."""

    tokens_per_s: float  # median over rounds
    best_tokens_per_s: float
    roofline_tokens_per_s: float
    fraction_of_roofline: float
    peak_gflops: float
    gflop_per_round: float
    target_tokens_per_round: int
    source_tokens_per_round: int
    padded_target_positions: int


VARIANTS = {  # (Seq2Seq.fused_loop, native.enabled)
    "fused loop": (True, True),  # the default: attention, cell and loss as native kernels
    "fused, PyTorch ops": (True, False),  # the same loop with PyTorch operators only
    "step by step": (False, False),  # the autograd step, as before the fused loop
}


def use_variant(model: Seq2Seq, name: str) -> None:
    """Switch ``model`` (and the native kernels) to one of :data:`VARIANTS`."""
    model.fused_loop, native.enabled = VARIANTS[name]


def time_training(
    model: Seq2Seq, optimizer: torch.optim.Optimizer, batches: list[Batch], rounds: int
) -> dict[str, TrainingSpeed]:
    """Throughput of :func:`train_step` over ``batches`` for each of :data:`VARIANTS`.

    Each round measures the matmul peak, then times one pass over the batches per variant, in
    turn (so load changes touch every variant alike); throughput is the median over rounds.
    """
    for name in VARIANTS:  # warm-up: allocator, oneDNN primitives, Adam state
        use_variant(model, name)
        for batch in batches:
            train_step(model, optimizer, batch)
    tokens = sum(b.target_tokens for b in batches)
    flops = sum(roofline_flops(model.config, model.target_vocab_size, b) for b in batches)
    peaks: list[float] = []
    speeds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        peaks.append(matmul_peak())
        for name in VARIANTS:
            use_variant(model, name)
            start = time.perf_counter()
            for batch in batches:
                train_step(model, optimizer, batch)
            speeds[name].append(tokens / (time.perf_counter() - start))
    use_variant(model, "fused loop")
    peak = max(peaks)  # GFLOP/s; the best is the machine's, the others were slowed by load
    roofline = tokens / (flops / (peak * 1e9))
    return {
        name: TrainingSpeed(
            tokens_per_s=statistics.median(runs),
            best_tokens_per_s=max(runs),
            roofline_tokens_per_s=roofline,
            fraction_of_roofline=statistics.median(runs) / roofline,
            peak_gflops=peak,
            gflop_per_round=flops / 1e9,
            target_tokens_per_round=tokens,
            source_tokens_per_round=sum(int(b.src_lengths.sum()) for b in batches),
            padded_target_positions=sum(b.tgt_out.numel() for b in batches),
        )
        for name, runs in speeds.items()
    }


def phased_step(optimizer: torch.optim.Optimizer) -> Callable[..., None]:
    """:func:`train_step` with its phases labelled, for :func:`translation_profile.profile_step`."""

    def step(model: Seq2Seq, batch: Batch, phase: Callable[[str], Any]) -> None:
        optimizer.zero_grad(set_to_none=True)
        with phase("forward"):
            logits = model(batch.src, batch.src_lengths, batch.tgt_in).logits  # (B, T, V)
            loss = token_cross_entropy(logits, batch.tgt_out, PAD_ID)
        with phase("backward"):
            torch.autograd.backward(loss)
        with phase("optimizer"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            optimizer.step()

    return step


def profile_training(
    model: Seq2Seq, optimizer: torch.optim.Optimizer, batches: list[Batch], settings: Settings
) -> dict[str, Any]:
    """The profile of one step on the longest timed batch, for each of :data:`VARIANTS`."""
    batch = max(batches, key=lambda b: b.tgt_in.shape[1])
    dims = Dims(
        batch=batch.src.shape[0],
        source=batch.src.shape[1],
        target=batch.tgt_in.shape[1],
        attention=settings.hidden_size,
        vocab=settings.vocab_size,
    )
    print(
        f"\nprofile of one training step (torch.profiler, self time by kind), batch {dims.batch}, "
        f"S={dims.source}, T={dims.target}:"
    )
    out = {}
    for name in VARIANTS:
        use_variant(model, name)
        prof = profile_step(model, phased_step(optimizer), batch, dims)
        print_profile(name, prof)
        out[name] = asdict(prof)
    use_variant(model, "fused loop")
    return out


class Trained(NamedTuple):
    """What :func:`train_for` did."""

    steps: int
    loss: float  # mean of the last 10 steps
    target_tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        """Target tokens per second over the whole run."""
        return self.target_tokens / self.seconds


def train_for(
    model: Seq2Seq, optimizer: torch.optim.Optimizer, pool: list[Batch], seconds: float
) -> Trained:
    """Train on random batches of ``pool`` for ``seconds`` (the last step may end after it)."""
    rng = random.Random(1)
    losses: list[float] = []
    tokens = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = rng.choice(pool)
        losses.append(train_step(model, optimizer, batch))
        tokens += batch.target_tokens
    elapsed = time.perf_counter() - start
    recent = losses[-10:]
    return Trained(len(losses), sum(recent) / max(len(recent), 1), tokens, elapsed)


@dataclass(frozen=True)
class DecodingSpeed:
    """One decoding method on (part of) the test set."""

    sentences: int
    seconds: float
    sentences_per_s: float
    mean_output_tokens: float
    ended_share: float  # outputs that ended with eos (the rest hit the maximum length)
    mean_source_tokens: float


Search = Callable[[Seq2Seq, Tensor, Tensor], list[list[Hypothesis]]]


def time_decoding(
    model: Seq2Seq, batches: list[Batch], search: Search, repeats: int = 1
) -> DecodingSpeed:
    """Decode every batch with ``search``; the fastest of ``repeats`` passes."""
    search(model, batches[0].src, batches[0].src_lengths)  # warm-up
    best = math.inf
    outputs: list[Hypothesis] = []
    for _ in range(repeats):
        outputs = []
        start = time.perf_counter()
        for batch in batches:
            outputs += [hyps[0] for hyps in search(model, batch.src, batch.src_lengths)]
        best = min(best, time.perf_counter() - start)
    n = len(outputs)
    return DecodingSpeed(
        sentences=n,
        seconds=best,
        sentences_per_s=n / best,
        mean_output_tokens=sum(len(h.tokens) for h in outputs) / n,
        ended_share=sum(h.ended for h in outputs) / n,
        mean_source_tokens=sum(float(b.src_lengths.sum()) for b in batches) / n,
    )


def one_at_a_time(batches: list[Batch], count: int) -> list[Batch]:
    """``count`` single-sentence batches spread evenly over the (length-sorted) test batches."""
    singles = [
        Batch(b.src[i : i + 1, : int(n)], b.src_lengths[i : i + 1], b.tgt_in[i : i + 1], b.tgt_out)
        for b in batches
        for i, n in enumerate(b.src_lengths.tolist())
    ]
    count = min(count, len(singles))
    return [singles[(2 * k + 1) * len(singles) // (2 * count)] for k in range(count)]


@contextmanager
def never_ending(model: Seq2Seq) -> Iterator[None]:
    """Decode without eos: every output runs to its maximum length.

    The searches end a hypothesis when it produces ``model.eos_id`` and never produce bos; with
    the eos id swapped for bos for the duration, nothing ends early (the real eos token is then
    an ordinary token). Lengths, and so the work, become the same for every method and model.
    """
    eos = model.eos_id
    model.eos_id = model.bos_id
    try:
        yield
    finally:
        model.eos_id = eos


def decode_all(
    model: Seq2Seq,
    batches: list[Batch],
    settings: Settings,
    max_len_a: float,
    max_len_b: float,
) -> dict[str, Any]:
    """Batched beam, one-at-a-time beam and batched greedy search, with their ratios."""
    beam = SearchConfig(beam_size=settings.beam_size, max_len_a=max_len_a, max_len_b=int(max_len_b))

    def beam_fn(m: Seq2Seq, src: Tensor, lengths: Tensor) -> list[list[Hypothesis]]:
        return beam_search(m, m.encode(src, lengths), beam)

    def greedy_fn(m: Seq2Seq, src: Tensor, lengths: Tensor) -> list[list[Hypothesis]]:
        return greedy_search(m, m.encode(src, lengths), max_len_a, max_len_b)

    batched = time_decoding(model, batches, beam_fn, repeats=2)
    singles = one_at_a_time(batches, settings.single_sentences)
    single = time_decoding(model, singles, beam_fn, repeats=2)
    greedy = time_decoding(model, batches, greedy_fn, repeats=2)
    return {
        "beam_batched": asdict(batched),
        "beam_one_at_a_time": asdict(single),
        "greedy_batched": asdict(greedy),
        "beam_batched_vs_one_at_a_time": batched.sentences_per_s / single.sentences_per_s,
        "greedy_vs_beam_batched": greedy.sentences_per_s / batched.sentences_per_s,
    }


def print_decoding(title: str, result: dict[str, Any], settings: Settings) -> None:
    """The rows and ratios of one :func:`decode_all` result."""
    print(f"  {title}")
    K, B = settings.beam_size, settings.decode_batch_size
    names = {
        "beam_batched": f"beam {K}, batch {B}",
        "beam_one_at_a_time": f"beam {K}, one at a time",
        "greedy_batched": f"greedy, batch {B}",
    }
    for key, name in names.items():
        d = result[key]
        print(
            f"    {name:24s} {d['sentences_per_s']:7.2f} sent/s  ({d['sentences']} sentences, "
            f"mean source {d['mean_source_tokens']:.1f}, output {d['mean_output_tokens']:.1f} "
            f"tokens, {100 * d['ended_share']:.0f}% ended with eos)"
        )
    print(
        f"    batched beam / one at a time {result['beam_batched_vs_one_at_a_time']:.2f}x; "
        f"greedy / batched beam "
        f"{result['greedy_vs_beam_batched']:.2f}x"
    )


def side_by_side(
    model: Seq2Seq,
    optimizer: torch.optim.Optimizer,
    pool: list[Batch],
    pieces: list[tuple[list[str], list[str]]],
    settings: Settings,
    options: Options,
) -> dict[str, Any] | None:
    """rnnkit, then the peer, each training ``peer_seconds`` on the same pairs; the ratio."""
    assert options.peer == "opennmt"
    python = options.peer_python or "python"
    reason = available(python)
    if reason is not None:
        print(f"\npeer skipped: {reason}")
        return None
    seconds = options.peer_seconds
    print(f"\nside by side, {seconds:g} s of training each, one after the other:")
    ours = train_for(model, optimizer, pool, seconds)
    print(
        f"  rnnkit          {ours.tokens_per_s:7.0f} target tok/s  ({ours.steps} steps, "
        f"{ours.target_tokens} target tokens in {ours.seconds:.0f} s, random training batches)"
    )
    with tempfile.TemporaryDirectory() as folder:
        try:
            theirs = train_opennmt(
                python,
                pieces,
                seconds,
                options.threads,
                Path(folder),
                settings,
                learning_rate=LEARNING_RATE,
                clip_norm=CLIP_NORM,
            )
        except PeerError as error:
            print(f"  peer failed: {error}")
            return None
    ratio = ours.tokens_per_s / theirs.tokens_per_s
    print(
        f"  {theirs.name} {theirs.tokens_per_s:7.0f} target tok/s  ({theirs.steps} steps; "
        f"median window {theirs.median_window_tokens_per_s:.0f}; {theirs.parameters:,} parameters)"
    )
    print(f"  rnnkit / {theirs.name.split(' (')[0]} {ratio:.2f}x")
    return {"rnnkit": ours._asdict(), "peer": asdict(theirs), "ratio": ratio}


@dataclass(frozen=True)
class Options:
    """What a run does beyond :class:`Settings`."""

    threads: int = 2
    profile: bool = False
    keep_freed_memory: bool = True
    peer: str | None = None  # "opennmt"
    peer_python: str | None = None
    peer_seconds: float = 300.0


def run(settings: Settings, options: Options) -> dict[str, Any]:
    """The whole benchmark, under ``rnnkit train``'s process settings; every figure."""
    with flush_denormals(), keep_freed_memory(options.keep_freed_memory):
        return _run(settings, options)


def _run(settings: Settings, options: Options) -> dict[str, Any]:
    torch.set_num_threads(options.threads)
    torch.manual_seed(0)
    load_before = load()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {load_before:.2f}, "
        f"denormals flushed, freed memory {'kept' if options.keep_freed_memory else 'unmapped'}"
    )
    with tempfile.TemporaryDirectory() as folder:
        timed, pool, test_batches, pieces = prepare(settings, Path(folder))
    config = model_config(settings)
    model = Seq2Seq(config, settings.vocab_size, settings.vocab_size, PAD_ID, BOS_ID, EOS_ID)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, fused=True)

    model.train()
    speeds = time_training(model, optimizer, timed, settings.rounds)
    speed = speeds["fused loop"]
    print(
        f"\ntraining: LSTM, additive attention, E={settings.embedding_size}, "
        f"He={settings.encoder_hidden_size} x 2 directions, H={settings.hidden_size}, "
        f"V={settings.vocab_size}, batch {settings.batch_size}, dropout {settings.dropout}, "
        f"fused Adam, clip {CLIP_NORM:g}"
    )
    print(
        f"  {len(timed)} batches: {speed.target_tokens_per_round} target tokens (eos included; "
        f"{speed.padded_target_positions} padded positions), {speed.source_tokens_per_round} "
        f"source tokens; median of {settings.rounds} rounds, the variants interleaved"
    )
    print(
        f"  roofline   {speed.roofline_tokens_per_s:9.0f} tok/s   (the matmuls alone: "
        f"{speed.gflop_per_round:.1f} GFLOP on real tokens, forward + backward = 3 x forward, at "
        f"the peak {speed.peak_gflops:.0f} GFLOP/s measured in this run)"
    )
    for name, sp in speeds.items():
        print(
            f"  {name:24s} {sp.tokens_per_s:7.0f} tok/s   fraction of roofline "
            f"{sp.fraction_of_roofline:.2f}   (best round {sp.best_tokens_per_s:.0f})"
        )
    ab = speed.tokens_per_s / speeds["step by step"].tokens_per_s
    kernels = speed.tokens_per_s / speeds["fused, PyTorch ops"].tokens_per_s
    print(
        f"  fused loop / step by step {ab:.2f}x; native kernels / PyTorch operators in the fused "
        f"loop {kernels:.2f}x"
    )
    profiled = profile_training(model, optimizer, timed, settings) if options.profile else None

    peer = None
    if options.peer is not None:
        peer = side_by_side(model, optimizer, pool, pieces, settings, options)
    trained = train_for(model, optimizer, pool, settings.train_seconds)
    steps, loss = trained.steps, trained.loss
    model.eval()
    n_test = sum(len(b.src_lengths) for b in test_batches)
    reference = sum(b.target_tokens - len(b.src_lengths) for b in test_batches) / n_test
    source = sum(float(b.src_lengths.sum()) for b in test_batches) / n_test
    print(
        f"\ndecoding after {settings.train_seconds:g} s more training ({steps} steps, loss "
        f"{loss:.2f}); {n_test} test verses, mean source {source:.1f} tokens, reference "
        f"{reference:.1f} tokens"
    )
    free = decode_all(model, test_batches, settings, max_len_a=1.5, max_len_b=10)
    print_decoding("as trained, ending at eos or at 1.5 S + 10 tokens:", free, settings)
    ratio = reference / source
    with never_ending(model):
        fixed = decode_all(model, test_batches, settings, max_len_a=ratio, max_len_b=0)
    print_decoding(
        f"at the reference length: eos disabled, every output exactly floor({ratio:.3f} S) tokens:",
        fixed,
        settings,
    )
    load_after = load()
    print(f"\nload average {load_before:.2f} before, {load_after:.2f} after")
    return {
        "settings": asdict(settings),
        "threads": torch.get_num_threads(),
        "training": asdict(speed),
        "training_variants": {name: asdict(sp) for name, sp in speeds.items()},
        "fused_vs_step_by_step": ab,
        "native_vs_pytorch_ops": kernels,
        "profile": profiled,
        "peer": peer,
        "decoding": {
            "train_steps": steps,
            "train_loss": loss,
            "reference_tokens": reference,
            "source_tokens": source,
            "as_trained": free,
            "reference_length": fixed,
        },
        "load_before": load_before,
        "load_after": load_after,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run, print; returns the figures (also written with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test (< 30 s)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--batches", type=int, help="timed training batches (8)")
    parser.add_argument("--rounds", type=int, help="timed passes over them (3)")
    parser.add_argument("--train-seconds", type=float, help="training before decoding (60)")
    parser.add_argument("--single-sentences", type=int, help="sentences decoded alone (60)")
    parser.add_argument(
        "--profile", action="store_true", help="also profile one training step per variant"
    )
    parser.add_argument(
        "--unmap-freed-memory",
        action="store_true",
        help="glibc's default: large freed buffers go back to the system (the A/B of "
        "train.keep_freed_memory)",
    )
    parser.add_argument("--peer", choices=["opennmt"], help="also train this toolkit side by side")
    parser.add_argument(
        "--peer-python", metavar="PYTHON", help="the peer environment's python (see README)"
    )
    parser.add_argument(
        "--peer-seconds", type=float, default=300.0, help="training time of each side (300)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    overrides = {
        "batches": args.batches,
        "rounds": args.rounds,
        "train_seconds": args.train_seconds,
        "single_sentences": args.single_sentences,
    }
    settings = Settings(
        **{**asdict(settings), **{k: v for k, v in overrides.items() if v is not None}}
    )
    options = Options(
        threads=args.threads,
        profile=args.profile,
        keep_freed_memory=not args.unmap_freed_memory,
        peer=args.peer,
        peer_python=args.peer_python,
        peer_seconds=args.peer_seconds,
    )
    results = run(settings, options)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
