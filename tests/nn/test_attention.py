"""Tests for rnnkit.nn.Attention: references, gradients, masking, shapes and errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.func import functional_call
from torch.testing import assert_close

from rnnkit.nn.attention import Attention, check_mask

B, TQ, S, DQ, DK, DV, HA = 3, 4, 5, 7, 6, 2, 8
GRID_H, GRID_W = 2, 3
SCORES = ("additive", "dot", "general", "scaled_dot")


def make(score: str, dtype: torch.dtype = torch.float32) -> Attention:
    """An attention module with distinct sizes; dot scores need Dq == Dk."""
    torch.manual_seed(0)
    key_size = DQ if score in ("dot", "scaled_dot") else DK
    hidden = HA if score == "additive" else None
    return Attention(DQ, key_size, score=score, hidden_size=hidden).to(dtype)  # type: ignore[arg-type]


def lengths_mask(lengths: list[int], size: int) -> Tensor:
    return torch.arange(size)[None, :] < torch.tensor(lengths)[:, None]  # (B, S)


def inputs(attn: Attention, dtype: torch.dtype = torch.float32) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    query = torch.randn(B, TQ, DQ, generator=g, dtype=dtype)  # (B, Tq, Dq)
    keys = torch.randn(B, S, attn.key_size, generator=g, dtype=dtype)  # (B, S, Dk)
    values = torch.randn(B, S, DV, generator=g, dtype=dtype)  # (B, S, Dv)
    mask = lengths_mask([5, 3, 1], S)  # (B, S)
    return query, keys, values, mask


def reference(attn: Attention, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    """Context written out per example and position with plain loops (B, Tq, Dv)."""
    out = torch.zeros(q.shape[0], q.shape[1], v.shape[-1], dtype=q.dtype)
    for b in range(q.shape[0]):
        real = [i for i in range(k.shape[1]) if mask[b, i]]
        for t in range(q.shape[1]):
            scores = []
            for i in real:
                qi, ki = q[b, t], k[b, i]
                if attn.score == "additive":
                    assert attn.query_proj and attn.key_proj and attn.v
                    h = torch.tanh(
                        attn.query_proj.weight @ qi + attn.key_proj.weight @ ki + attn.key_proj.bias
                    )
                    scores.append(attn.v.weight[0] @ h)
                elif attn.score == "general":
                    assert attn.key_proj
                    scores.append(qi @ attn.key_proj.weight @ ki)
                elif attn.score == "dot":
                    scores.append(qi @ ki)
                else:
                    scores.append(qi @ ki / math.sqrt(k.shape[-1]))
            a = torch.softmax(torch.stack(scores), dim=0)
            out[b, t] = sum(a[j] * v[b, i] for j, i in enumerate(real))
    return out


@pytest.mark.parametrize("score", SCORES)
def test_matches_loop_reference(score: str) -> None:
    attn = make(score)
    q, k, v, mask = inputs(attn)
    context, weights = attn(q, k, v, mask=mask)
    assert context.shape == (B, TQ, DV)
    assert weights.shape == (B, TQ, S)
    assert_close(context, reference(attn, q, k, v, mask))


def test_scaled_dot_matches_torch_sdpa() -> None:
    attn = make("scaled_dot")
    q, k, v, mask = inputs(attn)
    context, _ = attn(q, k, v, mask=mask)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, :])
    assert_close(context, expected)


@pytest.mark.parametrize("score", SCORES)
def test_gradcheck_with_mask(score: str) -> None:
    attn = make(score, torch.float64)
    q, k, v, mask = inputs(attn, torch.float64)
    names = [n for n, _ in attn.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in attn.named_parameters()]

    def fn(q: Tensor, k: Tensor, v: Tensor, *ps: Tensor) -> tuple[Tensor, Tensor]:
        out: tuple[Tensor, Tensor] = functional_call(
            attn, dict(zip(names, ps, strict=True)), (q, k, v), {"mask": mask}
        )
        return out

    args = (q.requires_grad_(True), k.requires_grad_(True), v.requires_grad_(True), *params)
    assert torch.autograd.gradcheck(fn, args)


@pytest.mark.parametrize("score", SCORES)
def test_weights_sum_to_one_and_are_exactly_zero_on_padding(score: str) -> None:
    attn = make(score)
    q, k, v, mask = inputs(attn)
    _, weights = attn(q, k, v, mask=mask)  # (B, Tq, S)
    assert_close(weights.sum(-1), torch.ones(B, TQ))
    padding = ~mask[:, None, :].expand_as(weights)
    assert torch.equal(weights[padding], torch.zeros(int(padding.sum())))
    assert bool((weights[~padding] > 0).all())
    # The single real position of example 2 takes all the weight.
    assert torch.equal(weights[2, :, 0], torch.ones(TQ))


@pytest.mark.parametrize("score", SCORES)
def test_masked_keys_and_values_do_not_affect_output(score: str) -> None:
    attn = make(score)
    q, k, v, mask = inputs(attn)
    context, weights = attn(q, k, v, mask=mask)
    k2, v2 = k.clone(), v.clone()
    k2[~mask] = 1e3 * torch.randn(int((~mask).sum()), k.shape[-1])
    v2[~mask] = 1e3 * torch.randn(int((~mask).sum()), DV)
    context2, weights2 = attn(q, k2, v2, mask=mask)
    assert_close(context2, context, rtol=0, atol=0)
    assert_close(weights2, weights, rtol=0, atol=0)
    # ... while a real key does.
    k2[0, 0] += 1.0
    assert not torch.allclose(attn(q, k2, v2, mask=mask)[1][0], weights[0])


@pytest.mark.parametrize("score", SCORES)
def test_grid_equals_flattened(score: str) -> None:
    attn = make(score)
    g = torch.Generator().manual_seed(2)
    q = torch.randn(B, TQ, DQ, generator=g)  # (B, Tq, Dq)
    grid = torch.randn(B, GRID_H, GRID_W, attn.key_size, generator=g)  # (B, H, W, Dk)
    grid_values = torch.randn(B, GRID_H, GRID_W, DV, generator=g)  # (B, H, W, Dv)
    grid_mask = torch.ones(B, GRID_H, GRID_W, dtype=torch.bool)  # (B, H, W)
    grid_mask[1, 1, :] = False
    grid_mask[2, :, 2] = False
    context, weights = attn(q, grid, grid_values, mask=grid_mask)
    assert weights.shape == (B, TQ, GRID_H, GRID_W)
    S_ = GRID_H * GRID_W
    flat_context, flat_weights = attn(
        q,
        grid.reshape(B, S_, -1),
        grid_values.reshape(B, S_, DV),
        mask=grid_mask.reshape(B, S_),
    )
    assert_close(context, flat_context)
    assert_close(weights.reshape(B, TQ, S_), flat_weights)
    assert torch.equal(weights[1, :, 1, :], torch.zeros(TQ, GRID_W))
    # A single query over a grid gives (B, H, W) weights; values default to the keys.
    context1, weights1 = attn(q[:, 0], grid, mask=grid_mask)
    assert context1.shape == (B, attn.key_size)
    assert weights1.shape == (B, GRID_H, GRID_W)
    projected = attn.project_keys(grid)  # (B, H, W, Dp)
    assert projected.shape == (B, GRID_H, GRID_W, attn.projected_size)
    assert_close(attn(q[:, 0], grid, mask=grid_mask, projected_keys=projected)[0], context1)


@pytest.mark.parametrize("score", SCORES)
def test_many_queries_equal_separate_calls(score: str) -> None:
    attn = make(score)
    q, k, v, mask = inputs(attn)
    context, weights = attn(q, k, v, mask=mask)
    for t in range(TQ):
        ct, wt = attn(q[:, t], k, v, mask=mask)
        assert ct.shape == (B, DV)
        assert wt.shape == (B, S)
        assert_close(ct, context[:, t])
        assert_close(wt, weights[:, t])


@pytest.mark.parametrize("score", SCORES)
def test_projected_keys_path_equals_plain_path(score: str) -> None:
    attn = make(score)
    q, k, v, mask = inputs(attn)
    projected = attn.project_keys(k)
    assert projected.shape == (B, S, attn.projected_size)
    expected_size = {"additive": HA, "general": DQ, "dot": DQ, "scaled_dot": DQ}[score]
    assert attn.projected_size == expected_size
    plain = attn(q, k, v, mask=mask)
    fast = attn(q, k, v, mask=mask, projected_keys=projected)
    assert_close(fast[0], plain[0])
    assert_close(fast[1], plain[1])


def test_no_mask_means_all_positions_real() -> None:
    attn = make("additive")
    q, k, v, _ = inputs(attn)
    full = torch.ones(B, S, dtype=torch.bool)
    assert_close(attn(q, k, v)[0], attn(q, k, v, mask=full)[0])


def test_parameters_by_score() -> None:
    shapes = {n: tuple(p.shape) for n, p in make("additive").named_parameters()}
    assert shapes == {
        "query_proj.weight": (HA, DQ),
        "key_proj.weight": (HA, DK),
        "key_proj.bias": (HA,),
        "v.weight": (1, HA),
    }
    assert {n: tuple(p.shape) for n, p in make("general").named_parameters()} == {
        "key_proj.weight": (DQ, DK)
    }
    assert list(make("dot").parameters()) == []
    assert Attention(DQ, DK).hidden_size == DK


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown score 'cosine'; valid scores: additive, dot"):
        Attention(DQ, DK, score="cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"score='dot' needs query_size == key_size, got "):
        Attention(DQ, DK, score="dot")
    with pytest.raises(ValueError, match=r"score='scaled_dot' needs query_size == key_size"):
        Attention(DQ, DK, score="scaled_dot")
    with pytest.raises(ValueError, match=r"hidden_size is only used by score='additive'"):
        Attention(DQ, DK, score="general", hidden_size=HA)
    with pytest.raises(ValueError, match=r"hidden_size must be positive, got 0"):
        Attention(DQ, DK, hidden_size=0)
    with pytest.raises(ValueError, match=r"key_size must be positive, got -1"):
        Attention(DQ, -1)


def test_forward_errors() -> None:
    attn = make("additive")
    q, k, v, mask = inputs(attn)
    with pytest.raises(ValueError, match=r"query must be \(B, Dq\) or \(B, Tq, Dq\), got shape"):
        attn(q[0, 0], k)
    with pytest.raises(ValueError, match=r"query has size 6 in its last dimension, expected "):
        attn(q[..., :6], k)
    with pytest.raises(ValueError, match=r"keys must be \(B, S, Dk\) or a grid \(B, H, W, Dk\)"):
        attn(q, k[0])
    with pytest.raises(ValueError, match=r"keys have size 5 in their last dimension, expected "):
        attn(q, k[..., :5])
    with pytest.raises(ValueError, match=r"query and keys disagree on the batch size: 2 vs 3"):
        attn(q[:2], k)
    with pytest.raises(ValueError, match=r"values must have the keys' positions \(3, 5\) plus"):
        attn(q, k, v[:, :4])
    with pytest.raises(ValueError, match=r"mask must be a bool tensor \(True = real\), got "):
        attn(q, k, v, mask=mask.long())
    with pytest.raises(
        ValueError, match=r"mask must have the keys' positions \(3, 5\), got \(3, 4\)"
    ):
        attn(q, k, v, mask=mask[:, :4])
    with pytest.raises(ValueError, match=r"projected_keys must have shape \(3, 5, 8\)"):
        attn(q, k, v, mask=mask, projected_keys=k)


def test_check_mask_once_per_batch() -> None:
    mask = lengths_mask([5, 3, 1], S)
    assert check_mask(mask) is mask
    grid = torch.ones(B, GRID_H, GRID_W, dtype=torch.bool)
    assert check_mask(grid) is grid
    empty = mask.clone()
    empty[1] = False
    with pytest.raises(ValueError, match=r"^mask has no real position for some example; cannot at"):
        check_mask(empty)
    with pytest.raises(ValueError, match=r"mask must be a bool tensor \(True = real\), got "):
        check_mask(mask.long())
    with pytest.raises(ValueError, match=r"mask must be \(B, S\) or \(B, H, W\), got shape \(5\)"):
        check_mask(mask[0])


def no_host_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every tensor-to-Python conversion (a host sync on an accelerator) raise."""

    def sync(self: Tensor, *args: object) -> object:
        raise AssertionError("host sync in Attention.forward")

    for name in ("__bool__", "item", "tolist", "__int__", "__float__", "__index__"):
        monkeypatch.setattr(Tensor, name, sync)


@pytest.mark.parametrize("single", [True, False], ids=["one_query", "tq_queries"])
@pytest.mark.parametrize("score", SCORES)
def test_forward_makes_no_host_sync(
    score: str, single: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decoder calls forward at every step: it must not read a tensor's value on the host."""
    attn = make(score)
    q, k, v, mask = inputs(attn)
    query = q[:, 0] if single else q
    projected = attn.project_keys(k)
    expected = attn(query, k, v, mask=mask, projected_keys=projected)
    no_host_sync(monkeypatch)
    got = attn(query, k, v, mask=mask, projected_keys=projected)
    monkeypatch.undo()
    assert_close(got, expected)
