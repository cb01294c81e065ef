"""Tests for rnnkit.data.parallel: reading TSV/aligned files with exact errors, skip mode, TSV
round trip and the invariants of length-bucketed batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.parallel import ParallelDataError, bucket_batches, read_parallel, write_tsv


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_tsv_ignores_extra_columns_crlf_and_bom(tmp_path: Path) -> None:
    data = "\ufeffGo.\tVa !\tCC-BY 2.0 (France) #2877272\r\n Hi. \tSalut !\tCC-BY\r\n\r\n".encode()
    got = read_parallel(write(tmp_path / "fra.txt", data))
    assert got.pairs == [("Go.", "Va !"), ("Hi.", "Salut !")]
    assert got.skipped == 0 and got.problems == []


def test_tsv_other_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "t.tsv", b"1\tI run.\t7\tJe cours.\n")
    assert read_parallel(path, columns=(1, 3)).pairs == [("I run.", "Je cours.")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"only one column", r"t\.tsv:2: expected at least 2 tab-separated columns, found 1"),
        (b"  \tcible", r"t\.tsv:2: empty source side"),
        (b"source\t ", r"t\.tsv:2: empty target side"),
        (b"caf\xe9\tcafe", r"t\.tsv:2: not valid UTF-8 \(byte 4 of the line\)"),
    ],
)
def test_tsv_errors_name_file_and_line(tmp_path: Path, line: bytes, message: str) -> None:
    path = write(tmp_path / "t.tsv", b"a\tb\n" + line + b"\nc\td\n")
    with pytest.raises(ParallelDataError, match=message):
        read_parallel(path)


def test_skip_mode_counts_bad_lines(tmp_path: Path) -> None:
    lines = [b"a\tA", b"bad", b"b\t", b"\xff\xfe\tx", b"c\tC", b"", b"d\tD\textra"]
    path = write(tmp_path / "t.tsv", b"\n".join(lines) + b"\n")
    got = read_parallel(path, on_error="skip")
    assert got.pairs == [("a", "A"), ("c", "C"), ("d", "D")]
    assert got.skipped == 3
    assert [p.split(": ")[0] for p in got.problems] == [f"{path}:{n}" for n in (2, 3, 4)]


def test_skip_summary_counts_once_with_the_first_line_numbers(tmp_path: Path) -> None:
    lines = [b"a\tA"] * 20
    for number in (4, 9, 17, 18, 19, 20):
        lines[number - 1] = b"bad"
    lines[8] = b"x\t "
    path = write(tmp_path / "t.tsv", b"\n".join(lines) + b"\n")
    got = read_parallel(path, on_error="skip")
    assert got.skipped_lines == [4, 9, 17, 18, 19, 20]
    assert got.lines == [n for n in range(1, 21) if n not in got.skipped_lines]
    assert got.skip_summary() == (
        f"skipped 6 bad lines of {path} (lines 4, 9, 17, 18, 19, ...; line 4: expected at least "
        "2 tab-separated columns, found 1)"
    )
    assert got.skip_summary(shown=2) == (
        f"skipped 6 bad lines of {path} (lines 4, 9, ...; line 4: expected at least "
        "2 tab-separated columns, found 1)"
    )
    clean = read_parallel(write(tmp_path / "c.tsv", b"a\tA\n\nb\tB\n"), on_error="skip")
    assert (clean.skip_summary(), clean.lines) == (None, [1, 3])
    src = write(tmp_path / "a.en", b"one\n\nthree\n")
    tgt = write(tmp_path / "a.fr", b"un\ndeux\ntrois\n")
    aligned = read_parallel((src, tgt), on_error="skip")
    assert aligned.lines == [1, 3]
    assert aligned.skip_summary() == (
        f"skipped 1 bad line of {src} + {tgt} (line 2; line 2: empty source side)"
    )


def test_aligned_files(tmp_path: Path) -> None:
    src = write(tmp_path / "a.en", "\ufeffone\r\ntwo\n\nthree\nfour\n".encode())
    tgt = write(tmp_path / "a.fr", b"un\ndeux\n\n\nquatre\n")
    with pytest.raises(ParallelDataError, match=r"a\.fr:4: empty target side"):
        read_parallel((src, tgt))
    got = read_parallel((src, tgt), on_error="skip")
    assert got.pairs == [("one", "un"), ("two", "deux"), ("four", "quatre")]
    assert got.skipped == 1


def test_aligned_files_bad_utf8_and_count_mismatch(tmp_path: Path) -> None:
    src = write(tmp_path / "a.en", b"one\ntwo\n")
    tgt = write(tmp_path / "a.fr", b"un\nd\xc3\n")
    with pytest.raises(ParallelDataError, match=r"a\.fr:2: not valid UTF-8"):
        read_parallel((src, tgt))
    short = write(tmp_path / "b.fr", b"un\n")
    with pytest.raises(ParallelDataError, match=r"a\.en has 2 lines but .*b\.fr has 1"):
        read_parallel((src, short), on_error="skip")


def test_bad_options_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_error must be one of raise, skip; got 'drop'"):
        read_parallel(tmp_path / "x", on_error="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="columns must be two distinct indices"):
        read_parallel(tmp_path / "x", columns=(1, 1))
    with pytest.raises(ParallelDataError, match=r"x\.tsv: no such file"):
        read_parallel(tmp_path / "x.tsv")


def test_write_tsv_round_trip_and_refusals(tmp_path: Path) -> None:
    pairs = [("red apple", "pomme rouge"), ("l'abîme", "the deep")]
    write_tsv(pairs, tmp_path / "out" / "p.tsv")
    assert read_parallel(tmp_path / "out" / "p.tsv").pairs == pairs
    with pytest.raises(ValueError, match="pair 1: target side holds a tab or a line break"):
        write_tsv([("a", "b"), ("c", "d\te")], tmp_path / "bad.tsv")
    with pytest.raises(ValueError, match="pair 0: empty source side"):
        write_tsv([(" ", "b")], tmp_path / "bad.tsv")
    assert not (tmp_path / "bad.tsv").exists()


# ----------------------------------------------------------------------------- batching


def random_lengths(n: int, seed: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 40, n).tolist(), rng.integers(1, 50, n).tolist()


@pytest.mark.parametrize("max_sentences", [None, 7])
def test_batches_respect_budget_and_cover_each_index_once(max_sentences: int | None) -> None:
    src, tgt = random_lengths(503, seed=1)
    batches = bucket_batches(
        src, tgt, max_tokens=120, max_sentences=max_sentences, seed=3, chunk_size=64
    )
    assert sorted(i for b in batches for i in b) == list(range(503))
    for b in batches:
        width = max(max(src[i], tgt[i]) for i in b)
        assert len(b) * width <= 120
        if max_sentences is not None:
            assert len(b) <= max_sentences


def test_batches_are_length_homogeneous_and_fill_the_budget() -> None:
    src, tgt = random_lengths(2000, seed=2)
    batches = bucket_batches(src, tgt, max_tokens=200, seed=0)
    padded = sum(len(b) * max(max(src[i], tgt[i]) for i in b) for b in batches)
    real = sum(max(s, t) for s, t in zip(src, tgt, strict=True))
    assert real / padded > 0.9  # sorting within one big chunk leaves little padding
    assert padded / (len(batches) * 200) > 0.8  # batches are nearly full


def test_batches_deterministic_per_seed_and_epoch() -> None:
    src, tgt = random_lengths(300, seed=4)
    first = bucket_batches(src, tgt, max_tokens=100, seed=5, epoch=1, chunk_size=50)
    assert first == bucket_batches(src, tgt, max_tokens=100, seed=5, epoch=1, chunk_size=50)
    assert first != bucket_batches(src, tgt, max_tokens=100, seed=5, epoch=2, chunk_size=50)
    assert first != bucket_batches(src, tgt, max_tokens=100, seed=6, epoch=1, chunk_size=50)
    ordered = bucket_batches(src, tgt, max_tokens=100, shuffle=False, chunk_size=50)
    assert ordered == bucket_batches(src, tgt, max_tokens=100, shuffle=False, seed=9, chunk_size=50)
    flat = [i for b in ordered for i in b]
    assert sorted(flat[:50]) == list(range(50))  # unshuffled: chunk 0 (indices 0-49) comes first
    assert [max(src[i], tgt[i]) for i in flat[:50]] == sorted(
        max(s, t) for s, t in zip(src[:50], tgt[:50], strict=True)
    )


def test_batches_errors() -> None:
    with pytest.raises(ValueError, match="lengths_src has 2 entries but lengths_tgt has 1"):
        bucket_batches([1, 2], [1], max_tokens=10)
    with pytest.raises(
        ValueError,
        match=r"example 1 has 12 tokens \(source 3, target 12\), more than max_tokens=10",
    ):
        bucket_batches([1, 3], [2, 12], max_tokens=10)
    with pytest.raises(ValueError, match="max_tokens must be >= 1; got 0"):
        bucket_batches([1], [1], max_tokens=0)
    with pytest.raises(ValueError, match="max_sentences must be >= 1 or None; got 0"):
        bucket_batches([1], [1], max_tokens=5, max_sentences=0)
    with pytest.raises(ValueError, match="lengths must be >= 0"):
        bucket_batches([-1], [1], max_tokens=5)
    assert bucket_batches([], [], max_tokens=5) == []
