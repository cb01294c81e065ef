"""rnnkit.nn.native: the compiled kernels against PyTorch, and how they are built and loaded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.testing import assert_close

from rnnkit.nn import native
from rnnkit.nn.padding import length_mask

built = pytest.mark.skipif(native.library() is None, reason="no C++ compiler: kernels not built")


@pytest.fixture
def two_threads() -> object:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def attention_inputs(dtype: torch.dtype, B: int = 4, S: int = 6, Ha: int = 13, De: int = 7) -> dict:
    """Random inputs of one attention step, sentence 1 and 2 padded; Ha, De not multiples of 8."""
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=dtype)

    return {
        "keys": rand(B, S, Ha),
        "query": rand(B, Ha),
        "v": rand(Ha),
        "states": rand(B, S, De),
        "mask": length_mask(torch.tensor([S, 2, 1] + [S] * (B - 3)), S),
    }


def attention_reference(x: dict, d_c: Tensor, d_a: Tensor | None) -> dict:
    """The step written out with torch operators, and its gradients by autograd."""
    leaves = {k: x[k].clone().requires_grad_() for k in ("keys", "query", "v", "states")}
    e = (torch.tanh(leaves["keys"] + leaves["query"][:, None]) * leaves["v"]).sum(-1)
    a = torch.softmax(e.masked_fill(~x["mask"], float("-inf")), dim=1)
    c = torch.bmm(a[:, None], leaves["states"])[:, 0]
    loss = (c * d_c).sum() + (0 if d_a is None else (a * d_a).sum())
    loss.backward()
    return {"a": a.detach(), "c": c.detach(), **{k: t.grad for k, t in leaves.items()}}


@built
@pytest.mark.parametrize("with_d_a", [False, True], ids=["dc", "dc+da"])
@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)], ids=["f32", "f64"]
)
def test_attention_step_equals_autograd(dtype: torch.dtype, tol: float, with_d_a: bool) -> None:
    x = attention_inputs(dtype)
    B, S, Ha = x["keys"].shape
    De = x["states"].shape[2]
    d_c = torch.randn(B, De, dtype=dtype)
    d_a = torch.randn(B, S, dtype=dtype) if with_d_a else None
    want = attention_reference(x, d_c, d_a)
    mask = x["mask"].to(torch.uint8)
    a_all = torch.full((B, 3, S), 7.0, dtype=dtype)  # written through a strided view
    c = torch.empty(B, De, dtype=dtype)
    native.attention_forward(x["keys"], x["query"], x["v"], x["states"], mask, a_all[:, 1], c)
    assert_close(a_all[:, 1], want["a"], atol=tol, rtol=tol)
    assert_close(c, want["c"], atol=tol, rtol=tol)
    assert a_all[:, 0].eq(7.0).all() and a_all[:, 2].eq(7.0).all()
    d_q = torch.empty(B, Ha, dtype=dtype)
    d_keys = torch.ones(B, S, Ha, dtype=dtype)  # added to
    d_v = torch.ones(Ha, dtype=dtype)  # added to
    native.attention_backward(
        x["keys"], x["query"], x["v"], x["states"], mask, a_all[:, 1], d_c, d_a, d_q, d_keys, d_v
    )
    assert_close(d_q, want["query"], atol=tol, rtol=tol)
    assert_close(d_keys - 1, want["keys"], atol=tol, rtol=tol)
    assert_close(d_v - 1, want["v"], atol=tol, rtol=tol)
    assert d_keys[2, 1:].eq(1.0).all()  # padded positions untouched


@built
def test_attention_backward_is_deterministic_and_thread_independent(two_threads: object) -> None:
    x = attention_inputs(torch.float32, B=16, S=30, Ha=64, De=32)
    B, S, Ha = x["keys"].shape
    mask, d_c = x["mask"].to(torch.uint8), torch.randn(16, 32)
    a, c = torch.empty(B, S), torch.empty(B, 32)
    native.attention_forward(x["keys"], x["query"], x["v"], x["states"], mask, a, c)

    def grads() -> tuple[Tensor, Tensor, Tensor]:
        d_q, d_keys, d_v = torch.empty(B, Ha), torch.zeros(B, S, Ha), torch.zeros(Ha)
        native.attention_backward(
            x["keys"], x["query"], x["v"], x["states"], mask, a, d_c, None, d_q, d_keys, d_v
        )
        return d_q, d_keys, d_v

    first, second = grads(), grads()
    torch.set_num_threads(1)
    single = grads()
    for one, two, alone in zip(first, second, single, strict=True):
        assert torch.equal(one, two)
        assert_close(one, alone, atol=1e-6, rtol=1e-6)


@built
def test_attention_rejects_wrong_shapes_and_dtypes() -> None:
    x = attention_inputs(torch.float32)
    mask = x["mask"].to(torch.uint8)
    a, c = torch.empty(4, 6), torch.empty(4, 7)
    with pytest.raises(ValueError, match=r"expected a contiguous \(4, 13\) tensor, got \(4, 12\)"):
        native.attention_forward(x["keys"], x["query"][:, :12], x["v"], x["states"], mask, a, c)
    with pytest.raises(ValueError, match=r"expected torch\.float32 tensors, got torch\.float64"):
        native.attention_forward(x["keys"], x["query"].double(), x["v"], x["states"], mask, a, c)
    with pytest.raises(ValueError, match="with contiguous rows"):
        native.attention_forward(x["keys"], x["query"], x["v"], x["states"], mask, a.t(), c)


@built
@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-13)], ids=["f32", "f64"]
)
def test_lstm_cell_equals_the_equations(dtype: torch.dtype, tol: float) -> None:
    g = torch.Generator().manual_seed(3)
    B, H = 5, 11
    gates = (4 * torch.randn(B, 4 * H, generator=g, dtype=dtype)).requires_grad_()
    m_prev = torch.randn(B, H, generator=g, dtype=dtype).requires_grad_()
    zi, zf, zg, zo = gates.chunk(4, dim=1)
    m = torch.sigmoid(zf) * m_prev + torch.sigmoid(zi) * torch.tanh(zg)
    h = torch.sigmoid(zo) * torch.tanh(m)
    d_h, d_extra, d_m = (torch.randn(B, H, generator=g, dtype=dtype) for _ in range(3))
    want = torch.autograd.grad((h * (d_h + d_extra)).sum() + (m * d_m).sum(), [gates, m_prev])
    act, m_out, tm_out = torch.empty(B, 4 * H, dtype=dtype), *torch.empty(2, B, H, dtype=dtype)
    h_out, h_copy = torch.empty(B, 2, H, dtype=dtype), torch.empty(B, H + 3, dtype=dtype)
    native.lstm_cell_forward(
        gates.detach(), m_prev.detach(), act, m_out, tm_out, h_out[:, 1], h_copy[:, 3:]
    )
    assert_close(m_out, m.detach(), atol=tol, rtol=tol)
    assert_close(tm_out, torch.tanh(m).detach(), atol=tol, rtol=tol)
    assert_close(h_out[:, 1], h.detach(), atol=tol, rtol=tol)
    assert torch.equal(h_copy[:, 3:], h_out[:, 1])
    d_gates, dm = torch.empty(B, 4 * H, dtype=dtype), d_m.clone()
    native.lstm_cell_backward(act, m_prev.detach(), tm_out, d_h, d_extra, dm, d_gates)
    assert_close(d_gates, want[0], atol=tol, rtol=tol)
    assert_close(dm, want[1], atol=tol, rtol=tol)


@built
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-13)], ids=["f32", "f64"]
)
def test_cross_entropy_equals_pytorch(dtype: torch.dtype, tol: float, eps: float) -> None:
    g = torch.Generator().manual_seed(2)
    logits = (5 * torch.randn(40, 29, generator=g, dtype=dtype)).requires_grad_()
    targets = torch.randint(0, 29, (40,), generator=g)
    targets[::3] = 0  # the padding id
    got = native.cross_entropy(logits, targets, ignore_index=0, label_smoothing=eps)
    want = F.cross_entropy(logits, targets, ignore_index=0, label_smoothing=eps)
    assert "_CrossEntropyBackward" in repr(got.grad_fn)
    assert_close(got, want, atol=tol, rtol=tol)
    probe = torch.tensor(1.7, dtype=dtype)
    (g_got,) = torch.autograd.grad(got, logits, probe)
    (g_want,) = torch.autograd.grad(want, logits, probe)
    assert_close(g_got, g_want, atol=tol, rtol=tol)
    assert g_got[::3].eq(0).all()


@built
def test_cross_entropy_gradcheck_and_edge_cases() -> None:
    logits = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([1, 0, 4, 2, 0, 3])
    assert torch.autograd.gradcheck(lambda x: native.cross_entropy(x, targets, 0, 0.2), (logits,))
    assert native.cross_entropy(logits, torch.zeros(6, dtype=torch.int64), 0).isnan()
    with pytest.raises(IndexError, match="target 5 of row 2 is out of bounds for 5 classes"):
        native.cross_entropy(logits, torch.tensor([1, 0, 5, 2, 0, 3]), 0)
    wide = torch.randn(5, 6, dtype=torch.float64).t()  # rows not contiguous: copied, same loss
    assert_close(
        native.cross_entropy(wide, targets, 0), F.cross_entropy(wide, targets, ignore_index=0)
    )


@built
def test_one_openmp_runtime_in_the_process() -> None:
    """The library's ``libgomp.so.1`` dependency resolves to the runtime PyTorch loaded (no second
    pool). Other wheels' vendored copies (``libgomp-<hash>.so.1``, e.g. scikit-learn's) have
    names of their own and are not what the library links."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("no /proc/self/maps on this system")
    paths = {line.split()[-1] for line in maps.read_text().splitlines() if "/" in line}
    gomp = {p for p in paths if Path(p).name == "libgomp.so.1"}
    assert len(gomp) == 1, gomp
    torch_lib = Path(torch.__file__).parent / "lib"
    assert Path(gomp.pop()).parent.resolve() == torch_lib.resolve()


@built
def test_build_is_cached_and_keyed_by_its_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    first = native.build()
    assert first.parent == tmp_path / "cache" / "native" and first.suffix == ".so"
    stamp = first.stat().st_mtime_ns
    assert native.build() == first and first.stat().st_mtime_ns == stamp  # not rebuilt
    copies = []
    for source in native.SOURCES:
        copies.append(tmp_path / source.name)
        copies[-1].write_text(source.read_text() + "\n// changed\n")
    header = tmp_path / native.HEADERS[0].name
    shutil.copy(native.HEADERS[0], header)
    assert native.build(copies, [header]) != first
    assert sorted(p.suffix for p in first.parent.iterdir()) == [".so", ".so"]  # no temporaries


def test_a_failed_build_names_the_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if native.compiler() is None:
        pytest.skip("no C++ compiler")
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    broken = tmp_path / "broken.cpp"
    broken.write_text("int f( {\n")
    with pytest.raises(RuntimeError, match=r"(?s)failed:.*broken\.cpp:1"):
        native.build([broken], [])
    assert list((tmp_path / "cache" / "native").iterdir()) == []


def test_without_a_compiler_it_warns_once_and_pytorch_does_the_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CXX", "no-such-compiler-anywhere")
    monkeypatch.setattr(native, "_loaded", {})
    assert native.compiler() is None
    with pytest.warns(RuntimeWarning, match=r"native kernels unavailable.*no C\+\+ compiler found"):
        assert native.library() is None
    assert native.library() is None  # remembered: no second warning, no second try
    logits, targets = torch.randn(4, 3, requires_grad=True), torch.tensor([0, 1, 2, 1])
    loss = native.cross_entropy(logits, targets)
    assert "NllLossBackward" in repr(loss.grad_fn)
    assert not native.attention_applies(logits)


def test_rnnkit_native_0_turns_the_kernels_off() -> None:
    code = "from rnnkit.nn import native; print(native.enabled, native.library())"
    env = {**os.environ, "RNNKIT_NATIVE": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "None"], out.stderr
