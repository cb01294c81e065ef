"""The README and docs name only things that exist: every ``rnnkit.a.b`` they mention imports,
every function of ``rnnkit.nn.functional`` the README lists is there, and every config they
train by name is built in."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

import rnnkit.nn.functional
from rnnkit.config import builtin_configs

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOTTED = re.compile(r"\brnnkit(?:\.[A-Za-z_]\w*)+")


def resolves(name: str) -> bool:
    """True if ``name`` is a module, or an attribute reached from the longest importable prefix."""
    try:
        if importlib.util.find_spec(name) is not None:  # a module: found without running it
            return True
    except ModuleNotFoundError:  # a parent is a module, not a package: an attribute path
        pass
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_dotted_name_resolves(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    names = sorted({m.group(0).rstrip(".") for m in DOTTED.finditer(text)})
    missing = [n for n in names if not resolves(n)]
    assert not missing, f"{doc.name} names what does not exist: {missing}"


def test_the_readme_lists_real_cell_functions() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    bullet = next(line for line in readme.splitlines() if "`rnnkit.nn.functional`" in line)
    names = re.findall(r"`(\w+_cell)", bullet + readme.split(bullet, 1)[1].split("\n-")[0])
    assert names, "the README's functional bullet names no cell function"
    for name in names:
        assert hasattr(rnnkit.nn.functional, name), name


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_configs_trained_by_name_are_built_in(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    named = re.findall(r"rnnkit train ([\w-]+) ", text)
    unknown = sorted({n for n in named if n.upper() != n and n not in builtin_configs()})
    assert not unknown, f"{doc.name} trains configs that are not built in: {unknown}"


SYNTHETIC_PREDICT = re.compile(r'rnnkit predict runs/(copy|reverse) ((?:"[\d ]+" ?)+)')


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_synthetic_predict_examples_use_lengths_the_config_trains_on(doc: Path) -> None:
    from rnnkit.tasks.run import load_config

    for name, quoted in SYNTHETIC_PREDICT.findall(doc.read_text(encoding="utf-8")):
        data = load_config(name, []).data
        low = data.min_length or data.length
        for example in re.findall(r'"([\d ]+)"', quoted):
            n = len(example.split())
            assert low <= n <= data.length, (
                f"{doc.name}: {example!r} has {n} symbols; {name}.yaml trains on {low}-{data.length}"
            )
