"""RNN/LSTM/GRU layers: parity with torch.nn (outputs, states, all gradients), lengths, errors."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.nn import GRU, LSTM, RNN
from rnnkit.nn._chunks import plan_chunks
from rnnkit.nn.recurrent import BACKENDS

B, T, E, H = 3, 5, 4, 7
ATOL = RTOL = 1e-5

# name -> (rnnkit class, torch.nn class, extra constructor kwargs)
KINDS: dict[str, tuple[type[Any], type[torch.nn.RNNBase], dict[str, str]]] = {
    "rnn_tanh": (RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, torch.nn.LSTM, {}),
    "gru": (GRU, torch.nn.GRU, {}),
}
# unsorted with a length of 1 and the full length; duplicates with max < T
LENGTHS = {"none": None, "mixed": [3, 5, 1], "short": [2, 4, 2]}


def make_pair(
    kind: str, num_layers: int, bidirectional: bool, backend: str, seed: int = 0
) -> tuple[Any, torch.nn.RNNBase]:
    """An rnnkit layer and a torch.nn twin (batch_first) holding the same parameters."""
    ours_cls, ref_cls, kwargs = KINDS[kind]
    torch.manual_seed(seed)
    ours = ours_cls(E, H, num_layers, bidirectional, backend=backend, **kwargs)
    ref = ref_cls(E, H, num_layers, batch_first=True, bidirectional=bidirectional, **kwargs)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def initial_state(kind: str, num_layers: int, bidirectional: bool, batch: int = B) -> Any:
    shape = (num_layers * (2 if bidirectional else 1), batch, H)
    if kind == "lstm":
        return (torch.randn(shape, requires_grad=True), torch.randn(shape, requires_grad=True))
    return torch.randn(shape, requires_grad=True)


def state_tensors(state: Any) -> list[Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def run_reference(ref: torch.nn.RNNBase, x: Tensor, lengths: Tensor | None, state: Any) -> Any:
    """torch.nn on the padded batch, or on packed sequences when lengths are given."""
    if lengths is None:
        return ref(x, state)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, final = ref(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, final


def loss_of(out: Tensor, final: Any, weights: list[Tensor]) -> Tensor:
    """A scalar touching every output with distinct weights, so every gradient is checked."""
    parts = [out, *state_tensors(final)]
    return sum((p * w).sum() for p, w in zip(parts, weights, strict=True))  # type: ignore[return-value]


def assert_parity(
    ours: Any, ref: torch.nn.RNNBase, x: Tensor, lengths: Tensor | None, state: Any
) -> None:
    """Outputs, final states and the gradients of input, initial state and every parameter."""
    x_ours = x.clone().requires_grad_(True)
    x_ref = x.clone().requires_grad_(True)
    out, final = ours(x_ours, lengths, state)
    ref_state = None
    if state is not None:
        ref_state = (
            tuple(s.detach().clone().requires_grad_(True) for s in state)
            if isinstance(state, tuple)
            else state.detach().clone().requires_grad_(True)
        )
    ref_out, ref_final = run_reference(ref, x_ref, lengths, ref_state)

    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(final, ref_final, atol=ATOL, rtol=RTOL)
    if lengths is not None:
        padded = torch.arange(x.shape[1]) >= lengths.unsqueeze(1)  # (B, T)
        assert torch.all(out[padded] == 0)

    weights = [torch.randn_like(p) for p in [out, *state_tensors(final)]]
    loss_of(out, final, weights).backward()
    loss_of(ref_out, ref_final, weights).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=ATOL, rtol=RTOL)
    for (name, p), (ref_name, q) in zip(
        ours.named_parameters(), ref.named_parameters(), strict=True
    ):
        assert name == ref_name
        torch.testing.assert_close(p.grad, q.grad, atol=ATOL, rtol=RTOL, msg=name)
    if state is not None:
        for s, r in zip(state_tensors(state), state_tensors(ref_state), strict=True):
            torch.testing.assert_close(s.grad, r.grad, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("lengths_name", list(LENGTHS))
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", list(KINDS))
def test_parity_with_torch_outputs_states_and_gradients(
    kind: str,
    num_layers: int,
    bidirectional: bool,
    backend: str,
    lengths_name: str,
    with_state: bool,
) -> None:
    ours, ref = make_pair(kind, num_layers, bidirectional, backend)
    lengths_list = LENGTHS[lengths_name]
    lengths = None if lengths_list is None else torch.tensor(lengths_list)
    state = initial_state(kind, num_layers, bidirectional) if with_state else None
    assert_parity(ours, ref, torch.randn(B, T, E), lengths, state)


@pytest.mark.parametrize(
    ("backend", "chunk_cost"),
    [("fused", 0.0), ("fused", 2.0), ("fused", 1e9), ("explicit", 64.0)],
    ids=["fused_every_length", "fused_some", "fused_one_call", "explicit"],
)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_lengths_exact_for_every_chunk_plan(
    kind: str, bidirectional: bool, backend: str, chunk_cost: float
) -> None:
    """Cutting time at every distinct length, at some, or nowhere gives the same exact result."""
    ours, ref = make_pair(kind, 2, bidirectional, backend)
    ours.chunk_cost = chunk_cost
    lengths = torch.tensor([5, 3, 1, 4, 3, 2])
    state = initial_state(kind, 2, bidirectional, batch=6)
    assert_parity(ours, ref, torch.randn(6, T, E), lengths, state)


def plan_cost(lens: list[int], ends: list[int], call_cost: float) -> float:
    """Token steps of running chunks ending at ``ends``, each on the sequences still running."""
    starts = [0, *ends[:-1]]
    return sum(
        call_cost + sum(n > s for n in lens) * (e - s) for s, e in zip(starts, ends, strict=True)
    )


def test_plan_chunks() -> None:
    lens = [7, 3, 3, 9, 1, 4, 9]
    assert plan_chunks(lens, call_cost=0.0) == [1, 3, 4, 7, 9]
    assert plan_chunks(lens, call_cost=1e9) == [9]
    assert plan_chunks([5, 5, 5], call_cost=0.0) == [5]
    gen = torch.Generator().manual_seed(0)
    for cost in (0.5, 3.0, 10.0, 40.0):
        lens = torch.randint(1, 30, (16,), generator=gen).tolist()
        cuts = sorted(set(lens))
        brute = min(
            plan_cost(lens, [*inner, cuts[-1]], cost)
            for r in range(len(cuts))
            for inner in itertools.combinations(cuts[:-1], r)
        )
        plan = plan_chunks(lens, cost)
        assert plan[-1] == max(lens)
        assert plan == sorted(set(plan))
        assert plan_cost(lens, plan, cost) == pytest.approx(brute)


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_dict_round_trip_both_ways(kind: str) -> None:
    ours, ref = make_pair(kind, 2, True, "fused")
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert list(ours.state_dict())[-1] == "bias_hh_l1_reverse"
    # ours -> torch
    torch.manual_seed(1)
    ours_cls, ref_cls, kwargs = KINDS[kind]
    fresh_ref = ref_cls(E, H, 2, batch_first=True, bidirectional=True, **kwargs)
    fresh_ref.load_state_dict(ours.state_dict())
    # torch -> ours
    fresh_ours = ours_cls(E, H, 2, True, **kwargs)
    fresh_ours.load_state_dict(fresh_ref.state_dict())
    for (name, p), q in zip(
        ours.state_dict().items(), fresh_ours.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q), name
    x = torch.randn(B, T, E)
    torch.testing.assert_close(fresh_ours(x)[0], fresh_ref(x)[0], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("kind", list(KINDS))
def test_init_is_torchs(kind: str) -> None:
    """Same seed, same parameters as torch.nn: uniform(-1/sqrt(H), 1/sqrt(H)) in torch's order."""
    ours_cls, ref_cls, kwargs = KINDS[kind]
    torch.manual_seed(3)
    ours = ours_cls(E, H, 2, True, **kwargs)
    torch.manual_seed(3)
    ref = ref_cls(E, H, 2, batch_first=True, bidirectional=True, **kwargs)
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p, q)
    flat = torch.cat([p.detach().flatten() for p in ours.parameters()])
    assert flat.abs().max() <= 1.0 / H**0.5
    assert flat.abs().max() > 0.95 / H**0.5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_stepping_token_by_token_equals_full_sequence(kind: str, backend: str) -> None:
    ours, _ = make_pair(kind, 2, False, backend)
    x = torch.randn(B, T, E)
    out, final = ours(x)
    state = None
    steps = []
    for t in range(T):
        step_out, state = ours(x[:, t : t + 1], state=state)
        steps.append(step_out)
    torch.testing.assert_close(torch.cat(steps, dim=1), out, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(state, final, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_padded_batch_equals_each_example_alone(
    kind: str, bidirectional: bool, backend: str
) -> None:
    ours, _ = make_pair(kind, 2, bidirectional, backend)
    lengths = torch.tensor([3, 5, 1])
    x = torch.randn(B, T, E)
    x[torch.arange(T) >= lengths.unsqueeze(1)] = 1e3  # garbage in the padding must not leak
    out, final = ours(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_final = ours(x[b : b + 1, :n])
        torch.testing.assert_close(out[b : b + 1, :n], alone, atol=ATOL, rtol=RTOL)
        assert torch.all(out[b, n:] == 0)
        for s, a in zip(state_tensors(final), state_tensors(alone_final), strict=True):
            torch.testing.assert_close(s[:, b : b + 1], a, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("kind", list(KINDS))
def test_backend_switch_on_existing_layer_gives_same_results(kind: str) -> None:
    ours, _ = make_pair(kind, 2, True, "fused")
    x = torch.randn(B, T, E)
    lengths = torch.tensor([4, 2, 5], dtype=torch.int32)
    fused = ours(x, lengths)
    ours.backend = "explicit"
    assert ours.backend == "explicit"
    assert "backend=explicit" in repr(ours)
    explicit = ours(x, lengths)
    torch.testing.assert_close(explicit, fused, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dropout_between_layers_only(kind: str, backend: str) -> None:
    """With dropout 1 the second layer sees zeros: it equals that layer alone on a zero input."""
    ours_cls, _, _ = KINDS[kind]
    torch.manual_seed(0)
    stack = ours_cls(E, H, 2, True, dropout=1.0, backend=backend)
    top = ours_cls(2 * H, H, 1, True, backend=backend)
    top.load_state_dict(
        {k.replace("_l1", "_l0"): v for k, v in stack.state_dict().items() if "_l1" in k}
    )
    x = torch.randn(B, T, E)
    lengths = torch.tensor([3, 5, 1])
    stack.train()
    out, _ = stack(x, lengths)
    expected, _ = top(torch.zeros(B, T, 2 * H), lengths)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=RTOL)
    stack.eval()  # no dropout at evaluation: the input now matters
    assert not torch.allclose(stack(x, lengths)[0], expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_float64_and_state_follows_input_dtype(kind: str, backend: str) -> None:
    ours, ref = make_pair(kind, 1, True, backend)
    ours.double()
    ref.double()
    x = torch.randn(B, T, E, dtype=torch.float64)
    out, final = ours(x, torch.tensor([5, 2, 3]))
    assert out.dtype == torch.float64
    assert all(s.dtype == torch.float64 for s in state_tensors(final))
    torch.testing.assert_close(out, run_reference(ref, x, torch.tensor([5, 2, 3]), None)[0])


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradcheck_with_lengths_float64(kind: str, backend: str, bidirectional: bool) -> None:
    ours_cls, _, _ = KINDS[kind]
    torch.manual_seed(0)
    layer = ours_cls(2, 3, 2, bidirectional, backend=backend).double()
    x = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([2, 4, 1])

    def f(inp: Tensor) -> tuple[Tensor, ...]:
        out, final = layer(inp, lengths)
        return (out, *state_tensors(final))

    assert torch.autograd.gradcheck(f, (x,))


@pytest.mark.parametrize("kind", list(KINDS))
def test_errors_are_clear(kind: str) -> None:
    ours, _ = make_pair(kind, 2, False, "fused")
    name = type(ours).__name__
    x = torch.randn(B, T, E)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, I\) with I = 4, got a 2-D"):
        ours(torch.randn(B, E))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, I\) with I = 4, got shape"):
        ours(torch.randn(B, T, E + 1))
    with pytest.raises(ValueError, match=rf"{name}: lengths must lie in \[1, T\] = \[1, 5\], got"):
        ours(x, torch.tensor([0, 5, 3]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T\] = \[1, 5\], got values "):
        ours(x, torch.tensor([6, 5, 3]))
    with pytest.raises(ValueError, match=r"lengths must have shape \(B,\) = \(3,\), got \(2,\)"):
        ours(x, torch.tensor([5, 3]))
    with pytest.raises(ValueError, match=r"lengths must have shape \(B,\) = \(3,\), got \(3, 1\)"):
        ours(x, torch.tensor([[5], [3], [2]]))
    with pytest.raises(ValueError, match=r"lengths must be an integer tensor, got torch\.float32"):
        ours(x, torch.tensor([5.0, 3.0, 2.0]))
    with pytest.raises(
        ValueError, match=r"lengths must be on the CPU or on x's device cpu, got meta"
    ):
        ours(x, torch.tensor([5, 3, 2], device="meta"))
    with pytest.raises(ValueError, match=r"x has dtype torch\.float64 but the weights have dtype"):
        ours(x.double())
    with pytest.raises(ValueError, match=r"unknown backend 'cudnn'; valid backends: 'fused', 'ex"):
        ours.backend = "cudnn"
    with pytest.raises(ValueError, match=r"unknown backend 'jit'; valid backends: 'fused', 'exp"):
        KINDS[kind][0](E, H, backend="jit")
    bad = torch.zeros(1, B, H)
    state = (bad, bad) if kind == "lstm" else bad
    with pytest.raises(
        ValueError, match=r"expected initial h of shape \(L\*D, B, H\) = \(2, 3, 7\)"
    ):
        ours(x, state=state)


def test_lstm_state_must_be_a_pair() -> None:
    with pytest.raises(ValueError, match=r"LSTM: state must be a tuple \(h, c\)"):
        LSTM(E, H)(torch.randn(B, T, E), state=torch.zeros(1, B, H))  # type: ignore[arg-type]


def test_rnn_unknown_nonlinearity() -> None:
    with pytest.raises(ValueError, match="unknown nonlinearity 'sigmoid'; valid: 'tanh', 'relu'"):
        RNN(E, H, nonlinearity="sigmoid")  # type: ignore[arg-type]


def test_all_lengths_full_equals_no_lengths() -> None:
    for backend, bidirectional in itertools.product(BACKENDS, [False, True]):
        ours, _ = make_pair("lstm", 2, bidirectional, backend)
        x = torch.randn(B, T, E)
        torch.testing.assert_close(ours(x, torch.full((B,), T)), ours(x))


# -------------------------------------------------------------- padding values and the train flag


@pytest.mark.parametrize("fill", [float("nan"), 1e5], ids=["nan", "1e5"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_padding_values_never_change_outputs_states_or_gradients(
    kind: str, bidirectional: bool, backend: str, fill: float
) -> None:
    """NaN or huge padding gives the clean-padding run's outputs, final state and gradients."""
    ours, _ = make_pair(kind, 2, bidirectional, backend)
    lengths = torch.tensor([3, 5, 1])
    padded = torch.arange(T) >= lengths.unsqueeze(1)  # (B, T)
    x = torch.randn(B, T, E)
    probe: list[Tensor] = []

    def run(value: float) -> tuple[Tensor, list[Tensor], Tensor, list[Tensor]]:
        inp = x.clone()
        inp[padded] = value
        inp.requires_grad_(True)
        ours.zero_grad()
        out, final = ours(inp, lengths)
        if not probe:
            probe.extend(torch.randn_like(p) for p in [out, *state_tensors(final)])
        loss_of(out, final, probe).backward()
        assert inp.grad is not None
        grads = [p.grad.clone() for p in ours.parameters() if p.grad is not None]
        return out, state_tensors(final), inp.grad, grads

    out, final, x_grad, grads = run(0.0)
    dirty_out, dirty_final, dirty_x_grad, dirty_grads = run(fill)
    torch.testing.assert_close(dirty_out, out, atol=ATOL, rtol=RTOL)
    assert torch.all(dirty_out[padded] == 0)
    torch.testing.assert_close(dirty_final, final, atol=ATOL, rtol=RTOL)  # h and the LSTM's c
    torch.testing.assert_close(dirty_x_grad[~padded], x_grad[~padded], atol=ATOL, rtol=RTOL)
    assert torch.all(dirty_x_grad[padded] == 0)
    assert len(dirty_grads) == len(grads) == len(list(ours.parameters()))
    torch.testing.assert_close(dirty_grads, grads, atol=ATOL, rtol=RTOL)


KERNELS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def spy_on_train_flags(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record the ``train`` argument (the 7th) of every call of torch's fused RNN kernels."""
    flags: list[bool] = []
    for name in KERNELS:
        kernel = getattr(torch, name)

        def spy(*args: Any, _kernel: Any = kernel) -> Any:
            flags.append(bool(args[6]))
            return _kernel(*args)

        monkeypatch.setattr(torch, name, spy)
    return flags


@pytest.mark.parametrize("lengths_name", ["mixed", "none"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_fused_kernel_gets_train_when_gradients_are_needed(
    kind: str, bidirectional: bool, lengths_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cuDNN refuses a backward through a call made with train=False: pass it when grads flow."""
    ours, _ = make_pair(kind, 2, bidirectional, "fused")
    flags = spy_on_train_flags(monkeypatch)
    lengths_list = LENGTHS[lengths_name]
    lengths = None if lengths_list is None else torch.tensor(lengths_list)
    x = torch.randn(B, T, E, requires_grad=True)
    for mode in ("train", "eval"):  # eval with gradients: e.g. gradient diagnostics
        ours.train(mode == "train")
        flags.clear()
        out, _ = ours(x, lengths)
        assert flags and all(flags), (mode, flags)
        out.sum().backward()
        assert x.grad is not None and bool(x.grad.abs().sum() > 0)
    ours.eval()
    flags.clear()
    with torch.no_grad():
        ours(x, lengths)
    assert flags and not any(flags)


def test_eval_with_gradients_applies_no_dropout() -> None:
    """Passing train=True for the backward must not switch on the kernel's dropout in eval."""
    torch.manual_seed(0)
    layer = LSTM(E, H, 2, dropout=0.9).eval()
    x = torch.randn(B, T, E, requires_grad=True)
    with torch.no_grad():
        expected, _ = layer(x)
    torch.testing.assert_close(layer(x)[0], expected)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_cuda_training_step_with_lengths(kind: str, bidirectional: bool) -> None:
    """One optimiser step with lengths on cuDNN, and parity with torch.nn on packed sequences."""
    ours, ref = make_pair(kind, 2, bidirectional, "fused")
    ours, ref = ours.cuda().train(), ref.cuda().train()
    lengths = torch.tensor([3, 5, 1])
    x = torch.randn(B, T, E, device="cuda")
    x[(torch.arange(T) >= lengths.unsqueeze(1)).cuda()] = float("nan")
    optimizer = torch.optim.SGD(ours.parameters(), lr=0.1)
    out, final = ours(x, lengths)
    x_ref = torch.nan_to_num(x, nan=0.0)
    ref_out, ref_final = run_reference(ref, x_ref, lengths, None)
    torch.testing.assert_close(out, ref_out, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(final, ref_final, atol=1e-4, rtol=1e-4)
    loss = out.square().sum() + sum(s.square().sum() for s in state_tensors(final))
    loss.backward()
    (ref_out.square().sum() + sum(s.square().sum() for s in state_tensors(ref_final))).backward()
    for (name, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        torch.testing.assert_close(p.grad, q.grad, atol=1e-3, rtol=1e-3, msg=name)
    optimizer.step()
