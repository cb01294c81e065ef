"""The forecasting task's inference side: :class:`ForecastResult` (a forecast of C series over H
steps, its table and its figure), :class:`Forecast` and :class:`ForecastPredictor` (``rnnkit
predict`` and the server).

Shapes: H horizon, C target series, Q quantile levels, L lookback.

A predictor's input is a history file (the command line) or a :class:`TimeSeries` read from an HTTP
request's JSON (:meth:`ForecastPredictor.from_json`: CSV text or an object of columns), so a
request never names a file on the server.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from rnnkit.data.timeseries import SeriesError, TimeSeries, future_times
from rnnkit.metrics.forecast import forecast_metrics
from rnnkit.models.baselines import run_baselines_columns
from rnnkit.models.forecaster import Forecaster
from rnnkit.runtime import series
from rnnkit.runtime.series import interval_pairs
from rnnkit.tasks.base import JSONModel, Predictor, TaskError, json_kind
from rnnkit.viz.figures import save_png
from rnnkit.viz.forecast import Interval, forecast_figure

if TYPE_CHECKING:
    from rnnkit.tasks.forecasting import ForecastingTask

History = Path | TimeSeries
"""A predictor's input: a history file, or a series already read (from a request's JSON)."""


@dataclass(frozen=True)
class ForecastResult(series.ForecastResult):
    """A forecast of C series over H steps: the table of :class:`rnnkit.runtime.series.
    ForecastResult` (both engines print it) and its figure.

    Attributes:
        time: (H,) forecast timestamps. point: (H, C) medians. quantiles: (H, C, Q) at ``levels``.
        targets: the C series' names. time_column: the name of the time column.
        attention: (H, L) attention weights over the lookback (attention head), else None.
        lookback_time: (L,) timestamps the model read.
    """

    def plot(self, path: Path, history: TimeSeries, actuals: TimeSeries | None = None) -> Path:
        """Write a PNG of the last steps of ``history`` (4 horizons, at least the lookback), the
        forecast, its intervals, ``actuals`` where known and the attention weights (atomically)."""
        figure = forecast_figure(
            names=self.targets,
            history_time=history.time,
            history=history.values,
            time=self.time,
            point=self.point,
            intervals=[
                Interval(percent, self.quantiles[..., i], self.quantiles[..., j])
                for percent, i, j in interval_pairs(self.levels)
            ],
            actuals=None if actuals is None else (actuals.time, actuals.values),
            attention=self.attention,
            context=max(4 * len(self.time), len(self.lookback_time)),
        )
        return save_png(figure, path)


@dataclass(frozen=True)
class Forecast:
    """One answer of :class:`ForecastPredictor`.

    Attributes:
        history: the series read from the input file. result: its forecast.
        output: where :meth:`ForecastPredictor.write_files` writes the CSV (``--output``); when
            set, :meth:`ForecastPredictor.format` prints nothing.
    """

    history: TimeSeries
    result: ForecastResult
    output: Path | None = None


class ForecastJSON(JSONModel):
    """One history's forecast: the table of :meth:`ForecastResult.to_frame` by column (the time
    column as strings; ``forecast``, ``lower_<p>``/``upper_<p>``, ``q<level>``)."""

    input: str
    output: dict[str, list[str] | list[float]]


@dataclass
class ForecastPredictor(Predictor[History, Forecast]):
    """Forecasts after history files: ``rnnkit predict RUN history.csv [--horizon H]
    [--output CSV] [--plot PNG] [--actuals FILE]`` (``--data FILE`` is the INPUT's old name).

    Inputs are history paths (:meth:`parse`) or series read from JSON (:meth:`from_json`);
    outputs :class:`Forecast`. ``options`` are the task's
    :attr:`~ForecastingTask.predict_options` by name (None or missing: not given).
    """

    task: ForecastingTask
    input_kind = "series"
    json_input = str | dict[str, list[Any] | str]
    json_output = ForecastJSON

    def parse(self, text: str) -> Path:
        return Path(text.strip())

    def from_json(self, value: Any, name: str) -> TimeSeries:
        """A history from JSON: CSV text with the run's columns (a header line, then rows), or an
        object of columns, ``{"<time column>": [...], "<target>": [...]}`` (the shape of the
        output's table), where ``"start"`` may stand in for the time column (the steps then
        follow it at the run's frequency) and ``"values"`` for the target of a one-series run.

        Raises:
            TaskError: anything else, or a series the run cannot read (naming ``name``).
        """
        task = self.task
        from rnnkit.tasks.forecasting_panel import refuse_panel

        refuse_panel(task, "JSON input")
        d, freq = task.data, task.meta().freq
        if isinstance(value, str):
            try:
                frame = pd.read_csv(io.StringIO(value))
            except (ValueError, pd.errors.ParserError) as err:
                raise TaskError(f"{name}: not CSV text: {str(err).splitlines()[0]}") from None
        elif isinstance(value, dict):
            columns = dict(value)
            if "values" in columns and len(d.targets) == 1 and d.targets[0] not in columns:
                columns[d.targets[0]] = columns.pop("values")  # one series: "values" names it
            start = columns.pop("start", None)
            if start is not None and d.time_column not in columns:
                lengths = {len(v) for v in columns.values() if isinstance(v, list)}
                if len(lengths) != 1 or not isinstance(start, str):
                    raise TaskError(
                        f"{name}: 'start' needs a date string and columns of one length"
                    )
                try:
                    first = pd.Timestamp(start)
                except ValueError:
                    raise TaskError(f"{name}: 'start' is not a date: {start!r}") from None
                steps = lengths.pop()
                columns[d.time_column] = [first, *future_times(first, freq, steps - 1)][:steps]
            for key, column in columns.items():
                if not isinstance(column, list):
                    raise TaskError(f"{name}.{key}: expected an array, got {json_kind(column)}")
            try:
                frame = pd.DataFrame(columns)
            except ValueError as err:
                raise TaskError(f"{name}: {err}") from None
        else:
            raise TaskError(
                f"{name}: expected CSV text or an object of columns, got {json_kind(value)}"
            )
        try:
            return task.read(frame, freq=freq, name=name)
        except (SeriesError, TaskError) as err:
            raise TaskError(str(err)) from None

    def _task(self) -> tuple[ForecastingTask, Forecaster]:
        assert isinstance(self.model, Forecaster)
        return self.task, self.model

    def predict(self, inputs: Sequence[History], options: Mapping[str, Any]) -> list[Forecast]:
        """The forecast after each history (the CLI adds ``--data FILE`` to the inputs:
        :attr:`ForecastingTask.input_option`); a panel run's is one long table per file
        (:func:`rnnkit.tasks.forecasting_panel.predict_panel`)."""
        from rnnkit.tasks.forecasting_panel import panel_of, predict_panel

        if panel_of(self.task) is not None:
            return predict_panel(self.task, self.model, list(inputs), options)
        task, model = self._task()
        given = list(inputs)
        if not given:
            raise TaskError("nothing to forecast: give a history file (CSV or Parquet)")
        output = options.get("output")
        if len(given) > 1 and (output is not None or options.get("plot") is not None):
            raise TaskError(f"--output and --plot take one history file, got {len(given)}")
        for path in given:
            if isinstance(path, Path) and not path.is_file():
                d = task.data
                columns = ", ".join([d.time_column, *d.targets, *d.past_covariates])
                raise TaskError(
                    f"{path}: no such file; a forecasting run predicts from a history file, a "
                    f"CSV or Parquet file with the columns {columns}"
                )
        forecasts = []
        for item in given:
            history = task.read(item, freq=task.meta().freq) if isinstance(item, Path) else item
            result = task.forecast_from(model, history, options.get("horizon"))
            forecasts.append(Forecast(history, result, None if output is None else Path(output)))
        return forecasts

    def export_onnx(self, folder: Path) -> dict[str, Any]:
        """``forecaster.onnx`` and the series facts (:mod:`rnnkit.tasks.forecasting_export`)."""
        from rnnkit.tasks.forecasting_export import export_forecaster

        return export_forecaster(self.task, self.model, folder)

    def format(self, output: Forecast) -> str:
        """The forecast as CSV (header and H rows), or "" when it goes to ``--output``."""
        if output.output is not None:
            return ""
        return output.result.to_csv()

    def to_json(self, inp: History, output: Forecast) -> Any:
        source = str(inp) if isinstance(inp, Path) else inp.source
        return {"input": source, "output": output.result.to_columns()}

    def write_files(
        self, inputs: Sequence[History], outputs: Sequence[Forecast], options: Mapping[str, Any]
    ) -> list[Path]:
        """The ``--output`` CSV and the ``--plot`` PNG (with ``--actuals``), atomically."""
        task, _ = self._task()
        files: list[Path] = []
        for forecast in outputs:
            files += task.write_forecast(
                forecast.history,
                forecast.result,
                output=forecast.output,
                plot=None if options.get("plot") is None else Path(options["plot"]),
                actuals=options.get("actuals"),
            )
        return files


def rolling_backtest(
    series: TimeSeries,
    forecast_at: Callable[[int], ForecastResult],
    *,
    horizon: int,
    season: int,
    lookback: int,
    levels: Sequence[float],
    folds: int = 1,
    step: int | None = None,
    baselines: Sequence[str] | None = None,
) -> dict[str, float]:
    """Rolling-origin backtest of ``forecast_at(origin)`` (H steps after ``series[:origin]``)
    next to the baselines on the same histories.

    The last fold forecasts the final H = ``horizon`` steps of ``series``; each earlier one
    starts ``step`` (default H) steps before. Every metric is averaged over the folds; the
    baselines are reported as ``<baseline>.<metric>``; ``folds`` and ``horizon`` stay ints.

    Raises:
        ValueError: folds or step below 1. SeriesError: too few rows for the folds.
    """
    H = horizon
    step = H if step is None else step
    if folds < 1 or step < 1:
        raise ValueError(f"folds and step must be >= 1, got folds={folds}, step={step}")
    first = len(series) - H - (folds - 1) * step
    need = max(lookback, season + 1)
    if first < need:
        raise SeriesError(
            f"{series.source}: too few rows for {folds} fold(s) of horizon {H}: the first "
            f"origin would be row {first + 1}, but {need} rows of history are needed"
        )
    results: list[dict[str, float]] = []
    for k in range(folds):
        origin = first + k * step
        actual = series.values[origin : origin + H]  # (H, C)
        history = series.values[:origin]  # (N, C)
        result = forecast_at(origin)
        fold = forecast_metrics(actual, result.point, result.quantiles, levels, history, season)
        for name, b in run_baselines_columns(history, H, season, levels, baselines).items():
            scores = forecast_metrics(actual, b.point, b.quantiles, b.levels, history, season)
            fold.update({f"{name}.{key}": value for key, value in scores.items()})
        results.append(fold)
    summary = {key: float(np.mean([r[key] for r in results])) for key in results[0]}
    return {"folds": folds, "horizon": H, **summary}  # counts stay ints in the JSON
