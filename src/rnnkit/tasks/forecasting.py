"""The ``forecasting`` task: series to windows, the model factory, the loss, backtests, and its
:class:`Predictor`; and the public functions :func:`forecast` and :func:`backtest`.

Shapes: W windows, B batch, L lookback, H horizon, C target series, P past covariates, K calendar
feature columns, Q quantile levels.

Training reads ``data.path`` (or the built-in ``data.series``), splits it by time and trains on
windows of the training part (:class:`~rnnkit.data.series_windows.TimeSplit`). :meth:`prepare` fits
what the model needs from that part (frequency, season, calendar features, the scalers) once and
saves it as ``series.json`` in the run folder; :meth:`ForecastingTask.build_model` and loading a
run read only that file and the weights, so a run forecasts after its training data is gone.

The model is :class:`~rnnkit.models.forecaster.Forecaster`; the distributions and the loss are in
:mod:`rnnkit.nn.distributions`, the figures in :mod:`rnnkit.viz.forecast`.

The predictor and the forecast it returns (:class:`ForecastResult`, its table and figure) are in
:mod:`rnnkit.tasks.forecasting_predict`, re-exported here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import torch
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.data.builtin_series import load_builtin
from rnnkit.data.series_inference import default_lookback, infer_transform
from rnnkit.data.series_windows import (
    SeriesMeta,
    TimeSplit,
    fit_scaler,
    series_windows,
    split_by_time,
)
from rnnkit.data.timeseries import (
    SeriesError,
    TimeSeries,
    Transform,
    auto_calendar,
    future_times,
    infer_season,
    read_series,
)
from rnnkit.io import write_text_atomic
from rnnkit.models.forecaster import Forecaster, ForecasterConfig, SeriesForecasters
from rnnkit.nn.distributions import forecast_loss, point_forecast
from rnnkit.tasks.base import Option, Predictor, Report, StepOutput, Task, TaskError
from rnnkit.tasks.forecasting_calibration import CALIBRATION_FILE, Calibration, calibrate
from rnnkit.tasks.forecasting_config import ForecastDataConfig
from rnnkit.tasks.forecasting_panel import PanelRun, panel_of, refuse_panel
from rnnkit.tasks.forecasting_predict import (
    Forecast,
    ForecastPredictor,
    ForecastResult,
    rolling_backtest,
)
from rnnkit.tasks.run import Weights, load_run

__all__ = [
    "Forecast",
    "ForecastDataConfig",
    "ForecastPredictor",
    "ForecastResult",
    "ForecastingTask",
    "backtest",
    "forecast",
]

META_FILE = "series.json"
"""The run folder's file of :class:`~rnnkit.data.series_windows.SeriesMeta`, written by prepare()."""


class ForecastBatch(NamedTuple):
    """Windows of a series: history (B, L, C), past (B, L, P), calendar (B, L + H, K) and the
    true future targets (B, H, C), all float32 and raw (unscaled); on a panel, series (B,) int64
    indexes each window's series (whose values are then scaled by its own scaler)."""

    history: Tensor
    past: Tensor
    calendar: Tensor
    targets: Tensor
    series: Tensor | None = None


@dataclass(frozen=True)
class BacktestRequest:
    """A series to backtest on (what :meth:`ForecastingTask.load_examples` returns)."""

    series: TimeSeries
    folds: int = 1
    step: int | None = None


class ForecastingTask(Task):
    """Forecast the next ``data.horizon`` steps of one or more series from ``data.lookback``
    steps, trained on windows of the training part (split by time, scaler fitted on it only)."""

    name = "forecasting"
    DataConfig: ClassVar[type[FrozenConfig]] = ForecastDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = ForecasterConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "mae")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("loss", "min")
    evaluate_options: ClassVar[tuple[Option, ...]] = (
        Option("folds", "--folds", int, "rolling-origin backtest folds (default 1)", "N"),
    )
    predict_options: ClassVar[tuple[Option, ...]] = (
        Option("data", "--data", Path, "the history file, as the INPUT argument", "FILE"),
        Option("horizon", "--horizon", int, "steps to forecast (default: the trained)", "H"),
        Option("output", "--output", Path, "write the forecast here instead of printing", "CSV"),
        Option("plot", "--plot", Path, "draw history, forecast and intervals", "PNG"),
        Option("actuals", "--actuals", Path, "known future values for the plot", "FILE"),
    )
    input_option: ClassVar[str | None] = "data"
    predictor: ClassVar[type[Predictor[Any, Any]]] = ForecastPredictor
    train_defaults: ClassVar[Mapping[str, Any]] = {
        "batch_size": 128,
        "lr": 0.003,
        "epochs": 400,  # the budget grows with the series: 400 passes over its windows ...
        "max_time_s": 300.0,  # ... or 5 minutes, whichever ends first
    }

    _series: TimeSeries | None = None
    _meta: SeriesMeta | None = None
    _calibration: Calibration | None = None
    _cache: dict[str, ForecastBatch] | None = None
    _panel: PanelRun | Literal[False] | None = None  # resolved by panel_of()

    @property
    def data(self) -> ForecastDataConfig:
        assert isinstance(self.config.data, ForecastDataConfig)
        return self.config.data

    @property
    def model_config(self) -> ForecasterConfig:
        assert isinstance(self.config.model, ForecasterConfig)
        return self.config.model

    # ------------------------------------------------------------------ data

    def read(
        self, source: str | Path | pd.DataFrame, freq: str | None = None, name: str = "data"
    ) -> TimeSeries:
        """Read and check a series with this config's columns from a file or a DataFrame
        (``name`` is used in messages about a DataFrame)."""
        d = self.data
        return read_series(
            source,
            time_column=d.time_column,
            targets=d.targets,
            past_covariates=d.past_covariates,
            future_covariates=d.future_covariates,
            freq=freq or d.freq,
            fill_gaps=d.fill_gaps,
            transform=self._read_transform(),
            name=name,
            date_format=d.date_format,
            dayfirst=d.dayfirst,
        )

    def _read_transform(self) -> Transform:
        """The transform whose values :meth:`read` checks: the run's; ``none`` while ``auto``
        has not chosen yet (prepare() then checks the training part)."""
        unknown = self.run_dir is None or not (self.run_dir / META_FILE).is_file()
        if self.data.transform == "auto" and self._meta is None and unknown:
            return "none"
        return self.transform

    def series(self) -> TimeSeries:
        """The training series (``data.path`` or ``data.series``), read once (training only)."""
        if self._series is None:
            d = self.data
            if d.series is not None:
                frame = load_builtin(d.series).rename(
                    columns={"time": d.time_column, "value": d.targets[0]}
                )
                self._series = self.read(frame, name=d.series)
            else:
                assert d.path is not None
                self._series = self.read(d.path)
        return self._series

    def split(self) -> TimeSplit:
        """The split by time of the training series."""
        d = self.data
        return split_by_time(
            len(self.series()),
            lookback=self.lookback,
            horizon=d.horizon,
            valid_size=d.valid_size,
            test_size=d.held_out,
        )

    def prepare(self) -> None:
        """Resolve the series' facts and fit the scalers on the training part only; save them
        as ``series.json`` in the run folder (in memory only when there is none)."""
        if (panel := panel_of(self)) is not None:
            return panel.prepare()
        d = self.data
        series, split = self.series(), self.split()
        train = slice(0, split.fit_end)
        season = self.season
        transform = d.transform
        if transform == "auto":
            transform = infer_transform(series.values[train], season)
        self._meta = SeriesMeta(
            freq=series.freq,
            season=season,
            calendar=auto_calendar(series.freq) if d.calendar == "auto" else tuple(d.calendar),
            targets=d.targets,
            past_covariates=d.past_covariates,
            train_end=str(series.time[split.fit_end - 1]),
            target_scaler=fit_scaler(series.values[train], d.scaler, transform, "targets"),
            past_scaler=fit_scaler(series.past[train], d.scaler, "none", "past covariates"),
            future_covariates=d.future_covariates,
            future_scaler=fit_scaler(series.future[train], d.scaler, "none", "future covariates")
            if d.future_covariates
            else None,
            lookback=self.lookback,
        )
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.run_dir / META_FILE, self._meta.to_json())
        if self.model_config.calibration == "conformal":
            self._calibration = calibrate(self)

    @property
    def season(self) -> int:
        """m: ``data.season``, else the run's, else inferred from the series' frequency."""
        if self._meta is not None:
            return self._meta.season
        return self.data.season or infer_season(self.series().freq)

    @property
    def lookback(self) -> int:
        """L: ``data.lookback``, else the run's, else :func:`default_lookback` of the season,
        the horizon and the training part's length."""
        d = self.data
        if d.lookback is not None:
            return d.lookback
        if self._meta is None and self.run_dir is not None and (self.run_dir / META_FILE).is_file():
            self.meta()
        if self._meta is not None and self._meta.lookback is not None:
            return self._meta.lookback
        steps = len(self.series()) - d.held_out - d.valid_size
        return default_lookback(self.season, d.horizon, steps)

    @property
    def transform(self) -> Transform:
        """``log`` or ``none``: ``data.transform``, or what ``auto`` chose for the run."""
        if self.data.transform != "auto":
            return self.data.transform
        scaler = self.meta().target_scaler
        return "log" if scaler is not None and scaler.log else "none"

    def meta(self) -> SeriesMeta:
        """The run's series facts: from :meth:`prepare`, or read from the run's ``series.json``."""
        if self._meta is None:
            path = None if self.run_dir is None else self.run_dir / META_FILE
            if path is None or not path.is_file():
                where = "no run folder" if path is None else f"{path} is missing"
                raise TaskError(
                    f"forecasting: {where}; prepare() fits the series facts at training time"
                )
            self._meta = SeriesMeta.from_json(path.read_text(encoding="utf-8"), str(path))
        return self._meta

    def batch(self, series: TimeSeries, origins: np.ndarray) -> ForecastBatch:
        """Windows of ``series`` at ``origins`` (W,) (index of each window's first forecast
        step); steps past the series' end get calendar features and NaN targets."""
        d = self.data
        meta = self.meta()
        w = series_windows(
            series, origins, self.lookback, d.horizon, meta.calendar, meta.future_scaler
        )
        return ForecastBatch(*(torch.from_numpy(a) for a in w))

    def _windows(self, part: Literal["train", "valid", "test"]) -> ForecastBatch:
        if self._cache is None:
            self._cache = {}
        if part not in self._cache and (panel := panel_of(self)) is not None:
            self._cache[part] = panel.windows(part)
        if part not in self._cache:
            split = self.split()
            origins = {
                "train": split.train_origins,
                "valid": split.valid_origins,
                "test": split.test_origins,
            }[part]()
            if part == "valid" and len(origins) == 0:
                origins = split.train_origins()  # valid_size 0: validate in-sample
            self._cache[part] = self.batch(self.series(), origins)
        return self._cache[part]

    def _chunks(self, batch: ForecastBatch, order: Tensor) -> Iterator[ForecastBatch]:
        size = self.config.train.batch_size
        for start in range(0, len(order), size):
            index = order[start : start + size]
            series = None if batch.series is None else batch.series[index]
            h, p, c, t = (t[index] for t in batch[:4])
            yield ForecastBatch(h, p, c, t, series)

    def train_batches(self, epoch: int) -> Iterator[ForecastBatch]:
        batch = self._windows("train")
        generator = _shuffle_generator(self.config.train.seed, epoch)
        return self._chunks(batch, torch.randperm(len(batch.history), generator=generator))

    def valid_batches(self) -> list[ForecastBatch]:
        batch = self._windows("valid")
        return list(self._chunks(batch, torch.arange(len(batch.history))))

    def test_batches(self) -> list[ForecastBatch]:
        """Non-overlapping windows of the held-out test part (empty when test_size < horizon)."""
        batch = self._windows("test")
        return list(self._chunks(batch, torch.arange(len(batch.history))))

    # ------------------------------------------------------------------ model and loss

    def build_model(self) -> Forecaster | SeriesForecasters:
        """A fresh :class:`Forecaster` for the config and ``series.json`` (no data is read); a
        panel's is :meth:`PanelRun.build_model`'s."""
        if (panel := panel_of(self)) is not None:
            return panel.build_model()
        d, meta = self.data, self.meta()
        model = Forecaster(
            self.model_config,
            targets=len(d.targets),
            past=len(d.past_covariates),
            calendar=2 * len(meta.calendar) + len(meta.future_covariates),
            lookback=self.lookback,
            horizon=d.horizon,
            season=meta.season,
            log=self.transform == "log",
        )
        if meta.target_scaler is not None:  # None in older runs: the weights carry the buffers
            model.set_scaling(meta.target_scaler, meta.past_scaler)
        calibration = self.calibration()
        if calibration is not None and calibration.residual is not None:
            model.set_interval_residual(torch.from_numpy(calibration.residual).float())
        return model

    def calibration(self) -> Calibration | None:
        """The run's interval calibration (``calibration.json``), None without one."""
        if self._calibration is None and self.run_dir is not None:
            path = self.run_dir / CALIBRATION_FILE
            if path.is_file():
                self._calibration = Calibration.from_json(path.read_text(encoding="utf-8"))
        return self._calibration

    def step(self, model: nn.Module, batch: ForecastBatch, state: Any = None) -> StepOutput:
        """Loss (pinball or NLL, normalised units, mean over members) and the point MAE."""
        if batch.series is not None:
            return self._panel_step(model, batch)
        assert isinstance(model, Forecaster)
        teacher = batch.targets if model.training else None
        out = model(batch.history, batch.calendar, batch.past, targets=teacher)
        target = model.normalize(batch.targets, out.level)  # (B, H, C)
        likelihood = self.model_config.likelihood
        loss = forecast_loss(out.params, target, likelihood, model.levels)
        point = point_forecast(out.params.detach(), likelihood, model.levels).mean(0)
        return StepOutput(
            loss=loss,
            metrics={"mae": (point - target).abs().mean()},
            num_tokens=int(target.numel()),
        )

    # ------------------------------------------------------------------ forecasting

    def _panel_step(self, model: nn.Module, batch: ForecastBatch) -> StepOutput:
        panel = panel_of(self)
        assert panel is not None
        return panel.step(model, batch)

    def forecast_from(
        self,
        model: Forecaster,
        series: TimeSeries,
        horizon: int | None = None,
        origin: int | None = None,
    ) -> ForecastResult:
        """Forecast ``horizon`` steps (default ``data.horizon``) after ``series[:origin]``
        (default: after its end)."""
        d = self.data
        horizon = d.horizon if horizon is None else horizon
        if horizon > d.horizon:
            raise ValueError(
                f"horizon {horizon} is longer than the model was trained for "
                f"(data.horizon = {d.horizon})"
            )
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        origin = len(series) if origin is None else origin
        L = self.lookback
        if origin < L:
            raise SeriesError(
                f"{series.source}: too few rows: {origin} rows of history, the model reads "
                f"lookback {L}"
            )
        batch = self.batch(series, np.array([origin]))
        model.eval()
        with torch.no_grad():
            point, quantiles, attention = model.predict(
                batch.history, batch.calendar, batch.past if model.P else None
            )
        return ForecastResult(
            time=future_times(series.time[origin - 1], self.meta().freq, horizon),
            point=point[0, :horizon].double().numpy(),  # (H, C)
            quantiles=quantiles[0, :horizon].double().numpy(),  # (H, C, Q)
            levels=model.levels,
            targets=d.targets,
            time_column=d.time_column,
            attention=None if attention is None else attention[0, :horizon].double().numpy(),
            lookback_time=series.time[origin - L : origin],
        )

    def backtest_series(
        self,
        model: Forecaster,
        series: TimeSeries,
        folds: int = 1,
        step: int | None = None,
        baselines: Sequence[str] | None = None,
    ) -> dict[str, float]:
        """Rolling-origin backtest of a trained model (no refitting) next to the baselines.

        The last fold forecasts the final ``data.horizon`` steps of ``series``; each earlier one
        starts ``step`` (default: the horizon) steps before. Every metric is averaged over the
        folds; baselines see the same history and are reported as ``<baseline>.<metric>``.
        ``folds`` and ``horizon`` are ints (``"folds": 3`` in the JSON), the metrics floats.
        """
        return rolling_backtest(
            series,
            lambda origin: self.forecast_from(model, series, self.data.horizon, origin),
            horizon=self.data.horizon,
            season=self.meta().season,
            lookback=self.lookback,
            levels=model.levels,
            folds=folds,
            step=step,
            baselines=baselines,
        )

    def write_forecast(
        self,
        history: TimeSeries,
        result: ForecastResult,
        *,
        output: Path | None = None,
        plot: Path | None = None,
        actuals: str | Path | pd.DataFrame | None = None,
    ) -> list[Path]:
        """Write ``result`` as CSV to ``output`` and/or its figure to ``plot`` (atomically),
        with ``actuals`` (a table of true values) in the figure; returns the files written."""
        files = []
        if output is not None:
            write_text_atomic(output, result.to_frame().to_csv(index=False))
            files.append(output)
        if plot is not None:
            truth = None if actuals is None else self.read(actuals, freq=self.meta().freq)
            files.append(result.plot(plot, history, truth))
        return files

    # ------------------------------------------------------------------ the CLI's verbs

    def load_examples(self, path: Path) -> list[BacktestRequest]:
        return [BacktestRequest(self.read(path, freq=self.meta().freq))]

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Validation loss on windows, or a backtest with baselines on :class:`BacktestRequest`."""
        items = list(batches)
        if items and all(isinstance(b, BacktestRequest) for b in items):
            assert isinstance(model, Forecaster)
            summaries = [self.backtest_series(model, b.series, b.folds, b.step) for b in items]
            return {k: _mean(s[k] for s in summaries) for k in summaries[0]}
        return super().evaluate(model, items)

    def evaluate_file(self, model: nn.Module, path: Path, options: Mapping[str, Any]) -> Report:
        """``rnnkit evaluate``: the backtest of ``path`` with ``--folds`` folds (default 1); a
        panel's, per series and overall, is :meth:`PanelRun.evaluate_file`'s."""
        if (panel := panel_of(self)) is not None:
            return panel.evaluate_file(model, path, options)
        assert isinstance(model, Forecaster)
        folds = options.get("folds")
        series = self.read(path, freq=self.meta().freq)
        return Report(self.backtest_series(model, series, 1 if folds is None else folds))


def _mean(values: Iterable[float]) -> float:
    """The mean of ``values``; an int when they are equal ints (fold and horizon counts)."""
    seen = list(values)
    if all(isinstance(v, int) for v in seen) and len(set(seen)) == 1:
        return seen[0]
    return float(np.mean(seen))


def _shuffle_generator(seed: int, epoch: int) -> torch.Generator:
    """The training order's generator, seeded from (seed, epoch) alone (as the generated tasks'
    ``epoch_generator(seed, epoch, "train")``), so a resumed run sees the same batches."""
    digest = hashlib.sha256(f"{seed}:{epoch}:train".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


# ============================================================================ public functions


def _load(run_dir: str | Path, weights: Weights) -> tuple[ForecastingTask, Forecaster]:
    run = load_run(Path(run_dir), weights)
    if not isinstance(run.task, ForecastingTask):
        raise TaskError(f"{run_dir}: not a forecasting run (task '{run.config.task}')")
    refuse_panel(run.task, "rnnkit.tasks.forecasting.forecast() / backtest()")
    assert isinstance(run.model, Forecaster)
    return run.task, run.model


def forecast(
    run_dir: str | Path,
    history: str | Path | pd.DataFrame,
    horizon: int | None = None,
    *,
    output: str | Path | None = None,
    plot: str | Path | None = None,
    actuals: str | Path | pd.DataFrame | None = None,
    weights: Weights = "best",
) -> pd.DataFrame:
    """Forecast the ``horizon`` steps after the end of ``history`` with a trained run.

    Args:
        run_dir: the run folder.
        history: CSV/Parquet file or DataFrame with the run's time, target and covariate
            columns; it may be longer than the training data (the model reads its last
            ``data.lookback`` rows).
        horizon: steps to forecast, at most the trained ``data.horizon`` (the default).
        output: write the forecast table there as CSV (atomically).
        plot: write a PNG of history, forecast, intervals (and attention weights) there.
        actuals: optional table of true values to draw in the plot where they overlap.
        weights: ``best`` (on validation) or ``final``.

    Returns:
        The forecast table (H rows, see :meth:`ForecastResult.to_frame`); timestamps continue
        the history's frequency.
    """
    task, model = _load(run_dir, weights)
    series = task.read(history, freq=task.meta().freq)
    result = task.forecast_from(model, series, horizon)
    task.write_forecast(
        series,
        result,
        output=None if output is None else Path(output),
        plot=None if plot is None else Path(plot),
        actuals=actuals,
    )
    return result.to_frame()


def backtest(
    run_dir: str | Path,
    data: str | Path | pd.DataFrame,
    folds: int = 1,
    *,
    step: int | None = None,
    baselines: Sequence[str] | None = None,
    weights: Weights = "best",
) -> dict[str, float]:
    """Rolling-origin backtest of a trained run on a series, with the baselines side by side.

    See :meth:`ForecastingTask.backtest_series`; keys are ``folds``, ``horizon``, ``mae``,
    ``rmse``, ``smape``, ``mase``, ``pinball``, ``coverage_<p>`` and ``<baseline>.<metric>`` for
    ``naive``, ``seasonal_naive``, ``drift`` and ``ets`` (when statsmodels is installed).
    """
    task, model = _load(run_dir, weights)
    series = task.read(data, freq=task.meta().freq)
    return task.backtest_series(model, series, folds, step, baselines)
