"""Optimisers and learning-rate schedules (rnnkit.training.optim)."""

from __future__ import annotations

import io
import itertools
import math
import re
from typing import Any

import pytest
import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.training.optim import build_optimizer, build_scheduler, lr_multiplier


def train(**settings: Any) -> TrainConfig:
    """A TrainConfig with ``settings`` and a step budget (every config needs one)."""
    settings.setdefault("max_steps", 100)
    return TrainConfig(**settings)


def lrs(config: TrainConfig, total: int | None, steps: int) -> list[float]:
    """The lr of each of ``steps`` optimiser steps, read from a real LambdaLR."""
    model = nn.Linear(3, 2)
    optimizer = build_optimizer(model.parameters(), config)
    scheduler = build_scheduler(optimizer, config, total)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_constant_with_warmup() -> None:
    got = lrs(train(lr=0.2, warmup_steps=4), None, 7)
    assert got == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.2])


def test_linear_decays_to_zero_at_total() -> None:
    got = lrs(train(lr=1.0, schedule="linear", warmup_steps=2), 10, 11)
    # warmup 0.5, 1.0; then (10 - s) / 8 for s = 2..10
    assert got == pytest.approx([0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0])


def test_cosine_is_half_at_mid_decay_and_zero_at_the_end() -> None:
    got = lrs(train(lr=0.4, schedule="cosine", warmup_steps=4), 24, 25)
    assert got[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert got[4] == pytest.approx(0.4)  # decay starts at the end of warmup
    assert got[14] == pytest.approx(0.2)  # progress (14 - 4) / 20 = 0.5
    assert got[9] == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert got[24] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in itertools.pairwise(got[4:]))


def test_inverse_sqrt_is_continuous_after_warmup() -> None:
    got = lrs(train(lr=1.0, schedule="inverse_sqrt", warmup_steps=4), None, 16)
    assert got[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert got[4:] == pytest.approx([math.sqrt(4 / (s + 1)) for s in range(4, 16)])
    assert lr_multiplier("inverse_sqrt", 0, None)(8) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("schedule", "warmup", "total", "message"),
    [
        ("cosine", 0, None, "schedule 'cosine' needs the total number of steps"),
        ("linear", 10, 10, "schedule 'linear': total steps (10) must exceed train.warmup_steps"),
        ("step", 0, 5, "unknown schedule 'step'; valid schedules: constant, linear, cosine"),
        ("constant", -1, 5, "train.warmup_steps must be >= 0, got -1"),
    ],
)
def test_schedule_errors(schedule: str, warmup: int, total: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        lr_multiplier(schedule, warmup, total)


def test_scheduler_state_loads_with_weights_only_and_continues() -> None:
    config = train(lr=1.0, schedule="cosine", warmup_steps=3)
    model = nn.Linear(3, 2)
    optimizer = build_optimizer(model.parameters(), config)
    scheduler = build_scheduler(optimizer, config, 20)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    buffer = io.BytesIO()
    torch.save({"opt": optimizer.state_dict(), "sched": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["sched"]["lr_lambdas"] == [None]  # the schedule itself comes from the config
    fresh_opt = build_optimizer(nn.Linear(3, 2).parameters(), config)
    fresh = build_scheduler(fresh_opt, config, 20)
    fresh_opt.load_state_dict(state["opt"])
    fresh.load_state_dict(state["sched"])
    for _ in range(5):
        assert fresh_opt.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
        for opt, sched in ((optimizer, scheduler), (fresh_opt, fresh)):
            opt.step()
            sched.step()


def test_optimiser_choice_and_hyperparameters() -> None:
    params = list(nn.Linear(3, 2).parameters())
    adam = build_optimizer(params, train(optimizer="adam", lr=0.01, weight_decay=0.1))
    adamw = build_optimizer(params, train(optimizer="adamw", lr=0.02, weight_decay=0.1))
    sgd = build_optimizer(params, train(optimizer="sgd", lr=0.3, momentum=0.9))
    assert type(adam) is torch.optim.Adam and type(adamw) is torch.optim.AdamW
    assert type(sgd) is torch.optim.SGD
    assert (adam.defaults["lr"], adam.defaults["weight_decay"]) == (0.01, 0.1)
    assert (sgd.defaults["lr"], sgd.defaults["momentum"]) == (0.3, 0.9)


def test_sgd_momentum_matches_the_update_rule() -> None:
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = build_optimizer([p], train(optimizer="sgd", lr=0.1, momentum=0.5))
    velocity = torch.zeros(2)
    expected = p.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        (p**2).sum().backward()
        assert p.grad is not None
        velocity = 0.5 * velocity + p.grad if velocity.any() else p.grad.clone()
        expected = expected - 0.1 * velocity
        opt.step()
        torch.testing.assert_close(p.detach(), expected)


def test_frozen_model_is_an_error() -> None:
    model = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="the model has no trainable parameters"):
        build_optimizer(model.parameters(), train())


def test_parameter_groups_keep_their_rate_and_drop_frozen_parameters() -> None:
    head, body, frozen = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2)
    frozen.requires_grad_(False)
    groups = [
        {"params": list(head.parameters())},
        {"params": [*body.parameters(), *frozen.parameters()], "lr": 1e-4},
        {"params": list(frozen.parameters()), "lr": 1.0},  # nothing to train: left out
    ]
    optimizer = build_optimizer(groups, TrainConfig(lr=1e-3, max_steps=1))
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-4]
    assert [len(g["params"]) for g in optimizer.param_groups] == [2, 2]
    with pytest.raises(ValueError, match="the model has no trainable parameters"):
        build_optimizer([{"params": list(frozen.parameters())}], TrainConfig(max_steps=1))
