"""The ``rnnkit`` command line: a thin layer over :mod:`rnnkit.api`.

Each verb parses its arguments, calls one public function and prints or writes its result. Problems
with the user's input (config, data files, run folders) print one ``rnnkit: error: ...`` line and exit
with status 2; a training failure exits with status 1.

Translation runs (``evaluate``, ``predict``) and the ``compare`` and ``corpus`` verbs live in
:mod:`rnnkit.cli.translate`; ``diagnose`` in :mod:`rnnkit.cli.diagnose`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rnnkit import __version__


def _train(args: argparse.Namespace) -> int:
    from rnnkit import api
    from rnnkit.config import load_config

    config = load_config(Path(args.config), args.set)
    result = api.train(config, Path(args.out), resume=args.resume)
    print(
        f"trained {config.task} to step {result.step} in {result.elapsed_s:.1f} s "
        f"({result.stop_reason}); run folder: {args.out}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from rnnkit import api
    from rnnkit.cli import translate

    run, data = Path(args.run), Path(args.data)
    task = api.read_run_config(run).task
    if task == "translation":
        return translate.evaluate(args)
    translate.reject_options(
        args, {"beam": "--beam", "output": "--output"}, "translation", run, task
    )
    if task == "forecasting":
        from rnnkit.models.forecaster import backtest

        metrics = backtest(run, data, folds=args.folds, weights=args.weights)
    elif args.folds != 1:
        raise ValueError("--folds applies to forecasting runs only")
    else:
        metrics = api.evaluate(run, data, weights=args.weights)
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key}\t{value:.6g}")
    return 0


def _read_inputs(args: argparse.Namespace) -> list[str]:
    """The INPUT arguments, then the non-blank lines of ``--input FILE``."""
    inputs = list(args.inputs)
    if args.input:
        path = Path(args.input)
        try:
            inputs += [
                line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: cannot read ({err})") from None
    if not inputs:
        raise ValueError("nothing to predict: give inputs as arguments or --input FILE")
    return inputs


def _predict(args: argparse.Namespace) -> int:
    from rnnkit import api
    from rnnkit.cli import translate

    run = Path(args.run)
    task = api.read_run_config(run).task
    if task == "translation":
        return translate.predict(args, _read_inputs(args))
    translate.reject_options(args, translate.TRANSLATION_OPTIONS, "translation", run, task)
    if args.data is not None:
        return _forecast(args)
    inputs = _read_inputs(args)
    outputs = api.predict(run, inputs, weights=args.weights)
    if args.json:
        print(json.dumps([{"input": i, "output": o} for i, o in zip(inputs, outputs, strict=True)]))
    else:
        for output in outputs:
            print(output)
    return 0


def _forecast(args: argparse.Namespace) -> int:
    from rnnkit import api
    from rnnkit.models.forecaster import forecast

    run = Path(args.run)
    if api.read_run_config(run).task != "forecasting":
        raise ValueError(f"{run}: --data/--horizon apply to forecasting runs only")
    frame = forecast(
        run,
        Path(args.data),
        args.horizon,
        output=args.output,
        plot=args.plot,
        actuals=args.actuals,
        weights=args.weights,
    )
    if args.output is None:
        print(frame.to_csv(index=False), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rnnkit`` command."""
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks: train, evaluate and use RNN/LSTM/GRU models.",
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    train = verbs.add_parser("train", help="train a model from a YAML config into a run folder")
    train.add_argument(
        "config", metavar="CONFIG", help="YAML config (sections task, data, model, train)"
    )
    train.add_argument("--out", required=True, metavar="RUN", help="run folder to create or resume")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=3e-4 (repeatable)",
    )
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    train.set_defaults(handler=_train)

    weights_help = "weights to use: best on validation (default) or the final ones"
    evaluate = verbs.add_parser("evaluate", help="metrics of a trained run on a data file")
    evaluate.add_argument("run", metavar="RUN", help="run folder")
    evaluate.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="data file in the task's format (translation: TSV source<TAB>reference)",
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--weights", choices=["best", "final"], default="best", help=weights_help)
    evaluate.add_argument(
        "--folds",
        type=int,
        default=1,
        help="forecasting: rolling-origin backtest folds (default 1)",
    )
    scoring = evaluate.add_argument_group(
        "translation runs", "BLEU, chrF (sacreBLEU signatures) and BLEU by source length"
    )
    scoring.add_argument(
        "--beam",
        type=int,
        default=None,
        metavar="K",
        help="beam size K (default 5; 1 = greedy search)",
    )
    scoring.add_argument(
        "--output", metavar="FILE", help="write the translations here, one per line"
    )
    evaluate.set_defaults(handler=_evaluate)

    predict = verbs.add_parser("predict", help="run a trained model on inputs")
    predict.add_argument("run", metavar="RUN", help="run folder")
    predict.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="inputs, in the task's format (translation: source sentences)",
    )
    predict.add_argument(
        "--input", metavar="FILE", help="read inputs from FILE, one per line (blank lines skipped)"
    )
    predict.add_argument(
        "--json",
        action="store_true",
        help="print JSON (translation: per input its n-best translations with scores, tokens "
        "and attention weights)",
    )
    predict.add_argument("--weights", choices=["best", "final"], default="best", help=weights_help)
    translation = predict.add_argument_group(
        "translation runs",
        "one translation per line; with --nbest N, lines rank<TAB>score<TAB>text and a blank "
        "line between inputs",
    )
    translation.add_argument(
        "--beam",
        type=int,
        default=None,
        metavar="K",
        help="beam size K (default 5, or N if --nbest is larger; 1 = greedy search)",
    )
    translation.add_argument(
        "--nbest", type=int, default=None, metavar="N", help="translations per input (default 1)"
    )
    translation.add_argument(
        "--attention-plot",
        metavar="DIR",
        help="write an attention heatmap of each input's best translation: DIR/001.png, ...",
    )
    forecasting = predict.add_argument_group("forecasting runs")
    forecasting.add_argument("--data", metavar="FILE", help="history CSV/Parquet to forecast from")
    forecasting.add_argument("--horizon", type=int, help="steps to forecast (default: trained)")
    forecasting.add_argument("--output", metavar="CSV", help="write the forecast here")
    forecasting.add_argument("--plot", metavar="PNG", help="draw history, forecast and interval")
    forecasting.add_argument("--actuals", metavar="FILE", help="known future values for the plot")
    predict.set_defaults(handler=_predict)

    from rnnkit.cli import diagnose, translate

    translate.add_parsers(verbs)
    diagnose.add_parser(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnnkit`` console script; returns the exit status."""
    from rnnkit.io import CheckpointError
    from rnnkit.training import TrainingError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (ValueError, CheckpointError, FileNotFoundError) as err:
        print(f"rnnkit: error: {err}", file=sys.stderr)
        return 2
    except TrainingError as err:
        print(f"rnnkit: training failed: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
