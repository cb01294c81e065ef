"""rnnkit.training.device: device resolution, precision, batches on the device, denormals."""

from __future__ import annotations

import ctypes
import re
import sys
from typing import NamedTuple

import pytest
import torch

from rnnkit.config import TrainConfig
from rnnkit.training.device import (
    Device,
    flush_denormals,
    keep_freed_memory,
    move_to_device,
    resolve_device,
)
from tests.training.test_tasks import run_config


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


def test_device_session_flushes_as_configured() -> None:
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    with Device("cpu").session():
        assert tiny() == 0.0
    with Device("cpu", flush_denormal=False).session():
        assert tiny() > 0.0


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=re.escape("unknown train.device 'tpu'; valid devices")):
        resolve_device("tpu")


class Pair(NamedTuple):
    x: torch.Tensor
    lengths: list[int]


def test_batches_move_recursively_and_keep_their_containers() -> None:
    batch = {"pair": Pair(torch.ones(3, 5), [5, 4, 2]), "ids": [torch.zeros(2)], "n": 3}
    moved = move_to_device(batch, torch.device("cpu"))
    assert isinstance(moved["pair"], Pair) and moved["pair"].lengths == [5, 4, 2]
    assert moved["n"] == 3 and moved["ids"][0].shape == (2,)
    assert Device("cpu").to_device(batch)["pair"].x.device.type == "cpu"


def test_fp32_on_cpu_has_no_autocast_and_no_scaler() -> None:
    device = Device.from_config(run_config(max_steps=1, threads=1).train)
    assert (device.is_cuda, device.amp_dtype) == (False, None)
    assert not device.grad_scaler().is_enabled()
    with device.autocast():
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.float32
    model = torch.nn.Linear(2, 2)
    assert device.prepare_model(model) is model


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_needs_cuda(precision: str) -> None:
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    with pytest.raises(
        ValueError, match=re.escape(f"train.precision '{precision}' needs a CUDA device")
    ):
        Device("cpu", precision)  # type: ignore[arg-type]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(
    ("precision", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_autocast_and_scaler_on_cuda(precision: str, dtype: torch.dtype) -> None:
    device = Device("cuda", precision)  # type: ignore[arg-type]
    assert device.is_cuda and device.amp_dtype == dtype
    assert device.grad_scaler().is_enabled() == (precision == "fp16")
    a = device.to_device(torch.ones(4, 4))
    with device.autocast():
        assert (a @ a).dtype == dtype


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            [
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            ]
        )
    ]


def _mmapped_bytes() -> int:
    """glibc's count of bytes in mmapped blocks (``mallinfo2().hblkhd``)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _Mallinfo2
    return int(libc.mallinfo2().hblkhd)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "mallinfo2"),
    reason="needs glibc >= 2.33",
)
def test_keep_freed_memory_serves_large_buffers_from_the_heap() -> None:
    """Outside the block a 64 MB tensor is its own mmap; inside it comes from the heap."""
    size = 16 * 2**20  # float32: 64 MB, over glibc's largest mmap threshold (32 MB)
    before = _mmapped_bytes()
    outside = torch.empty(size)
    assert _mmapped_bytes() - before >= 4 * size
    del outside
    with keep_freed_memory():
        before = _mmapped_bytes()
        inside = torch.empty(size)
        assert _mmapped_bytes() - before < 4 * size
        del inside
    with keep_freed_memory(enabled=False):  # glibc's defaults: an mmap again
        before = _mmapped_bytes()
        off = torch.empty(2 * size)  # larger than the freed block the heap now holds
        assert _mmapped_bytes() - before >= 8 * size
        del off


def test_train_keep_freed_memory_reaches_the_device() -> None:
    """``train.keep_freed_memory`` (default true) is what the trainer's session applies."""
    assert Device.from_config(TrainConfig(max_steps=1)).keep_freed_memory is True
    assert (
        Device.from_config(TrainConfig(max_steps=1, keep_freed_memory=False)).keep_freed_memory
        is False
    )
