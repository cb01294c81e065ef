"""Tests for rnnkit.data.captions: the tokenisation, CSV/TSV tables with several references and
boxes, the Karpathy JSON with restval, and every bad row or entry with its exact message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rnnkit.data.captions import (
    KARPATHY_SPLITS,
    Box,
    CaptionDataError,
    CaptionExample,
    caption_tokens,
    read_caption_table,
    read_karpathy_json,
)


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"\x89PNG")  # existence is checked here, not decoding


# ----------------------------------------------------------------------------- tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("A dog, left of a TREE.", ["a", "dog", "left", "of", "a", "tree"]),
        ("the woman’s hat", ["the", "woman's", "hat"]),
        ("'quoted' words... don't", ["quoted", "words", "don't"]),
        ("medium-light skin tone", ["medium", "light", "skin", "tone"]),
        ("Åland Islands: 2 flags_x", ["åland", "islands", "2", "flags", "x"]),
        ("  !!  ", []),
    ],
)
def test_caption_tokens(text: str, tokens: list[str]) -> None:
    assert caption_tokens(text) == tokens


# ----------------------------------------------------------------------------- CSV / TSV

BOXES = '[{"word": "dog", "box": [0.1, 0.2, 0.4, 0.5]}, {"word": "tree", "box": [0.5, 0, 1, 1]}]'


def test_csv_groups_references_by_image_in_order_with_boxes(tmp_path: Path) -> None:
    touch(tmp_path, "img/a.png", "img/b.jpg")
    path = tmp_path / "caps.csv"
    boxes = BOXES.replace('"', '""')
    path.write_text(
        "Caption,IMAGE,boxes,extra\n"
        f'a dog left of a tree,img/a.png,"{boxes}",x\n'
        '"two children, on a beach",img/b.jpg,,y\n'
        f'  a dog near a tree  ,./img/../img/a.png,"{boxes}",z\n'
        "\n"
        "kids playing,img/b.jpg,,\n",
        encoding="utf-8",
    )
    data = read_caption_table(path)
    assert data.skipped == []
    assert data.examples == [
        CaptionExample(
            (tmp_path / "img/a.png").resolve(),
            ("a dog left of a tree", "a dog near a tree"),
            (Box("dog", 0.1, 0.2, 0.4, 0.5), Box("tree", 0.5, 0.0, 1.0, 1.0)),
            f"{path}:2",
        ),
        CaptionExample(
            (tmp_path / "img/b.jpg").resolve(),
            ("two children, on a beach", "kids playing"),
            (),
            f"{path}:3",
        ),
    ]
    assert data.examples[0].image.is_absolute()


def test_tsv_and_sniffed_txt(tmp_path: Path) -> None:
    touch(tmp_path, "a.png", "b.png")
    tsv = tmp_path / "caps.tsv"
    tsv.write_text("image\tcaption\na.png\ta cat, asleep\nb.png\ta car\na.png\ta sleeping cat\n")
    data = read_caption_table(tsv)
    assert [(e.image.name, e.captions, e.where) for e in data.examples] == [
        ("a.png", ("a cat, asleep", "a sleeping cat"), f"{tsv}:2"),
        ("b.png", ("a car",), f"{tsv}:3"),
    ]
    txt = tmp_path / "caps.txt"
    txt.write_text("image;caption\na.png;a cat\nb.png;a car\n")
    assert [e.captions for e in read_caption_table(txt).examples] == [("a cat",), ("a car",)]


def test_bom_crlf_and_quoted_line_breaks_keep_line_numbers(tmp_path: Path) -> None:
    touch(tmp_path, "a.png")
    path = tmp_path / "caps.csv"
    path.write_bytes(b'\xef\xbb\xbfimage,caption\r\na.png,"one\r\nline"\r\na.png,\r\n')
    with pytest.raises(CaptionDataError, match=exactly(f"{path}:4: empty caption")):
        read_caption_table(path)


def test_csv_bad_rows_raise_with_file_and_line(tmp_path: Path) -> None:
    touch(tmp_path, "a.png")
    cases = {
        "a.png,   \n": "2: empty caption",
        "a/b.png,a dog\n": "2: image 'a/b.png' not found",
        ",a dog\n": "2: empty image path",
        "a.png,...\n": "2: caption '...' has no words",
        "a.png\n": "2: expected at least 2 columns, found 1",
    }
    for row, problem in cases.items():
        path = tmp_path / "caps.csv"
        path.write_text("image,caption\n" + row)
        with pytest.raises(CaptionDataError, match=exactly(f"{path}:{problem}")):
            read_caption_table(path)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("[{", "bad boxes (not valid JSON: Expecting property name enclosed in double quotes)"),
        ('{"word": "dog"}', "bad boxes (expected a JSON list of objects)"),
        ('[{"word": "dog"}]', "bad boxes (item 0 must be an object with the keys word and box)"),
        (
            '[{"word": "", "box": [0, 0, 1, 1]}]',
            "bad boxes (item 0: word must be a non-empty string)",
        ),
        (
            '[{"word": "dog", "box": [0, 0, 1]}]',
            "bad boxes (item 0: box must be 4 numbers [x0, y0, x1, y1])",
        ),
        (
            '[{"word": "dog", "box": [0, 0, true, 1]}]',
            "bad boxes (item 0: box must be 4 numbers [x0, y0, x1, y1])",
        ),
        (
            '[{"word": "dog", "box": [0.5, 0, 0.4, 1]}]',
            "bad boxes (item 0: need 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got [0.5, 0.0, 0.4, 1.0])",
        ),
        (
            '[{"word": "a", "box": [0, 0, 1, 1]}, {"word": "b", "box": [0, 0, 1, 1.5]}]',
            "bad boxes (item 1: need 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got [0.0, 0.0, 1.0, 1.5])",
        ),
    ],
)
def test_bad_boxes(tmp_path: Path, cell: str, problem: str) -> None:
    touch(tmp_path, "a.png")
    path = tmp_path / "caps.tsv"
    path.write_text(f"image\tcaption\tboxes\na.png\ta dog\t{cell}\n")
    with pytest.raises(CaptionDataError, match=exactly(f"{path}:2: {problem}")):
        read_caption_table(path)


def test_boxes_that_differ_between_rows_of_one_image(tmp_path: Path) -> None:
    touch(tmp_path, "a.png")
    path = tmp_path / "caps.tsv"
    other = BOXES.replace("0.4", "0.45")
    path.write_text(
        f"image\tcaption\tboxes\na.png\ta dog\t\na.png\ta dog\t{BOXES}\na.png\tdog\t{other}\n"
    )
    message = f"{path}:4: bad boxes (they differ from those of {path}:3 for the same image)"
    with pytest.raises(CaptionDataError, match=exactly(message)):
        read_caption_table(path)


def test_skip_mode_keeps_the_good_rows_and_lists_the_bad(tmp_path: Path) -> None:
    touch(tmp_path, "a.png", "b.png")
    path = tmp_path / "caps.csv"
    path.write_text(
        'image,caption\na.png,a cat\nmissing.png,a dog\na.png,\nb.png,"a"car\nb.png,a car\nb.png,"oops\n'
    )
    data = read_caption_table(path, on_error="skip")
    assert [(e.image.name, e.captions) for e in data.examples] == [
        ("a.png", ("a cat",)),
        ("b.png", ("a car",)),
    ]
    assert data.skipped == [
        f"{path}:3: image 'missing.png' not found",
        f"{path}:4: empty caption",
        f"{path}:5: malformed record (',' expected after '\"')",
        f"{path}:7: malformed record (unexpected end of data)",
    ]


def test_whole_file_problems_always_raise(tmp_path: Path) -> None:
    missing = tmp_path / "none.csv"
    with pytest.raises(CaptionDataError, match=exactly(f"{missing}: no such file")):
        read_caption_table(missing, on_error="skip")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    message = f"{empty}: empty file; expected a header row naming the columns image and caption"
    with pytest.raises(CaptionDataError, match=exactly(message)):
        read_caption_table(empty, on_error="skip")
    header = tmp_path / "header.csv"
    header.write_text("image,caption\n\n")
    message = f"{header}: no captions (the file holds only its header)"
    with pytest.raises(CaptionDataError, match=exactly(message)):
        read_caption_table(header)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("file, text\na.png,a dog\n")
    message = f"{wrong}:1: the header must name the columns image and caption; found: file, text"
    with pytest.raises(CaptionDataError, match=exactly(message)):
        read_caption_table(wrong, on_error="skip")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"image,caption\na.png,caf\xe9\n")
    with pytest.raises(CaptionDataError, match=exactly(f"{latin}:2: not valid UTF-8")):
        read_caption_table(latin)
    unclear = tmp_path / "unclear.txt"
    unclear.write_text("imagecaption\n")
    message = (
        f"{unclear}:1: cannot tell the delimiter from the header 'imagecaption'; name the file "
        ".csv (comma) or .tsv (tab)"
    )
    with pytest.raises(CaptionDataError, match=exactly(message)):
        read_caption_table(unclear)
    with pytest.raises(
        ValueError, match=exactly("on_error must be one of raise, skip; got 'drop'")
    ):
        read_caption_table(header, on_error="drop")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- Karpathy JSON


def karpathy(tmp_path: Path, images: list[object]) -> Path:
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"images": images, "dataset": "tiny"}), encoding="utf-8")
    return path


def entry(name: str, split: str, *raws: str, filepath: str | None = "val2014") -> dict[str, object]:
    sentences = [{"raw": raw, "tokens": ["ignored"]} for raw in raws]
    item: dict[str, object] = {"filename": name, "split": split, "sentences": sentences}
    if filepath is not None:
        item["filepath"] = filepath
    return item


def test_karpathy_splits_restval_trains_and_tokens_are_not_read(tmp_path: Path) -> None:
    touch(tmp_path, "val2014/a.jpg", "val2014/b.jpg", "val2014/c.jpg", "d.jpg", "e.jpg")
    path = karpathy(
        tmp_path,
        [
            entry("a.jpg", "train", "A dog runs.", "A running dog"),
            entry("b.jpg", "val", "A cat."),
            entry("c.jpg", "restval", "  A car  "),
            entry("d.jpg", "test", "A tree.", filepath=None),
            entry("e.jpg", "test", "A boat.", filepath=""),
        ],
    )
    train = read_karpathy_json(path, tmp_path, KARPATHY_SPLITS["train"])
    assert train.examples == [
        CaptionExample(
            (tmp_path / "val2014/a.jpg").resolve(),
            ("A dog runs.", "A running dog"),
            (),
            f"{path}: images[0]",
        ),
        CaptionExample(
            (tmp_path / "val2014/c.jpg").resolve(), ("A car",), (), f"{path}: images[2]"
        ),
    ]
    valid = read_karpathy_json(path, tmp_path, KARPATHY_SPLITS["valid"])
    assert [(e.image.name, e.captions) for e in valid.examples] == [("b.jpg", ("A cat.",))]
    test = read_karpathy_json(path, tmp_path, KARPATHY_SPLITS["test"])
    assert [e.image for e in test.examples] == [
        (tmp_path / "d.jpg").resolve(),
        (tmp_path / "e.jpg").resolve(),
    ]
    only_train = read_karpathy_json(path, tmp_path, ["train"])
    assert [e.image.name for e in only_train.examples] == ["a.jpg"]
    assert KARPATHY_SPLITS == {"train": ("train", "restval"), "valid": ("val",), "test": ("test",)}


def test_karpathy_bad_entries(tmp_path: Path) -> None:
    touch(tmp_path, "val2014/a.jpg")
    cases: list[tuple[object, str]] = [
        (
            entry("a.jpg", "foo", "x"),
            "images[1]: unknown split 'foo' (expected one of restval, test, train, val)",
        ),
        (entry("a.jpg", "train", "a dog", " "), "images[1].sentences[1]: empty caption"),
        (entry("x.jpg", "train", "a dog"), "images[1]: image 'val2014/x.jpg' not found"),
        (
            {"filename": "a.jpg", "sentences": []},
            "images[1]: no 'split' (one of restval, test, train, val)",
        ),
        ({"split": "train", "sentences": [{"raw": "x"}]}, "images[1]: no 'filename'"),
        (entry("a.jpg", "train"), "images[1]: no 'sentences' list"),
        (
            {**entry("a.jpg", "train"), "sentences": [{"tokens": []}]},
            "images[1].sentences[0]: no 'raw' text",
        ),
        ({**entry("a.jpg", "train", "x"), "filepath": 3}, "images[1]: 'filepath' must be a string"),
        ("a.jpg", "images[1]: expected an object, got str"),
    ]
    for bad, problem in cases:
        path = karpathy(tmp_path, [entry("a.jpg", "train", "fine"), bad])
        with pytest.raises(CaptionDataError, match=exactly(f"{path}: {problem}")):
            read_karpathy_json(path, tmp_path, KARPATHY_SPLITS["train"])


def test_karpathy_unknown_split_is_an_error_even_when_not_selected(tmp_path: Path) -> None:
    touch(tmp_path, "val2014/a.jpg")
    path = karpathy(tmp_path, [entry("a.jpg", "dev", "x")])
    message = f"{path}: images[0]: unknown split 'dev' (expected one of restval, test, train, val)"
    with pytest.raises(CaptionDataError, match=exactly(message)):
        read_karpathy_json(path, tmp_path, ["test"])


def test_karpathy_skip_mode(tmp_path: Path) -> None:
    touch(tmp_path, "val2014/a.jpg", "val2014/b.jpg")
    path = karpathy(
        tmp_path,
        [
            entry("a.jpg", "train", "a dog", "", "a brown dog"),
            entry("gone.jpg", "train", "a cat"),
            entry("b.jpg", "foo", "a car"),
            entry("b.jpg", "restval", "?"),
            entry("b.jpg", "train", "a boat"),
        ],
    )
    data = read_karpathy_json(path, tmp_path, KARPATHY_SPLITS["train"], on_error="skip")
    assert [(e.image.name, e.captions, e.where) for e in data.examples] == [
        ("a.jpg", ("a dog", "a brown dog"), f"{path}: images[0]"),
        ("b.jpg", ("a boat",), f"{path}: images[4]"),
    ]
    assert data.skipped == [
        f"{path}: images[0].sentences[1]: empty caption",
        f"{path}: images[1]: image 'val2014/gone.jpg' not found",
        f"{path}: images[2]: unknown split 'foo' (expected one of restval, test, train, val)",
        f"{path}: images[3].sentences[0]: caption '?' has no words",
        f"{path}: images[3]: no usable sentence left; image left out",
    ]


def test_karpathy_whole_file_problems(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"images": [\n  {"split": "train",}\n]}')
    message = f"{path}: not valid JSON (line 2 column 21: Expecting property name enclosed in double quotes)"
    with pytest.raises(CaptionDataError, match=exactly(message)):
        read_karpathy_json(path, tmp_path, ["train"], on_error="skip")
    for body in ('{"pictures": []}', '{"images": {}}', "[1, 2]"):
        path.write_text(body)
        with pytest.raises(CaptionDataError, match=exactly(f"{path}: no 'images' list")):
            read_karpathy_json(path, tmp_path, ["train"], on_error="skip")
    path.write_text('{"images": []}')
    root = tmp_path / "nowhere"
    message = f"{root}: no such image folder (the root of {path})"
    with pytest.raises(CaptionDataError, match=exactly(message)):
        read_karpathy_json(path, root, ["train"])
    missing = tmp_path / "none.json"
    with pytest.raises(CaptionDataError, match=exactly(f"{missing}: no such file")):
        read_karpathy_json(missing, tmp_path, ["train"])
    message = (
        "splits must be Karpathy split names (restval, test, train, val); got ['train', 'valid']"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        read_karpathy_json(path, tmp_path, ["train", "valid"])
