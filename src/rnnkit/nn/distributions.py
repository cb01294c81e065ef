r"""Predictive distributions of a forecaster, as pure functions of their parameter tensors.

Shapes: B batch, H horizon steps, C series, n parameters per value (:func:`num_params`), Q
quantile levels; ``...`` is any leading shape. Every function here reads the parameters from the
last axis and knows no model.

Three families (``likelihood``), for a value y with parameters theta (..., n):

- ``quantile``: n = Q quantiles :math:`q_1 \le \dots \le q_Q` at the trained levels
  :math:`\tau_1 < \dots < \tau_Q` (0.5 among them), scored by the pinball loss
  :math:`\rho_\tau(y - q) = \max(\tau (y - q), (\tau - 1)(y - q))` averaged over the levels.
- ``gaussian``: n = 2, :math:`(\mu, \sigma)`, scored by
  :math:`-\log p(y) = \log\sigma + \frac{(y-\mu)^2}{2\sigma^2} + \frac12 \log 2\pi`.
- ``student_t``: n = 3, :math:`(\mu, \sigma, \nu)` with :math:`\nu > 2` (a finite variance),
  :math:`\log p(y) = \log\Gamma(\frac{\nu+1}2) - \log\Gamma(\frac\nu2) - \frac12\log(\nu\pi)
  - \log\sigma - \frac{\nu+1}2 \log(1 + \frac{(y-\mu)^2}{\nu\sigma^2})`.

The quantile at level :math:`\tau` of the two parametric families is :math:`\mu + \sigma z_\tau`
with :math:`z_\tau = \Phi^{-1}(\tau)` (Gaussian) or the Student-t quantile
:math:`t_\nu^{-1}(\tau)` (:func:`student_t_icdf`); the point forecast is the median (the 0.5
quantile, or :math:`\mu`).

The loss (:func:`forecast_loss`) lives here, not in the task, because it is the scoring rule of
each family and nothing else: a pure function of (theta, y) with no reduction choice, no model
and no options, written once next to the parameterisation it scores, so that a new family is
added in this one module (its parameter count, its link :func:`distribution_params`, its
quantiles and its score). The task only chooses to call it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

Likelihood = Literal["quantile", "gaussian", "student_t"]
LIKELIHOODS: tuple[Likelihood, ...] = get_args(Likelihood)

__all__ = [
    "LIKELIHOODS",
    "Likelihood",
    "distribution_params",
    "distribution_quantiles",
    "forecast_loss",
    "num_params",
    "point_forecast",
    "student_t_icdf",
]


def num_params(likelihood: Likelihood, levels: Sequence[float]) -> int:
    """n, the parameters per value: Q = ``len(levels)`` quantiles, 2 (Gaussian) or 3 (Student-t).

    Raises:
        ValueError: for an unknown likelihood, listing the valid ones.
    """
    if likelihood == "quantile":
        return len(levels)
    if likelihood == "gaussian":
        return 2
    if likelihood == "student_t":
        return 3
    raise ValueError(f"unknown likelihood {likelihood!r}; valid: {', '.join(LIKELIHOODS)}")


def distribution_params(
    raw: Tensor, base: Tensor, likelihood: Likelihood, levels: Sequence[float]
) -> Tensor:
    r"""The link from a network's raw outputs to valid parameters, shifted by a base forecast.

    ``quantile``: monotone quantiles, the median :math:`m = r_m + b` and every other level a sum
    of softplus gaps below or above it, :math:`q_{m \pm k} = m \pm \sum_{j \le k}
    \mathrm{softplus}(r_{m \pm j})`. ``gaussian``: :math:`\mu = r_0 + b`,
    :math:`\sigma = \mathrm{softplus}(r_1) + 10^{-3}`; ``student_t`` also
    :math:`\nu = 2 + \mathrm{softplus}(r_2) + 10^{-3}`.

    Args:
        raw: (..., n) unconstrained outputs.
        base: (...,) the forecast the location is added to (e.g. the seasonal naive one).
        likelihood: the family. levels: the Q trained quantile levels (with 0.5).

    Returns:
        (..., n) distribution parameters.
    """
    if likelihood == "quantile":
        m = list(levels).index(0.5)
        median = raw[..., m : m + 1]  # (..., 1)
        below = F.softplus(raw[..., :m]).flip(-1).cumsum(-1).flip(-1)  # (..., m) gaps to it
        above = F.softplus(raw[..., m + 1 :]).cumsum(-1)  # (..., Q - m - 1)
        return torch.cat([median - below, median, median + above], dim=-1) + base[..., None]
    mu = raw[..., 0] + base  # (...,)
    sigma = F.softplus(raw[..., 1]) + 1e-3
    if likelihood == "gaussian":
        return torch.stack([mu, sigma], dim=-1)  # (..., 2)
    nu = 2.0 + F.softplus(raw[..., 2]) + 1e-3
    return torch.stack([mu, sigma, nu], dim=-1)  # (..., 3)


def student_t_icdf(q: float, df: Tensor) -> Tensor:
    r"""Quantile ``q`` of the standard Student-t with ``df`` (...,) > 0 degrees of freedom.

    Solves :math:`F_\nu(x) = q` by bisection, where :math:`F_\nu(x) = \frac12 + \int_0^x
    p_\nu(t)\,dt` for x >= 0, the integral by composite Simpson on 257 nodes. Accurate to about
    1e-6 for q in [0.001, 0.999] and df >= 2. Computed in float64, returned in ``df``'s dtype.

    Returns:
        (...,) the quantiles, negative for q < 0.5 (by symmetry).
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {q}")
    if q == 0.5:
        return torch.zeros_like(df)
    p = max(q, 1.0 - q)
    nu = df.double()  # (...,)
    log_norm = (
        torch.lgamma((nu + 1) / 2) - torch.lgamma(nu / 2) - 0.5 * torch.log(nu * math.pi)
    )  # (...,)
    nodes = torch.linspace(0.0, 1.0, 257, dtype=torch.float64, device=df.device)  # (S,)
    weights = torch.ones(257, dtype=torch.float64, device=df.device)  # Simpson 1 4 2 ... 4 1
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0

    def cdf(x: Tensor) -> Tensor:  # x (...,) >= 0
        t = x[..., None] * nodes  # (..., S)
        density = torch.exp(
            log_norm[..., None] - (nu[..., None] + 1) / 2 * torch.log1p(t**2 / nu[..., None])
        )
        return 0.5 + (density * weights).sum(-1) * x / (3 * 256)

    lo = torch.zeros_like(nu)
    hi = torch.full_like(nu, 1.0)
    for _ in range(60):  # grow hi until CDF(hi) >= p
        short = cdf(hi) < p
        if not bool(short.any()):
            break
        hi = torch.where(short, hi * 2, hi)
    for _ in range(50):
        mid = (lo + hi) / 2
        below = cdf(mid) < p
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    x = ((lo + hi) / 2).to(df.dtype)
    return x if q > 0.5 else -x


def distribution_quantiles(
    params: Tensor, likelihood: Likelihood, trained: Sequence[float], levels: Sequence[float]
) -> Tensor:
    """Quantiles (..., Q) at ``levels`` of the distributions ``params`` (..., n).

    Args:
        params: (..., n), e.g. (B, H, C, n).
        likelihood: the family. trained: the model's quantile levels (``quantile`` only).
        levels: the Q levels wanted; with ``likelihood="quantile"`` only trained ones exist.

    Raises:
        ValueError: a level that was not trained, naming it and the trained ones.
    """
    if likelihood == "quantile":
        missing = [q for q in levels if q not in trained]
        if missing:
            raise ValueError(
                f"quantile level {missing[0]} was not trained; trained levels: {list(trained)}"
            )
        return params[..., [list(trained).index(q) for q in levels]]
    mu, sigma = params[..., 0], params[..., 1]  # (...,)
    if likelihood == "gaussian":
        z = [torch.full_like(mu, NormalDist().inv_cdf(q)) for q in levels]
    else:
        z = [student_t_icdf(q, params[..., 2]) for q in levels]
    return mu[..., None] + sigma[..., None] * torch.stack(z, dim=-1)  # (..., Q)


def point_forecast(params: Tensor, likelihood: Likelihood, trained: Sequence[float]) -> Tensor:
    """The median (...,) of the distributions ``params`` (..., n)."""
    if likelihood == "quantile":
        return params[..., list(trained).index(0.5)]
    return params[..., 0]


def forecast_loss(
    params: Tensor, target: Tensor, likelihood: Likelihood, levels: Sequence[float]
) -> Tensor:
    """Mean score of ``params`` (..., n) for ``target`` (...,): pinball or negative log-likelihood.

    ``quantile``: the pinball loss averaged over the levels and the values; ``gaussian`` /
    ``student_t``: the negative log-density averaged over the values (formulas in the module
    docstring). Both in the units of ``params`` and ``target`` (normalised, for a forecaster).

    Returns:
        A scalar tensor.
    """
    if likelihood == "quantile":
        tau = torch.tensor(levels, dtype=params.dtype, device=params.device)  # (Q,)
        error = target[..., None] - params  # (..., Q)
        return torch.maximum(tau * error, (tau - 1) * error).mean()
    mu, sigma = params[..., 0], params[..., 1]  # (...,)
    if likelihood == "gaussian":
        return (
            torch.log(sigma) + 0.5 * ((target - mu) / sigma) ** 2 + 0.5 * math.log(2 * math.pi)
        ).mean()
    nu = params[..., 2]
    log_density = (
        torch.lgamma((nu + 1) / 2)
        - torch.lgamma(nu / 2)
        - 0.5 * torch.log(nu * math.pi)
        - torch.log(sigma)
        - (nu + 1) / 2 * torch.log1p(((target - mu) / sigma) ** 2 / nu)
    )
    return -log_density.mean()
