"""The ``forecasting`` runtime: a history file in; the forecast table and its intervals out.

It reads what :mod:`rnnkit.tasks.forecasting_export` wrote (``forecaster.onnx`` and
``config.json``) and does in NumPy what :meth:`rnnkit.tasks.forecasting.ForecastingTask.
forecast_from` does around the network: read and check the history (the run's columns, its
frequency, gaps filled or refused as in training), take the last L rows, compute the calendar
features of the window and of the H steps after it, scale, run the graph, turn each member's
distribution parameters into quantiles, average the members and scale back. Its
:class:`ForecastResult` table, ``format`` (CSV) and ``to_json`` are those of
:class:`rnnkit.tasks.forecasting_predict.ForecastPredictor`. Shapes: N rows, L lookback,
H horizon, C targets, P past covariates, K calendar columns, Q quantile levels, E members,
n distribution parameters.

Imports: numpy, onnxruntime, pandas (dates, frequencies and CSV/Parquet reading: the forecast's
timestamps must continue the history's calendar exactly as the torch predictor's do) and the
standard library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from rnnkit.runtime.base import RuntimePredictor, session, unsupported
from rnnkit.runtime.series import (
    BLANKS,
    DAY_MONTH,
    ForecastResult,
    calendar_features,
    future_times,
    interval_pairs,
    month_first,
    read_table,
)

__all__ = [
    "Forecast",
    "ForecastResult",
    "ForecastingRuntime",
    "History",
    "calendar_features",
    "combine",
    "interval_pairs",
    "load",
    "read_history",
    "student_t_icdf",
]


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class History:
    """A checked, regular history: time (N,), values (N, C) and past (N, P) float64."""

    time: pd.DatetimeIndex
    values: np.ndarray
    past: np.ndarray
    source: str


# The checks of rnnkit.data.timeseries.to_series, told apart here: that reader infers the
# frequency and its messages name the config keys to set (data.fill_gaps, data.date_format);
# an export is given the run's frequency and date options and has no config to point to, so
# these messages name none (the tests pin both). Tables, calendars and the forecast table are
# shared (rnnkit.runtime.series).


def _times(
    column: pd.Series, name: str, source: str, config: Mapping[str, Any]
) -> pd.DatetimeIndex:
    """(N,) timestamps in file order, read as the run's config says (see
    :mod:`rnnkit.data.timeseries`): a strptime format, 4-digit years, ``A/B/Y`` dates in the one
    order that reads them all (or ``dayfirst``), anything else by pandas."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.DatetimeIndex(column)
    text = column.astype(str).str.strip()
    blank = text.str.lower().isin(BLANKS).to_numpy()
    if blank.any():
        raise ValueError(
            f"{source}: row {int(np.argmax(blank)) + 1}: empty date in column '{name}'"
        )
    fmt, dayfirst = config.get("date_format"), config.get("dayfirst")
    if fmt is not None:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    elif text.str.fullmatch(r"\d{4}(\.0+)?").all():
        parsed = pd.to_datetime(text.str.replace(r"\.0+$", "", regex=True), format="%Y")
    else:
        fields = text.str.extract(DAY_MONTH)
        slashed = fields[0].notna().to_numpy()
        if slashed.any():
            a = fields[0].where(slashed, "0").astype(int).to_numpy()
            b = fields[2].where(slashed, "0").astype(int).to_numpy()
            if dayfirst is None:
                day_only, month_only = slashed & (a > 12), slashed & (b > 12)
                if day_only.any() and month_only.any():
                    raise ValueError(
                        f"{source}: column '{name}' mixes day-first and month-first dates"
                    )
                if not day_only.any() and not month_only.any() and (slashed & (a != b)).any():
                    i = int(np.argmax(slashed & (a != b)))
                    raise ValueError(
                        f"{source}: ambiguous dates in column '{name}': {text.iloc[i]!r} (row "
                        f"{i + 1}) reads both day-first and month-first"
                    )
                dayfirst = bool(day_only.any())
            day, month = (a, b) if dayfirst else (b, a)
            text = text.where(~slashed, month_first(month, day, fields[3], fields[4]))
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    bad = np.flatnonzero(pd.isna(parsed).to_numpy())
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{source}: row {i + 1}: cannot parse date {text.iloc[i]!r} in column '{name}'"
        )
    return pd.DatetimeIndex(parsed)


def _numbers(column: pd.Series, name: str, source: str) -> np.ndarray:
    """(N,) floats of ``column``, NaN for empty cells; text that is no number names its row."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        plain: np.ndarray = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return plain
    text = column.astype(str).str.strip()
    blank = text.str.lower().isin(BLANKS).to_numpy()
    numbers: np.ndarray = pd.to_numeric(text.where(~blank, None), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = np.flatnonzero((np.isnan(numbers) & ~blank) | np.isinf(numbers))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{source}: row {i + 1}: non-numeric value {column.iloc[i]!r} in column '{name}'"
        )
    return numbers


def read_history(path: Path, config: Mapping[str, Any]) -> History:
    """Read and check a history file with the run's columns at the run's frequency.

    Args:
        path: a CSV, TSV or Parquet file.
        config: the export's ``config.json`` (columns, ``freq``, date options, ``fill_gaps``,
            ``transform``).

    Raises:
        ValueError: naming the file and the row (a missing column, a bad date or number, a
            duplicate or irregular timestamp, a gap when gaps are not filled, a non-positive
            value under the log transform).
    """
    source = str(path)
    frame = read_table(path)
    time_column, targets = str(config["time_column"]), [str(t) for t in config["targets"]]
    covariates = [str(c) for c in config["past_covariates"]]
    needed = [time_column, *targets, *covariates]
    for name in needed:
        if name not in frame.columns:
            columns = ", ".join(str(c) for c in frame.columns)
            raise ValueError(f"{source}: no column '{name}'; columns are: {columns}")
    if len(frame) == 0:
        raise ValueError(f"{source}: no rows")
    time = _times(frame[time_column], time_column, source, config)
    data = np.stack([_numbers(frame[n], n, source) for n in needed[1:]], axis=1)  # (N, C + P)
    rows = np.arange(1, len(frame) + 1)
    order = np.argsort(time.asi8, kind="stable")
    time, rows, data = time[order], rows[order], data[order]
    same = np.flatnonzero(time[1:] == time[:-1])
    if len(same):
        i = int(same[0]) + 1
        raise ValueError(
            f"{source}: row {rows[i]}: duplicate timestamp {time[i]} (also at row {rows[i - 1]})"
        )
    freq = str(config["freq"])
    grid = pd.date_range(time[0], time[-1], freq=freq)
    on_grid = time.isin(grid)
    if not on_grid.all():
        i = int(np.flatnonzero(~on_grid)[0])
        raise ValueError(
            f"{source}: row {rows[i]}: irregular timestamp {time[i]}, off the series' frequency "
            f"'{freq}'"
        )
    if config["fill_gaps"] == "interpolate":
        table = pd.DataFrame(data, index=time).reindex(grid)
        table = table.interpolate(method="time", limit_direction="both")
        if table.isna().to_numpy().any():
            j = int(np.flatnonzero(table.isna().all().to_numpy())[0])
            raise ValueError(f"{source}: column '{needed[1 + j]}' has no values")
        time, data = grid, table.to_numpy(dtype=np.float64)
    else:
        if len(grid) != len(time):
            position = grid.get_indexer(time)
            i = int(np.flatnonzero(np.diff(position) > 1)[0])
            raise ValueError(
                f"{source}: gap of {int(position[i + 1] - position[i] - 1)} missing timestamp(s) "
                f"between {time[i]} and {time[i + 1]} at frequency '{freq}'"
            )
        if np.isnan(data).any():
            i, j = (int(k) for k in np.argwhere(np.isnan(data))[0])
            raise ValueError(f"{source}: row {rows[i]}: missing value in column '{needed[1 + j]}'")
    values, past = data[:, : len(targets)], data[:, len(targets) :]
    if config["transform"] == "log" and (values <= 0).any():
        i, c = (int(k) for k in np.argwhere(values <= 0)[0])
        raise ValueError(
            f"{source}: transform 'log' needs positive values, found {values[i, c]:g} in column "
            f"'{targets[c]}' at {time[i]}"
        )
    return History(pd.DatetimeIndex(time), values, past, source)


# ----------------------------------------------------------------------------- distributions


def student_t_icdf(q: float, df: np.ndarray) -> np.ndarray:
    """Quantile ``q`` of the standard Student-t with ``df`` (...,) degrees of freedom: the
    bisection on a Simpson-integrated CDF of :func:`rnnkit.nn.distributions.student_t_icdf`, in
    float64, returned in ``df``'s dtype (NumPy here, torch there: the runtime imports no torch)."""
    if q == 0.5:
        return np.zeros_like(df)
    p = max(q, 1.0 - q)
    nu = df.astype(np.float64)
    lgamma = np.vectorize(math.lgamma, otypes=[np.float64])
    log_norm = lgamma((nu + 1) / 2) - lgamma(nu / 2) - 0.5 * np.log(nu * math.pi)
    nodes = np.linspace(0.0, 1.0, 257)
    weights = np.ones(257)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0

    def cdf(x: np.ndarray) -> np.ndarray:
        t = x[..., None] * nodes
        density = np.exp(
            log_norm[..., None] - (nu[..., None] + 1) / 2 * np.log1p(t**2 / nu[..., None])
        )
        result: np.ndarray = 0.5 + (density * weights).sum(-1) * x / (3 * 256)
        return result

    lo, hi = np.zeros_like(nu), np.ones_like(nu)
    for _ in range(60):
        short = cdf(hi) < p
        if not short.any():
            break
        hi = np.where(short, hi * 2, hi)
    for _ in range(50):
        mid = (lo + hi) / 2
        below = cdf(mid) < p
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    x = ((lo + hi) / 2).astype(df.dtype)
    return x if q > 0.5 else -x


def quantiles(
    params: np.ndarray, likelihood: str, trained: Sequence[float], levels: Sequence[float]
) -> np.ndarray:
    """Quantiles (..., Q) at ``levels`` of the distributions ``params`` (..., n)."""
    if likelihood == "quantile":
        return params[..., [list(trained).index(q) for q in levels]]
    mu, sigma = params[..., 0], params[..., 1]
    if likelihood == "gaussian":
        z = [np.full_like(mu, NormalDist().inv_cdf(q)) for q in levels]
    else:
        z = [student_t_icdf(q, params[..., 2]) for q in levels]
    result: np.ndarray = mu[..., None] + sigma[..., None] * np.stack(z, axis=-1)
    return result


def combine(
    params: np.ndarray,
    level: np.ndarray,
    attention: np.ndarray | None,
    likelihood: str,
    levels: Sequence[float],
    scaler: tuple[np.ndarray, np.ndarray, bool],
    residual: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The graph's outputs to raw forecasts, as :meth:`Forecaster.predict`: the members'
    quantiles averaged, the point forecast the members' medians averaged, scaled back.

    Args:
        params: (E, B, H, C, n) normalised distribution parameters. level: (B, 1, C).
        attention: (E, B, H, L) or None. likelihood, levels: the distribution.
        scaler: the targets' loc (C,), scale (C,) and whether values are modelled as logs.
        residual: (H, C, Q) a calibrated run's distances from the median (normalised units):
            its quantiles are the point forecast plus these; None keeps the network's.

    Returns:
        point (B, H, C), quantiles (B, H, C, Q) float32 and attention (B, H, L) or None.
    """
    loc, scale, log = scaler
    q = quantiles(params, likelihood, levels, levels).mean(0)  # (B, H, C, Q)
    m = list(levels).index(0.5)
    point = (params[..., m] if likelihood == "quantile" else params[..., 0]).mean(0)  # (B, H, C)
    if residual is not None:
        q = point[..., None] + residual[None]  # (B, H, C, Q)

    def raw(z: np.ndarray) -> np.ndarray:  # (B, H, C, Q) normalised -> raw
        f = (z + level[..., None]) * scale[:, None] + loc[:, None]
        result: np.ndarray = (np.exp(f) if log else f).astype(np.float32)
        return result

    mean_attention = None if attention is None else attention.mean(0)  # (B, H, L)
    return raw(point[..., None])[..., 0], raw(q), mean_attention


# ----------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Forecast:
    """One answer: the history read and its forecast."""

    history: History
    result: ForecastResult


class ForecastingRuntime(RuntimePredictor):
    """An exported forecaster: ``predict(history paths, options) -> list[Forecast]``.

    Options: ``horizon`` (at most the trained one); ``data`` is one more input (the CLI's
    ``--data FILE``); ``output``, ``plot`` and ``actuals`` are refused (no files here).
    """

    input_option = "data"

    def __init__(self, folder: Path, config: dict[str, Any], threads: int | None = None) -> None:
        super().__init__(folder, config)
        self.L, self.H = int(config["lookback"]), int(config["horizon"])
        self.levels = tuple(float(q) for q in config["quantiles"])
        self.likelihood = str(config["likelihood"])
        target, past = config["target_scaler"], config["past_scaler"]
        self.loc = np.asarray(target["loc"], dtype=np.float32)  # (C,)
        self.scale = np.asarray(target["scale"], dtype=np.float32)  # (C,)
        self.log = bool(target["log"])
        residual = config.get("interval_residual")  # absent in exports of earlier runs
        self.residual = None if residual is None else np.asarray(residual, dtype=np.float32)
        self.past_loc = np.asarray(past["loc"], dtype=np.float32)  # (P,)
        self.past_scale = np.asarray(past["scale"], dtype=np.float32)  # (P,)
        self.attention = bool(config["attention"])
        self.session = session(folder / str(config["graph"]), threads)

    def parse(self, text: str) -> Path:
        """A history file's path."""
        return Path(text.strip())

    def forecast(self, history: History, horizon: int | None = None) -> ForecastResult:
        """Forecast ``horizon`` steps (default: the trained H) after the end of ``history``.

        Raises:
            ValueError: a horizon outside [1, H], or fewer rows than the lookback.
        """
        H, L = self.H, self.L
        horizon = H if horizon is None else horizon
        if horizon > H:
            raise ValueError(
                f"horizon {horizon} is longer than the model was trained for (data.horizon = {H})"
            )
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if len(history.time) < L:
            raise ValueError(
                f"{history.source}: too few rows: {len(history.time)} rows of history, the "
                f"model reads lookback {L}"
            )
        freq = str(self.config["freq"])
        future = future_times(history.time[-1], freq, H)
        window_time = history.time[-L:]
        calendar = calendar_features(window_time.append(future), self.config["calendar"])
        values = history.values[-L:].astype(np.float32)  # (L, C)
        f = np.log(values) if self.log else values
        feeds = {
            "scaled": ((f - self.loc) / self.scale)[None],  # (1, L, C)
            "calendar": calendar[None],  # (1, L + H, K)
        }
        if history.past.shape[1]:
            past = history.past[-L:].astype(np.float32)  # (L, P)
            feeds["past"] = ((past - self.past_loc) / self.past_scale)[None]  # (1, L, P)
        out = self.session.run(None, feeds)
        point, q, attention = combine(
            out[0],
            out[1],
            out[2] if self.attention else None,
            self.likelihood,
            self.levels,
            (self.loc, self.scale, self.log),
            self.residual,
        )  # (1, H, C), (1, H, C, Q), (1, H, L) | None
        return ForecastResult(
            time=future[:horizon],
            point=point[0, :horizon].astype(np.float64),
            quantiles=q[0, :horizon].astype(np.float64),
            levels=self.levels,
            targets=tuple(str(t) for t in self.config["targets"]),
            time_column=str(self.config["time_column"]),
            attention=None if attention is None else attention[0, :horizon].astype(np.float64),
            lookback_time=window_time,
        )

    def predict(self, inputs: Sequence[Path], options: Mapping[str, Any]) -> list[Forecast]:
        """The forecast after each history file."""
        unsupported(options, ["output", "plot", "actuals"], self.flags)
        paths = list(inputs)
        if not paths:
            raise ValueError("nothing to forecast: give a history file (CSV or Parquet)")
        for path in paths:
            if not path.is_file():
                c = self.config
                columns = ", ".join([c["time_column"], *c["targets"], *c["past_covariates"]])
                raise ValueError(
                    f"{path}: no such file; a forecasting run predicts from a history file, a "
                    f"CSV or Parquet file with the columns {columns}"
                )
        forecasts = []
        for path in paths:
            history = read_history(path, self.config)
            forecasts.append(Forecast(history, self.forecast(history, options.get("horizon"))))
        return forecasts

    def format(self, output: Forecast) -> str:
        """The forecast as CSV (header and H rows)."""
        return output.result.to_csv()

    def to_json(self, inp: Path, output: Forecast) -> Any:
        """The torch predictor's JSON: the input and the forecast table's columns."""
        return {"input": str(inp), "output": output.result.to_columns()}


def load(folder: Path, config: dict[str, Any], threads: int | None = None) -> ForecastingRuntime:
    """The runtime predictor of a forecasting export (see :func:`rnnkit.runtime.load`)."""
    return ForecastingRuntime(folder, config, threads)
