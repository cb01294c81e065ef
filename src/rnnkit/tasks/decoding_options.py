"""Command-line options of decoding, shared by every task that writes sequences.

Translation, captioning and language models decode with :mod:`rnnkit.decoding`; they declare
these :class:`~rnnkit.tasks.base.Option` tuples so ``--beam``, ``--nbest``, ``--length-penalty``,
``--max-len-a/-b`` and the sampling flags mean the same everywhere, and turn the parsed values
into a :class:`~rnnkit.decoding.SearchConfig` / :class:`~rnnkit.decoding.SamplingConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from rnnkit.decoding import SamplingConfig, SearchConfig
from rnnkit.tasks.base import Option, TaskError

DEFAULT_BEAM = 5
"""Beam size K when ``--beam`` is not given."""

SEARCH_OPTIONS = (
    Option("beam_size", "--beam", int, f"beam size K (default {DEFAULT_BEAM}; 1 = greedy)", "K"),
    Option(
        "length_penalty",
        "--length-penalty",
        float,
        "alpha of the GNMT length penalty ((5 + n) / 6) ** alpha (default 1.0; 0 = none)",
        "ALPHA",
    ),
    Option(
        "max_len_a",
        "--max-len-a",
        float,
        "at most floor(a * S + b) output tokens for an input of S tokens: a (default: the "
        "run's own limit, e.g. fitted to its training data; 1.5 where it has none)",
        "A",
    ),
    Option(
        "max_len_b",
        "--max-len-b",
        int,
        "... and b (default: the run's own; 10 where it has none)",
        "B",
    ),
)
"""Beam search options (``evaluate``, ``compare`` and ``predict``)."""

PREDICT_OPTIONS = (
    Option("n_best", "--nbest", int, "outputs per input, best first (default 1)", "N"),
    Option("sample", "--sample", bool, "draw --nbest samples instead of searching"),
    Option("temperature", "--temperature", float, "sampling temperature (default 1.0)", "T"),
    Option("top_k", "--top-k", int, "sample among the k most likely tokens (default: all)", "K"),
    Option("top_p", "--top-p", float, "sample within the top-p probability mass (default 1)", "P"),
    Option("seed", "--seed", int, "random seed of --sample (default 0)", "S"),
)
"""n-best and sampling options (``predict``)."""

_FLAGS = {o.name: o.flag for o in (*SEARCH_OPTIONS, *PREDICT_OPTIONS)}


def _config(cls: type[Any], values: dict[str, Any]) -> Any:
    try:
        return cls(**values)
    except ValidationError as err:
        first = err.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        message = first["msg"].removeprefix("Value error, ")
        flag = _FLAGS.get(key)
        raise TaskError(f"{flag}: {message}" if flag else message) from None


def search_config(
    options: Mapping[str, Any],
    *,
    max_len_a: float | None = None,
    max_len_b: int | None = None,
) -> SearchConfig:
    """The :class:`SearchConfig` of parsed options (None values take the defaults).

    ``beam_size`` defaults to :data:`DEFAULT_BEAM`, or to ``n_best`` when that is larger. The
    length limit's ``max_len_a`` / ``max_len_b`` default to the arguments of the same name (a
    run's own limit, see :mod:`rnnkit.tasks.translation`), else to :class:`SearchConfig`'s.

    Raises:
        TaskError: a value out of range, naming its flag.
    """
    n_best = options.get("n_best")
    n_best = 1 if n_best is None else n_best
    beam = options.get("beam_size")
    values: dict[str, Any] = {
        "beam_size": max(DEFAULT_BEAM, n_best) if beam is None else beam,
        "n_best": n_best,
    }
    for key in ("beam_size", "n_best"):
        if values[key] < 1:
            raise TaskError(f"{_FLAGS[key]} must be at least 1, got {values[key]}")
    if n_best > values["beam_size"] and not options.get("sample"):
        raise TaskError(f"--nbest {n_best} must not exceed --beam {values['beam_size']}")
    if options.get("sample"):
        values["beam_size"] = max(values["beam_size"], n_best)
    for key, default in (("max_len_a", max_len_a), ("max_len_b", max_len_b)):
        if default is not None:
            values[key] = default
    for key in ("length_penalty", "max_len_a", "max_len_b"):
        if options.get(key) is not None:
            values[key] = options[key]
    config: SearchConfig = _config(SearchConfig, values)
    return config


def sampling_options(options: Mapping[str, Any]) -> SamplingConfig | None:
    """The :class:`SamplingConfig` when ``--sample`` is given, else None (search instead).

    Raises:
        TaskError: a sampling flag without ``--sample``, or a value out of range.
    """
    keys = ("temperature", "top_k", "top_p", "seed")
    given = {k: options[k] for k in keys if options.get(k) is not None}
    if not options.get("sample"):
        if given:
            raise TaskError(f"{_FLAGS[next(iter(given))]} needs --sample")
        return None
    return sampling_config(given)


def sampling_config(options: Mapping[str, Any]) -> SamplingConfig:
    """The :class:`SamplingConfig` of ``temperature``, ``top_k``, ``top_p`` and ``seed`` in
    ``options`` (absent or None: the defaults), for verbs that always sample (``generate``).

    Raises:
        TaskError: a value out of range, naming its flag.
    """
    keys = ("temperature", "top_k", "top_p", "seed")
    config: SamplingConfig = _config(
        SamplingConfig, {k: options[k] for k in keys if options.get(k) is not None}
    )
    return config
