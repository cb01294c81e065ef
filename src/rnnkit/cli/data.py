"""``rnnkit corpus`` and ``rnnkit config``: the built-in data sets and configs, as files.

- ``rnnkit corpus NAME --out PATH``: a built-in data set written to a file: a parallel corpus
  split as TSV, a series as CSV (``time,value``), any kind that :func:`rnnkit.data.corpora.builtin_data`
  knows; ``rnnkit corpus`` (or ``--list``) lists them.
- ``rnnkit config list`` / ``rnnkit config show NAME > my.yaml``: the configs shipped with
  rnnkit, to train as they are (``rnnkit train NAME``) or to copy and edit.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any


def list_corpora() -> str:
    """Each built-in data set under its kind: name, description, splits and whether its
    package is installed."""
    from rnnkit.data.corpora import builtin_data

    groups: dict[str, list[Any]] = {}
    for data in builtin_data().values():
        groups.setdefault(data.group, []).append(data)
    lines = []
    for group, members in groups.items():
        width = max(len(data.name) for data in members)
        pad = " " * (width + 2)
        lines.append(f"{group} ({members[0].layout}):")
        for data in members:
            installed = importlib.util.find_spec(data.package) is not None
            status = "installed" if installed else f"missing: {data.install}"
            lines += [
                f"  {data.name.ljust(width)}  {data.description}",
                f"  {pad}split: {data.split_rule}",
                f"  {pad}package: {data.package} ({status})",
            ]
    return "\n".join(lines)


def corpus(args: argparse.Namespace) -> int:
    """``rnnkit corpus``: write a built-in data set (a split of it, or all) to a file, or list
    the data sets."""
    if args.list and args.name is not None:
        raise ValueError("give a corpus NAME or --list, not both")
    if args.list or args.name is None:
        print(list_corpora())
        return 0
    from rnnkit.data.corpora import builtin_data

    known = builtin_data()
    if args.name not in known:
        raise ValueError(f"unknown corpus {args.name!r}; built-in data sets: {', '.join(known)}")
    data = known[args.name]
    kind = data.suffix.lstrip(".").upper()
    if args.out is None:
        raise ValueError(f"--out PATH is required: where to write the {kind}")
    out = Path(args.out)
    if not data.splits:  # written whole
        if args.split not in (None, "all"):
            raise ValueError(
                f"'{data.name}' has no fixed splits: leave out --split to write it whole"
            )
        splits: list[str | None] = [None]
    else:
        splits = list(data.splits) if args.split == "all" else [args.split or data.splits[0]]
    if args.split == "all" and data.splits:
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; --split all writes a folder")
        targets = {split: out / f"{split}{data.suffix}" for split in splits}
    else:
        if out.is_dir():
            raise ValueError(f"--out {out} is a folder; give the {kind} file to write")
        targets = {splits[0]: out}
    loaded = {split: data.load(split) for split in splits}  # read all, then write
    for split in splits:
        part = loaded[split]
        part.write(targets[split])
        name = data.name if split is None else f"{data.name} {split}"
        print(f"{name}: {part.count} {part.unit} -> {targets[split]}")
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
        help="write a built-in data set (parallel corpus, series) to a file, or list them",
        description=(
            "Write a built-in data set to a file, to read it or to use it as --data: a split of "
            "a parallel corpus (the one 'data.corpus' trains on) as source<TAB>target lines, a "
            "series (the one 'data.series' trains on) as CSV with the header time,value. "
            "Without NAME, list them."
        ),
    )
    corpus_parser.add_argument(
        "name", nargs="?", metavar="NAME", help="data set, e.g. emoji-en-fr or airpassengers"
    )
    corpus_parser.add_argument(
        "--split",
        choices=["train", "valid", "test", "all"],
        default=None,
        help=(
            "split of a corpus to write (default train); all writes PATH/train.tsv, valid.tsv "
            "and test.tsv; a series is written whole"
        ),
    )
    corpus_parser.add_argument(
        "--out", metavar="PATH", help="file to write (a folder with --split all)"
    )
    corpus_parser.add_argument(
        "--list", action="store_true", help="list the data sets with their descriptions and splits"
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
