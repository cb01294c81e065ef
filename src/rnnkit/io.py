"""Crash-safe files: atomic writes, safetensors weights and ``weights_only`` checkpoints.

Every file rnnkit writes goes through :func:`atomic_write`: the bytes land in a temp file in the
same folder (name starts with :data:`TEMP_PREFIX`), which is flushed, fsync'd and then renamed
over the target with :func:`os.replace`; finally the folder itself is fsync'd so the rename is
durable. A reader therefore sees either the old file or the complete new one, never a half-written
file, even if the process is killed with SIGKILL mid-write. Temp files left behind by a killed
process are recognisable by their prefix and removed by :func:`clean_temp_files`.

Weights are stored as safetensors (no code, no pickle). Checkpoints are ``torch.save`` archives of
plain data only (dicts, lists, tuples, tensors, numbers, strings, None) and are read back with
``torch.load(weights_only=True)``, so a file carrying a pickled code payload is refused before
anything in it runs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import Tensor

TEMP_PREFIX = ".rnnkit-tmp-"
"""Name prefix of in-flight temp files; such files are never valid outputs."""

CHECKPOINT_FORMAT = "rnnkit.checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a loadable rnnkit checkpoint; the message names the file."""


class NonFiniteError(ValueError):
    """Refusal to write a file holding NaN or infinite floating-point values."""


def fsync_dir(folder: Path) -> None:
    """fsync a folder so a rename inside it survives a power loss (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _default_file_mode() -> int:
    """The mode a file made by ``open(path, "w")`` gets: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Context manager yielding a binary file whose content replaces ``path`` atomically on exit.

    The temp file is created next to ``path`` (same filesystem, so the rename is atomic), flushed
    and fsync'd before ``os.replace``; the parent folder is fsync'd afterwards. If the body raises,
    the temp file is deleted and ``path`` is left untouched. The parent folder is created if needed.

    Example::

        with atomic_write(run_dir / "metrics.csv") as f:
            f.write(text.encode())
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix="-" + target.name, dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600; give what open() would
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_write`."""
    with atomic_write(path) as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` through :func:`atomic_write`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def is_temp_file(path: Path) -> bool:
    """True for a temp file left by :func:`atomic_write` (never a valid output)."""
    return path.name.startswith(TEMP_PREFIX)


def clean_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files :func:`atomic_write` left in ``folder`` (not recursive); list them."""
    root = Path(folder)
    if not root.is_dir():
        return []
    removed = []
    for entry in sorted(root.iterdir()):
        if entry.is_file() and is_temp_file(entry):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
            removed.append(entry)
    return removed


def find_nonfinite(obj: Any, prefix: str = "") -> str | None:
    """Key path of the first floating-point tensor (or float) in ``obj`` holding NaN/inf, else None.

    ``obj`` may nest dicts, lists and tuples; e.g. ``"model.rnn.weight_hh_l0"``.
    """
    if isinstance(obj, Tensor):
        if obj.is_floating_point() or obj.is_complex():
            return None if bool(torch.isfinite(obj).all()) else (prefix or "<tensor>")
        return None
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (prefix or "<float>")
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            found = find_nonfinite(value, f"{prefix}.{key}" if prefix else str(key))
            if found is not None:
                return found
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            found = find_nonfinite(value, f"{prefix}[{i}]")
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------- safetensors


def save_safetensors(
    tensors: Mapping[str, Tensor],
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``tensors`` (e.g. a model's ``state_dict()``) to ``path`` as safetensors, atomically.

    Tensors are copied to CPU; tensors sharing storage (tied weights) are cloned so each name gets
    its own buffer. The header is written with sorted keys, so the same tensors and metadata
    always give the same bytes. Raises :class:`NonFiniteError` (naming the tensor) if any floating tensor holds
    NaN or inf, and ``ValueError`` if a metadata value is not a string.
    """
    from safetensors.torch import save

    bad = find_nonfinite(dict(tensors))
    if bad is not None:
        raise NonFiniteError(f"refusing to write {path}: tensor '{bad}' is not finite")
    meta = dict(metadata or {})
    for key, value in meta.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"safetensors metadata must map str to str; got {key!r}: {value!r}")
    plain: dict[str, Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for name, tensor in tensors.items():
        if not isinstance(tensor, Tensor):
            raise ValueError(f"cannot write '{name}' to {path}: not a tensor ({type(tensor)})")
        t = tensor.detach().to("cpu").contiguous()
        storage = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if t.numel() and storage in seen:
            t = t.clone()
        seen.add(storage)
        plain[name] = t
    write_bytes_atomic(path, _canonical_header(save(plain, metadata=meta or None)))


def _canonical_header(data: bytes) -> bytes:
    """safetensors bytes with the JSON header's keys sorted.

    The library builds the header from a hash map, so its key order (metadata and tensor entries)
    changes from call to call; sorting makes equal tensors and metadata give equal bytes. Data
    offsets are relative to the end of the header, so the tensor bytes are kept as they are.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header to 8-byte alignment
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


def load_safetensors(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a safetensors file into CPU tensors; a bad file raises ``ValueError`` naming it."""
    from safetensors.torch import load

    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{file}: no such file") from None
    try:
        return load(data)
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{file}: not a valid safetensors file ({err})") from None


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The string metadata stored in a safetensors file's header."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    return dict(meta or {})


# --------------------------------------------------------------------------- checkpoints

_PLAIN_SCALARS = (bool, int, float, str, type(None))


def _check_plain(obj: Any, where: str) -> None:
    if isinstance(obj, (Tensor, *_PLAIN_SCALARS)):
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str | int):
                raise ValueError(f"checkpoint key {where}[{key!r}] must be a str or int")
            _check_plain(value, f"{where}.{key}" if where else str(key))
        return
    if isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            _check_plain(value, f"{where}[{i}]")
        return
    raise ValueError(
        f"checkpoint entry '{where or '<root>'}' is a {type(obj).__module__}.{type(obj).__name__}; "
        "only dicts, lists, tuples, tensors, numbers, strings and None may be saved"
    )


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a checkpoint dict atomically with ``torch.save``.

    ``state`` must hold plain data only (dicts with str/int keys, lists, tuples, tensors, numbers,
    strings, None) so that :func:`load_checkpoint` can read it with ``weights_only=True``; anything
    else raises ``ValueError`` naming the entry. Floating tensors must be finite
    (:class:`NonFiniteError` otherwise). The format marker and version are added here.
    """
    body = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **dict(state)}
    _check_plain(body, "")
    bad = find_nonfinite(body)
    if bad is not None:
        raise NonFiniteError(f"refusing to write {path}: '{bad}' is not finite")
    with atomic_write(path) as handle:  # streamed: no second in-memory copy of the state
        torch.save(body, handle)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on CPU).

    Uses ``torch.load(weights_only=True)``: a pickle that tries to import or call anything other
    than plain containers and tensors is refused without running it. Raises :class:`CheckpointError`
    naming the file when it is missing, truncated, corrupt, unsafe or not an rnnkit checkpoint.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{file}: no such checkpoint file")
    try:
        with warnings.catch_warnings():
            # foreign pickles (refused below anyway) make torch warn about their protocol
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ... here
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{file}: not a valid checkpoint ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{file}: not an rnnkit checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{file}: checkpoint version {state.get('version')!r} is not supported "
            f"(expected {CHECKPOINT_VERSION})"
        )
    return state
