"""Many series in one run (a panel, ``data.layout: long | wide``): one model trained on the windows
of every series, each series scaled on its own (ES-RNN style), and forecasts and backtests per
series.

Shapes: S series, W windows, B batch, L lookback, H horizon, Q quantile levels; every series of a
panel has one target (C = 1).

Training (:meth:`PanelRun.prepare`, :meth:`PanelRun.windows`): each series keeps its own split by
time (``data.test_size`` and ``data.valid_size`` steps from *its* end); its scaler is fitted on
*its* training part only, with the run's transform. The model is built with identity scaling
(loc 0, scale 1, no log) and is fed the values transformed and scaled by their series' scaler; its
forecasts are mapped back per series. Windows of every series' training part are pooled into the
batches, each with its series index (``ForecastBatch.series``, int64), which routes it to its own
:class:`~rnnkit.models.forecaster.Forecaster` when ``model.global`` is false
(:class:`~rnnkit.models.forecaster.SeriesForecasters`).

``data.transform: auto`` on a panel chooses ``log`` when every series' training part is positive
and at least half of the series qualify by
:func:`~rnnkit.data.series_inference.infer_transform`, else ``none``. Past and future covariates
are scaled by one scaler fitted on the training parts of all the series.

The panel's facts (layout, id/time/value column names, ids, per-series scalers, transform) are
saved as ``panel.json`` in the run folder beside ``series.json``; a loaded run reads them only, so
it forecasts after its training file is gone. With ``model.calibration: conformal`` the
intervals are calibrated on the errors of the base forecast the network corrects (seasonal naive,
naive or the window's level), from every origin of every series' training part, in each series'
own scaled units, pooled over the series (the path
:mod:`rnnkit.tasks.forecasting_calibration` takes for a series too short for a first model; no
first model is trained on panels).

Not yet for panels: the Python functions :func:`~rnnkit.tasks.forecasting.forecast` and
:func:`~rnnkit.tasks.forecasting.backtest`, JSON input (``rnnkit serve``) and ONNX export refuse
a panel run with a one-line error; ``rnnkit predict`` and ``rnnkit evaluate`` serve it.

Length: over 600 lines, as one house for a panel run's facts, reading, windows, model, base
calibration, forecasts and backtests, which all walk the same per-series scalers and splits;
the file format (:class:`PanelFacts`) and the output table are the pieces that would move first.

A series id that was not in training is forecast, with the global model, after a scaler fitted on
its own given history (the whole of it, with the run's transform); with ``model.global: false``
it has no model, which is an error naming the id and the known ids.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import torch
from torch import nn

from rnnkit.data.panel import Layout, Panel, read_panel
from rnnkit.data.series_inference import default_lookback, infer_transform
from rnnkit.data.series_windows import (
    ScalerStats,
    SeriesMeta,
    TimeSplit,
    fit_scaler,
    split_by_time,
)
from rnnkit.data.timeseries import (
    SeriesError,
    TimeSeries,
    Transform,
    auto_calendar,
    infer_season,
    read_table,
)
from rnnkit.io import write_text_atomic
from rnnkit.models.forecaster import Forecaster, SeriesForecasters
from rnnkit.nn.distributions import forecast_loss, point_forecast
from rnnkit.tasks.base import Report, StepOutput, TaskError
from rnnkit.tasks.forecasting_calibration import (
    CALIBRATION_FILE,
    Calibration,
    base_calibration,
    base_errors,
)
from rnnkit.tasks.forecasting_predict import Forecast, ForecastResult, rolling_backtest

if TYPE_CHECKING:
    from rnnkit.tasks.forecasting import ForecastBatch, ForecastingTask

__all__ = [
    "PANEL_FILE",
    "PanelFacts",
    "PanelResult",
    "PanelRun",
    "panel_of",
    "predict_panel",
]

PANEL_FILE = "panel.json"
"""The run folder's file of :class:`PanelFacts`, written by :meth:`PanelRun.prepare`."""

SKIPPED = "no series of the panel is long enough for a base forecast to calibrate on"
"""``calibration.json``'s ``skipped`` reason on a panel run without one calibration origin."""

BASE_NOTE = "a panel: the base forecast's errors over every series' training part, pooled"
"""``calibration.json``'s ``note`` on a calibrated panel run."""

NIXTLA_COLUMNS = {"time": "ds", "value": "y"}
"""The long layout's default column names, used when the configured defaults are absent."""


@dataclass(frozen=True)
class PanelFacts:
    """What a panel run remembers of its series (``panel.json``).

    Attributes:
        layout: ``long`` or ``wide``. id_column, time_column, value_column: the column names.
        ids: the S series' ids in training order. scalers: their S target scalers (C = 1 each),
            fitted on their training parts. transform: ``log`` or ``none``. scaler: the scaler
            kind (for series not in training). global_model: one model (true) or one per series.
    """

    layout: Layout
    id_column: str
    time_column: str
    value_column: str
    ids: tuple[str, ...]
    scalers: tuple[ScalerStats, ...]
    transform: Transform
    scaler: str
    global_model: bool

    def to_json(self) -> str:
        """The text of ``panel.json``."""
        raw = {
            "layout": self.layout,
            "id_column": self.id_column,
            "time_column": self.time_column,
            "value_column": self.value_column,
            "transform": self.transform,
            "scaler": self.scaler,
            "global": self.global_model,
            "ids": list(self.ids),
            "scalers": [s.to_dict() for s in self.scalers],
        }
        return json.dumps(raw, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = PANEL_FILE) -> PanelFacts:
        """Parse :meth:`to_json`'s text; a bad file is a :class:`SeriesError` naming it."""
        try:
            raw = json.loads(text)
            return cls(
                layout=raw["layout"],
                id_column=str(raw["id_column"]),
                time_column=str(raw["time_column"]),
                value_column=str(raw["value_column"]),
                ids=tuple(str(i) for i in raw["ids"]),
                scalers=tuple(ScalerStats.from_dict(s) for s in raw["scalers"]),
                transform=raw["transform"],
                scaler=str(raw["scaler"]),
                global_model=bool(raw["global"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise SeriesError(
                f"{source}: not a valid panel file ({type(err).__name__}: {err})"
            ) from None


@dataclass(frozen=True)
class PanelResult(ForecastResult):
    """Forecasts of S series: the fields of the first one's :class:`ForecastResult` (so a
    :class:`Forecast` carries it), and one long table of all of them (:meth:`to_frame`).

    Attributes:
        ids: the S ids. results: their S forecasts (H steps, C = 1). id_column: its name.
    """

    ids: tuple[str, ...] = ()
    results: tuple[ForecastResult, ...] = ()
    id_column: str = "unique_id"

    def to_frame(self) -> pd.DataFrame:
        """S * H rows: the id column, then the columns of a one-series forecast."""
        frames = []
        for i, result in zip(self.ids, self.results, strict=True):
            frame = result.to_frame()
            frame.insert(0, self.id_column, i)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def refuse_panel(task: ForecastingTask, what: str) -> None:
    """Raise a one-line :class:`TaskError` when ``task`` is a panel run, which ``what`` does
    not handle yet."""
    if panel_of(task) is not None:
        raise TaskError(
            f"{what} does not take a panel run yet; use rnnkit predict RUN FILE or rnnkit "
            "evaluate RUN --data FILE"
        )


def panel_of(task: ForecastingTask) -> PanelRun | None:
    """The task's :class:`PanelRun`, or None for a one-series run (resolved once).

    A run folder with ``series.json`` is a panel when it has ``panel.json``; before training,
    ``data.layout`` decides (``auto``: ``long`` when the file's header has ``data.id_column``).
    """
    if task._panel is None:
        task._panel = _resolve(task) or False
    return task._panel or None


def _resolve(task: ForecastingTask) -> PanelRun | None:
    run = task.run_dir
    if run is not None and (run / "series.json").is_file():
        path = run / PANEL_FILE
        if not path.is_file():
            return None
        facts = PanelFacts.from_json(path.read_text(encoding="utf-8"), str(path))
        return PanelRun(task, facts.layout, facts.time_column, facts.value_column, facts)
    d = task.data
    if d.layout in ("long", "wide") and d.path is None:
        raise TaskError(
            f"data.layout '{d.layout}' reads a table of many series from data.path; the "
            f"built-in series '{d.series}' is one series (drop data.layout)"
        )
    if d.layout == "single" or d.path is None:
        return None
    header = _header(d.path)
    layout = d.layout
    if layout == "auto":
        if header is None or d.id_column not in header:
            return None
        layout = "long"
    if len(d.targets) != 1:
        raise TaskError(f"{d.path}: a panel's series have one target each, got {list(d.targets)}")
    time, value = d.time_column, d.targets[0]
    if layout == "long" and header is not None:
        if time == "time" and time not in header and NIXTLA_COLUMNS[time] in header:
            time = NIXTLA_COLUMNS[time]
        if value == "value" and value not in header and NIXTLA_COLUMNS[value] in header:
            value = NIXTLA_COLUMNS[value]
    return PanelRun(task, layout, time, value)


def _header(path: str) -> list[str] | None:
    """The column names of a CSV/Parquet file, or None when it cannot be read (then the
    one-series reader reports the problem)."""
    try:
        if Path(path).suffix.lower() == ".csv":
            return [str(c).strip() for c in pd.read_csv(path, nrows=0).columns]
        return [str(c) for c in read_table(path).columns]
    except (OSError, ValueError, SeriesError):
        return None


def _scaled(series: TimeSeries, scaler: ScalerStats) -> TimeSeries:
    """``series`` with its values (N, 1) transformed and scaled by ``scaler``."""
    return replace(series, values=scaler.transform(series.values))


class PanelRun:
    """A panel run's data side: reading, per-series splits and scalers, windows, the model, and
    forecasts and backtests per series.

    Args:
        task: the forecasting task. layout: ``long`` or ``wide``. time_column, value_column: the
            resolved column names. facts: the saved :class:`PanelFacts` (None before prepare()).
    """

    def __init__(
        self,
        task: ForecastingTask,
        layout: Layout,
        time_column: str,
        value_column: str,
        facts: PanelFacts | None = None,
    ) -> None:
        self.task, self.layout = task, layout
        self.time_column, self.value_column = time_column, value_column
        self._facts = facts
        self._train: Panel | None = None
        self._splits: list[TimeSplit] | None = None

    # ------------------------------------------------------------------ data

    @property
    def facts(self) -> PanelFacts:
        """The run's panel facts (from :meth:`prepare` or ``panel.json``)."""
        if self._facts is None:
            raise TaskError("forecasting: the panel's facts are fitted by prepare()")
        return self._facts

    def read(self, source: str | Path | pd.DataFrame, name: str = "data") -> Panel:
        """Read a panel in the run's layout and columns (one-line :class:`TaskError`)."""
        d = self.task.data
        id_column = d.id_column if self._facts is None else self._facts.id_column
        freq = d.freq if self.task._meta is None else self.task._meta.freq
        try:
            return read_panel(
                source,
                layout=self.layout,
                time_column=self.time_column,
                value_column=self.value_column,
                id_column=id_column,
                series_columns=d.series_columns,
                past_covariates=d.past_covariates,
                future_covariates=d.future_covariates,
                freq=freq,
                fill_gaps=d.fill_gaps,
                date_format=d.date_format,
                dayfirst=d.dayfirst,
                name=name,
            )
        except SeriesError as err:
            raise TaskError(str(err)) from None

    def training_panel(self) -> Panel:
        """The training file's panel, read once."""
        if self._train is None:
            assert self.task.data.path is not None
            self._train = self.read(self.task.data.path)
        return self._train

    def splits(self) -> list[TimeSplit]:
        """Each training series' split by time (S splits); a too short series names its id."""
        if self._splits is None:
            d, L = self.task.data, self.task.lookback
            panel, splits = self.training_panel(), []
            for i, series in panel:
                need = L + d.horizon + d.held_out + d.valid_size
                if len(series) < need:
                    raise TaskError(
                        f"{panel.source}: series '{i}' has {len(series)} steps, fewer than "
                        f"lookback {L} + horizon {d.horizon} + test_size {d.held_out} + "
                        f"valid_size {d.valid_size} = {need}"
                    )
                splits.append(
                    split_by_time(
                        len(series),
                        lookback=L,
                        horizon=d.horizon,
                        valid_size=d.valid_size,
                        test_size=d.held_out,
                    )
                )
            self._splits = splits
        return self._splits

    def prepare(self) -> None:
        """Fit the season, lookback, transform and per-series scalers on each series' training
        part; save ``series.json``, ``panel.json`` (and a skipped ``calibration.json``)."""
        task, d = self.task, self.task.data
        panel = self.training_panel()
        season = d.season or infer_season(panel.freq)
        shortest = min(len(s) for s in panel.series) - d.held_out - d.valid_size
        lookback = d.lookback or default_lookback(season, d.horizon, shortest)
        identity = ScalerStats(np.zeros(1), np.ones(1), False)
        task._meta = SeriesMeta(
            freq=panel.freq,
            season=season,
            calendar=auto_calendar(panel.freq) if d.calendar == "auto" else tuple(d.calendar),
            targets=(self.value_column,),
            past_covariates=d.past_covariates,
            train_end="",
            target_scaler=identity,
            lookback=lookback,
            future_covariates=d.future_covariates,
        )
        splits = self.splits()
        parts = [s.values[: p.fit_end] for s, p in zip(panel.series, splits, strict=True)]
        transform: Transform = "none" if d.transform == "auto" else d.transform
        if d.transform == "auto" and all((v > 0).all() for v in parts):
            chosen = sum(infer_transform(v, season) == "log" for v in parts)
            transform = "log" if 2 * chosen >= len(parts) else "none"
        try:
            scalers = tuple(
                fit_scaler(v, d.scaler, transform, f"targets of series '{i}'")
                for i, v in zip(panel.ids, parts, strict=True)
            )
        except SeriesError as err:
            raise TaskError(f"{panel.source}: {err}") from None
        past = np.concatenate(
            [s.past[: p.fit_end] for s, p in zip(panel.series, splits, strict=True)]
        )
        future = np.concatenate(
            [s.future[: p.fit_end] for s, p in zip(panel.series, splits, strict=True)]
        )
        ends = [s.time[p.fit_end - 1] for s, p in zip(panel.series, splits, strict=True)]
        task._meta = replace(
            task._meta,
            train_end=str(max(ends)),
            past_scaler=fit_scaler(past, d.scaler, "none", "past covariates"),
            future_scaler=fit_scaler(future, d.scaler, "none", "future covariates")
            if d.future_covariates
            else None,
        )
        self._facts = PanelFacts(
            layout=self.layout,
            id_column=d.id_column,
            time_column=self.time_column,
            value_column=self.value_column,
            ids=panel.ids,
            scalers=scalers,
            transform=transform,
            scaler=d.scaler,
            global_model=task.model_config.global_model,
        )
        calibration = None
        if task.model_config.calibration == "conformal":
            calibration = self.base_calibration()
            task._calibration = calibration
        if task.run_dir is not None:
            task.run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(task.run_dir / "series.json", task._meta.to_json())
            write_text_atomic(task.run_dir / PANEL_FILE, self._facts.to_json())
            if calibration is not None:
                write_text_atomic(task.run_dir / CALIBRATION_FILE, calibration.to_json())

    def base_calibration(self) -> Calibration:
        """Interval residuals (H, 1, Q) from the base forecast's errors at every origin of every
        series' training part, in its own scaled units, pooled over the series (W windows in all,
        :func:`~rnnkit.tasks.forecasting_calibration.conformal_residuals`)."""
        task, panel = self.task, self.training_panel()
        parts = [
            base_errors(
                scaler.transform(series.values[: split.fit_end]),  # (N, 1) its scaled units
                lookback=task.lookback,
                season=task.meta().season,
                horizon=task.data.horizon,
                residual=task.model_config.residual,
            )
            for series, split, scaler in zip(
                panel.series, self.splits(), self.facts.scalers, strict=True
            )
        ]
        levels = tuple(task.model_config.quantiles)
        return base_calibration(parts, levels, BASE_NOTE, SKIPPED)

    def windows(self, part: Literal["train", "valid", "test"]) -> ForecastBatch:
        """The windows of ``part`` of every series, pooled in series order, each series' values
        scaled by its own scaler: history (W, L, 1), ..., series (W,) int64."""
        task, panel = self.task, self.training_panel()
        splits, scalers = self.splits(), self.facts.scalers

        def origins(split: TimeSplit, name: str) -> np.ndarray:
            return {
                "train": split.train_origins,
                "valid": split.valid_origins,
                "test": split.test_origins,
            }[name]()

        name = part
        if part == "valid" and all(len(origins(s, "valid")) == 0 for s in splits):
            name = "train"  # valid_size 0: validate in-sample
        batches, index = [], []
        for k, (series, split) in enumerate(zip(panel.series, splits, strict=True)):
            at = origins(split, name)
            batches.append(task.batch(_scaled(series, scalers[k]), at))
            index.append(torch.full((len(at),), k, dtype=torch.int64))
        from rnnkit.tasks.forecasting import ForecastBatch

        return ForecastBatch(
            torch.cat([b.history for b in batches]),
            torch.cat([b.past for b in batches]),
            torch.cat([b.calendar for b in batches]),
            torch.cat([b.targets for b in batches]),
            torch.cat(index),
        )

    # ------------------------------------------------------------------ model

    def build_model(self) -> Forecaster | SeriesForecasters:
        """A fresh global :class:`Forecaster` with identity target scaling, or (``model.global:
        false``) :class:`SeriesForecasters` of one per series."""
        task, meta = self.task, self.task.meta()
        facts = self.facts

        def one() -> Forecaster:
            model = Forecaster(
                task.model_config,
                targets=1,
                past=len(meta.past_covariates),
                calendar=2 * len(meta.calendar) + len(meta.future_covariates),
                lookback=task.lookback,
                horizon=task.data.horizon,
                season=meta.season,
                log=False,
            )
            assert meta.target_scaler is not None
            model.set_scaling(meta.target_scaler, meta.past_scaler)
            return model

        models = [one()] if facts.global_model else [one() for _ in facts.ids]
        calibration = task.calibration()
        if calibration is not None and calibration.residual is not None:
            residual = torch.from_numpy(calibration.residual).float()  # (H, 1, Q)
            for model in models:
                model.set_interval_residual(residual)
        return models[0] if facts.global_model else SeriesForecasters(models)

    def step(self, model: nn.Module, batch: ForecastBatch) -> StepOutput:
        """As :meth:`ForecastingTask.step` (normalised units), each window routed to its
        series' model by ``batch.series`` (B,) when the model is one per series."""
        teacher = batch.targets if model.training else None
        if isinstance(model, SeriesForecasters):
            out = model(batch.history, batch.calendar, batch.past, teacher, series=batch.series)
        else:
            assert isinstance(model, Forecaster)
            out = model(batch.history, batch.calendar, batch.past, targets=teacher)
        target = model.normalize(batch.targets, out.level)  # (B, H, 1)
        likelihood = self.task.model_config.likelihood
        loss = forecast_loss(out.params, target, likelihood, model.levels)
        point = point_forecast(out.params.detach(), likelihood, model.levels).mean(0)
        return StepOutput(
            loss=loss,
            metrics={"mae": (point - target).abs().mean()},
            num_tokens=int(target.numel()),
        )

    # ------------------------------------------------------------------ per series

    def member(
        self, model: nn.Module, id: str, series: TimeSeries, source: str
    ) -> tuple[Forecaster, ScalerStats]:
        """The forecaster and scaler of series ``id``: its trained ones; for an id not in
        training, the global model and a scaler fitted on ``series`` (its given history)."""
        facts = self.facts
        known = id in facts.ids
        if not known and not facts.global_model:
            raise TaskError(
                f"{source}: series '{id}' was not in training; with model.global false each "
                f"series has its own model, so only these can be forecast: {', '.join(facts.ids)}"
            )
        if isinstance(model, SeriesForecasters):
            forecaster = model.model(facts.ids.index(id))
        else:
            assert isinstance(model, Forecaster)
            forecaster = model
        if known:
            return forecaster, facts.scalers[facts.ids.index(id)]
        kind: Any = facts.scaler
        try:
            return forecaster, fit_scaler(series.values, kind, facts.transform, "targets")
        except SeriesError as err:
            raise TaskError(f"{series.source}: {err}") from None

    def forecast(
        self,
        model: Forecaster,
        scaler: ScalerStats,
        series: TimeSeries,
        horizon: int | None = None,
        origin: int | None = None,
    ) -> ForecastResult:
        """:meth:`ForecastingTask.forecast_from` of the scaled series, mapped back by
        ``scaler``: point (H, 1), quantiles (H, 1, Q) in the series' own units."""
        try:
            result = self.task.forecast_from(model, _scaled(series, scaler), horizon, origin)
        except SeriesError as err:
            raise TaskError(str(err)) from None
        return replace(
            result,
            point=scaler.inverse(result.point),  # (H, 1)
            quantiles=scaler.inverse(result.quantiles),  # (H, 1, Q): C = 1 broadcasts
            time_column=self.time_column,
            targets=(self.value_column,),
        )

    def backtest(
        self, model: Forecaster, scaler: ScalerStats, series: TimeSeries, folds: int
    ) -> dict[str, float]:
        """Rolling-origin backtest of one series in its own units, as
        :meth:`ForecastingTask.backtest_series` (the same keys, baselines included)."""
        if folds < 1:
            raise TaskError(f"folds must be >= 1, got folds={folds}")
        H = self.task.data.horizon
        try:
            return rolling_backtest(
                series,
                lambda origin: self.forecast(model, scaler, series, H, origin),
                horizon=H,
                season=self.task.meta().season,
                lookback=self.task.lookback,
                levels=model.levels,
                folds=folds,
            )
        except SeriesError as err:
            raise TaskError(str(err)) from None

    def evaluate_file(self, model: nn.Module, path: Path, options: Mapping[str, Any]) -> Report:
        """``rnnkit evaluate RUN --data panel.csv [--folds N]``: each series' backtest and the
        overall mean of every metric over the series, plus ``mase_geometric_mean`` (the
        geometric mean of the series' MASE): ``{"series": {id: {...}}, "overall": {...}}``."""
        folds = options.get("folds") or 1
        panel = self.read(path, str(path))
        per: dict[str, dict[str, float]] = {}
        for i, series in panel:
            forecaster, scaler = self.member(model, i, series, panel.source)
            per[i] = self.backtest(forecaster, scaler, series, folds)
        overall = summarize(per)
        lines = [f"overall.{k}\t{_text(v)}" for k, v in overall.items()]
        lines += [f"{i}.{k}\t{_text(v)}" for i, m in per.items() for k, v in m.items()]
        return Report({"series": per, "overall": overall}, text="\n".join(lines))


def summarize(per: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The mean over series of each metric (``folds`` and ``horizon`` kept as ints), the series
    count and ``mase_geometric_mean``: exp(mean(log MASE)) over the series."""
    rows = list(per.values())
    overall: dict[str, float] = {"series": len(rows)}
    for key in rows[0]:
        values = [r[key] for r in rows]
        overall[key] = values[0] if key in ("folds", "horizon") else float(np.mean(values))
    mase = np.array([r["mase"] for r in rows], dtype=np.float64)
    overall["mase_geometric_mean"] = float(np.exp(np.mean(np.log(mase))))
    return overall


def _text(value: float) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def predict_panel(
    task: ForecastingTask, model: nn.Module, inputs: Sequence[Any], options: Mapping[str, Any]
) -> list[Forecast]:
    """``rnnkit predict RUN panel.csv``: one :class:`Forecast` per file whose result is a
    :class:`PanelResult` (one long table: id, time, forecast, lower/upper, quantiles)."""
    run = panel_of(task)
    assert run is not None
    if not inputs:
        raise TaskError("nothing to forecast: give a panel file (CSV or Parquet)")
    if options.get("plot") is not None:
        raise TaskError("--plot draws one series; a panel run forecasts a table (use --output)")
    output = options.get("output")
    if len(inputs) > 1 and output is not None:
        raise TaskError(f"--output takes one panel file, got {len(inputs)}")
    forecasts = []
    for item in inputs:
        if not isinstance(item, Path):
            raise TaskError("a panel run forecasts panel files (long or wide CSV or Parquet)")
        if not item.is_file():
            raise TaskError(f"{item}: no such file; a panel run forecasts a panel file")
        panel = run.read(item, str(item))
        results = []
        for i, series in panel:
            forecaster, scaler = run.member(model, i, series, panel.source)
            results.append(run.forecast(forecaster, scaler, series, options.get("horizon")))
        first = results[0]
        result = PanelResult(
            **{f.name: getattr(first, f.name) for f in fields(first)},
            ids=panel.ids,
            results=tuple(results),
            id_column=run.facts.id_column,
        )
        forecasts.append(Forecast(panel.series[0], result, None if output is None else output))
    return forecasts
