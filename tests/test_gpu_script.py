"""``benchmarks/gpu.sh`` on a machine without a GPU: its syntax, and its ``--dry-run`` (the gpu
tests collected and skipped, the benchmark at tiny sizes on the CPU) printing every part."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu.sh"


def test_gpu_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, capture_output=True, timeout=10)


def test_gpu_script_refuses_an_unknown_argument() -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), "--fast"], capture_output=True, text=True, timeout=10, check=False
    )
    assert done.returncode == 2
    assert done.stderr == "gpu.sh: unknown argument '--fast' (valid: --dry-run)\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the dry run is the CPU fallback")
def test_gpu_script_dry_run_prints_every_figure() -> None:
    import sys

    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "skipped" in out  # the gpu tests were collected and skipped on the CPU
    assert "matmul peak (256 x 256): fp32" in out
    for size in ("LSTM B=4 T=6 I=8 H=16", "LSTM B=8 T=10 I=16 H=16"):
        assert size in out
    for row in ("rnnkit fused, lengths", "rnnkit explicit, lengths", "torch.nn packed (right)"):
        assert out.count(row) == 2
    assert "  fp32: " in out and "  bf16: " in out and "bf16 / fp32:" in out
    assert "gpu.sh: done in" in out
