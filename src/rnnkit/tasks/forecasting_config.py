"""The ``data`` section of the ``forecasting`` task (:class:`ForecastDataConfig`), validated on
construction; :mod:`rnnkit.tasks.forecasting` re-exports it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from rnnkit.config import FrozenConfig
from rnnkit.data.builtin_series import BUILTIN_NAMES
from rnnkit.data.timeseries import CalendarFeature, FillGaps, ScalerKind

__all__ = ["ForecastDataConfig"]


class ForecastDataConfig(FrozenConfig):
    """Data of the ``forecasting`` task (the ``data`` section).

    Attributes:
        path: CSV or Parquet file; or ``series``: a built-in series (one of the two).
        time_column: the timestamps' column. target: one or more target columns.
        past_covariates: numeric columns known only up to the present (encoder inputs).
        future_covariates: numeric columns known in the future too (a planned price, a holiday
            flag): inputs beside the calendar features, for the window and the forecast steps,
            so ``predict``'s input gives them in rows after the last value.
        calendar: calendar features (known in the future) from the time column, or ``auto``
            (chosen from the frequency: month for monthly data, hour and day of week below daily).
        freq: pandas frequency; inferred from the timestamps when null.
        date_format: a strptime format every date must match (``"%d/%m/%Y"``); or
        dayfirst: read ``A/B/Y`` dates day-first (true) or month-first (false). With neither,
            the order is inferred where only one reading works and refused where both do.
        fill_gaps: ``interpolate`` fills missing timestamps and values linearly in time; ``none``
            reports them as errors.
        horizon: H, steps forecast at once (the longest horizon the model can predict).
        lookback: L, steps the encoder reads; null: two seasons (the horizon, at least 8, for
            series without a season; :func:`~rnnkit.data.series_inference.default_lookback`).
        season: the season length (MASE, seasonal naive); inferred from the frequency when null
            (12 monthly, 4 quarterly, 52 weekly, 7 daily, 24 hourly).
        valid_size: final steps before the test part whose windows validate (0: validate on the
            training windows).
        test_size: final steps held out from training (default: the horizon).
        scaler: per-series scaling fitted on the training part: standard, robust or none.
        transform: ``log`` models log values (positive series only); ``auto`` chooses the log on
            the training part when the series is positive and its seasonal amplitude grows with
            its level (:func:`~rnnkit.data.series_inference.infer_transform`), else ``none``.
        calibration_size: with ``model.calibration: conformal``, the final steps of the training
            part that a first model, trained without them, forecasts to calibrate the intervals
            (default: twice the horizon; see :mod:`rnnkit.tasks.forecasting_calibration`).
        layout: ``single`` (one series, or several targets modelled jointly), ``long`` or
            ``wide`` (a panel of many series, :mod:`rnnkit.tasks.forecasting_panel`); ``auto``:
            ``long`` when the file's header has ``id_column``, else ``single``.
        id_column: long layout: the series' ids. series_columns: wide layout: the series'
            columns (default: every column but the time column and the covariates).
    """

    path: str | None = None
    series: str | None = None
    time_column: str = "time"
    target: str | tuple[str, ...] = "value"
    past_covariates: tuple[str, ...] = ()
    future_covariates: tuple[str, ...] = ()
    calendar: tuple[CalendarFeature, ...] | Literal["auto"] = "auto"
    freq: str | None = None
    date_format: str | None = None
    dayfirst: bool | None = None
    fill_gaps: FillGaps = "none"
    horizon: int = Field(12, ge=1)
    lookback: int | None = Field(None, ge=1)
    season: int | None = Field(None, ge=1)
    valid_size: int = Field(0, ge=0)
    test_size: int | None = Field(None, ge=0)
    scaler: ScalerKind = "robust"
    transform: Literal["auto", "none", "log"] = "auto"
    calibration_size: int | None = Field(None, ge=1)
    layout: Literal["auto", "single", "long", "wide"] = "auto"
    id_column: str = "unique_id"
    series_columns: tuple[str, ...] | None = None

    @field_validator("series")
    @classmethod
    def _builtin(cls, value: str | None) -> str | None:
        if value is not None and value not in BUILTIN_NAMES:
            raise ValueError(
                f"unknown built-in series '{value}'; valid series: {', '.join(BUILTIN_NAMES)}"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ForecastDataConfig:
        if (self.path is None) == (self.series is None):
            raise ValueError("set exactly one of data.path and data.series")
        if self.date_format is not None and self.dayfirst is not None:
            raise ValueError("set data.date_format or data.dayfirst, not both")
        return self

    @property
    def targets(self) -> tuple[str, ...]:
        """The target columns as a tuple."""
        return (self.target,) if isinstance(self.target, str) else tuple(self.target)

    @property
    def held_out(self) -> int:
        """Steps held out for testing (``test_size``, default the horizon)."""
        return self.horizon if self.test_size is None else self.test_size
