r"""Native kernels: C++ compiled on first use with the machine's compiler, cached, called via ctypes.

Three kernels, each where no PyTorch operator or library does the work in one pass on a CPU.

Attention (``bahdanau_attention.cpp``, :func:`attention_forward`, :func:`attention_backward`):
one step of Bahdanau's additive attention, ``e_i = v^T tanh(k_i + q)``, the softmax over the real
source positions and the context ``c = sum_i a_i h_i``, is a handful of memory-bound passes over a
(B, S, Ha) tensor in PyTorch (an add, the nonlinearity, a product with ``v``, the softmax, the
context; seven more passes in the backward). ``bahdanau_attention.cpp`` does each direction in
one pass per sentence, whose keys and states stay in the core's cache, skips padded positions, and
stores nothing for the backward (it recomputes ``tanh``). ``torch.compile`` could fuse part of it,
but at the price of about half a minute of compilation per process and per new source length;
the three kernels build in about two seconds, once per machine.

LSTM cell (``lstm_cell.cpp``, :func:`lstm_cell_forward`, :func:`lstm_cell_backward`): the
nonlinearities and the memory update of one step, some ten small PyTorch operators forward and
fourteen backward, each launched per step of the decoder loop, in one pass each way.

Cross-entropy (``cross_entropy.cpp``, :func:`cross_entropy`): the token loss with label smoothing
over (N, V) logits is, in PyTorch, a log-softmax written out in full, the loss's gather and sum,
and in the backward a zero-filled (N, V) gradient, its scatter and the log-softmax's backward:
some six passes over a tensor of 172 MB at N = 5376, V = 8000. The kernel reads the logits once
forward (keeping each row's log-sum-exp) and once backward, writing the gradient directly.

How: the sources ship in the package; :func:`library` compiles them with ``$CXX`` (else ``c++``
or ``g++``) as ``-O3 -march=native -fopenmp`` into the cache directory (``$RNNKIT_CACHE_DIR``,
else ``$XDG_CACHE_HOME/rnnkit``, else ``~/.cache/rnnkit``) under a name that hashes the sources,
the compiler, the flags and the CPU, written to a temporary file and renamed (two processes can
build at once; nobody loads half a file). Its OpenMP threads are the process's: PyTorch's
``libgomp.so.1`` is loaded first, so the library's dependency resolves to it. Without a compiler,
or where the build fails, :func:`library` returns None once with a warning, and the callers use
PyTorch operators (same results within float rounding). ``RNNKIT_NATIVE=0`` or :data:`enabled`
False turns the kernels off.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.profiler import record_function

enabled: bool = os.environ.get("RNNKIT_NATIVE", "1") != "0"
"""Use the native kernels where they apply (False: PyTorch operators, for comparison)."""

FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp")
"""Compiler flags besides ``-std=c++17 -shared -fPIC``: no ``-ffast-math`` (with GCC it would
link a start-up file that sets the whole process's floating-point flags)."""

_HERE = Path(__file__).parent
SOURCES = tuple(_HERE / f for f in ("bahdanau_attention.cpp", "lstm_cell.cpp", "cross_entropy.cpp"))
"""The kernels' sources, built into one library (with ``vector_math.h``, which they include)."""
HEADERS = (_HERE / "vector_math.h",)
_i64, _ptr, _int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int


def _signatures(T: Any) -> dict[str, list[Any]]:
    """Each exported function (without its dtype suffix) and its argument types, T the float type."""
    loss = [_i64, _i64, _ptr, _i64, _ptr, _i64, T]
    return {
        "rnnkit_attention_forward": [_i64] * 4 + [_ptr] * 6 + [_i64, _ptr, _i64, _int],
        "rnnkit_attention_backward": [_i64] * 4
        + [_ptr] * 6
        + [_i64, _ptr, _i64, _ptr, _i64, _ptr, _ptr, _ptr, _ptr, _int],
        "rnnkit_lstm_cell_forward": [_i64, _i64] + [_ptr] * 6 + [_i64, _ptr, _i64, _int],
        "rnnkit_lstm_cell_backward": [_i64, _i64] + [_ptr] * 5 + [_i64, _ptr, _ptr, _int],
        "rnnkit_cross_entropy_forward": [*loss, _ptr, _ptr, _int],
        "rnnkit_cross_entropy_backward": [*loss, _ptr, T, _ptr, _int],
    }


_CTYPE = {"f32": ctypes.c_float, "f64": ctypes.c_double}
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_loaded: dict[tuple[Path, ...], ctypes.CDLL | None] = {}


def cache_dir() -> Path:
    """Where built libraries are kept (``$RNNKIT_CACHE_DIR``, ``$XDG_CACHE_HOME/rnnkit``, ``~/.cache/rnnkit``)."""
    if os.environ.get("RNNKIT_CACHE_DIR"):
        return Path(os.environ["RNNKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rnnkit"


def compiler() -> str | None:
    """The C++ compiler to build with: ``$CXX``, else ``c++`` or ``g++`` on the PATH; None if none."""
    if os.environ.get("CXX"):
        return shutil.which(os.environ["CXX"])
    return shutil.which("c++") or shutil.which("g++")


def _cpu() -> str:
    """What ``-march=native`` depends on: the CPU's model and flags (Linux), else the platform."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() + platform.machine()
    wanted = ("model name", "flags", "Features", "CPU part")
    return "\n".join(sorted({line for line in lines if line.startswith(wanted)}))


def build(sources: Sequence[Path] = SOURCES, headers: Sequence[Path] = HEADERS) -> Path:
    """Compile ``sources`` into one library in the cache (if not there yet); return its path.

    Raises:
        RuntimeError: no compiler, or the compiler's error output when the build fails.
    """
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    texts = [f.read_text() for f in (*sources, *headers)]
    key = hashlib.sha256(
        "\0".join([*texts, cxx, version, " ".join(FLAGS), _cpu()]).encode()
    ).hexdigest()[:16]
    target = cache_dir() / "native" / f"rnnkit-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(handle)
    try:
        cmd = [cxx, *FLAGS, "-std=c++17", "-shared", "-fPIC", *map(str, sources), "-o", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr.strip()}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def library(sources: Sequence[Path] = SOURCES) -> ctypes.CDLL | None:
    """The built and loaded library, or None (disabled, or the build failed: warned once)."""
    if not enabled:
        return None
    name = tuple(sources)
    if name not in _loaded:
        try:
            lib: ctypes.CDLL | None = ctypes.CDLL(str(build(sources)))
        except (RuntimeError, OSError) as err:
            warnings.warn(
                f"rnnkit: native kernels unavailable, using PyTorch operators ({err})",
                RuntimeWarning,
                stacklevel=2,
            )
            lib = None
        if lib is not None and tuple(sources) == SOURCES:
            for suffix, ctype in _CTYPE.items():
                for function, args in _signatures(ctype).items():
                    getattr(lib, f"{function}_{suffix}").argtypes = args
        _loaded[name] = lib
    return _loaded[name]


def attention_applies(keys: Tensor) -> bool:
    """Whether the native attention runs for tensors like ``keys`` (CPU, float32 or float64, built)."""
    return keys.device.type == "cpu" and keys.dtype in _SUFFIX and library() is not None


def _rows(x: Tensor, shape: tuple[int, ...]) -> int:
    """The row stride of ``x``, after checking its shape and that its rows are contiguous."""
    if tuple(x.shape) != shape or x.stride(-1) != 1:
        raise ValueError(f"expected a {shape} tensor with contiguous rows, got {tuple(x.shape)}")
    return int(x.stride(0))


def _same_dtype(first: Tensor, *rest: Tensor) -> None:
    """Check that every tensor has ``first``'s dtype (the kernel reads them all as one type)."""
    for x in rest:
        if x.dtype != first.dtype:
            raise ValueError(f"expected {first.dtype} tensors, got {x.dtype}")


def _whole(x: Tensor, shape: tuple[int, ...]) -> int:
    """The address of ``x``, after checking its shape and that it is contiguous."""
    if tuple(x.shape) != shape or not x.is_contiguous():
        raise ValueError(f"expected a contiguous {shape} tensor, got {tuple(x.shape)}")
    return int(x.data_ptr())


def attention_forward(
    keys: Tensor,
    query: Tensor,
    v: Tensor,
    states: Tensor,
    mask: Tensor,
    a_out: Tensor,
    c_out: Tensor,
) -> None:
    """One attention step (equations in ``bahdanau_attention.cpp``), written into ``a_out``, ``c_out``.

    Args:
        keys: (B, S, Ha) contiguous. query: (B, Ha) contiguous, ``W s_{t-1}``. v: (Ha,).
        states: (B, S, De) contiguous. mask: (B, S) uint8, nonzero at real positions.
        a_out: (B, S), c_out: (B, De), rows contiguous (any row stride): the weights and context.
    """
    B, S, Ha = keys.shape
    De = states.shape[2]
    lib = library()
    assert lib is not None
    _same_dtype(keys, query, v, states, a_out, c_out)
    with record_function("rnnkit::bahdanau_attention_forward"):  # a row in torch.profiler
        getattr(lib, f"rnnkit_attention_forward_{_SUFFIX[keys.dtype]}")(
            B, S, Ha, De, _whole(keys, (B, S, Ha)), _whole(query, (B, Ha)), _whole(v, (Ha,)),
            _whole(states, (B, S, De)), _whole(mask, (B, S)),
            a_out.data_ptr(), _rows(a_out, (B, S)), c_out.data_ptr(), _rows(c_out, (B, De)),
            torch.get_num_threads(),
        )  # fmt: skip


def attention_backward(
    keys: Tensor,
    query: Tensor,
    v: Tensor,
    states: Tensor,
    mask: Tensor,
    a: Tensor,
    d_c: Tensor,
    d_a: Tensor | None,
    d_query: Tensor,
    d_keys: Tensor,
    d_v: Tensor,
) -> None:
    """The backward of :func:`attention_forward` for one step.

    Args:
        keys, query, v, states, mask: as for :func:`attention_forward`.
        a: (B, S), the step's weights. d_c: (B, De), dL/dc. d_a: (B, S) or None, dL/da (these
            three with contiguous rows, any row stride).
        d_query: (B, Ha) contiguous, written: dL/dq. d_keys: (B, S, Ha) contiguous, added to.
        d_v: (Ha,) contiguous, added to.
    """
    B, S, Ha = keys.shape
    De = states.shape[2]
    lib = library()
    assert lib is not None
    threads = torch.get_num_threads()
    partial = keys.new_empty(threads, Ha)  # each thread's share of d_v, summed in a fixed order
    _same_dtype(
        keys, query, v, states, a, d_c, d_query, d_keys, d_v, *([] if d_a is None else [d_a])
    )
    with record_function("rnnkit::bahdanau_attention_backward"):
        getattr(lib, f"rnnkit_attention_backward_{_SUFFIX[keys.dtype]}")(
            B, S, Ha, De, _whole(keys, (B, S, Ha)), _whole(query, (B, Ha)), _whole(v, (Ha,)),
            _whole(states, (B, S, De)), _whole(mask, (B, S)),
            a.data_ptr(), _rows(a, (B, S)), d_c.data_ptr(), _rows(d_c, (B, De)),
            None if d_a is None else d_a.data_ptr(), 0 if d_a is None else _rows(d_a, (B, S)),
            _whole(d_query, (B, Ha)), _whole(d_keys, (B, S, Ha)), _whole(d_v, (Ha,)),
            partial.data_ptr(), threads,
        )  # fmt: skip


def lstm_cell_forward(
    gates: Tensor,
    m_prev: Tensor,
    act: Tensor,
    m_out: Tensor,
    tanh_m_out: Tensor,
    h_out: Tensor,
    h_copy: Tensor | None = None,
) -> None:
    """The LSTM cell's element-wise step (equations in ``lstm_cell.cpp``), into the given tensors.

    Args:
        gates: (B, 4H) contiguous pre-activations, PyTorch's order i, f, g, o. m_prev: (B, H).
        act: (B, 4H), written: i, f, g, o. m_out, tanh_m_out: (B, H), written: m and tanh(m).
        h_out: (B, H), rows contiguous (any row stride), written: h. h_copy: the same, or None.
    """
    B, H = m_prev.shape
    _same_dtype(gates, m_prev, act, m_out, tanh_m_out, h_out, *([] if h_copy is None else [h_copy]))
    lib = library()
    assert lib is not None
    with record_function("rnnkit::lstm_cell_forward"):
        getattr(lib, f"rnnkit_lstm_cell_forward_{_SUFFIX[gates.dtype]}")(
            B, H, _whole(gates, (B, 4 * H)), _whole(m_prev, (B, H)), _whole(act, (B, 4 * H)),
            _whole(m_out, (B, H)), _whole(tanh_m_out, (B, H)), h_out.data_ptr(),
            _rows(h_out, (B, H)), None if h_copy is None else h_copy.data_ptr(),
            0 if h_copy is None else _rows(h_copy, (B, H)), torch.get_num_threads(),
        )  # fmt: skip


def lstm_cell_backward(
    act: Tensor,
    m_prev: Tensor,
    tanh_m: Tensor,
    d_h: Tensor,
    d_h_extra: Tensor | None,
    d_m: Tensor,
    d_gates: Tensor,
) -> None:
    """The backward of :func:`lstm_cell_forward` for one step.

    Args:
        act: (B, 4H), m_prev: (B, H), tanh_m: (B, H): the step's saved values, contiguous.
        d_h: (B, H) contiguous, dL/dh, plus ``d_h_extra`` (rows contiguous) when not None.
        d_m: (B, H) contiguous: dL/dm from the later steps in, dL/dm_prev out.
        d_gates: (B, 4H) contiguous, written: dL/d(pre-activations).
    """
    B, H = m_prev.shape
    extra = [] if d_h_extra is None else [d_h_extra]
    _same_dtype(act, m_prev, tanh_m, d_h, d_m, d_gates, *extra)
    lib = library()
    assert lib is not None
    with record_function("rnnkit::lstm_cell_backward"):
        getattr(lib, f"rnnkit_lstm_cell_backward_{_SUFFIX[act.dtype]}")(
            B, H, _whole(act, (B, 4 * H)), _whole(m_prev, (B, H)), _whole(tanh_m, (B, H)),
            _whole(d_h, (B, H)), None if d_h_extra is None else d_h_extra.data_ptr(),
            0 if d_h_extra is None else _rows(d_h_extra, (B, H)), _whole(d_m, (B, H)),
            _whole(d_gates, (B, 4 * H)), torch.get_num_threads(),
        )  # fmt: skip


def cross_entropy(
    logits: Tensor, targets: Tensor, ignore_index: int = -100, label_smoothing: float = 0.0
) -> Tensor:
    """Mean token cross-entropy over the rows whose target is not ``ignore_index``.

    :func:`torch.nn.functional.cross_entropy` with ``reduction="mean"`` (its definition of label
    smoothing), computed by ``cross_entropy.cpp`` on CPU float32/float64 logits when the kernels
    are built, else by PyTorch itself.

    Args:
        logits: (N, V) unnormalised scores. targets: (N,) int64 class ids.
        ignore_index: the target of rows that do not count (padding).
        label_smoothing: epsilon in [0, 1).

    Returns:
        A scalar tensor (NaN when no row counts, as PyTorch's).

    Raises:
        IndexError: a counted target outside [0, V).
    """
    if (
        logits.dim() != 2
        or logits.device.type != "cpu"
        or logits.dtype not in _SUFFIX
        or targets.dtype != torch.int64
        or library() is None
    ):
        return torch.nn.functional.cross_entropy(
            logits, targets, ignore_index=ignore_index, label_smoothing=label_smoothing
        )
    counted = targets != ignore_index
    bad = counted & ((targets < 0) | (targets >= logits.shape[1]))
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise IndexError(
            f"target {int(targets[row])} of row {row} is out of bounds for {logits.shape[1]} classes"
        )
    loss: Tensor = _CrossEntropy.apply(  # type: ignore[no-untyped-call]
        logits, targets.contiguous(), counted.sum(), ignore_index, label_smoothing
    )
    return loss


class _CrossEntropy(torch.autograd.Function):
    """Forward and backward of :func:`cross_entropy` through ``cross_entropy.cpp``."""

    @staticmethod
    def forward(
        ctx: Any, logits: Tensor, targets: Tensor, count: Tensor, ignore: int, eps: float
    ) -> Tensor:
        if logits.stride(1) != 1:
            logits = logits.contiguous()
        N, V = logits.shape
        lse, per_row = logits.new_empty(N), logits.new_empty(N)
        suffix = _SUFFIX[logits.dtype]
        lib = library()
        assert lib is not None
        with record_function("rnnkit::cross_entropy_forward"):
            getattr(lib, f"rnnkit_cross_entropy_forward_{suffix}")(
                N, V, logits.data_ptr(), logits.stride(0), targets.data_ptr(), ignore, eps,
                lse.data_ptr(), per_row.data_ptr(), torch.get_num_threads(),
            )  # fmt: skip
        ctx.save_for_backward(logits, targets, lse, count)
        ctx.ignore, ctx.eps = ignore, eps
        return per_row.sum() / count

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        logits, targets, lse, count = ctx.saved_tensors
        N, V = logits.shape
        out = torch.empty(N, V, dtype=logits.dtype)
        lib = library()
        assert lib is not None
        with record_function("rnnkit::cross_entropy_backward"):
            getattr(lib, f"rnnkit_cross_entropy_backward_{_SUFFIX[logits.dtype]}")(
                N, V, logits.data_ptr(), logits.stride(0), targets.data_ptr(), ctx.ignore,
                ctx.eps, lse.data_ptr(), float(grad) / float(count), out.data_ptr(),
                torch.get_num_threads(),
            )  # fmt: skip
        return out, None, None, None, None
