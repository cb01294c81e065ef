"""The translation task's configuration: its ``data`` and ``objective`` sections, the decoding
length limit's constants and its fit to the training pairs (:func:`fit_length_limit`), the input
bound, and the options of the task's ``evaluate``, ``compare`` and ``predict``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from rnnkit.config import FrozenConfig
from rnnkit.data.parallel import OnError
from rnnkit.data.tokenizers import TokenizerKind
from rnnkit.tasks.base import Option
from rnnkit.tasks.decoding_options import PREDICT_OPTIONS, SEARCH_OPTIONS

PathList = str | list[str]

LIMIT_QUANTILE = 0.99
"""The quantile of the training pairs' (T + 1) / S ratio taken as ``max_len_a``."""
LIMIT_MARGIN = 2
"""Tokens added to the ``max_len_b`` that lets every kept training target fit."""
LENGTH_LIMIT_FILE = "length_limit.json"
"""The run folder's fitted length limit, ``{"max_len_a": a, "max_len_b": b, ...}``."""
OLD_LIMIT = (1.5, 10)
"""(a, b) of runs saved before the limit was fitted (the fixed default of earlier versions)."""
INPUT_FACTOR = 4
"""Inputs of more than ``INPUT_FACTOR * data.max_length`` tokens are refused by default."""

MAX_INPUT_OPTION = Option(
    "max_input_tokens",
    "--max-input-tokens",
    int,
    f"refuse a source of more than N tokens (default {INPUT_FACTOR} x the run's data.max_length)",
    "N",
)

EVALUATE_OPTIONS: tuple[Option, ...] = (
    *SEARCH_OPTIONS,
    MAX_INPUT_OPTION,
    Option("output", "--output", Path, "write the translations here, one per line", "FILE"),
)
"""The options of ``rnnkit evaluate`` on a translation run."""
COMPARE_OPTIONS: tuple[Option, ...] = (
    *SEARCH_OPTIONS,
    MAX_INPUT_OPTION,
    Option("plot", "--plot", Path, "write BLEU against source length as a PNG", "PNG"),
)
"""The options of ``rnnkit compare`` on translation runs."""
PREDICTION_OPTIONS: tuple[Option, ...] = (
    *SEARCH_OPTIONS,
    *PREDICT_OPTIONS,
    MAX_INPUT_OPTION,
    Option(
        "attention_plot",
        "--attention-plot",
        Path,
        "write an attention heatmap of each input's best translation: DIR/001.png, ...",
        "DIR",
    ),
)
"""The options of ``rnnkit predict`` on a translation run."""


class TranslationDataConfig(FrozenConfig):
    """The ``data`` section of a translation run.

    Attributes:
        corpus: a built-in corpus (``bible-en-fr``, ``emoji-en-fr``); or give ``train``/``valid``.
        train, valid: a TSV file, or a list of two aligned text files (source, target).
        columns: the (source, target) columns of a TSV file, 0-based.
        on_error: ``raise`` at the first bad line, or ``skip`` bad lines and count them.
        tokenizer: ``unigram`` or ``bpe`` (sentencepiece), ``word`` or ``char``.
        vocab_size: V of each tokeniser (the maximum for word/char), reserved ids included.
        joint_vocab: one tokeniser for both sides (needed to tie nothing; it shares subwords).
        max_length: training pairs longer than this (tokens, either side) are left out; inputs
            longer than ``4 * max_length`` are refused (module docstring).
        max_len_a, max_len_b: the decoding length limit ``floor(a * S + b)``; None (default)
            takes the one fitted to the training pairs (module docstring).
        batch_tokens: padded-token budget per batch; None batches ``train.batch_size`` sentences.
        valid_size: validate on the first N validation pairs only (None: all).
    """

    corpus: str | None = None
    train: PathList | None = None
    valid: PathList | None = None
    columns: tuple[int, int] = (0, 1)
    on_error: OnError = "raise"
    tokenizer: TokenizerKind = "unigram"
    vocab_size: int = Field(8000, ge=8)
    joint_vocab: bool = True
    max_length: int = Field(100, ge=1)
    max_len_a: float | None = Field(None, ge=0)
    max_len_b: int | None = Field(None, ge=0)
    batch_tokens: int | None = Field(None, ge=1)
    valid_size: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> TranslationDataConfig:
        if self.corpus is None and (self.train is None or self.valid is None):
            raise ValueError("set data.corpus, or both data.train and data.valid")
        if self.corpus is not None and (self.train is not None or self.valid is not None):
            raise ValueError("set either data.corpus or data.train/data.valid, not both")
        for name in ("train", "valid"):
            value = getattr(self, name)
            if isinstance(value, list) and len(value) != 2:
                raise ValueError(
                    f"data.{name} must be a TSV path or a list of two aligned files, got "
                    f"{len(value)} paths"
                )
        return self


class TranslationObjective(FrozenConfig):
    """The ``objective`` section of a translation run: how the loss is taken.

    Attributes:
        label_smoothing: epsilon of label-smoothed cross-entropy, in [0, 1).
        scheduled_sampling: the largest rate at which the decoder is fed its own sample instead
            of the reference token (Bengio et al., 2015), in [0, 1]; 0 is teacher forcing.
        scheduled_sampling_steps: steps over which the rate ramps linearly from 0 to its maximum.
    """

    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    scheduled_sampling: float = Field(0.0, ge=0.0, le=1.0)
    scheduled_sampling_steps: int = Field(5000, ge=1)


def fit_length_limit(
    lengths: Sequence[tuple[int, int]],
    quantile: float = LIMIT_QUANTILE,
    margin: int = LIMIT_MARGIN,
) -> tuple[float, int]:
    """The decoding length limit (a, b), ``floor(a * S + b)`` steps, fitted to training pairs.

    ``a`` is the ``quantile`` of the ratio (T + 1) / S (eos is a step), rounded up to two
    decimals; ``b`` is the smallest integer with which every pair's T + 1 steps fit, plus
    ``margin``. So every training target fits, and a source S tokens long gets about as many
    target tokens as the longest-translating 1 % of the training data had per source token.

    Args:
        lengths: (S, T) token counts of each training pair, S >= 1, T without eos.
        quantile: in (0, 1].
        margin: tokens added to b.

    Returns:
        (max_len_a, max_len_b).
    """
    if not lengths:
        raise ValueError("fit_length_limit needs at least one pair")
    if min(s for s, _ in lengths) < 1:
        raise ValueError("every source must have at least one token")
    ratios = np.array([(t + 1) / s for s, t in lengths], dtype=np.float64)  # (N,)
    a = math.ceil(round(float(np.quantile(ratios, quantile)) * 100, 6)) / 100
    b = max(0, max(t + 1 - math.floor(a * s) for s, t in lengths)) + margin
    return a, b
