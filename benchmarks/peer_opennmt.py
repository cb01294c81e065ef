"""OpenNMT-py trained as the peer of ``translation.py``: the same model, data and time, beside it.

OpenNMT-py is never a dependency of rnnkit. It lives in its own virtual environment, whose
``python`` is given to :func:`train_opennmt`; this module only writes files, starts that python
and reads its log. The environment (see ``benchmarks/README.md``)::

    python3 -m venv onmt-venv
    onmt-venv/bin/pip install torch==2.13.0
    onmt-venv/bin/pip install --no-deps OpenNMT-py==3.5.1
    onmt-venv/bin/pip install --no-deps pyonmttok==1.38.1 configargparse==1.9.0 pyyaml==6.0.4 \
        numpy==2.4.6
    onmt-venv/bin/pip install spacy==3.8.18 pyahocorasick==2.3.1 rapidfuzz==3.14.6 \
        regex==2026.11.19 fasttext-wheel==0.9.2 sacrebleu==2.6.0

OpenNMT-py 3.5.1 declares ``torch<2.3``; it is installed with ``--no-deps`` so that pip keeps
torch 2.13.0, with which it trains unchanged (its files are not patched; torch only warns that
``torch.cuda.amp.custom_fwd`` and friends are deprecated). The other packages are what ``import
onmt.bin.train`` imports (none of them depends on torch, so pip leaves it alone):
``onmt.transforms`` imports every transform module, so spacy, pyahocorasick, rapidfuzz, regex and
fasttext are needed although no transform is used, and ``onmt.scorers`` imports sacrebleu. Of its
declared dependencies, six, ctranslate2, tensorboard and the server's flask and waitress are not
imported.

The data: the pairs ``translation.py`` trains on, as rnnkit's sentencepiece pieces (unigram, V =
8000, trained on both sides), written pre-tokenised: one sentence per line, pieces separated by
one space, which is how OpenNMT-py splits a line when no transform is given. OpenNMT-py's own
``onmt.bin.build_vocab`` counts them (``share_vocab``: one vocabulary, as rnnkit's joint one);
the Bible's training split uses 7995 of the 8000 pieces, plus OpenNMT-py's four specials
(``<unk> <blank> <s> </s>``), padded to a multiple of 8 (its ``vocab_size_multiple``): V = 8000
on each side, each with its own embedding table, as in rnnkit. Sources are fed as they are;
targets get ``<s>`` in front and ``</s>`` at the end, and the loss is over ``y </s>``: the
target tokens counted per batch are rnnkit's (eos included, padding excluded).

The model (the YAML of :func:`opennmt_config`), setting by setting:

- ``encoder_type: brnn``, ``rnn_type: LSTM``, ``layers: 1``, ``hidden_size: 512``: one
  bidirectional LSTM layer; OpenNMT-py gives each direction ``hidden_size / 2`` = 256 (rnnkit's
  He), so the encoder states are 512 wide (De), and the decoder is one LSTM of 512 (H). Its
  final states (both directions side by side) start the decoder, with no bridge, as rnnkit does
  when De = H;
- ``word_vec_size: 256``: E, on both sides;
- ``decoder_type: rnn``, ``global_attention: mlp``, ``input_feed: 1``: OpenNMT-py's additive
  (Bahdanau) score ``v^T tanh(W_q s_t + W_c h_i)`` with Ha = 512, and the decoder cell's input
  ``[emb(y_{t-1}); o_{t-1}]`` of 256 + 512 = 768, the size of rnnkit's ``[x_t; c_t]``. The
  rest is OpenNMT-py's own and differs: it scores with ``s_t`` after the cell (rnnkit: with
  ``s_{t-1}`` before it), projects all encoder states with ``W_c`` again at every target step
  (rnnkit: once per sentence), and predicts from ``o_t = W_out [c_t; s_t]`` (512) through a
  512 x V generator (rnnkit: a deep output of size E = 256, then 256 x V). 12.9 M parameters;
- ``dropout: [0.2]``: at OpenNMT-py's places (embeddings, decoder outputs);
- ``batch_type: sents``, ``batch_size: 64``, ``batch_size_multiple: 1``: 64 sentences a
  batch; its dynamic iterator sorts a bucket by length and shuffles the batches, like
  :func:`rnnkit.data.parallel.bucket_batches`. ``bucket_size`` is the number of pairs, so the
  first bucket is one pass over the corpus (its default, 262144, would read the Bible 12 times
  before the first step);
- ``optim: adam``, ``learning_rate: 0.001``, ``learning_rate_decay: 1.0``,
  ``max_grad_norm: 5``, ``normalization: tokens``, ``label_smoothing: 0``: Adam (PyTorch's, not
  fused) at a constant 1e-3, gradient norm clipped at 5, the loss a mean over target tokens;
- ``num_workers: 0``, ``gpu_ranks: []``, ``model_dtype: fp32``: batches made in the training
  process itself, on the CPU, in float32, so OpenNMT-py uses only the threads it is given
  (``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` in its environment; it sets no thread count);
- no validation data, ``train_steps``, ``valid_steps`` and ``save_checkpoint_steps`` out of
  reach: it trains until it is stopped, and writes nothing but its log.

Timing. OpenNMT-py 3.5.1 has no time limit: it is terminated ``seconds`` after its first window
(below), so that ``seconds`` of training are measured after that warm-up, as rnnkit's are after
its warm-up pass. Every ``report_every`` steps it logs a window::

    [2026-12-02 01:40:07,041 INFO] Step  2/1000000; acc: 2.9; ppl: 6369.9; xent: 8.8; lr: 0.00100;
    sents:      64; bsz: 1024/1206/64; 425/500 tok/s;     20 sec;

``bsz`` is source tokens / target tokens / sentences per batch over the window and ``425/500
tok/s`` source / target tokens per second of the window (its statistics are reset right after
each report, so a window's clock runs from the previous report). The first window runs from
``Start training loop`` and also holds the first bucket's reading and the first steps' one-time
costs; it is left out. The overall rate is the target tokens of the other
windows (``report_every`` times the per-batch target count, each rounded to a token) over the
time between the first and the last report (the log's millisecond timestamps); the median of
those windows' printed target rates is reported beside it.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from rnnkit.io import write_text_atomic

START_LINE = "Start training loop"
STEP_LINE = re.compile(
    r"^\[(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO\] Step\s+(?P<step>\d+)(?:/\s*\d+)?;"
    r".*?; sents:\s+(?P<sents>\d+); bsz:\s*(?P<src>\d+)/\s*(?P<tgt>\d+)/\s*\d+;"
    r"\s*(?P<src_rate>[\d.]+)/\s*(?P<tgt_rate>[\d.]+) tok/s;"
)
START = re.compile(r"^\[(?P<time>[\d\- :,]+) INFO\] " + START_LINE)
VOCAB = re.compile(r"\* tgt vocab size = (\d+)")
PARAMETERS = re.compile(r"\* number of parameters: (\d+)")
NEVER = 10**9  # train_steps, valid_steps, save_checkpoint_steps: out of reach
_WHITESPACE = re.compile(r"\s")


class ModelSizes(Protocol):
    """What :func:`opennmt_config` reads of ``translation.Settings``."""

    @property
    def embedding_size(self) -> int: ...
    @property
    def encoder_hidden_size(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def dropout(self) -> float: ...
    @property
    def batch_size(self) -> int: ...


class PeerError(RuntimeError):
    """OpenNMT-py could not be run or reported too little; the message is one line."""


@dataclass(frozen=True)
class Window:
    """One ``Step ...`` line of OpenNMT-py's log: ``report_every`` training steps."""

    time: datetime
    step: int
    sentences: int
    source_per_batch: int
    target_per_batch: int
    source_tokens_per_s: float
    target_tokens_per_s: float


@dataclass(frozen=True)
class TrainingLog:
    """What :func:`parse_log` reads from one training log."""

    start: datetime | None  # the "Start training loop" line
    windows: tuple[Window, ...]
    vocab_size: int | None
    parameters: int | None


@dataclass(frozen=True)
class PeerResult:
    """OpenNMT-py's training speed, measured in this run."""

    name: str  # e.g. "OpenNMT-py 3.5.1 (torch 2.13.0+cpu)"
    tokens_per_s: float  # target tokens / time, over the windows after the first
    median_window_tokens_per_s: float
    source_tokens_per_s: float
    windows: int  # windows counted (the first is left out)
    steps: int  # steps trained at the last report
    target_tokens: int  # target tokens of the counted windows
    measured_s: float  # first report to last report
    first_window_s: float  # training loop start to the first report (left out)
    vocab_size: int
    parameters: int
    threads: int


def parse_log(text: str) -> TrainingLog:
    """Read the training start, the ``Step`` windows, V and the parameter count from a log."""
    start: datetime | None = None
    windows: list[Window] = []
    vocab_size = parameters = None
    for line in text.splitlines():
        if (m := STEP_LINE.match(line)) is not None:
            windows.append(
                Window(
                    time=_timestamp(m["time"]),
                    step=int(m["step"]),
                    sentences=int(m["sents"]),
                    source_per_batch=int(m["src"]),
                    target_per_batch=int(m["tgt"]),
                    source_tokens_per_s=float(m["src_rate"]),
                    target_tokens_per_s=float(m["tgt_rate"]),
                )
            )
        elif start is None and (m := START.match(line)) is not None:
            start = _timestamp(m["time"])
        elif (m := VOCAB.search(line)) is not None:
            vocab_size = int(m[1])
        elif (m := PARAMETERS.search(line)) is not None:
            parameters = int(m[1])
    return TrainingLog(start, tuple(windows), vocab_size, parameters)


def _timestamp(text: str) -> datetime:
    """``2026-12-02 01:40:07,041`` (the logging module's ``asctime``)."""
    return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S,%f")


def summarize(
    log: TrainingLog, report_every: int, threads: int, name: str, where: str
) -> PeerResult:
    """Overall and median target tokens/s of the windows after the first (see the module doc).

    Raises:
        PeerError: fewer than two windows, or no start line (``where`` names the log).
    """
    if log.start is None:
        raise PeerError(f"{where}: OpenNMT-py never logged '{START_LINE}'")
    if len(log.windows) < 2:
        raise PeerError(
            f"{where}: OpenNMT-py reported {len(log.windows)} training window(s); at least 2 are "
            f"needed (train longer or lower report_every, now {report_every})"
        )
    first, counted = log.windows[0], log.windows[1:]
    seconds = (counted[-1].time - first.time).total_seconds()
    target = sum(report_every * w.target_per_batch for w in counted)
    source = sum(report_every * w.source_per_batch for w in counted)
    return PeerResult(
        name=name,
        tokens_per_s=target / seconds,
        median_window_tokens_per_s=statistics.median(w.target_tokens_per_s for w in counted),
        source_tokens_per_s=source / seconds,
        windows=len(counted),
        steps=counted[-1].step,
        target_tokens=target,
        measured_s=seconds,
        first_window_s=(first.time - log.start).total_seconds(),
        vocab_size=log.vocab_size or 0,
        parameters=log.parameters or 0,
        threads=threads,
    )


def write_pieces(pairs: Sequence[tuple[Sequence[str], Sequence[str]]], folder: Path) -> None:
    """Write ``src.txt`` and ``tgt.txt``: one sentence a line, its pieces joined by one space.

    Raises:
        ValueError: an empty side, or a piece that is empty or holds whitespace (OpenNMT-py
            splits lines on spaces), naming the pair.
    """
    sides: tuple[list[str], list[str]] = ([], [])
    for k, pair in enumerate(pairs):
        for name, pieces, lines in zip(("source", "target"), pair, sides, strict=True):
            if not pieces:
                raise ValueError(f"training pair {k}: empty {name}")
            for piece in pieces:
                if not piece or _WHITESPACE.search(piece):
                    raise ValueError(
                        f"training pair {k}: {name} piece {piece!r} is empty or holds whitespace"
                    )
            lines.append(" ".join(pieces) + "\n")
    write_text_atomic(folder / "src.txt", "".join(sides[0]))
    write_text_atomic(folder / "tgt.txt", "".join(sides[1]))


def _data(folder: Path) -> dict[str, Any]:
    """The corpus and vocabulary keys shared by the vocabulary and training configs."""
    return {
        "save_data": str(folder),
        "src_vocab": str(folder / "vocab.txt"),
        "share_vocab": True,
        "data": {
            "corpus_1": {
                "path_src": str(folder / "src.txt"),
                "path_tgt": str(folder / "tgt.txt"),
                "transforms": [],
                "weight": 1,
            }
        },
    }


def opennmt_config(
    folder: Path,
    settings: ModelSizes,
    *,
    learning_rate: float,
    clip_norm: float,
    pairs: int,
    report_every: int,
) -> dict[str, Any]:
    """The training YAML (as a mapping) of rnnkit's model at ``settings``' sizes.

    Raises:
        ValueError: ``hidden_size`` is not twice ``encoder_hidden_size`` (OpenNMT-py's brnn
            gives each direction half the decoder's size).
    """
    E, He, H = settings.embedding_size, settings.encoder_hidden_size, settings.hidden_size
    if 2 * He != H:
        raise ValueError(
            f"OpenNMT-py's brnn encoder has hidden_size / 2 per direction: needs hidden_size = "
            f"2 x encoder_hidden_size, got {H} and {He}"
        )
    return {
        **_data(folder),
        "save_model": str(folder / "model"),
        "save_checkpoint_steps": NEVER,
        "train_steps": NEVER,
        "valid_steps": NEVER,
        "report_every": report_every,
        "seed": 1,  # OpenNMT-py seeds only when seed > 0
        "encoder_type": "brnn",
        "decoder_type": "rnn",
        "rnn_type": "LSTM",
        "layers": 1,
        "hidden_size": H,
        "word_vec_size": E,
        "global_attention": "mlp",
        "input_feed": 1,
        "dropout": [settings.dropout],
        "batch_type": "sents",
        "batch_size": settings.batch_size,
        "batch_size_multiple": 1,
        "bucket_size": pairs,
        "optim": "adam",
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "learning_rate": learning_rate,
        "learning_rate_decay": 1.0,
        "max_grad_norm": clip_norm,
        "normalization": "tokens",
        "label_smoothing": 0.0,
        "num_workers": 0,
        "gpu_ranks": [],
        "world_size": 1,
        "model_dtype": "fp32",
    }


def _environment(threads: int) -> dict[str, str]:
    """The peer's environment: ``threads`` intra-op threads, no GPU."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "CUDA_VISIBLE_DEVICES": "",
    }


def _probe(python: str) -> tuple[str | None, str]:
    """(error line or None, ``OpenNMT-py X (torch Y)``) of ``python``."""
    code = "import onmt, torch; print(onmt.__version__, torch.__version__)"
    try:
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=120, check=False
        )
    except OSError as err:
        return f"{python}: cannot run it ({err.strerror})", ""
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return f"{python} cannot import OpenNMT-py (onmt): {lines[-1]}", ""
    onmt, torch = done.stdout.split()
    return None, f"OpenNMT-py {onmt} (torch {torch})"


def available(python: str) -> str | None:
    """None when ``python`` imports onmt (and torch); else a one-line reason."""
    return _probe(python)[0]


def _last_line(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else "(no output)"


def train_opennmt(
    python: str,
    train_pairs: Sequence[tuple[Sequence[str], Sequence[str]]],
    seconds: float,
    threads: int,
    folder: Path,
    settings: ModelSizes,
    *,
    learning_rate: float,
    clip_norm: float,
    report_every: int = 2,
    startup_limit_s: float = 600.0,
) -> PeerResult:
    """Train OpenNMT-py on ``train_pairs`` for ``seconds`` with ``threads``; its target tokens/s.

    Args:
        python: the peer environment's interpreter (it must import onmt).
        train_pairs: (source pieces, target pieces) per training pair, rnnkit's sentencepiece
            pieces (``tokenizer.pieces(text)``, or ``id_to_piece`` of each id), no bos/eos.
        seconds: training time measured, from OpenNMT-py's first window (its warm-up) to its
            termination.
        threads: ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` of the peer process.
        folder: an empty folder for the text, vocabulary, configs and ``train.log``.
        settings: E, He, H, dropout and batch size (``translation.Settings``).
        learning_rate, clip_norm: rnnkit's Adam learning rate and gradient-norm clip.
        report_every: steps per logged window.
        startup_limit_s: the longest wait for the first window.

    Raises:
        PeerError: onmt cannot be imported, a step failed, or too few windows were logged.
        ValueError: bad pieces or sizes OpenNMT-py cannot build.
    """
    error, name = _probe(python)
    if error is not None:
        raise PeerError(error)
    config = opennmt_config(
        folder,
        settings,
        learning_rate=learning_rate,
        clip_norm=clip_norm,
        pairs=len(train_pairs),
        report_every=report_every,
    )
    write_pieces(train_pairs, folder)
    env = _environment(threads)
    vocab_config = folder / "vocab.yaml"
    write_text_atomic(vocab_config, yaml.safe_dump({**_data(folder), "overwrite": True}))
    vocab_log = folder / "vocab.log"
    with vocab_log.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            [python, "-m", "onmt.bin.build_vocab", "-config", str(vocab_config), "-n_sample", "-1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
            check=False,
        )
    if done.returncode != 0:
        raise PeerError(f"{vocab_log}: onmt build_vocab failed: {_last_line(vocab_log)}")
    train_config = folder / "train.yaml"
    write_text_atomic(train_config, yaml.safe_dump(config))
    log = folder / "train.log"
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [python, "-m", "onmt.bin.train", "-config", str(train_config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
        )
    launched, first_report = time.monotonic(), None
    try:
        while process.poll() is None:
            now = time.monotonic()
            if first_report is None:
                text = log.read_text(encoding="utf-8", errors="replace")
                if any(STEP_LINE.match(line) for line in text.splitlines()):
                    first_report = now
                elif now - launched > startup_limit_s:
                    raise PeerError(
                        f"{log}: OpenNMT-py reported no training window within "
                        f"{startup_limit_s:g} s"
                    )
            elif now - first_report >= seconds:
                break
            time.sleep(0.1)
        else:
            raise PeerError(
                f"{log}: OpenNMT-py exited with status {process.returncode}: {_last_line(log)}"
            )
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    text = log.read_text(encoding="utf-8", errors="replace")
    return summarize(parse_log(text), report_every, threads, name, str(log))
