"""rnnkit.runtime: denormal flushing is on inside the block and off after it."""

from __future__ import annotations

import pytest
import torch

from rnnkit.runtime import flush_denormals


def tiny() -> float:
    # a float64 denormal; with flushing on, arithmetic on it gives zero
    return float(torch.tensor([1e-323], dtype=torch.float64) * 1.0)


def test_flush_denormals_is_scoped() -> None:
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    assert tiny() > 0.0
    with flush_denormals():
        assert tiny() == 0.0
    assert tiny() > 0.0
    with flush_denormals(enabled=False):
        assert tiny() > 0.0
    with pytest.raises(RuntimeError), flush_denormals():
        raise RuntimeError("boom")
    assert tiny() > 0.0
