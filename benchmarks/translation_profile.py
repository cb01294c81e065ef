"""Where one training step of the translation model spends its time: the torch profiler, by kind.

Used by ``python benchmarks/translation.py --profile``. One training step (forward with the loss,
backward, clipping and the Adam step) runs under :mod:`torch.profiler` with shapes recorded; every
ATen operator's *self* time is put in one category by its name and input shapes, and what the
operators do not account for in each phase (the Python loop, the autograd engine, dispatch) is a
category of its own. The categories, with B batch, S source and T target length, Ha the
attention size, V the vocabulary:

- matmuls of the decoder step: matrix products with B rows (the gates, the query ``W s_{t-1}``
  and, in the backward, their input gradients);
- matmuls of the output layer: products with a V-sized dimension;
- other matmuls: the hoisted projections and the weight gradients computed once per call;
- encoder LSTM: oneDNN's fused layer, forward and backward (its matmuls and cell);
- attention over B x S: every operator reading or writing a (B, S, Ha) or (B, S, De) tensor: the
  additive score's add, nonlinearity and ``v`` products, the context sums ``a_t h`` and their
  gradients (one category, because with Ha = De their batched products have the same shapes),
  or all of that in one native call (``rnnkit::bahdanau_attention_*``, :mod:`rnnkit.nn.native`);
- attention softmax: softmax and masking over (B, S);
- decoder cell element-wise: operators on (B, 4H) and (B, H) tensors, or the native cell
  (``rnnkit::lstm_cell_*``);
- output log-softmax and loss: over (B T, V), or the native loss (``rnnkit::cross_entropy_*``);
- copies, fills, allocation: ``copy_``, ``fill_``, ``cat``, ``stack``, ``empty`` and the like;
- views and dispatch: composite operators' own time (``linear``, ``matmul``, ``view``, ...);
- optimizer and clipping: everything in the last phase;
- other: what fits none of the above (embeddings, dropout, ...);
- Python, autograd engine and dispatch: the phase's wall time minus its operators' self time.

The attribution is by shape, so it is only as sharp as the shapes are distinct; with the
benchmark's sizes (S, T about 40; Ha = De = 512; V = 8000) they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.profiler import profile, record_function

PHASES = ("forward", "backward", "optimizer")
MATMULS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mv", "aten::addmv_"}
MATMULS |= {"aten::addmv", "mkldnn::_linear_pointwise"}
COPIES = {
    "aten::copy_",
    "aten::fill_",
    "aten::zero_",
    "aten::zeros",
    "aten::zeros_like",
    "aten::empty",
    "aten::empty_like",
    "aten::empty_strided",
    "aten::new_empty",
    "aten::new_zeros",
    "aten::cat",
    "aten::stack",
    "aten::clone",
    "aten::contiguous",
    "aten::_to_copy",
    "aten::to",
    "aten::resize_",
}
VIEWS = {
    "aten::linear",
    "aten::matmul",
    "aten::view",
    "aten::reshape",
    "aten::_reshape_alias",
    "aten::t",
    "aten::transpose",
    "aten::permute",
    "aten::as_strided",
    "aten::select",
    "aten::slice",
    "aten::narrow",
    "aten::chunk",
    "aten::split",
    "aten::unbind",
    "aten::unsqueeze",
    "aten::squeeze",
    "aten::expand",
    "aten::alias",
    "aten::detach",
    "aten::lift_fresh",
    "aten::result_type",
    "aten::numpy_T",
    "aten::item",
    "aten::_local_scalar_dense",
}
CATEGORIES = (
    "matmuls of the decoder step",
    "matmuls of the output layer",
    "other matmuls",
    "encoder LSTM (oneDNN)",
    "attention over B x S",
    "attention softmax",
    "decoder cell element-wise",
    "output log-softmax and loss",
    "copies, fills, allocation",
    "views and dispatch",
    "optimizer and clipping",
    "other",
    "Python, autograd engine and dispatch",
)


@dataclass(frozen=True)
class Dims:
    """The sizes that tell the categories apart."""

    batch: int
    source: int
    target: int
    attention: int
    vocab: int


def _numels(shapes: Sequence[Sequence[int]]) -> set[int]:
    out = set()
    for shape in shapes:
        if shape:
            n = 1
            for d in shape:
                n *= d
            out.add(n)
    return out


def category(name: str, shapes: Sequence[Sequence[int]], d: Dims) -> str:
    """The category of one ATen operator call from its name and input shapes."""
    flat = [x for shape in shapes for x in shape]
    numels = _numels(shapes)
    score = d.batch * d.source * d.attention
    if name.startswith("rnnkit::bahdanau_attention"):  # rnnkit.nn.native's one-pass step
        return "attention over B x S"
    if name.startswith("rnnkit::lstm_cell"):
        return "decoder cell element-wise"
    if name.startswith("aten::mkldnn_rnn"):
        return "encoder LSTM (oneDNN)"
    if name in MATMULS:
        if d.vocab in flat:
            return "matmuls of the output layer"
        if name in ("aten::mv", "aten::addmv", "aten::addmv_", "aten::bmm") and score in numels:
            return "attention over B x S"
        first = [s for s in shapes if len(s) == 2]
        if first and (first[0][0] == d.batch or first[-1][-1] == d.batch):
            return "matmuls of the decoder step"
        return "other matmuls"
    if name in COPIES:
        return "copies, fills, allocation"
    if name in VIEWS:
        return "views and dispatch"
    if name.startswith("rnnkit::cross_entropy"):  # rnnkit.nn.native's one-pass loss
        return "output log-softmax and loss"
    if "log_softmax" in name or "nll_loss" in name or d.vocab in flat:
        return "output log-softmax and loss"
    if "softmax" in name or name.startswith("aten::masked_fill"):
        return "attention softmax"
    if score in numels:
        return "attention over B x S"
    if shapes and all(len(s) == 2 and s[0] == d.batch for s in shapes if s):
        return "decoder cell element-wise"
    return "other"


@dataclass(frozen=True)
class StepProfile:
    """Milliseconds of one step by category and phase, and each phase's wall time."""

    ms: dict[str, dict[str, float]]  # category -> phase -> ms
    wall_ms: dict[str, float]  # phase -> ms


def profile_step(
    model: torch.nn.Module, step: Any, batch: Any, dims: Dims, repeats: int = 3
) -> StepProfile:
    """Profile ``step(model, batch, phase)`` ``repeats`` times; the categories' medians.

    ``step`` must run its three phases inside ``phase("forward")``, ``phase("backward")`` and
    ``phase("optimizer")`` context managers (they label the profiler's ranges).
    """
    runs = []
    for _ in range(repeats):
        with profile(record_shapes=True) as prof:
            step(model, batch, lambda name: record_function(f"## {name}"))
        runs.append(_attribute(prof.events(), dims))
    ms: dict[str, dict[str, float]] = {c: {} for c in CATEGORIES}
    wall: dict[str, float] = {}
    for phase in PHASES:
        walls = sorted(r.wall_ms.get(phase, 0.0) for r in runs)
        wall[phase] = walls[len(walls) // 2]
        for c in CATEGORIES:
            values = sorted(r.ms[c].get(phase, 0.0) for r in runs)
            ms[c][phase] = values[len(values) // 2]
    return StepProfile(ms, wall)


def _attribute(events: Any, dims: Dims) -> StepProfile:
    ms: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    wall: dict[str, float] = {}
    accounted: dict[str, float] = defaultdict(float)
    for event in events:
        if event.name.startswith("## "):
            wall[event.name[3:]] = event.time_range.elapsed_us() / 1e3
            continue
        if not event.name.startswith(("aten::", "mkldnn::", "rnnkit::")):
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("## "):
            parent = parent.cpu_parent
        if parent is None:
            continue
        phase = parent.name[3:]
        self_ms = event.self_cpu_time_total / 1e3
        kind = (
            "optimizer and clipping"
            if phase == "optimizer"
            else category(event.name, event.input_shapes or [], dims)
        )
        ms[kind][phase] += self_ms
        accounted[phase] += self_ms
    for phase, total in wall.items():
        ms["Python, autograd engine and dispatch"][phase] = max(total - accounted[phase], 0.0)
    return StepProfile({c: dict(ms[c]) for c in CATEGORIES}, wall)


def print_profile(title: str, prof: StepProfile) -> None:
    """A table: one row per category, forward / backward / optimizer / total ms and share."""
    total = sum(prof.wall_ms.values())
    print(f"  {title}: {total:.0f} ms a step (median of the profiled steps)")
    print(
        f"    {'':38s} {'forward':>8s} {'backward':>9s} {'optim.':>7s} {'total':>7s} {'share':>6s}"
    )
    for c in CATEGORIES:
        row = prof.ms[c]
        t = sum(row.values())
        if t < 0.05:
            continue
        cells = " ".join(f"{row.get(p, 0.0):8.1f}" for p in PHASES)
        print(f"    {c:38s} {cells} {t:7.1f} {100 * t / total:5.1f}%")
    walls = " ".join(f"{prof.wall_ms.get(p, 0.0):8.1f}" for p in PHASES)
    print(f"    {'wall':38s} {walls} {total:7.1f}")
