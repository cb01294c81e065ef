r"""Split-conformal calibration of a forecaster's prediction intervals (``model.calibration:
conformal``, the default).

A network trained with the pinball loss fits its quantiles to the windows it trained on: its
80 % interval covers about 80 % of those and less of the future, or, trained briefly, far more.
Split conformal prediction sets the intervals from errors on data the model did not train on,
per horizon step, as a rolling backtest would measure them:

1. A first model with the run's config (and its resolved season, lookback and transform)
   trains on the training part without its last K steps (``data.calibration_size``, default
   2H), into ``calibration/`` in the run folder.
2. It forecasts from every origin inside those K steps. Each forecast step that lands inside
   them (never in the held-out test part) gives a signed error ``e = y - median`` in
   normalised units, per horizon step h and target c: n = K - h errors for step h (0-based).
3. Each step's errors are divided by their root mean square s_h (made non-decreasing in h),
   and the standardised errors of all steps are pooled: n of them. The calibrated quantile at
   level tau of step h is the median plus s_h times the ``ceil((n + 1) tau)``-th smallest
   standardised error for tau > 0.5 (the largest when that rank exceeds n) and the
   ``floor((n + 1) tau)``-th for tau < 0.5 (the smallest when it is 0): the finite-sample
   ranks that make an interval of nominal coverage 1 - alpha cover at least that share of
   exchangeable errors. Each stays on its side of the median. Pooling gives every step the
   ranks of n errors instead of K - h, and s_h its own width.

The run's model then forecasts the median plus those residuals
(:meth:`~rnnkit.models.forecaster.Forecaster.predict`), so an interval's width follows the
errors a model of this config makes out of sample, not the width its quantile heads learnt in
sample. The errors are moved from the first model's scaling to the run's (each scaler is fitted
on its own training part): a difference in normalised units times the first model's scale over
the run's. The residuals are (H, C, Q), and live in ``calibration.json`` beside the weights with
the first model's coverage of the calibration steps, before and after. When the series is too
short for a first model (the training part under lookback + H + K steps), the errors are
instead those of the base forecast the network corrects (seasonal naive), from every origin of
the training part: it fits nothing, so they are out of sample too (``errors_of: base forecast``
in the file). Under ``torchrun`` the run keeps the network's intervals and the file says why.
Calibrating trains the model twice.

The method is a few array operations on the model's own windows, so it is written here rather
than taken from a conformal-prediction library (MAPIE and crepes wrap scikit-learn estimators,
not a torch forecaster's per-step quantiles).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from rnnkit.data.timeseries import SeriesError
from rnnkit.io import write_text_atomic
from rnnkit.models.forecaster import Forecaster
from rnnkit.nn.distributions import distribution_quantiles
from rnnkit.runtime.series import interval_pairs

if TYPE_CHECKING:
    from rnnkit.tasks.forecasting import ForecastingTask

__all__ = [
    "CALIBRATION_FILE",
    "Calibration",
    "base_calibration",
    "base_errors",
    "calibrate",
    "conformal_residuals",
]

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
"""The run folder's file of :class:`Calibration`."""

FOLDER = "calibration"
"""The first model's run folder, inside the run's."""


@dataclass(frozen=True)
class Calibration:
    """A run's interval calibration.

    Attributes:
        levels: the Q quantile levels. residual: (H, C, Q) each calibrated quantile's distance
            from the median in normalised units, or None when calibration was skipped
            (``reason`` says why). size: K, calibration steps. origins: forecasts made on them.
        coverage: for each interval (``"80"``), the share of the calibration steps inside the
            first model's own interval (``before``) and inside the calibrated one (``after``).
        errors_of: ``first model``, or ``base forecast`` for a series too short for one
            (``note`` says why): then the errors are the base forecast's over the training part.
    """

    levels: tuple[float, ...]
    residual: np.ndarray | None
    size: int
    origins: int = 0
    coverage: dict[str, dict[str, float]] = field(default_factory=dict)
    reason: str | None = None
    errors_of: str = "first model"
    note: str | None = None

    def to_json(self) -> str:
        """The text of ``calibration.json``."""
        raw = {
            "method": "conformal",
            "levels": list(self.levels),
            "calibration_size": self.size,
            "origins": self.origins,
            "coverage": self.coverage,
            "skipped": self.reason,
            "errors_of": self.errors_of,
            "note": self.note,
            "residual": None if self.residual is None else self.residual.tolist(),
        }
        return json.dumps(raw, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = CALIBRATION_FILE) -> Calibration:
        """Parse :meth:`to_json`'s text; a bad file is a :class:`SeriesError` naming it."""
        try:
            raw = json.loads(text)
            residual = raw["residual"]
            return cls(
                levels=tuple(float(q) for q in raw["levels"]),
                residual=None if residual is None else np.asarray(residual, dtype=np.float64),
                size=int(raw["calibration_size"]),
                origins=int(raw["origins"]),
                coverage={k: dict(v) for k, v in raw["coverage"].items()},
                reason=raw["skipped"],
                errors_of=str(raw.get("errors_of", "first model")),
                note=raw.get("note"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise SeriesError(
                f"{source}: not a calibration file ({type(err).__name__}: {err})"
            ) from None


def conformal_residuals(
    q: np.ndarray, y: np.ndarray, valid: np.ndarray, levels: tuple[float, ...]
) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """Calibrated distances from the median, per horizon step, from forecasts of calibration data.

    Args:
        q: (W, H, C, Q) the first model's quantiles at ``levels`` (the median among them).
        y: (W, H, C) the true values, in the same units.
        valid: (W, H) which forecast steps count (inside the calibration part).
        levels: the Q levels.

    Returns:
        residuals (H, C, Q) (zero at the median and where a step has no error) and, per
        interval, its coverage of the valid steps by the first model's quantiles (``before``)
        and by the median plus the residuals (``after``).
    """
    W, H, C, Q = q.shape
    median = q[..., list(levels).index(0.5)]  # (W, H, C)
    error = y - median  # (W, H, C)
    residual = np.zeros((H, C, Q))
    for c in range(C):
        spread = _step_spread(error[..., c], valid)  # (H,)
        pooled = np.sort(np.abs(error[..., c] / spread)[valid])  # (n,) standardised sizes
        n = len(pooled)
        if n == 0:
            continue
        for k, tau in enumerate(levels):
            if tau != 0.5:
                cover = abs(1 - 2 * tau)  # the central interval this level bounds
                size = pooled[min(math.ceil((n + 1) * cover), n) - 1]
                residual[:, c, k] = spread * size * (1 if tau > 0.5 else -1)
    mask = np.broadcast_to(valid[..., None], (W, H, C))
    coverage: dict[str, dict[str, float]] = {}
    for percent, i, j in interval_pairs(levels):
        before = (q[..., i] <= y) & (y <= q[..., j])
        after = (residual[None, ..., i] <= error) & (error <= residual[None, ..., j])
        coverage[str(percent)] = {
            "before": float(before[mask].mean()),
            "after": float(after[mask].mean()),
        }
    return residual, coverage


def _step_spread(error: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H,) the root mean square of each horizon step's valid errors (W, H), made
    non-decreasing in h (a forecast further ahead is not more certain); a step without errors
    takes the step before's (1 for the first)."""
    H = error.shape[1]
    spread = np.ones(H)
    for h in range(H):
        e = error[valid[:, h], h]
        rms = float(np.sqrt(np.mean(e * e))) if len(e) else 0.0
        spread[h] = rms if rms > 0 else (spread[h - 1] if h else 1.0)
    return np.maximum.accumulate(spread)


def calibrate(task: ForecastingTask) -> Calibration:
    """Train the first model, score its forecasts of the calibration steps, write and return
    the run's :class:`Calibration` (see the module docstring). Called by ``prepare()``."""
    from rnnkit.training import Trainer

    d, levels = task.data, tuple(task.model_config.quantiles)
    size = d.calibration_size or 2 * d.horizon
    skipped = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        skipped = "calibration does not run under torchrun"
    calibration = None
    if skipped is None:
        sub = _first_task(task, size)
        try:
            sub.split()
        except SeriesError as err:
            skipped = f"the series is too short to calibrate on {size} steps ({err})"
    if skipped is not None and skipped.startswith("the series is too short"):
        calibration = _base_calibration(task, skipped)
    elif skipped is not None:
        logger.warning("forecasting: intervals not calibrated: %s", skipped)
        calibration = Calibration(levels, None, size, reason=skipped)
    else:
        with ExitStack() as stack:
            if task.run_dir is not None:
                folder = task.run_dir / FOLDER
            else:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            logger.info(
                "forecasting: calibrating the intervals: a first model trains without the "
                "last %d training steps, in %s",
                size,
                folder,
            )
            sub.run_dir = folder
            sub.prepare()
            trainer = Trainer(sub, sub.config.train, folder)
            trainer.fit()
            model = trainer.model
            assert isinstance(model, Forecaster)
            calibration = _score(task, sub, model, size)
    if task.run_dir is not None:
        write_text_atomic(task.run_dir / CALIBRATION_FILE, calibration.to_json())
    return calibration


BaseErrors = tuple[np.ndarray, np.ndarray, np.ndarray]
"""The base forecast (W, H, C), the true values (W, H, C) and which steps count (W, H)."""


def base_errors(
    z: np.ndarray, *, lookback: int, season: int, horizon: int, residual: str
) -> BaseErrors:
    """The base forecast the network corrects (``residual``: seasonal naive, naive, or the
    window's level) from every origin of a training part ``z`` (N, C) in scaled units, with the
    true values; steps past the part's end do not count. W may be 0."""
    N, H, m = len(z), horizon, season
    origins = np.arange(max(lookback, m), N)  # (W,)
    h = np.arange(H)
    if len(origins) == 0:
        empty = np.zeros((0, H, z.shape[1]))
        return empty, empty, np.zeros((0, H), dtype=bool)
    if residual == "seasonal_naive":
        base = z[origins[:, None] - m + h % m]  # (W, H, C)
    elif residual == "naive":
        base = np.repeat(z[origins - 1][:, None], H, axis=1)
    else:
        level = np.stack([z[o - m : o].mean(axis=0) for o in origins])  # (W, C)
        base = np.repeat(level[:, None], H, axis=1)
    ahead = origins[:, None] + h[None, :]  # (W, H)
    return base, z[np.minimum(ahead, N - 1)], ahead < N


def base_calibration(
    parts: Sequence[BaseErrors], levels: tuple[float, ...], note: str, skipped: str
) -> Calibration:
    """Residuals from the pooled :func:`base_errors` of one or more training parts: a forecast
    that fits nothing, so its errors are out of sample; ``skipped`` is the reason given when no
    part has an origin."""
    W = sum(len(valid) for _, _, valid in parts)
    if W == 0:
        logger.warning("forecasting: intervals not calibrated: %s", skipped)
        return Calibration(levels, None, 0, reason=skipped)
    base, y, valid = (np.concatenate([p[k] for p in parts]) for k in range(3))
    q = np.repeat(base[..., None], len(levels), axis=-1)  # the base as every quantile
    residual, coverage = conformal_residuals(q, y, valid, levels)
    for value in coverage.values():
        value.pop("before")  # the base has no interval of its own
    logger.info("forecasting: intervals calibrated on the base forecast's errors (%s)", note)
    return Calibration(levels, residual, 0, W, coverage, errors_of="base forecast", note=note)


def _base_calibration(task: ForecastingTask, why: str) -> Calibration:
    """:func:`base_calibration` on the training part, for a series too short for a first
    model."""
    meta, fit_end = task.meta(), task.split().fit_end
    values = task.series().values[:fit_end]  # (N, C)
    scaler = meta.target_scaler
    z = scaler.transform(values) if scaler is not None else values  # the run's scaled units
    errors = base_errors(
        z,
        lookback=task.lookback,
        season=meta.season,
        horizon=task.data.horizon,
        residual=task.model_config.residual,
    )
    return base_calibration([errors], tuple(task.model_config.quantiles), why, why)


def _first_task(task: ForecastingTask, size: int) -> ForecastingTask:
    """The run's task on the training part without its last ``size`` steps, with the run's
    resolved season, lookback and transform and no calibration of its own."""
    d, config = task.data, task.config
    data = d.model_copy(
        update={
            "test_size": d.held_out + size,
            "season": task.season,
            "lookback": task.lookback,
            "transform": task.transform,
        }
    )
    model = task.model_config.model_copy(update={"calibration": "none"})
    train = config.train.model_copy(update={"progress": False})
    sub = type(task)(config.model_copy(update={"data": data, "model": model, "train": train}))
    sub._series = task.series()
    return sub


def _score(
    task: ForecastingTask, sub: ForecastingTask, model: Forecaster, size: int
) -> Calibration:
    """Forecast every calibration origin with the first model and turn its errors into the
    run's residuals."""
    levels = tuple(task.model_config.quantiles)
    fit_end = task.split().fit_end
    origins = np.arange(fit_end - size, fit_end)
    batch = sub.batch(task.series(), origins)
    model.eval()
    with torch.no_grad():
        out = model(batch.history, batch.calendar, batch.past if model.P else None)
        lik = model.config.likelihood
        q = distribution_quantiles(out.params, lik, levels, levels).mean(0)  # (W, H, C, Q)
        y = model.normalize(batch.targets, out.level)  # (W, H, C)
    H = task.data.horizon
    valid = origins[:, None] + np.arange(H)[None, :] < fit_end  # (W, H)
    residual, coverage = conformal_residuals(
        q.double().numpy(), np.nan_to_num(y.double().numpy()), valid, levels
    )
    final = task.meta().target_scaler
    if final is not None:  # into the run's normalised units
        residual = residual * (model.target_scale.double().numpy() / final.scale)[None, :, None]
    return Calibration(levels, residual, size, len(origins), coverage)
