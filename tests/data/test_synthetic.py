"""Synthetic data: deterministic per generator, correct targets, file parsing errors located."""

from pathlib import Path

import pytest
import torch

from rnnkit.data.synthetic import (
    BOS,
    EOS,
    NUM_SPECIAL,
    PAD,
    LineError,
    adding_batch,
    make_token_batch,
    parse_adding,
    parse_symbols,
    random_symbols,
    read_lines,
    transform,
)


def test_token_batch_layout() -> None:
    batch = make_token_batch([[4, 5, 6], [7]], [[6, 5, 4], [7]])
    assert batch.src.tolist() == [[7, 8, 9], [10, PAD, PAD]]
    assert batch.src_lengths.tolist() == [3, 1]
    assert batch.tgt_in.tolist() == [[BOS, 9, 8, 7], [BOS, 10, PAD, PAD]]
    assert batch.tgt_out.tolist() == [[9, 8, 7, EOS], [10, EOS, PAD, PAD]]
    assert NUM_SPECIAL == 3


def test_random_symbols_deterministic_and_in_range() -> None:
    a = random_symbols(5, 10, 8, 3, torch.Generator().manual_seed(1))
    b = random_symbols(5, 10, 8, 3, torch.Generator().manual_seed(1))
    assert a == b
    assert all(3 <= len(s) <= 8 and all(0 <= x < 10 for x in s) for s in a)
    assert transform("reverse", [1, 2, 3]) == [3, 2, 1]
    with pytest.raises(ValueError, match="unknown sequence transform 'sort'"):
        transform("sort", [1])


def test_adding_batch_targets_are_sums_of_marked_values() -> None:
    batch = adding_batch(16, 20, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (16, 20, 2)
    markers = batch.inputs[..., 1]
    assert torch.all(markers.sum(dim=1) == 2)
    assert torch.all(markers[:, :10].sum(dim=1) == 1)  # one marker in each half
    expected = (batch.inputs[..., 0] * markers).sum(dim=1, keepdim=True)
    torch.testing.assert_close(batch.targets, expected)
    # The mean predictor's MSE is about 1/6.
    big = adding_batch(20000, 10, torch.Generator().manual_seed(1))
    assert float(((big.targets - 1.0) ** 2).mean()) == pytest.approx(1 / 6, abs=0.01)


def test_parsers_report_the_problem() -> None:
    assert parse_symbols("3 1 4", 10) == [3, 1, 4]
    with pytest.raises(ValueError, match=r"symbol 12 is outside \[0, 10\)"):
        parse_symbols("3 12", 10)
    with pytest.raises(ValueError, match="'x' is not an integer symbol"):
        parse_symbols("3 x", 10)
    assert parse_adding("0.5 0.25* 1 0.5*") == ([0.5, 0.25, 1.0, 0.5], [0.0, 1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="expected exactly 2 marked values"):
        parse_adding("0.5* 0.25")


def test_read_lines_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(b"1 2\n\n3 4\n\xff\xfe\n")
    with pytest.raises(LineError, match=r"data.txt:4: not valid UTF-8"):
        read_lines(path)
    path.write_bytes(b"1 2\n\n3 4\n")
    assert read_lines(path) == [(1, "1 2"), (3, "3 4")]
