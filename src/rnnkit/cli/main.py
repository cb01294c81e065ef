"""The ``rnnkit`` command line: a thin layer over :mod:`rnnkit.api`.

Each verb parses its arguments, calls one public function and prints or writes its result. The
verbs know no task: ``evaluate``, ``predict`` and ``compare`` read the run's task first and add
the options it declares (:attr:`rnnkit.tasks.Task.predict_options` and friends), so
``rnnkit predict RUN --help`` lists them. Problems with the user's input (config, data files, run
folders, options) print one ``rnnkit: error: ...`` line and exit with status 2; a training
failure exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnkit import __version__

WEIGHTS_HELP = "weights to use: best on validation (default) or the final ones"
TASK_VERBS = ("evaluate", "predict", "compare")
THREADS_HELP = (
    "torch's CPU threads, N >= 1 or auto (default: auto, chosen from the model's size and the "
    "cores this process may use: 1 for small recurrent models)"
)


def parse_threads(text: str) -> int | None:
    """``--threads N`` -> N (an integer >= 1); ``auto`` -> None (the policy decides)."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 or 'auto', got '{text}'")
    return value


def add_threads_option(
    parser: argparse.ArgumentParser, help: str = THREADS_HELP, **kwargs: Any
) -> None:
    """Add ``--threads N|auto`` to a verb's parser (``args.threads``: N, or None for auto)."""
    parser.add_argument("--threads", type=parse_threads, metavar="N", help=help, **kwargs)


# ---------------------------------------------------------------------------------- verbs


def _train(args: argparse.Namespace) -> int:
    import logging

    from rnnkit import api

    # The trainer logs a progress line per metrics row when stderr is not a terminal (no bar).
    # Under torchrun only rank 0 speaks; the others log warnings and errors.
    main_rank = os.environ.get("RANK", "0") == "0"
    level = logging.INFO if main_rank else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(message)s", stream=sys.stderr)

    overrides = list(args.set)
    if hasattr(args, "threads"):  # --threads wins over the config and --set
        overrides.append(f"train.threads={'auto' if args.threads is None else args.threads}")
    config = api.load_config(args.config, overrides)
    result = api.train(config, Path(args.out), resume=args.resume)
    if not main_rank:
        return 0
    print(
        f"trained {config.task} to step {result.step} in {result.elapsed_s:.1f} s "
        f"({result.stop_reason}); run folder: {args.out}"
    )
    return 0


def _options(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in names}


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        from rnnkit.tasks.base import dumps

        print(dumps(report.metrics))
        return
    if report.text is not None:
        print(report.text)
    else:
        for key, value in report.metrics.items():
            print(f"{key}\t{value:.6g}" if isinstance(value, float) else f"{key}\t{value}")
    for path in report.files:
        print(f"wrote {path}", file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> int:
    from rnnkit import api

    report = api.evaluate(
        Path(args.run),
        Path(args.data),
        _options(args, args.task_options),
        weights=args.weights,
        threads=args.threads,
    )
    _print_report(report, args.json)
    return 0


def run_names(runs: Sequence[Path]) -> list[str]:
    """Short distinct names of run folders for table columns and legends.

    Each run is named by its folder; where two runs share a folder name, parent folders are added
    until the names differ (``a/model``, ``b/model``); a run given twice gets ``#2``, ``#3``, ...
    """
    parts = [Path(os.path.abspath(run)).parts[1:] or (str(run),) for run in runs]
    depth = [1] * len(runs)

    def name(i: int) -> str:
        return "/".join(parts[i][-depth[i] :])

    while True:
        groups: dict[str, list[int]] = {}
        for i in range(len(runs)):
            groups.setdefault(name(i), []).append(i)
        grew = False
        for members in groups.values():
            if len({parts[i] for i in members}) > 1:  # the same folder twice stays as it is
                for i in members:
                    if depth[i] < len(parts[i]):
                        depth[i] += 1
                        grew = True
        if not grew:
            break
    names: list[str] = []
    for i in range(len(runs)):
        base = name(i)
        copies = sum(1 for other in names if other == base or other.startswith(base + "#"))
        names.append(base if copies == 0 else f"{base}#{copies + 1}")
    return names


def parse_names(text: str, count: int) -> list[str]:
    """``--names a,b`` -> ["a", "b"]; ValueError unless there are ``count`` distinct names."""
    names = [part.strip() for part in text.split(",")]
    if any(not n for n in names):
        raise ValueError(f"--names has an empty name: '{text}'")
    if len(names) != count:
        raise ValueError(f"--names gives {len(names)} name(s) for {count} run(s)")
    if len(set(names)) != len(names):
        raise ValueError(f"--names names a run twice: '{text}'")
    return names


def _compare(args: argparse.Namespace) -> int:
    from rnnkit import api

    runs = [Path(run) for run in args.runs]
    names = parse_names(args.names, len(runs)) if args.names else run_names(runs)
    report = api.compare(
        runs,
        names,
        Path(args.data),
        _options(args, args.task_options),
        weights=args.weights,
        threads=args.threads,
    )
    _print_report(report, args.json)
    return 0


def _read_inputs(args: argparse.Namespace, extra: Any) -> list[str]:
    """The INPUT arguments, the task's input option (if any), then the lines of ``--input``."""
    inputs = list(args.inputs)
    if extra is not None:
        inputs.append(str(extra))
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

    options = _options(args, args.task_options)
    predictor: Any
    if args.engine == "onnx":
        predictor = api.load_runtime(Path(args.run), args.weights, threads=args.threads)
        input_option = predictor.input_option
    else:
        predictor = api.load_predictor(Path(args.run), args.weights, threads=args.threads)
        input_option = type(predictor.task).input_option
    texts = _read_inputs(args, options.get(input_option) if input_option else None)
    inputs = [predictor.parse(text) for text in texts]
    outputs = predictor.predict(inputs, options)
    files = [] if args.engine == "onnx" else predictor.write_files(inputs, outputs, options)
    if args.json:
        from rnnkit.tasks.base import dumps

        print(dumps([predictor.to_json(i, o) for i, o in zip(inputs, outputs, strict=True)]))
    else:
        shown = [predictor.format(o) for o in outputs]
        separator = "\n\n" if any("\n" in s for s in shown) else "\n"
        if any(shown):
            print(separator.join(shown))
    for path in files:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _generate(args: argparse.Namespace) -> int:
    from rnnkit import api
    from rnnkit.tasks.decoding_options import sampling_config

    sampling = sampling_config(vars(args))
    text = api.generate(
        Path(args.run),
        args.prompt,
        args.max_tokens,
        sampling,
        weights=args.weights,
        threads=args.threads,
    )
    print(text)
    return 0


# ------------------------------------------------------------------------------ parsers


def _add_task_options(parser: argparse.ArgumentParser, verb: str, task: Any) -> list[str]:
    """Add the options ``task`` declares for ``verb``; returns their destinations."""
    options = getattr(task, f"{verb}_options", ())
    if not options:
        return []
    group = parser.add_argument_group(f"options of {task.name} runs")
    for option in options:
        if option.type is bool:
            group.add_argument(
                option.flag, dest=option.name, action="store_const", const=True, help=option.help
            )
        else:
            group.add_argument(
                option.flag,
                dest=option.name,
                type=option.type,
                metavar=option.metavar,
                choices=option.choices,
                help=option.help,
            )
    return [option.name for option in options]


def build_parser(task: Any = None, verb: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``rnnkit`` command; with ``task``, ``verb``'s parser also
    takes the options that task declares for it."""
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks: train, evaluate and use RNN/LSTM/GRU models.",
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    task_note = "The run's task adds its own options: see 'rnnkit {verb} RUN --help'."

    train = verbs.add_parser("train", help="train a model from a YAML config into a run folder")
    train.add_argument(
        "config",
        metavar="CONFIG",
        help="YAML config (sections task, data, model, objective, train), or the name of a "
        "built-in config (rnnkit config list)",
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
    add_threads_option(
        train,
        help="torch's CPU threads, N >= 1 or auto; sets train.threads (default: the config's "
        "train.threads; auto, its default, chooses from the model's size and the cores this "
        "process may use: 1 for small recurrent models)",
        default=argparse.SUPPRESS,
    )
    train.set_defaults(handler=_train)

    evaluate = verbs.add_parser(
        "evaluate",
        help="metrics of a trained run on a data file",
        epilog=task_note.format(verb="evaluate"),
    )
    evaluate.add_argument("run", metavar="RUN", help="run folder")
    evaluate.add_argument(
        "--data", required=True, metavar="FILE", help="data file in the task's format"
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--weights", choices=["best", "final"], default="best", help=WEIGHTS_HELP)
    add_threads_option(evaluate)
    evaluate.set_defaults(handler=_evaluate, task_options=[])

    predict = verbs.add_parser(
        "predict", help="run a trained model on inputs", epilog=task_note.format(verb="predict")
    )
    predict.add_argument("run", metavar="RUN", help="run folder")
    predict.add_argument("inputs", nargs="*", metavar="INPUT", help="inputs, in the task's format")
    predict.add_argument(
        "--input", metavar="FILE", help="read inputs from FILE, one per line (blank lines skipped)"
    )
    predict.add_argument("--json", action="store_true", help="print a JSON list, one per input")
    predict.add_argument("--weights", choices=["best", "final"], default="best", help=WEIGHTS_HELP)
    predict.add_argument(
        "--engine",
        choices=["torch", "onnx"],
        default="torch",
        help="torch (default), or onnx: onnxruntime on an export folder (RUN may be one; a run "
        "folder is exported into RUN/onnx first when that is missing)",
    )
    add_threads_option(predict)
    predict.set_defaults(handler=_predict, task_options=[])

    compare = verbs.add_parser(
        "compare",
        help="several runs of one task on the same data file, side by side",
        epilog=task_note.format(verb="compare"),
    )
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run folders of one task")
    compare.add_argument("--data", required=True, metavar="FILE", help="data file to score on")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    compare.add_argument(
        "--names",
        metavar="A,B,...",
        help="comma-separated run names for the table and legend (default: the folder names)",
    )
    compare.add_argument("--weights", choices=["best", "final"], default="best", help=WEIGHTS_HELP)
    add_threads_option(compare)
    compare.set_defaults(handler=_compare, task_options=[])

    generate = verbs.add_parser(
        "generate", help="write text after a prompt with a language model run (sampling)"
    )
    generate.add_argument("run", metavar="RUN", help="run folder of a language model")
    generate.add_argument("--prompt", default="", metavar="TEXT", help="text to continue")
    generate.add_argument(
        "--max-tokens", type=int, default=50, metavar="N", help="tokens to write (default 50)"
    )
    generate.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        metavar="T",
        help="below 1 sharpens the distribution, above 1 flattens it (default 1)",
    )
    generate.add_argument(
        "--top-k",
        type=int,
        default=0,
        metavar="K",
        help="sample among the K most likely tokens (default 0: all)",
    )
    generate.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        metavar="P",
        help="sample among the most likely tokens holding probability P (default 1: all)",
    )
    generate.add_argument(
        "--seed", type=int, default=0, metavar="S", help="random seed (default 0)"
    )
    generate.add_argument("--weights", choices=["best", "final"], default="best", help=WEIGHTS_HELP)
    add_threads_option(generate)
    generate.set_defaults(handler=_generate)

    if task is not None and verb in TASK_VERBS:
        chosen = {"evaluate": evaluate, "predict": predict, "compare": compare}[verb]
        chosen.set_defaults(task_options=_add_task_options(chosen, verb, task))

    from rnnkit.cli import data, diagnose, serve
    from rnnkit.cli import export as export_verb

    data.add_parsers(verbs)
    diagnose.add_parser(verbs)
    serve.add_parser(verbs)
    export_verb.add_parser(verbs)
    return parser


def _run_task(argv: Sequence[str]) -> tuple[Any, str | None]:
    """The task of the first RUN of an ``evaluate`` / ``predict`` / ``compare`` command line,
    or None when there is none or it cannot be read (the verb then reports why)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("verb", nargs="?")
    pre.add_argument("run", nargs="?")
    known, _ = pre.parse_known_args(argv)
    if known.verb not in TASK_VERBS or not known.run:
        return None, known.verb
    from rnnkit import api

    try:
        return api.run_task(Path(known.run)), known.verb
    except (ValueError, OSError):
        return None, known.verb


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnnkit`` console script; returns the exit status."""
    from rnnkit.io import CheckpointError
    from rnnkit.training import TrainingError

    argv = list(sys.argv[1:] if argv is None else argv)
    task, verb = _run_task(argv)
    parser = build_parser(task, verb)
    if task is None and verb in TASK_VERBS:
        args, unknown = parser.parse_known_args(argv)  # the run's error comes first
    else:
        args, unknown = parser.parse_args(argv), []
    try:
        status = int(args.handler(args))
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        sys.stdout.flush()
        return status
    except BrokenPipeError:  # the reader went away, e.g. `rnnkit compare ... --json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, CheckpointError, OSError) as err:
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
