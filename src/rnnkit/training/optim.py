"""Optimisers and learning-rate schedules built from a :class:`~rnnkit.config.TrainConfig`.

Schedules are multipliers of the base ``lr``, applied with
:class:`torch.optim.lr_scheduler.LambdaLR`. With ``s`` the number of optimiser steps taken so far (0 for the first step), ``w`` =
``warmup_steps`` and ``N`` the total number of steps:

* warmup (any schedule, when ``w > 0``):  ``m(s) = (s + 1) / w`` for ``s < w``
* ``constant``:      ``m(s) = 1``
* ``linear``:        ``m(s) = max(0, (N - s) / (N - w))``          (1 at the end of warmup, 0 at N)
* ``cosine``:        ``m(s) = 0.5 (1 + cos(pi p))``, ``p = clamp((s - w) / (N - w), 0, 1)``
* ``inverse_sqrt``:  ``m(s) = sqrt(max(w, 1) / (s + 1))``           (1 at the end of warmup)

The multiplier function is a plain closure, so the scheduler's ``state_dict()`` holds only numbers
(``lr_lambdas`` is ``[None]``) and loads with ``torch.load(weights_only=True)``; the schedule itself
always comes from the config.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from rnnkit.config import TrainConfig

SCHEDULES = ("constant", "linear", "cosine", "inverse_sqrt")
OPTIMIZERS = ("adam", "adamw", "sgd")


def build_optimizer(
    params: Iterable[nn.Parameter] | Iterable[dict[str, Any]], config: TrainConfig
) -> Optimizer:
    """Adam, AdamW or SGD (with ``momentum``) over ``params`` with ``lr`` and ``weight_decay``.

    ``params`` is the parameters, or torch's parameter groups (dicts with ``params`` and their
    own options, e.g. ``lr``); parameters that need no gradient are left out, and so is a group
    left empty. The values were checked when ``config`` was built
    (:class:`~rnnkit.config.TrainConfig`); raises ``ValueError`` when no parameter requires a
    gradient.
    """
    items = list(params)
    param_list: list[Any]
    if items and isinstance(items[0], dict):
        param_list = []
        for group in items:
            assert isinstance(group, dict)
            kept = [p for p in group["params"] if p.requires_grad]
            if kept:
                param_list.append({**group, "params": kept})
    else:
        param_list = [p for p in items if isinstance(p, torch.Tensor) and p.requires_grad]
    if not param_list:
        raise ValueError("the model has no trainable parameters")
    if config.optimizer == "adam":
        return torch.optim.Adam(param_list, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(param_list, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            param_list, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    raise ValueError(
        f"unknown optimizer '{config.optimizer}'; valid optimizers: {', '.join(OPTIMIZERS)}"
    )


def lr_multiplier(
    schedule: str, warmup_steps: int, total_steps: int | None
) -> Callable[[int], float]:
    """The function ``s -> m(s)`` of the module docstring (``s`` = optimiser steps taken so far).

    ``total_steps`` is needed by ``linear`` and ``cosine`` (``ValueError`` when missing or not
    larger than ``warmup_steps``); ``constant`` and ``inverse_sqrt`` ignore it.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule '{schedule}'; valid schedules: {', '.join(SCHEDULES)}")
    if warmup_steps < 0:
        raise ValueError(f"train.warmup_steps must be >= 0, got {warmup_steps}")
    if schedule in ("linear", "cosine"):
        if total_steps is None:
            raise ValueError(
                f"schedule '{schedule}' needs the total number of steps: set train.max_steps "
                "or train.epochs"
            )
        if total_steps <= warmup_steps:
            raise ValueError(
                f"schedule '{schedule}': total steps ({total_steps}) must exceed "
                f"train.warmup_steps ({warmup_steps})"
            )
    w = warmup_steps
    n = total_steps if total_steps is not None else 0

    def multiplier(s: int) -> float:
        if s < w:
            return (s + 1) / w
        if schedule == "linear":
            return max(0.0, (n - s) / (n - w))
        if schedule == "cosine":
            p = min(max((s - w) / (n - w), 0.0), 1.0)
            return 0.5 * (1.0 + math.cos(math.pi * p))
        if schedule == "inverse_sqrt":
            return math.sqrt(max(w, 1) / (s + 1))
        return 1.0

    return multiplier


def build_scheduler(optimizer: Optimizer, config: TrainConfig, total_steps: int | None) -> LambdaLR:
    """A ``LambdaLR`` applying ``config.schedule`` (with warmup) over ``total_steps`` steps.

    Call ``scheduler.step()`` once after every training step; ``optimizer``'s lr is then
    ``config.lr * m(s)`` for the next step ``s``.
    """
    fn = lr_multiplier(config.schedule, config.warmup_steps, total_steps)
    return LambdaLR(optimizer, lr_lambda=fn)
