r"""The ``language_model`` task: next-token prediction on a text stream, with truncated BPTT.

A run config::

    task: language_model
    data:
      corpus: bible-bbe            # bible-bbe | hamlet, or:  train: a.txt  valid: b.txt  test: c.txt
      tokenizer: word              # word | char | unigram | bpe (sentencepiece)
      vocab_size: null             # word/char: null keeps every training token; else the N most
                                   # frequent (reserved ids included) and <unk>
    model: {arch: rnn, cell: lstm, embedding_size: 200, hidden_size: 200, num_layers: 2,
            dropout: 0.2, tie_embeddings: false}     # or arch: transformer (num_heads)
    train:
      bptt: 35                     # tokens per window
      variable_bptt: false         # AWD-LSTM's random window lengths
      batch_size: 20               # parallel streams
      optimizer: sgd
      lr: 20
      clip_grad_norm: 0.25
      max_time_s: 600

Data. ``data.train`` / ``data.valid`` / ``data.test`` are UTF-8 text files (one path or a list,
read in order), or ``data.corpus`` names a built-in corpus with fixed splits
(:mod:`rnnkit.data.text_stream`). A file that is missing, not UTF-8 or empty is an error naming it
(and the line). Every line becomes its tokens followed by the end-of-line token ``</s>``, and the
whole text is one stream (:func:`rnnkit.data.text_stream.encode_stream`). :meth:`prepare` trains
the tokeniser on the training text and saves it in the run folder (``tokenizer.json``, or
``tokenizer.model`` for sentencepiece); ``data.vocab_size`` is required by sentencepiece.

Training is the stream as it is: the training stream cut into B = ``train.batch_size`` parallel
rows, windows of ``train.bptt`` tokens taken left to right (:func:`~rnnkit.data.text_stream.
cut_streams`, :func:`~rnnkit.data.text_stream.window_spans`), and the hidden state of window k
carried into window k + 1 (``stateful = True``: the trainer detaches it after each step, so
gradients flow back ``bptt`` steps only, and resets it at each epoch). A batch is::

    x (B, T)   input ids          y (B, T)   the next ids (PAD_ID where an evaluation row is padded)

Loss: the mean cross-entropy over real targets; gradients are clipped at ``train.clip_grad_norm``.
Validation (and ``rnnkit evaluate``) runs the whole stream, cut into ``data.eval_batch_size`` rows
with padding so every token counts once, with the state carried: ``loss`` (nats per token) and
``ppl`` = exp(loss). A checkpoint holds the carried state, so a run resumed mid-epoch continues
bit for bit.

Verbs. ``rnnkit evaluate RUN --data test.txt --json`` gives ``{"perplexity", "loss", "tokens",
"oov_rate"}`` (``oov_rate``: the share of the file's tokens that are ``<unk>``); ``rnnkit compare``
puts runs side by side (parameters, perplexity, evaluation and generation tokens/s); ``rnnkit
predict RUN "Apple is" --top-k 5`` prints the most likely next tokens with their probabilities,
and :meth:`LanguageModelPredictor.generate` writes text with the shared sampling code of
:mod:`rnnkit.decoding` (temperature, top-k, top-p, a seed).

The predictor (:class:`LanguageModelPredictor`, imported here), its decoder for generation and
its JSON models are in :mod:`rnnkit.tasks.language_model_predict`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.data.text_stream import (
    LM_CORPORA,
    TextStreamError,
    TokenStream,
    cut_streams,
    encode_stream,
    load_lm_corpus,
    read_texts,
    window_spans,
)
from rnnkit.data.tokenizers import (
    PAD_ID,
    Tokenizer,
    TokenizerKind,
    VocabSizeError,
    build_tokenizer,
    load_tokenizer,
)
from rnnkit.decoding import SamplingConfig
from rnnkit.models.language_model import (
    LanguageModel,
    LanguageModelConfig,
    RecurrentLM,
    TransformerLM,
    build_language_model,
)
from rnnkit.tasks.base import (
    Option,
    Report,
    StepOutput,
    Task,
    TaskError,
)
from rnnkit.tasks.language_model_predict import (
    DEFAULT_TOP_K,
    LanguageModelPredictor,
)
from rnnkit.training.device import flush_denormals
from rnnkit.training.losses import token_cross_entropy

logger = logging.getLogger(__name__)

PathList = str | list[str]
Split = Literal["train", "valid", "test"]

DEFAULT_GEN_TOKENS = 200
"""Tokens ``rnnkit compare`` generates to time generation when ``--gen-tokens`` is not given."""


class LanguageModelDataConfig(FrozenConfig):
    """The ``data`` section of a language-model run.

    Attributes:
        corpus: a built-in corpus (``bible-bbe``, ``hamlet``); or give ``train`` and ``valid``.
        train, valid, test: a UTF-8 text file or a list of them (``test`` is optional).
        tokenizer: ``word``, ``char``, or sentencepiece ``unigram`` / ``bpe``.
        vocab_size: V, reserved ids included: the most frequent training tokens (word, char) or
            the sentencepiece size (required there); None keeps every training token.
        eval_batch_size: rows the validation and test streams are cut into.
    """

    corpus: str | None = None
    train: PathList | None = None
    valid: PathList | None = None
    test: PathList | None = None
    tokenizer: TokenizerKind = "word"
    vocab_size: int | None = Field(None, ge=5)
    eval_batch_size: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> LanguageModelDataConfig:
        files = (self.train, self.valid, self.test)
        if self.corpus is None and (self.train is None or self.valid is None):
            raise ValueError("set data.corpus, or both data.train and data.valid")
        if self.corpus is not None and any(f is not None for f in files):
            raise ValueError("set either data.corpus or data.train/valid/test, not both")
        if self.corpus is not None and self.corpus not in LM_CORPORA:
            raise ValueError(
                f"unknown corpus '{self.corpus}'; valid corpora: {', '.join(LM_CORPORA)}"
            )
        for name, value in zip(("train", "valid", "test"), files, strict=True):
            if isinstance(value, list) and not value:
                raise ValueError(f"data.{name} is an empty list of files")
        if self.tokenizer in ("unigram", "bpe") and self.vocab_size is None:
            raise ValueError(f"tokenizer '{self.tokenizer}' needs data.vocab_size")
        return self


class LMBatch(NamedTuple):
    """One window of B parallel streams.

    Attributes:
        x: (B, T) input ids.
        y: (B, T) the next ids; ``PAD_ID`` past the end of a padded evaluation row.
    """

    x: Tensor
    y: Tensor


def stream_batches(
    stream: TokenStream,
    batch_size: int,
    bptt: int,
    *,
    pad: bool,
    variable: bool = False,
    seed: int = 0,
    epoch: int = 0,
) -> list[LMBatch]:
    """The windows of a stream cut into ``batch_size`` rows, in order (module docstring)."""
    x, y = cut_streams(stream.ids, batch_size, pad=pad)  # (B, L)
    spans = window_spans(x.shape[1], bptt, variable=variable, seed=seed, epoch=epoch)
    return [LMBatch(x[:, s : s + n].contiguous(), y[:, s : s + n].contiguous()) for s, n in spans]


def stream_loss(
    model: nn.Module, batches: Iterable[LMBatch], state: Any = None
) -> tuple[float, int, Any]:
    """Summed cross-entropy (nats) and real targets over ``batches``, the state carried.

    Run under ``torch.no_grad()`` and ``model.eval()``. Returns (loss sum, targets, last state).
    """
    total, tokens = 0.0, 0
    for batch in batches:
        out = model(batch.x, state)
        logits = out.logits  # (B, T, V)
        total += float(
            F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                batch.y.reshape(-1),
                ignore_index=PAD_ID,
                reduction="sum",
            )
        )
        tokens += int((batch.y != PAD_ID).sum())
        state = out.state
    return total, tokens, state


def count_parameters(model: nn.Module) -> int:
    """Parameters of ``model``, a tied (shared) tensor counted once."""
    return sum(p.numel() for p in model.parameters())


class LanguageModelTask(Task):
    """Predict the next token of a text stream with a recurrent or Transformer language model."""

    name = "language_model"
    DataConfig: ClassVar[type[FrozenConfig]] = LanguageModelDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = LanguageModelConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "ppl")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("loss", "min")
    stateful: ClassVar[bool] = True
    predict_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "top_k",
            "--top-k",
            int,
            f"show the K most likely next tokens (default {DEFAULT_TOP_K})",
            "K",
        ),
    )
    compare_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "gen_tokens",
            "--gen-tokens",
            int,
            f"tokens generated to time generation (default {DEFAULT_GEN_TOKENS})",
            "N",
        ),
    )

    def __init__(self, config: Any, run_dir: Path | None = None) -> None:
        super().__init__(config, run_dir)
        self._tokenizer: Tokenizer | None = None
        self._streams: dict[str, TokenStream] = {}
        self._valid: list[LMBatch] | None = None

    @property
    def data(self) -> LanguageModelDataConfig:
        assert isinstance(self.config.data, LanguageModelDataConfig)
        return self.config.data

    @property
    def model_config(self) -> LanguageModelConfig:
        assert isinstance(self.config.model, LanguageModelConfig)
        return self.config.model

    # ------------------------------------------------------------------------------- data

    def read_lines(self, split: Split) -> list[str]:
        """The configured ``split``'s lines (built-in corpus or files).

        Raises:
            TaskError: the split is not configured, or a file or corpus cannot be read.
        """
        d = self.data
        try:
            if d.corpus is not None:
                return load_lm_corpus(d.corpus, split)
            value = {"train": d.train, "valid": d.valid, "test": d.test}[split]
            if value is None:
                raise TaskError(f"data.{split} is not set: give a text file")
            return read_texts(value)
        except TextStreamError as err:
            raise TaskError(f"data.{split}: {err}") from None

    def _tokenizer_path(self) -> Path:
        ext = ".model" if self.data.tokenizer in ("unigram", "bpe") else ".json"
        return self.folder() / f"tokenizer{ext}"

    def prepare(self) -> None:
        """Train the tokeniser on the training text and save it in the run folder.

        Raises:
            TaskError: unreadable training data, or a sentencepiece ``data.vocab_size`` the text
                cannot give (naming the key and the size it allows); nothing is left behind.
        """
        d = self.data
        lines = self.read_lines("train")
        path = self._tokenizer_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            build_tokenizer(d.tokenizer, lines, path.with_suffix(""), vocab_size=d.vocab_size)
        except VocabSizeError as err:
            path.unlink(missing_ok=True)
            path.with_suffix(".vocab").unlink(missing_ok=True)
            raise TaskError(
                f"data.vocab_size={d.vocab_size} is {err.reason()}; {err.advice('data.vocab_size')}"
            ) from None
        except ValueError as err:
            raise TaskError(f"data.vocab_size={d.vocab_size}: {err}") from None
        self._tokenizer = None
        self._streams.clear()
        self._valid = None

    @property
    def tokenizer(self) -> Tokenizer:
        """The run's tokeniser, read from the run folder (written by :meth:`prepare`)."""
        if self._tokenizer is None:
            path = self._tokenizer_path()
            if not path.is_file():
                raise TaskError(f"{path}: no tokeniser; prepare() trains it (rnnkit train does)")
            self._tokenizer = load_tokenizer(path)
        return self._tokenizer

    def stream(self, split: Split) -> TokenStream:
        """The configured ``split`` as one token stream (read and encoded once)."""
        if split not in self._streams:
            self._streams[split] = encode_stream(self.tokenizer, self.read_lines(split))
        return self._streams[split]

    def file_stream(self, path: Path) -> TokenStream:
        """A user's text file as one token stream; errors name the file (and line)."""
        try:
            return encode_stream(self.tokenizer, read_texts(path))
        except TextStreamError as err:
            raise TaskError(str(err)) from None

    def eval_batches(self, stream: TokenStream) -> list[LMBatch]:
        """The evaluation windows of ``stream``: ``data.eval_batch_size`` padded rows."""
        d = self.data
        return stream_batches(stream, d.eval_batch_size, self.config.train.bptt, pad=True)

    def train_batches(self, epoch: int) -> Iterator[LMBatch]:
        train = self.config.train
        stream = self.stream("train")
        if stream.num_targets < train.batch_size:
            raise TaskError(
                f"data.train: {stream.num_targets} tokens are fewer than train.batch_size="
                f"{train.batch_size} streams"
            )
        return iter(
            stream_batches(
                stream,
                train.batch_size,
                train.bptt,
                pad=False,
                variable=train.variable_bptt,
                seed=train.seed,
                epoch=epoch,
            )
        )

    def valid_batches(self) -> list[LMBatch]:
        if self._valid is None:
            self._valid = self.eval_batches(self.stream("valid"))
        return self._valid

    def load_examples(self, path: Path) -> list[LMBatch]:
        return self.eval_batches(self.file_stream(path))

    # ------------------------------------------------------------------------------ model

    def build_model(self) -> LanguageModel:
        return build_language_model(self.model_config, self.tokenizer.vocab_size)

    def step(self, model: nn.Module, batch: LMBatch, state: Any = None) -> StepOutput:
        out = model(batch.x, state)  # logits (B, T, V)
        loss = token_cross_entropy(out.logits, batch.y, PAD_ID)
        return StepOutput(loss=loss, num_tokens=int((batch.y != PAD_ID).sum()), state=out.state)

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Loss (nats per token) and perplexity over the whole stream, the state carried."""
        with torch.no_grad():
            total, tokens, _ = stream_loss(model, batches)
        loss = total / max(tokens, 1)
        return {"loss": loss, "ppl": math.exp(min(loss, 700.0))}

    # ------------------------------------------------------------ evaluate and compare

    def _score(self, model: nn.Module, stream: TokenStream) -> dict[str, Any]:
        model.eval()
        with torch.no_grad(), flush_denormals():
            total, tokens, _ = stream_loss(model, self.eval_batches(stream))
        loss = total / max(tokens, 1)
        return {
            "perplexity": math.exp(min(loss, 700.0)),
            "loss": loss,
            "tokens": tokens,
            "oov_rate": stream.oov_rate,
        }

    def evaluate_file(self, model: nn.Module, path: Path, options: Mapping[str, Any]) -> Report:
        """Perplexity, loss (nats per token), tokens and ``<unk>`` share of a text file."""
        return Report(self._score(model, self.file_stream(path)))

    def compare(
        self,
        names: Sequence[str],
        models: Sequence[nn.Module],
        path: Path,
        options: Mapping[str, Any],
    ) -> Report:
        """Runs side by side on one text file: parameters, perplexity, evaluation tokens/s and
        generation tokens/s (``--gen-tokens`` sampled tokens from an empty prompt, seed 0)."""
        n_gen = options.get("gen_tokens")
        n_gen = DEFAULT_GEN_TOKENS if n_gen is None else int(n_gen)
        if n_gen < 1:
            raise TaskError(f"--gen-tokens must be at least 1, got {n_gen}")
        stream = self.file_stream(path)
        rows = []
        for name, model in zip(names, models, strict=True):
            started = time.perf_counter()
            scores = self._score(model, stream)
            eval_s = time.perf_counter() - started
            predictor = LanguageModelPredictor(self, model)
            started = time.perf_counter()
            predictor.generate("", n_gen, SamplingConfig(), 0)
            gen_s = time.perf_counter() - started
            rows.append(
                {
                    "name": name,
                    "arch": _arch(model),
                    "parameters": count_parameters(model),
                    **scores,
                    "eval_tokens_per_s": scores["tokens"] / max(eval_s, 1e-9),
                    "generation_tokens_per_s": n_gen / max(gen_s, 1e-9),
                }
            )
        width = max(len("run"), *(len(n) for n in names))
        lines = [
            f"{'run'.ljust(width)}  {'arch':<11}  {'params':>10}  {'perplexity':>10}  "
            f"{'loss':>7}  {'eval tok/s':>10}  {'gen tok/s':>9}",
            *(
                f"{r['name'].ljust(width)}  {r['arch']:<11}  {r['parameters']:>10,}  "
                f"{r['perplexity']:>10.2f}  {r['loss']:>7.4f}  {r['eval_tokens_per_s']:>10.0f}  "
                f"{r['generation_tokens_per_s']:>9.1f}"
                for r in rows
            ),
            f"({path}: {stream.num_targets} tokens, {stream.oov_rate:.2%} <unk>; "
            f"generation: {n_gen} tokens)",
        ]
        return Report({"data": str(path), "runs": rows}, "\n".join(lines))


def _arch(model: nn.Module) -> str:
    if isinstance(model, TransformerLM):
        return "transformer"
    if isinstance(model, RecurrentLM):
        return model.config.cell
    return type(model).__name__


LanguageModelTask.predictor = LanguageModelPredictor
