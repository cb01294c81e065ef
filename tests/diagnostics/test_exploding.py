"""The exploding-gradient experiment: rescaling W_hh, divergence without clipping and none with
it, and bad settings."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from rnnkit.diagnostics.exploding import exploding_experiment, scale_spectral_radius


def test_scale_spectral_radius() -> None:
    torch.manual_seed(0)
    w = torch.randn(7, 7)
    scale_spectral_radius(w, 2.5)
    assert float(torch.linalg.eigvals(w.double()).abs().max()) == pytest.approx(2.5, rel=1e-5)
    with pytest.raises(ValueError, match="cannot rescale a matrix whose eigenvalues are all zero"):
        scale_spectral_radius(torch.zeros(3, 3), 2.0)


def test_exploding_gradients_diverge_without_clipping_and_not_with_it() -> None:
    """The defaults: W_hh at spectral radius 2, SGD lr 0.05, T=50, H=64, 300 steps."""
    result = exploding_experiment()
    free, clipped = result.runs
    assert free.clip_grad_norm is None and clipped.clip_grad_norm == 1.0
    # same weights and the same first batch: the same first gradient
    assert free.grad_norm[0] == pytest.approx(clipped.grad_norm[0], rel=1e-6)
    assert free.grad_norm[0] > 1.0  # the first gradient is already clipped
    assert free.diverged_at is not None
    assert not math.isfinite(free.loss[-1]) or not math.isfinite(free.grad_norm[-1])
    assert clipped.diverged_at is None and len(clipped.loss) == 300
    assert all(math.isfinite(v) for v in clipped.loss + clipped.grad_norm)
    assert statistics.fmean(clipped.loss[-20:]) < 0.5  # near the 1/6 baseline, far from inf
    assert 0 < clipped.clip_rate <= 1 and free.clip_rate == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"radius": 0.0}, "radius must be > 0, got 0.0"),
        ({"lr": -1.0}, "lr must be > 0, got -1.0"),
        ({"length": 1}, "length must be >= 2, got 1"),
        ({"steps": 0}, "steps must be >= 1, got 0"),
    ],
)
def test_exploding_experiment_rejects_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        exploding_experiment(**kwargs)  # type: ignore[arg-type]
