"""``make demo``: train the built-in tasks end to end and show what the models learned.

Trains a seq2seq model with attention to reverse sequences, an LSTM on the adding problem and a GRU
forecaster on the AirPassengers series (last 24 months held out), evaluates them and runs a few
predictions, all through the public API that the CLI uses. Run folders go under ``demo-runs/``
(replaced on each run); the forecast is drawn in ``demo-runs/forecast.png``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from rnnkit import api
from rnnkit.config import build_run_config, load_config
from rnnkit.data.synthetic import transform

REVERSE = {
    "task": "reverse",
    "data": {"vocab_size": 10, "length": 8},
    "model": {"cell": "lstm", "embedding_size": 32, "hidden_size": 64, "attention": "additive"},
    "train": {
        "lr": 0.003,
        "batch_size": 64,
        "max_steps": 1500,
        "max_time_s": 60,
        "eval_every": 250,
    },
}
ADDING = {
    "task": "adding",
    "data": {"length": 50},
    "model": {"cell": "lstm", "hidden_size": 64},
    "train": {
        "lr": 0.003,
        "batch_size": 64,
        "max_steps": 3000,
        "max_time_s": 90,
        "eval_every": 250,
    },
}


def main(argv: list[str] | None = None) -> None:
    """Run the demo into ``--out`` (default ``demo-runs``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo-runs", help="folder for the demo's run folders")
    args = parser.parse_args(argv)
    root = Path(args.out)

    for name, raw in (("reverse", REVERSE), ("adding", ADDING)):
        run = root / name
        if run.exists():
            shutil.rmtree(run)
        config = build_run_config(raw)
        print(f"== training '{name}' into {run} (at most {config.train.max_time_s:.0f} s)")
        start = time.perf_counter()
        result = api.train(config, run)
        print(f"   stopped at step {result.step} after {time.perf_counter() - start:.1f} s")
        trained = api.load_run(run)
        metrics = trained.task.evaluate(trained.model, trained.task.valid_batches())
        print("   validation: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))

    sources = ["3 1 4 1 5 9 2 6", "2 7 1 8 2 8 1 8", "0 1 2 3 4 5 6 7"]
    outputs = api.predict(root / "reverse", sources)
    print("== reverse: input -> model output (expected)")
    for source, output in zip(sources, outputs, strict=True):
        expected = " ".join(str(s) for s in transform("reverse", [int(x) for x in source.split()]))
        print(f"   {source} -> {output}   ({expected})")

    sequence = " ".join(["0.1"] * 10 + ["0.6*"] + ["0.3"] * 29 + ["0.25*"] + ["0.9"] * 9)
    (value,) = api.predict(root / "adding", [sequence])
    print(f"== adding: 50 values, marked 0.6 and 0.25 -> model says {value:.3f} (expected 0.850)")
    forecast_demo(root)


def forecast_demo(root: Path) -> None:
    """Train the shipped AirPassengers config, score it against the baselines, draw the forecast."""
    from importlib.resources import files

    from rnnkit.data.timeseries import load_builtin
    from rnnkit.models.forecaster import backtest, forecast

    run = root / "airpassengers"
    if run.exists():
        shutil.rmtree(run)
    config_path = Path(str(files("rnnkit").joinpath("configs/forecast-airpassengers.yaml")))
    config = load_config(config_path)
    print(f"== forecasting AirPassengers 24 months ahead (training into {run})")
    api.train(config, run)
    series = load_builtin("airpassengers")
    metrics = backtest(run, series)
    ets = f", ETS {metrics['ets.mase']:.2f}" if "ets.mase" in metrics else ""
    print(
        f"   held-out 1959-1960: MASE {metrics['mase']:.2f} (seasonal naive "
        f"{metrics['seasonal_naive.mase']:.2f}{ets}), "
        f"80 % interval covers {100 * metrics['coverage_80']:.0f} % of the months"
    )
    plot = root / "forecast.png"
    forecast(run, series.iloc[:-24], 24, plot=plot, actuals=series.iloc[-24:])
    print(f"   forecast drawn in {plot}")


if __name__ == "__main__":
    main()
