"""Atomic writes, safetensors and weights_only checkpoints (rnnkit.io)."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rnnkit.io import (
    TEMP_PREFIX,
    CheckpointError,
    NonFiniteError,
    atomic_write,
    clean_temp_files,
    find_nonfinite,
    load_checkpoint,
    load_safetensors,
    read_safetensors_metadata,
    save_checkpoint,
    save_safetensors,
    write_text_atomic,
)

# --------------------------------------------------------------------------- atomic_write


def test_atomic_write_replaces_the_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    write_text_atomic(target, "old")
    with atomic_write(target) as handle:
        handle.write(b"new ")
        # while writing, the target still holds the old content and a temp file holds the new
        assert target.read_text() == "old"
        temps = [p.name for p in target.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]
        assert len(temps) == 1 and temps[0].endswith("-out.txt")
        handle.write(b"content")
    assert target.read_text() == "new content"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_write_keeps_the_old_file_when_the_body_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"intact")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as handle:
        handle.write(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"intact"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_write_gives_the_mode_open_would(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        os.umask(0o077)
        write_text_atomic(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o600


def test_atomic_write_fsyncs_file_and_folder(tmp_path: Path, monkeypatch: Any) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name file descriptors")
    monkeypatch.setattr(os, "fsync", spy)
    write_text_atomic(tmp_path / "a.txt", "x")
    assert len(synced) == 2
    assert Path(synced[0]).name.startswith(TEMP_PREFIX)  # the data, before the rename
    assert Path(synced[1]) == tmp_path.resolve()  # the folder, after it


def test_clean_temp_files_removes_only_temp_files(tmp_path: Path) -> None:
    (tmp_path / f"{TEMP_PREFIX}x-model.safetensors").write_bytes(b"half")
    (tmp_path / "model.safetensors").write_bytes(b"whole")
    removed = clean_temp_files(tmp_path)
    assert [p.name for p in removed] == [f"{TEMP_PREFIX}x-model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    assert clean_temp_files(tmp_path / "missing") == []


# --------------------------------------------------------------------------- safetensors


def test_safetensors_round_trip_with_metadata(tmp_path: Path) -> None:
    tensors = {
        "w": torch.randn(3, 5),
        "b": torch.arange(7, dtype=torch.float64),
        "i": torch.tensor([1, 2], dtype=torch.int8),
    }
    save_safetensors(tensors, tmp_path / "m.safetensors", {"step": "12", "metric": "loss"})
    loaded = load_safetensors(tmp_path / "m.safetensors")
    assert loaded.keys() == tensors.keys()
    for name, tensor in tensors.items():
        torch.testing.assert_close(loaded[name], tensor, rtol=0, atol=0)
    meta = read_safetensors_metadata(tmp_path / "m.safetensors")
    assert meta == {"step": "12", "metric": "loss"}


def test_safetensors_bytes_are_deterministic(tmp_path: Path) -> None:
    tensors = {name: torch.full((2, 3), float(i)) for i, name in enumerate("dcba")}
    meta = {key: str(i) for i, key in enumerate(["z", "y", "x", "w", "v"])}
    outputs = set()
    for _ in range(8):
        save_safetensors(tensors, tmp_path / "m.safetensors", meta)
        outputs.add((tmp_path / "m.safetensors").read_bytes())
    assert len(outputs) == 1
    assert read_safetensors_metadata(tmp_path / "m.safetensors") == meta


def test_safetensors_unties_shared_tensors(tmp_path: Path) -> None:
    emb = torch.nn.Embedding(11, 5)
    head = torch.nn.Linear(5, 11, bias=False)
    head.weight = emb.weight  # tied weights share storage
    state = {"emb.weight": emb.weight, "head.weight": head.weight}
    save_safetensors(state, tmp_path / "tied.safetensors")
    loaded = load_safetensors(tmp_path / "tied.safetensors")
    torch.testing.assert_close(loaded["emb.weight"], loaded["head.weight"], rtol=0, atol=0)
    torch.testing.assert_close(loaded["emb.weight"], emb.weight.detach(), rtol=0, atol=0)


def test_safetensors_refuses_non_finite_weights(tmp_path: Path) -> None:
    weights = {"ok": torch.zeros(3), "bad": torch.tensor([1.0, float("inf")])}
    with pytest.raises(NonFiniteError, match="tensor 'bad' is not finite"):
        save_safetensors(weights, tmp_path / "m.safetensors")
    assert not any(tmp_path.iterdir())


def test_safetensors_metadata_must_be_strings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="safetensors metadata must map str to str; got 'step': 3"):
        save_safetensors({"a": torch.zeros(1)}, tmp_path / "m.safetensors", {"step": 3})  # type: ignore[dict-item]


def test_load_safetensors_names_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"\x00" * 3)
    with pytest.raises(ValueError, match=re.escape(f"{bad}: not a valid safetensors file")):
        load_safetensors(bad)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'no.safetensors'}: no such")):
        load_safetensors(tmp_path / "no.safetensors")


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_keeps_plain_data(tmp_path: Path) -> None:
    state = {
        "step": 5,
        "nested": {"a": [1, 2.5, "x", None, True], 3: (torch.ones(2), torch.zeros(1, 3))},
        "t": torch.arange(4),
    }
    save_checkpoint(state, tmp_path / "c.pt")
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["format"] == "rnnkit.checkpoint" and loaded["version"] == 1
    assert loaded["step"] == 5
    assert loaded["nested"]["a"] == [1, 2.5, "x", None, True]
    torch.testing.assert_close(loaded["nested"][3][1], torch.zeros(1, 3))
    torch.testing.assert_close(loaded["t"], torch.arange(4))
    # plain torch can read it too, with weights_only=True
    assert torch.load(tmp_path / "c.pt", weights_only=True)["step"] == 5


@pytest.mark.parametrize(
    ("value", "kind"),
    [(np.zeros(3), "numpy.ndarray"), (Path("x"), "pathlib.PosixPath"), ({1, 2}, "builtins.set")],
)
def test_checkpoint_refuses_objects_that_need_pickle(
    tmp_path: Path, value: object, kind: str
) -> None:
    if isinstance(value, Path) and os.name != "posix":
        pytest.skip("path class name differs")
    with pytest.raises(ValueError, match=re.escape(f"checkpoint entry 'extra.x' is a {kind}")):
        save_checkpoint({"extra": {"x": value}}, tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_checkpoint_refuses_non_finite_tensors(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteError, match=re.escape("'model.w' is not finite")):
        save_checkpoint({"model": {"w": torch.tensor([float("nan")])}}, tmp_path / "c.pt")
    assert not any(tmp_path.iterdir())


class Evil:
    """A payload that would create ``marker`` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_code_payload_is_refused_and_never_runs(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "step_00000001.pt"
    payload = {"format": "rnnkit.checkpoint", "version": 1, "evil": Evil(marker)}
    if writer == "pickle":
        with path.open("wb") as handle:
            pickle.dump(payload, handle)
    else:
        torch.save(payload, path)
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: not a valid checkpoint")):
        load_checkpoint(path)
    assert not marker.exists()
    # the payload is real: unpickling it without the guard would have run it
    if writer == "pickle":
        with path.open("rb") as handle:
            pickle.load(handle)
        assert marker.exists()


def test_truncated_checkpoint_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint({"model": {"w": torch.randn(64, 64)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: not a valid checkpoint")):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: not a valid checkpoint")):
        load_checkpoint(path)


def test_foreign_torch_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: not an rnnkit checkpoint")):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_find_nonfinite_names_the_path() -> None:
    tree = {"a": [torch.zeros(2), {"b": torch.tensor([0.0, float("-inf")])}], "n": torch.arange(3)}
    assert find_nonfinite(tree) == "a[1].b"
    assert find_nonfinite({"x": float("nan")}) == "x"
    assert find_nonfinite({"x": torch.ones(2), "i": torch.tensor([2**40])}) is None
