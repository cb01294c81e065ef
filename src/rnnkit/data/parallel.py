"""Parallel (source, target) text: reading TSV or aligned files, writing TSV, length-bucketed batches.

Two input layouts, both UTF-8 (a byte-order mark at the start is ignored; lines may end in LF or
CRLF):

- one TSV file, ``source<TAB>target`` per line. Extra columns, as in Tatoeba/Anki exports
  (``Go.<TAB>Va !<TAB>CC-BY 2.0 (France) Attribution: ...``), are ignored; ``columns`` picks other
  columns, e.g. ``(1, 3)`` for Tatoeba's ``id<TAB>text<TAB>id<TAB>text`` pair files;
- two aligned text files, line i of one translating line i of the other.

Each side is stripped of surrounding whitespace. Lines that are blank on both sides are ignored
(not errors, not counted). Problems are reported as :class:`ParallelDataError` naming the file and
the line (numbered from 1): too few columns, an empty side, bad UTF-8. With ``on_error="skip"``
such lines are dropped and counted in :attr:`ParallelData.skipped` instead (a line-count mismatch
between two aligned files always raises: no line of them can be trusted);
:meth:`ParallelData.skip_summary` is the one line to report them with. Every pair keeps its line
number (:attr:`ParallelData.lines`), so later checks (a sentence too long) can name it too.

Batches (:func:`bucket_batches`) group examples of similar length under a token budget: the padded
size of a batch, ``count * max(longest source, longest target)``, is at most ``max_tokens``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

from rnnkit.io import write_text_atomic

OnError = Literal["raise", "skip"]
ON_ERROR: tuple[OnError, ...] = get_args(OnError)

PathLike = str | os.PathLike[str]
Pair = tuple[str, str]


class ParallelDataError(ValueError):
    """A bad line in parallel data; the message names the file and the line."""


@dataclass(frozen=True)
class ParallelData:
    """Sentence pairs read from disk.

    Attributes:
        pairs: ``(source, target)`` strings, in file order, each side stripped and non-empty.
        skipped: how many lines were dropped as bad (always 0 with ``on_error="raise"``).
        problems: one message per skipped line (``"file:line: reason"``), in file order.
        lines: the line number (from 1) of each pair, ``len(lines) == len(pairs)``; empty when
            the pairs did not come from a file.
        skipped_lines: the line number of each skipped line, in file order.
        name: the file(s) read, for messages (``a.tsv``, or ``a.en + a.fr`` for aligned files).
    """

    pairs: list[Pair]
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    skipped_lines: list[int] = field(default_factory=list)
    name: str = ""

    def skip_summary(self, shown: int = 5) -> str | None:
        """One line for the log about the skipped lines, None when none was skipped.

        ``skipped 3 bad lines of pairs.tsv (lines 4, 9, 17; line 4: empty target side)``: the
        count, the first ``shown`` line numbers (``...`` when there are more) and the first
        reason.
        """
        if not self.skipped:
            return None
        numbers = ", ".join(str(n) for n in self.skipped_lines[:shown])
        more = ", ..." if self.skipped > shown else ""
        noun = "line" if self.skipped == 1 else "lines"
        reason = self.problems[0].split(": ", 1)[-1] if self.problems else ""
        first = f"; line {self.skipped_lines[0]}: {reason}" if reason else ""
        return f"skipped {self.skipped} bad {noun} of {self.name} ({noun} {numbers}{more}{first})"


def _lines(path: Path) -> list[bytes]:
    """The raw lines of ``path`` without their line endings (LF or CRLF) and without a BOM."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ParallelDataError(f"{path}: no such file") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ParallelDataError(
            f"{where}: not valid UTF-8 (byte {err.start + 1} of the line)"
        ) from None


def _tsv_pair(raw: bytes, where: str, columns: tuple[int, int]) -> Pair | None:
    """One TSV line as a pair, None for a blank line; ParallelDataError for a bad one."""
    text = _decode(raw, where)
    if not text.strip():
        return None
    cells = text.split("\t")
    need = max(columns) + 1
    if len(cells) < need:
        raise ParallelDataError(
            f"{where}: expected at least {need} tab-separated columns, found {len(cells)}"
        )
    source, target = cells[columns[0]].strip(), cells[columns[1]].strip()
    _check_sides(source, target, where)
    return source, target


def _check_sides(source: str, target: str, where: str) -> None:
    if not source:
        raise ParallelDataError(f"{where}: empty source side")
    if not target:
        raise ParallelDataError(f"{where}: empty target side")


def read_parallel(
    source: PathLike | tuple[PathLike, PathLike],
    *,
    on_error: OnError = "raise",
    columns: tuple[int, int] = (0, 1),
) -> ParallelData:
    """Read sentence pairs from a TSV file or from two aligned text files.

    Args:
        source: a TSV path, or a ``(source_path, target_path)`` pair of aligned text files.
        on_error: ``"raise"`` stops at the first bad line with :class:`ParallelDataError`;
            ``"skip"`` drops bad lines and counts them in ``ParallelData.skipped``.
        columns: the (source, target) column indices of a TSV file (0-based); other columns
            are ignored. Not used for aligned files.

    Returns:
        :class:`ParallelData` with the pairs in file order.

    Raises:
        ParallelDataError: a missing file, a bad line (``on_error="raise"``), or two aligned
            files with different line counts.
        ValueError: an unknown ``on_error`` or bad ``columns``.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}; got {on_error!r}")
    if len(columns) != 2 or min(columns) < 0 or columns[0] == columns[1]:
        raise ValueError(f"columns must be two distinct indices >= 0; got {columns!r}")
    pairs: list[Pair] = []
    problems: list[str] = []
    lines: list[int] = []
    skipped_lines: list[int] = []
    if isinstance(source, tuple):
        src_path, tgt_path = Path(source[0]), Path(source[1])
        src_lines, tgt_lines = _lines(src_path), _lines(tgt_path)
        if len(src_lines) != len(tgt_lines):
            raise ParallelDataError(
                f"{src_path} has {len(src_lines)} lines but {tgt_path} has {len(tgt_lines)}; "
                "aligned files must have one line per sentence"
            )
        for number, (raw_src, raw_tgt) in enumerate(zip(src_lines, tgt_lines, strict=True), 1):
            try:
                src = _decode(raw_src, f"{src_path}:{number}").strip()
                tgt = _decode(raw_tgt, f"{tgt_path}:{number}").strip()
                if not src and not tgt:
                    continue
                if not src:
                    raise ParallelDataError(f"{src_path}:{number}: empty source side")
                if not tgt:
                    raise ParallelDataError(f"{tgt_path}:{number}: empty target side")
            except ParallelDataError as err:
                if on_error == "raise":
                    raise
                problems.append(str(err))
                skipped_lines.append(number)
                continue
            pairs.append((src, tgt))
            lines.append(number)
        name = f"{src_path} + {tgt_path}"
    else:
        path = Path(source)
        for number, raw in enumerate(_lines(path), 1):
            try:
                pair = _tsv_pair(raw, f"{path}:{number}", columns)
            except ParallelDataError as err:
                if on_error == "raise":
                    raise
                problems.append(str(err))
                skipped_lines.append(number)
                continue
            if pair is not None:
                pairs.append(pair)
                lines.append(number)
        name = str(path)
    return ParallelData(
        pairs=pairs,
        skipped=len(problems),
        problems=problems,
        lines=lines,
        skipped_lines=skipped_lines,
        name=name,
    )


def write_tsv(pairs: Sequence[Pair], path: PathLike) -> None:
    """Write ``pairs`` as ``source<TAB>target`` lines (UTF-8, LF) to ``path``, atomically.

    :func:`read_parallel` reads the file back to the same pairs. Raises ``ValueError`` naming the
    pair (0-based) if a side is empty after stripping or holds a tab or a line break.
    """
    lines = []
    for i, pair in enumerate(pairs):
        for side, text in zip(("source", "target"), pair, strict=True):
            if not text.strip():
                raise ValueError(f"pair {i}: empty {side} side")
            if any(c in text for c in "\t\n\r"):
                raise ValueError(f"pair {i}: {side} side holds a tab or a line break")
        lines.append(f"{pair[0]}\t{pair[1]}\n")
    write_text_atomic(path, "".join(lines))


# ----------------------------------------------------------------------------- batching


def pad_pairs(
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    *,
    pad_id: int = 0,
    bos_id: int = 1,
    eos_id: int = 2,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pad token-id pairs into the tensors of an encoder-decoder batch.

    Args:
        sources: B source id lists (each non-empty for a model to read).
        targets: B target id lists, without bos/eos.
        pad_id, bos_id, eos_id: the special ids.

    Returns:
        ``src`` (B, S) padded sources, ``src_lengths`` (B,), ``tgt_in`` (B, T) = ``bos y``
        padded, ``tgt_out`` (B, T) = ``y eos`` padded, with T = longest target + 1.
    """
    B = len(sources)
    S = max((len(s) for s in sources), default=1)
    T = max((len(t) for t in targets), default=0) + 1
    src = torch.full((B, S), pad_id, dtype=torch.long)  # (B, S)
    tgt_in = torch.full((B, T), pad_id, dtype=torch.long)  # (B, T)
    tgt_out = torch.full((B, T), pad_id, dtype=torch.long)  # (B, T)
    for b, (s, t) in enumerate(zip(sources, targets, strict=True)):
        src[b, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        tgt_in[b, : len(t) + 1] = torch.tensor([bos_id, *t], dtype=torch.long)
        tgt_out[b, : len(t) + 1] = torch.tensor([*t, eos_id], dtype=torch.long)
    lengths = torch.tensor([len(s) for s in sources], dtype=torch.long)  # (B,)
    return src, lengths, tgt_in, tgt_out


def bucket_batches(
    lengths_src: Sequence[int],
    lengths_tgt: Sequence[int],
    *,
    max_tokens: int,
    max_sentences: int | None = None,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    chunk_size: int = 8192,
) -> list[list[int]]:
    """Group example indices into batches of similar length under a padded-token budget.

    With ``shuffle`` the N indices are permuted, cut into chunks of ``chunk_size``, each chunk is
    sorted by length (``max(source, target)``, then source, then target) and cut greedily into
    batches, and finally the order of all batches is permuted. Batches are therefore nearly
    homogeneous in length while their contents and order change every epoch. Without
    ``shuffle`` the same is done on the indices in order, without the final permutation. The
    result depends only on the lengths, the options, ``seed`` and ``epoch``.

    Every batch satisfies ``len(batch) * max(max(lengths_src[b]), max(lengths_tgt[b])) <=
    max_tokens`` and ``len(batch) <= max_sentences``; every index appears in exactly one batch.
    Pass the lengths as the model sees them (e.g. counting BOS/EOS).

    Args:
        lengths_src: source length S of each example, (N,).
        lengths_tgt: target length T of each example, (N,).
        max_tokens: budget of padded tokens per batch, per side.
        max_sentences: optional cap on the examples per batch (B).
        seed, epoch: seed the shuffle; the same pair gives the same batches.
        shuffle: permute examples and batches (training) or keep file order (evaluation).
        chunk_size: examples sorted together; larger means tighter length buckets.

    Returns:
        Lists of example indices, one per batch.

    Raises:
        ValueError: mismatched or negative lengths, a budget below 1, or an example longer than
            ``max_tokens`` (naming it).
    """
    if len(lengths_src) != len(lengths_tgt):
        raise ValueError(
            f"lengths_src has {len(lengths_src)} entries but lengths_tgt has {len(lengths_tgt)}"
        )
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1; got {max_tokens}")
    if max_sentences is not None and max_sentences < 1:
        raise ValueError(f"max_sentences must be >= 1 or None; got {max_sentences}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    src = np.asarray(lengths_src, dtype=np.int64).reshape(-1)  # (N,)
    tgt = np.asarray(lengths_tgt, dtype=np.int64).reshape(-1)  # (N,)
    if src.size and min(int(src.min()), int(tgt.min())) < 0:
        raise ValueError("lengths must be >= 0")
    longest = np.maximum(src, tgt)  # (N,)
    too_long = np.flatnonzero(longest > max_tokens)
    if too_long.size:
        i = int(too_long[0])
        raise ValueError(
            f"example {i} has {int(longest[i])} tokens (source {int(src[i])}, target "
            f"{int(tgt[i])}), more than max_tokens={max_tokens}; filter long pairs or raise "
            f"max_tokens ({too_long.size} example(s) too long)"
        )
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(src.size) if shuffle else np.arange(src.size)
    cap = max_sentences if max_sentences is not None else max_tokens
    batches: list[list[int]] = []
    for start in range(0, order.size, chunk_size):
        chunk = order[start : start + chunk_size]
        # lexsort's last key is the primary one; it is stable, so ties keep the shuffled order
        chunk = chunk[np.lexsort((tgt[chunk], src[chunk], longest[chunk]))]
        batch: list[int] = []
        width = 0
        for index in chunk.tolist():
            new_width = max(width, int(longest[index]))
            if batch and (new_width * (len(batch) + 1) > max_tokens or len(batch) >= cap):
                batches.append(batch)
                batch, new_width = [], int(longest[index])
            batch.append(index)
            width = new_width
        if batch:
            batches.append(batch)
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches)).tolist()]
    return batches
