"""Captioned images: CSV/TSV tables and Karpathy-split JSON files, and the caption tokenisation.

Both readers give a :class:`CaptionData`: one :class:`CaptionExample` per image, holding the
image's resolved path, its reference captions in file order (several rows or sentences of one
image are several references) and, when the file gives them, the boxes of the objects on it.

**CSV / TSV** (:func:`read_caption_table`). UTF-8 (a byte-order mark is ignored); the delimiter
follows the suffix: ``.csv`` comma, ``.tsv`` tab; any other suffix (``.txt``, ...) has it sniffed
from the header line among comma, tab, semicolon and ``|``. Quoted fields may hold the delimiter
and line breaks (Python's :mod:`csv`). The header row names the columns ``image`` and
``caption`` (any case; other columns are ignored) and optionally ``boxes``:

.. code-block:: text

    image,caption,boxes
    images/scene-00000.png,a dog left of a tree,"[{""word"": ""dog"", ""box"": [0.1, 0.2, 0.39, 0.49]}, ...]"
    photos/beach.jpg,two children on a beach,
    photos/beach.jpg,kids playing in the sand,

``image`` is a path relative to the table's folder (or absolute); rows of one image (the same
file, however spelled) are grouped into one example, examples in the order of their first row.
``boxes`` is empty or a JSON list of ``{"word": str, "box": [x0, y0, x1, y1]}`` with the corners
as fractions of the image's width and height (0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1); an image's
boxes come from its first row that has any, and a later row giving other boxes is an error.

**Karpathy JSON** (:func:`read_karpathy_json`), the layout of ``dataset_coco.json`` and
``dataset_flickr8k.json``::

    {"images": [{"filepath": "val2014", "filename": "x.jpg", "split": "train",
                 "sentences": [{"raw": "A dog runs.", "tokens": ["a", "dog", "runs"]}, ...]}, ...]}

The image is ``image_root / filepath / filename`` (``filepath`` is optional); ``split`` is one of
``train``, ``val``, ``test``, ``restval``; :data:`KARPATHY_SPLITS` maps rnnkit's splits to them
(``restval`` is training data). Only the ``raw`` sentences are read: the file's ``tokens`` are
not trusted, the raw text is tokenised again by :func:`caption_tokens`.

**Tokenisation** (:func:`caption_tokens`, the one used for training, decoding and every metric):
lower-case, then keep the runs of letters and digits (Unicode word characters, without ``_``),
an apostrophe between two such runs kept inside the word (``’`` written as ``'``); everything
else (punctuation, symbols, spaces) separates words and is dropped: ``"A dog, left of a TREE."``
-> ``a dog left of a tree``; ``"the woman’s hat"`` -> ``the woman's hat``.

**Errors** are :class:`CaptionDataError` messages naming the file and the line (CSV, 1-based, a
record's first line) or the JSON entry (``images[3]``, ``images[3].sentences[1]``): an empty
caption, an image file that does not exist, bad boxes, an unknown split. With
``on_error="skip"`` the bad row (CSV) or sentence / image entry (JSON) is left out and its
message recorded in :attr:`CaptionData.skipped` (when every row is bad, ``examples`` is empty:
the caller decides); problems with the whole file (missing, not UTF-8, no header or a header
without the columns, no row at all, not JSON, no ``images`` list) always raise.
Whether an image decodes is checked when it is read (:func:`rnnkit.data.images.load_image`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, get_args

__all__ = [
    "KARPATHY_SPLITS",
    "Box",
    "CaptionData",
    "CaptionDataError",
    "CaptionExample",
    "OnError",
    "caption_tokens",
    "read_caption_table",
    "read_karpathy_json",
]

OnError = Literal["raise", "skip"]
_ON_ERROR: tuple[OnError, ...] = get_args(OnError)

KARPATHY_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("train", "restval"),
    "valid": ("val",),
    "test": ("test",),
}
"""rnnkit's split names to the Karpathy ``split`` values they take (``restval`` trains)."""
_KARPATHY_VALUES = ("restval", "test", "train", "val")
_DELIMITERS = {".csv": ",", ".tsv": "\t"}


class CaptionDataError(ValueError):
    """A bad caption file, row or entry; the message names the file and the line or entry."""


class Box(NamedTuple):
    """An object on an image: its word and its box, corners as fractions of width and height.

    Attributes:
        word: the object's word as the caption writes it (``dog``).
        x0, y0, x1, y1: left, top, right, bottom, each in 0..1 (x across, y down).
    """

    word: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class CaptionExample:
    """One image and its reference captions.

    Attributes:
        image: the image file, resolved (absolute).
        captions: the raw reference captions (stripped), in file order.
        boxes: the objects on the image, when the file gives them.
        where: where its first row or entry is (``f.csv:4``, ``d.json: images[7]``), to prefix
            errors found later (an image that does not decode).
    """

    image: Path
    captions: tuple[str, ...]
    boxes: tuple[Box, ...] = ()
    where: str = ""


@dataclass(frozen=True)
class CaptionData:
    """What a caption file holds.

    Attributes:
        examples: one per image, in the order of their first row or entry.
        skipped: one ``"where: problem"`` message per row, sentence or entry left out
            (always empty with ``on_error="raise"``).
    """

    examples: list[CaptionExample]
    skipped: list[str] = field(default_factory=list)


_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def caption_tokens(text: str) -> list[str]:
    """The words of a caption (see the module docstring): lower-cased letter/digit runs,
    inner apostrophes kept, punctuation dropped.

    ``caption_tokens("A dog, left of a TREE.")`` -> ``["a", "dog", "left", "of", "a", "tree"]``.
    """
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _check_on_error(on_error: str) -> None:
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(_ON_ERROR)}; got {on_error!r}")


def _read_text(path: Path) -> str:
    """A file's UTF-8 text (BOM dropped); errors name the file (and the line)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CaptionDataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CaptionDataError(f"{path}: is a folder; give the caption file") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise CaptionDataError(f"{path}:{line}: not valid UTF-8") from None


def _caption(where: str, raw: object) -> str:
    """A stripped caption with at least one word, or the error saying why not."""
    if not isinstance(raw, str):
        raise CaptionDataError(f"{where}: the caption must be a string, got {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise CaptionDataError(f"{where}: empty caption")
    if not caption_tokens(text):
        raise CaptionDataError(f"{where}: caption {text!r} has no words")
    return text


# ----------------------------------------------------------------------------- CSV / TSV


def _delimiter(path: Path, body: str) -> str:
    """The table's delimiter: by suffix, else sniffed from the header line."""
    known = _DELIMITERS.get(path.suffix.lower())
    if known is not None:
        return known
    first = body.splitlines()[0] if body else ""
    try:
        return csv.Sniffer().sniff(first, delimiters=",\t;|").delimiter
    except csv.Error:
        raise CaptionDataError(
            f"{path}:1: cannot tell the delimiter from the header {first!r}; name the file "
            ".csv (comma) or .tsv (tab)"
        ) from None


def _boxes(where: str, cell: str) -> tuple[Box, ...]:
    """The boxes of a ``boxes`` cell (empty: none)."""
    if not cell.strip():
        return ()
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as err:
        raise CaptionDataError(f"{where}: bad boxes (not valid JSON: {err.msg})") from None
    if not isinstance(value, list):
        raise CaptionDataError(f"{where}: bad boxes (expected a JSON list of objects)")
    boxes = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"word", "box"}:
            raise CaptionDataError(
                f"{where}: bad boxes (item {i} must be an object with the keys word and box)"
            )
        word, box = item["word"], item["box"]
        if not isinstance(word, str) or not word.strip():
            raise CaptionDataError(
                f"{where}: bad boxes (item {i}: word must be a non-empty string)"
            )
        numbers = isinstance(box, list) and len(box) == 4
        if not numbers or any(isinstance(v, bool) or not isinstance(v, int | float) for v in box):
            raise CaptionDataError(
                f"{where}: bad boxes (item {i}: box must be 4 numbers [x0, y0, x1, y1])"
            )
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
            raise CaptionDataError(
                f"{where}: bad boxes (item {i}: need 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, "
                f"got {[x0, y0, x1, y1]})"
            )
        boxes.append(Box(word.strip(), x0, y0, x1, y1))
    return tuple(boxes)


def _table_rows(path: Path) -> Iterator[tuple[str, dict[str, str]] | CaptionDataError]:
    """(where, {column: cell}) per non-blank record, or the error of a malformed record."""
    body = _read_text(path)
    if not body.strip():
        raise CaptionDataError(
            f"{path}: empty file; expected a header row naming the columns image and caption"
        )
    reader = csv.reader(
        io.StringIO(body, newline=""), delimiter=_delimiter(path, body), strict=True
    )
    try:
        header = next(reader)
    except csv.Error as err:
        raise CaptionDataError(f"{path}:1: malformed header ({err})") from None
    names = [name.strip().lower() for name in header]
    if "image" not in names or "caption" not in names:
        found = ", ".join(name.strip() for name in header)
        raise CaptionDataError(
            f"{path}:1: the header must name the columns image and caption; found: {found}"
        )
    columns = {name: names.index(name) for name in ("image", "caption", "boxes") if name in names}
    need = max(columns.values()) + 1
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield CaptionDataError(f"{path}:{start}: malformed record ({err})")
            start = reader.line_num + 1
            continue
        number, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{number}"
        if len(row) < need:
            yield CaptionDataError(f"{where}: expected at least {need} columns, found {len(row)}")
            continue
        yield where, {name: row[index] for name, index in columns.items()}


@dataclass
class _Group:
    """The rows of one image while a table is read."""

    where: str
    captions: list[str]
    boxes: tuple[Box, ...] = ()
    boxes_where: str = ""


def read_caption_table(path: Path, on_error: OnError = "raise") -> CaptionData:
    """Read captioned images from a CSV or TSV table (see the module docstring).

    Args:
        path: the table.
        on_error: ``"raise"`` at the first bad row, or ``"skip"`` bad rows and list them.

    Returns:
        :class:`CaptionData`, one example per image in the order of its first row.

    Raises:
        CaptionDataError: a bad file (missing, empty, not UTF-8, a header without the columns,
            no rows), or with ``on_error="raise"`` a bad row: ``f.csv:4: empty caption``,
            ``f.csv:5: image 'a/b.png' not found``, ``f.csv:6: bad boxes (...)``.
    """
    _check_on_error(on_error)
    path = Path(path)
    folder = path.resolve().parent
    groups: dict[Path, _Group] = {}
    skipped: list[str] = []
    rows = 0
    for item in _table_rows(path):
        rows += 1
        try:
            if isinstance(item, CaptionDataError):
                raise item
            where, cells = item
            raw_image = cells["image"].strip()
            if not raw_image:
                raise CaptionDataError(f"{where}: empty image path")
            caption = _caption(where, cells["caption"])
            boxes = _boxes(where, cells.get("boxes", ""))
            image = (folder / raw_image).resolve()
            if not image.is_file():
                raise CaptionDataError(f"{where}: image '{raw_image}' not found")
            group = groups.get(image)
            if group is not None and boxes and group.boxes and boxes != group.boxes:
                raise CaptionDataError(
                    f"{where}: bad boxes (they differ from those of {group.boxes_where} for the "
                    "same image)"
                )
        except CaptionDataError as err:
            if on_error == "raise":
                raise
            skipped.append(str(err))
            continue
        if group is None:
            group = groups[image] = _Group(where, [])
        group.captions.append(caption)
        if boxes and not group.boxes:
            group.boxes, group.boxes_where = boxes, where
    if rows == 0:
        raise CaptionDataError(f"{path}: no captions (the file holds only its header)")
    examples = [
        CaptionExample(image, tuple(g.captions), g.boxes, g.where) for image, g in groups.items()
    ]
    return CaptionData(examples, skipped)


# ----------------------------------------------------------------------------- Karpathy JSON


def _karpathy_example(
    path: Path, index: int, entry: object, image_root: Path, splits: Collection[str]
) -> tuple[CaptionExample | None, list[CaptionDataError]]:
    """The example of ``images[index]`` (None: another split), and its bad sentences."""
    where = f"{path}: images[{index}]"
    if not isinstance(entry, dict):
        raise CaptionDataError(f"{where}: expected an object, got {type(entry).__name__}")
    split = entry.get("split")
    if not isinstance(split, str):
        raise CaptionDataError(f"{where}: no 'split' (one of {', '.join(_KARPATHY_VALUES)})")
    if split not in _KARPATHY_VALUES:
        raise CaptionDataError(
            f"{where}: unknown split '{split}' (expected one of {', '.join(_KARPATHY_VALUES)})"
        )
    if split not in splits:
        return None, []
    filename = entry.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        raise CaptionDataError(f"{where}: no 'filename'")
    filepath = entry.get("filepath", "")
    if not isinstance(filepath, str):
        raise CaptionDataError(f"{where}: 'filepath' must be a string")
    sentences = entry.get("sentences")
    if not isinstance(sentences, list) or not sentences:
        raise CaptionDataError(f"{where}: no 'sentences' list")
    relative = f"{filepath.strip('/')}/{filename}" if filepath.strip("/") else filename
    image = (image_root / relative).resolve()
    if not image.is_file():
        raise CaptionDataError(f"{where}: image '{relative}' not found")
    captions, bad = [], []
    for number, sentence in enumerate(sentences):
        at = f"{where}.sentences[{number}]"
        try:
            if not isinstance(sentence, dict) or "raw" not in sentence:
                raise CaptionDataError(f"{at}: no 'raw' text")
            captions.append(_caption(at, sentence["raw"]))
        except CaptionDataError as err:
            bad.append(err)
    if not captions:
        return None, bad
    return CaptionExample(image, tuple(captions), (), where), bad


def read_karpathy_json(
    path: Path, image_root: Path, splits: Collection[str], on_error: OnError = "raise"
) -> CaptionData:
    """Read the images of some Karpathy splits from a ``dataset_*.json`` file.

    Args:
        path: the JSON file (see the module docstring for its layout).
        image_root: the folder the images' ``filepath/filename`` are under.
        splits: the Karpathy ``split`` values to keep (``KARPATHY_SPLITS["train"]`` is
            ``("train", "restval")``).
        on_error: ``"raise"`` at the first bad entry, or ``"skip"`` it: a bad sentence is left
            out of its image, a bad image entry (or one left with no sentence) is left out.

    Returns:
        :class:`CaptionData`, the kept images in file order, ``where`` = ``"d.json: images[7]"``.

    Raises:
        CaptionDataError: a bad file (missing, not UTF-8, ``d.json: not valid JSON (line L
            column C: msg)``, ``d.json: no 'images' list``), a missing ``image_root``, or with
            ``on_error="raise"`` a bad entry: ``d.json: images[3]: unknown split 'foo' (expected
            one of restval, test, train, val)``, ``d.json: images[3].sentences[1]: empty
            caption``, ``d.json: images[3]: image 'val2014/x.jpg' not found``.
        ValueError: a value of ``splits`` that is no Karpathy split, or a bad ``on_error``.
    """
    _check_on_error(on_error)
    unknown = sorted(set(splits) - set(_KARPATHY_VALUES))
    if unknown or not splits:
        raise ValueError(
            f"splits must be Karpathy split names ({', '.join(_KARPATHY_VALUES)}); got "
            f"{sorted(splits)}"
        )
    path, image_root = Path(path), Path(image_root)
    text = _read_text(path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise CaptionDataError(
            f"{path}: not valid JSON (line {err.lineno} column {err.colno}: {err.msg})"
        ) from None
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, list):
        raise CaptionDataError(f"{path}: no 'images' list")
    if not image_root.is_dir():
        raise CaptionDataError(f"{image_root}: no such image folder (the root of {path})")
    examples: list[CaptionExample] = []
    skipped: list[str] = []
    for index, entry in enumerate(images):
        try:
            example, bad = _karpathy_example(path, index, entry, image_root, splits)
            if bad and on_error == "raise":
                raise bad[0]
        except CaptionDataError as err:
            if on_error == "raise":
                raise
            skipped.append(str(err))
            continue
        skipped += [str(err) for err in bad]
        if example is not None:
            examples.append(example)
        elif bad:
            skipped.append(f"{path}: images[{index}]: no usable sentence left; image left out")
    return CaptionData(examples, skipped)
