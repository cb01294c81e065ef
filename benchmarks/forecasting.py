"""Forecasting benchmark: fit time and accuracy of rnnkit's forecasters and the baselines.

    python benchmarks/forecasting.py                # AirPassengers and co2, one table
    python benchmarks/forecasting.py --seeds 0 1 2  # spread over seeds
    python benchmarks/forecasting.py --backtest     # + rolling backtest, last 3 years of AirPassengers

Every model forecasts the held-out end of the series from the data before it; the scaler and the
weights see only that training part. MASE is scaled by the in-sample seasonal naive MAE (season
12 for AirPassengers, 52 for co2). The baselines (naive, seasonal naive, drift, ETS when
statsmodels is installed) are fitted on the same training part. Needs ``rnnkit[datasets]``.

The issue's anchor (NeuralForecast 3.3.0 on the same 2-core machine, AirPassengers, first 120
months, horizon 24): LSTM MASE 1.64 in 210 s of fitting, GRU MASE 1.76 in 198 s, seasonal naive
MASE 2.49.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit import api
from rnnkit.data.builtin_series import load_builtin
from rnnkit.data.timeseries import to_series
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--cells", nargs="+", default=["gru", "lstm"])
    parser.add_argument("--backtest", action="store_true", help="rolling backtest (refits)")
    parser.add_argument("--json", metavar="FILE", help="also write all numbers as JSON")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for name in args.series:
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
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
