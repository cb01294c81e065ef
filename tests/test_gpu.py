"""What needs a CUDA device (marked ``gpu``, skipped without one; ``benchmarks/gpu.sh`` runs them).

The fused variable-length path training with lengths; both backends against ``torch.nn`` (cuDNN)
on CUDA, outputs and gradients; translation trained a few steps at fp32, bf16 and fp16 for each
cell, with finite losses and the recurrent cores in float32; DDP with nccl when 2 GPUs exist.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnkit import api
from rnnkit.nn import make_layer
from rnnkit.training import Device
from tests.tasks.test_translation import run_config as translation_config

REPO = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="needs a CUDA device")]

B, T, I, H = 6, 9, 5, 7  # noqa: E741 (I: input features)


def _grads(module: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    assert x.grad is not None
    return [x.grad.clone(), *(p.grad.clone() for p in module.parameters() if p.grad is not None)]


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("backend", ["fused", "explicit"])
def test_backends_match_torch_nn_on_cuda(kind: str, backend: str) -> None:
    torch.manual_seed(0)
    ref = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    reference = ref(I, H, num_layers=2, batch_first=True, bidirectional=True).cuda()
    layer = make_layer(kind, I, H, num_layers=2, bidirectional=True, backend=backend).cuda()
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(B, T, I, device="cuda")
    outputs = []
    for module in (reference, layer):
        xi = x.clone().requires_grad_(True)
        out, state = module(xi)
        h = state[0] if isinstance(state, tuple) else state
        (out.square().sum() + h.sum()).backward()
        outputs.append((out.detach(), h.detach(), _grads(module, xi)))
    (out_a, h_a, g_a), (out_b, h_b, g_b) = outputs
    torch.testing.assert_close(out_b, out_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(h_b, h_a, rtol=1e-4, atol=1e-5)
    for a, b in zip(g_a, g_b, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_fused_variable_length_path_trains_with_lengths_on_cuda() -> None:
    torch.manual_seed(0)
    fused = make_layer("lstm", I, H, backend="fused").cuda()
    explicit = make_layer("lstm", I, H, backend="explicit").cuda()
    explicit.load_state_dict(fused.state_dict())
    lengths = torch.tensor([9, 3, 5, 1, 9, 6], device="cuda")
    x = torch.randn(B, T, I, device="cuda")
    # the same lengths give the same outputs and gradients on both paths
    for module in (fused, explicit):
        out, (h, _) = module(x, lengths=lengths)
        (out.sum() + h.sum()).backward()
    for a, b in zip(fused.parameters(), explicit.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)
    # and a few Adam steps on the fused path learn: predict each sequence's sum from its end
    target = torch.stack([x[i, : int(n)].sum() for i, n in enumerate(lengths.tolist())])  # (B,)
    head = torch.nn.Linear(H, 1).cuda()
    params = [*fused.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=0.02)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        _, (h, _) = fused(x, lengths=lengths)
        loss = torch.nn.functional.mse_loss(head(h[-1]).squeeze(-1), target)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0]


def _losses(run_dir: Path) -> list[float]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return [float(row["train_loss"]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_translation_trains_at_each_precision_with_finite_losses(
    tmp_path: Path, precision: str, cell: str
) -> None:
    config = translation_config(
        tmp_path,
        model={"cell": cell},
        max_steps=12,
        eval_every=12,
        log_every=3,
        device="cuda",
        precision=precision,
    )
    result = api.train(config, tmp_path / "run")
    losses = _losses(tmp_path / "run")
    assert result.step == 12 and len(losses) == 4
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert all(math.isfinite(v) for v in result.valid_metrics.values())


def test_reduced_precision_keeps_every_recurrent_core_in_float32(tmp_path: Path) -> None:
    config = translation_config(tmp_path, device="cuda", precision="bf16")
    api.train(config, tmp_path / "run")  # prepare() and the weights
    run = api.load_run(tmp_path / "run", "final")
    device = Device("cuda", "bf16")
    device.prepare_model(run.model)
    recurrent = [
        name
        for name, m in run.model.named_modules()
        if isinstance(m, torch.nn.RNNBase | torch.nn.RNNCellBase)
    ]
    assert recurrent and set(recurrent) <= set(device.fp32_modules)


@pytest.mark.skipif(CUDA and torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_ddp_with_nccl_on_two_gpus(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "rnnkit",
        "train",
        "copy",
        "--out",
        str(tmp_path / "run"),
        "--set",
        "train.device=cuda",
        "--set",
        "train.max_steps=20",
        "--set",
        "train.eval_every=10",
        "--set",
        "train.checkpoint_every=10",
        "--set",
        "train.progress=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=150, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "model.safetensors").is_file()
    losses = _losses(tmp_path / "run")
    assert losses and all(math.isfinite(v) for v in losses)
