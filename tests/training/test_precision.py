"""Reduced precision on the CPU: refused with a clear error; the float32 recurrent cores under
autocast (checked with CPU autocast, bf16); GradScaler overflows counted as skipped steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rnnkit.io import load_safetensors
from rnnkit.nn import make_layer
from rnnkit.training import Device, Trainer
from rnnkit.training.device import keep_recurrent_fp32
from tests.training.test_tasks import LinearTask, run_config


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_on_cpu_is_refused(precision: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"train.precision '{precision}' needs a CUDA device; on CPU use precision: fp32",
    ):
        Device("cpu", precision)  # type: ignore[arg-type]


class Tagger(nn.Module):
    """x (B, T, 6) -> Linear -> LSTM (H 5) -> Linear: (B, T, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(6, 4)
        self.rnn = make_layer("lstm", 4, 5)
        self.cell = nn.LSTMCell(5, 5)  # stays unused: only its hook registration is checked
        self.out = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.rnn(self.inp(x))  # (B, T, H)
        return self.out(h), h


def test_recurrent_cores_compute_in_float32_under_autocast() -> None:
    torch.manual_seed(0)
    model = Tagger()
    x = torch.randn(3, 7, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(ValueError, match="dtype"):
        model(x)  # the linear layer's bf16 output meets the LSTM's float32 weights
    assert keep_recurrent_fp32(model, "cpu") == ["rnn", "cell"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, h = model(x)
        assert torch.is_autocast_enabled("cpu")  # restored after the LSTM
    assert h.dtype == torch.float32 and logits.dtype == torch.bfloat16
    # the LSTM saw the bf16 projection cast up, and computed in float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        projected = model.inp(x)
    expected, _ = model.rnn(projected.float())
    torch.testing.assert_close(h, expected, rtol=0, atol=0)
    logits.float().sum().backward()
    assert model.rnn.weight_hh_l0.grad is not None
    assert model.rnn.weight_hh_l0.grad.dtype == torch.float32


def test_gradscaler_overflows_are_counted_as_skipped_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a scale of 2^127 overflows float32 gradients; each overflow halves it, as fp16 on CUDA
    def scaler(self: Device) -> torch.amp.GradScaler:
        return torch.amp.GradScaler("cpu", init_scale=2.0**127, growth_interval=1000)

    monkeypatch.setattr(Device, "grad_scaler", scaler)
    config = run_config(max_steps=12, eval_every=12, log_every=12, max_nonfinite=2)
    task = LinearTask(config, nan_loss_at=[8])
    result = Trainer(task, config.train, tmp_path).fit()
    assert result.step == 12
    # step 1 overflowed (the scale halves to 2^126, which fits) and step 8 had a NaN loss: two
    # skipped steps, of which only the NaN counts towards max_nonfinite=2
    assert result.skipped_steps == 2
    last = (tmp_path / "metrics.csv").read_text().splitlines()[-1].split(",")
    assert last[7] == "2"
    weights = load_safetensors(tmp_path / "model.safetensors")
    assert all(bool(torch.isfinite(t).all()) for t in weights.values())
