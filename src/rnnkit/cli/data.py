"""``rnnkit corpus`` and ``rnnkit config``: the built-in data sets and configs, as files.

- ``rnnkit corpus NAME --out PATH``: a built-in parallel corpus split written as TSV; ``--list``
  shows them.
- ``rnnkit config list`` / ``rnnkit config show NAME > my.yaml``: the configs shipped with
  rnnkit, to train as they are (``rnnkit train NAME``) or to copy and edit.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any


def list_corpora() -> str:
    """Each built-in corpus: name, description, split rule and whether its package is installed."""
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


def config(args: argparse.Namespace) -> int:
    """``rnnkit config list`` / ``rnnkit config show NAME``."""
    from rnnkit.config import ConfigError, builtin_configs

    configs = builtin_configs()
    if args.action == "list":
        if args.name is not None:
            raise ValueError("rnnkit config list takes no NAME")
        width = max(len(name) for name in configs)
        for name, path in configs.items():
            lines = path.read_text(encoding="utf-8").splitlines()
            first = next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("#")), "")
            print(f"{name.ljust(width)}  {first}")
        return 0
    if args.name is None:
        raise ValueError("give the NAME of a built-in config (rnnkit config list shows them)")
    if args.name not in configs:
        raise ConfigError(
            f"unknown built-in config '{args.name}'; built-in configs: {', '.join(configs)}"
        )
    print(configs[args.name].read_text(encoding="utf-8"), end="")
    return 0


def add_parsers(verbs: Any) -> None:
    """Register ``rnnkit corpus`` and ``rnnkit config`` on the top-level subparsers ``verbs``."""
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

    config_parser: argparse.ArgumentParser = verbs.add_parser(
        "config",
        help="list the built-in configs, or print one to copy and edit",
        description=(
            "rnnkit ships the configs of its documented runs. 'rnnkit config show NAME > my.yaml' "
            "copies one; 'rnnkit train NAME' trains it as it is."
        ),
    )
    config_parser.add_argument("action", choices=["list", "show"], help="list them, or show one")
    config_parser.add_argument("name", nargs="?", metavar="NAME", help="the config to show")
    config_parser.set_defaults(handler=config)
