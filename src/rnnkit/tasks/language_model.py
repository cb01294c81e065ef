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

Length: this module is over 700 lines. The stream batching for truncated BPTT, the perplexity
of ``evaluate``, next-word ``predict`` and ``generate`` all walk the same token stream and state
layout, and the models themselves already live in :mod:`rnnkit.models.language_model`. The
predictor (with its JSON models and the server's hooks) is the next piece to move out, into a
``language_model_predict`` module as the other tasks have; it was not moved in the change that
grew it, for want of a full test run after the move.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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
    BOS_ID,
    EOS_ID,
    PAD_ID,
    WORD_MARK,
    Tokenizer,
    TokenizerKind,
    VocabSizeError,
    build_tokenizer,
    load_tokenizer,
)
from rnnkit.decoding import SamplingConfig, sample
from rnnkit.models.language_model import (
    LanguageModel,
    LanguageModelConfig,
    RecurrentLM,
    TransformerLM,
    build_language_model,
)
from rnnkit.tasks.base import (
    JSONModel,
    Option,
    Predictor,
    Report,
    StepOutput,
    Task,
    TaskError,
    to_json,
)
from rnnkit.training.device import flush_denormals
from rnnkit.training.losses import token_cross_entropy

logger = logging.getLogger(__name__)

PathList = str | list[str]
Split = Literal["train", "valid", "test"]

DEFAULT_TOP_K = 5
"""Next tokens ``rnnkit predict`` shows when ``--top-k`` is not given."""
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


# ------------------------------------------------------------------------- decoding


class GenState(NamedTuple):
    """The decoder state of generation: the recurrent state, or the Transformer's context.

    Attributes:
        rnn: the recurrent model's state (each part (1, N, H_l)), or None.
        history: (N, t) the tokens the Transformer reads, or None.
    """

    rnn: Any
    history: Tensor | None

    def index_select(self, rows: Tensor) -> GenState:
        """The state of rows ``rows`` (N',)."""
        rnn = None
        if self.rnn is not None:
            rnn = tuple(tuple(t.index_select(1, rows) for t in layer) for layer in self.rnn)
        history = None if self.history is None else self.history.index_select(0, rows)
        return GenState(rnn, history)


@dataclass(frozen=True)
class PromptMemory:
    """The memory of generation (decoder protocol): the state after the prompt.

    Attributes:
        lengths: (N,) zeros, so the length limit ``floor(0 * S + max_tokens)`` is ``max_tokens``.
        init_state: the state after all prompt tokens but the last.
        last: (N,) the prompt's last token, fed at the first step.
    """

    lengths: Tensor
    init_state: GenState
    last: Tensor

    def index_select(self, rows: Tensor) -> PromptMemory:
        """The memory of rows ``rows`` (N',)."""
        return PromptMemory(
            self.lengths.index_select(0, rows),
            self.init_state.index_select(rows),
            self.last.index_select(0, rows),
        )


class _Step(NamedTuple):
    log_probs: Tensor
    state: GenState
    attention: Tensor | None


class LMDecoder:
    """A language model seen through the decoder protocol of :mod:`rnnkit.decoding`.

    The search feeds ``bos`` at its first step: it is replaced by the prompt's last token. The
    end-of-line token is an ordinary token here (a new line of text), and ``eos_id`` is the pad
    id, which is never produced, so generation runs to its length limit. The Transformer
    re-reads its last ``context`` tokens at every step.
    """

    pad_id = PAD_ID
    bos_id = BOS_ID
    eos_id = PAD_ID

    def __init__(self, model: nn.Module, context: int) -> None:
        self.model = model
        self.context = context

    def encode(self, prompt: Sequence[int], copies: int = 1) -> PromptMemory:
        """The memory of ``copies`` rows that all start from ``prompt`` (its ids, >= 1 of them)."""
        device = next(self.model.parameters()).device
        ids = torch.tensor(list(prompt), dtype=torch.long, device=device)[None]  # (1, P)
        ids = ids.expand(copies, -1)  # (N, P)
        head, last = ids[:, :-1], ids[:, -1]
        if isinstance(self.model, TransformerLM):
            state = GenState(None, head[:, -self.context :])
        else:
            rnn = self.model(head, None).state if head.shape[1] else None
            state = GenState(rnn, None)
        return PromptMemory(torch.zeros(copies, dtype=torch.long, device=device), state, last)

    def step(self, tokens: Tensor, state: GenState, memory: PromptMemory) -> _Step:
        """(N,) previous tokens -> log-probs (N, V) of the next, the new state."""
        tokens = torch.where(tokens == BOS_ID, memory.last, tokens)  # (N,)
        if state.history is not None:
            history = torch.cat([state.history, tokens[:, None]], dim=1)[:, -self.context :]
            logits = self.model(history, None).logits[:, -1]  # (N, V)
            new = GenState(None, history)
        else:
            out = self.model(tokens[:, None], state.rnn)
            logits, new = out.logits[:, -1], GenState(out.state, None)  # (N, V)
        return _Step(F.log_softmax(logits.float(), dim=-1), new, None)


@dataclass(frozen=True)
class Candidate:
    """One possible next token.

    Attributes:
        token: the tokeniser's piece (``</s>`` is the end of line).
        text: the piece as text (``▁`` word marks removed; a space, end of line shown as piece).
        probability: its probability under the model's softmax.
    """

    token: str
    text: str
    probability: float


@dataclass(frozen=True)
class NextTokens:
    """The most likely next tokens after a prompt.

    Attributes:
        prompt_tokens: the prompt's pieces as the model read them (``<unk>`` for unknown words).
        candidates: the k most likely next tokens, most likely first.
    """

    prompt_tokens: list[str]
    candidates: list[Candidate]


class CandidateJSON(JSONModel):
    """One next token (see :class:`Candidate`)."""

    token: str
    text: str
    probability: float


class NextTokensJSON(JSONModel):
    """A prompt's most likely next tokens, most likely first."""

    input: str
    prompt_tokens: list[str]
    candidates: list[CandidateJSON]


class LanguageModelPredictor(Predictor[str, NextTokens]):
    """Prompts in; their most likely next tokens out (``rnnkit predict``); :meth:`generate`."""

    task: LanguageModelTask

    def _prompt_ids(self, prompt: str) -> list[int]:
        """``</s>`` (a line start, as in training), then the prompt's ids."""
        return [EOS_ID, *self.task.tokenizer.encode(prompt)]

    def _display(self, token: int) -> tuple[str, str]:
        piece = self.task.tokenizer.id_to_piece(token)
        if token == EOS_ID or piece.strip() == "":
            return piece, WORD_MARK if piece == " " else piece
        text = piece[1:] if piece.startswith(WORD_MARK) and len(piece) > 1 else piece
        return piece, text

    def next_token_probs(self, prompt: str) -> Tensor:
        """(V,) the model's softmax over the token after ``prompt`` (read from a line start)."""
        model = self.model
        model.eval()
        ids = torch.tensor(
            [self._prompt_ids(prompt)], device=next(model.parameters()).device
        )  # (1, P)
        if isinstance(model, TransformerLM):
            ids = ids[:, -self.task.config.train.bptt :]
        with torch.no_grad(), flush_denormals():
            logits = model(ids, None).logits[0, -1]  # (V,)
        return F.softmax(logits.float(), dim=-1).cpu()

    def predict(self, inputs: Sequence[str], options: Mapping[str, Any]) -> list[NextTokens]:
        k = options.get("top_k")
        k = DEFAULT_TOP_K if k is None else int(k)
        if k < 1:
            raise TaskError(f"--top-k must be at least 1, got {k}")
        tok = self.task.tokenizer
        results = []
        for prompt in inputs:
            probs = self.next_token_probs(prompt)  # (V,)
            top = probs.topk(min(k, probs.numel()))
            candidates = [
                Candidate(*self._display(int(i)), float(p))
                for p, i in zip(top.values, top.indices, strict=True)
            ]
            pieces = [tok.id_to_piece(i) for i in tok.encode(prompt)]
            results.append(NextTokens(pieces, candidates))
        return results

    def export_onnx(self, folder: Path) -> dict[str, Any]:
        """The logits graph and the tokeniser (:mod:`rnnkit.tasks.language_model_export`)."""
        from rnnkit.tasks.language_model_export import export_language_model

        return export_language_model(self.task, self.model, folder, DEFAULT_TOP_K)

    def format(self, output: NextTokens) -> str:
        """One ``token<TAB>probability`` line per candidate, most likely first."""
        return "\n".join(f"{c.text}\t{c.probability:.4f}" for c in output.candidates)

    json_output = NextTokensJSON

    def input_tokens(self, inp: str) -> int:
        """The prompt's tokens under the run's tokeniser."""
        return len(self.task.tokenizer.encode(inp))

    def to_json(self, inp: str, output: NextTokens) -> Any:
        return {"input": inp, **to_json(output)}

    def generate(
        self, prompt: str, max_tokens: int, sampling: SamplingConfig, seed: int | None = None
    ) -> str:
        """The prompt followed by ``max_tokens`` sampled tokens (an end of line is a new line).

        Sampling is :func:`rnnkit.decoding.sample` (temperature, then top-k, then top-p) with a
        generator seeded with ``seed`` (``sampling.seed`` when None), so the same arguments give
        the same text. The Transformer reads at most ``train.bptt`` tokens of context.

        Raises:
            TaskError: ``max_tokens`` below 1.
        """
        return prompt + self.continuation(self.generate_ids(prompt, max_tokens, sampling, seed))

    def generate_ids(
        self, prompt: str, max_tokens: int, sampling: SamplingConfig, seed: int | None = None
    ) -> list[int]:
        """The ``max_tokens`` ids :meth:`generate` samples after ``prompt``."""
        if max_tokens < 1:
            raise TaskError(f"--max-tokens must be at least 1, got {max_tokens}")
        model = self.model
        model.eval()
        device = next(model.parameters()).device
        generator = torch.Generator(device=device)
        generator.manual_seed(sampling.seed if seed is None else seed)
        decoder = LMDecoder(model, self.task.config.train.bptt)
        with torch.no_grad(), flush_denormals():
            memory = decoder.encode(self._prompt_ids(prompt))
            found = sample(
                decoder,
                memory,
                temperature=sampling.temperature,
                top_k=sampling.top_k,
                top_p=sampling.top_p,
                generator=generator,
                max_len_a=0.0,
                max_len_b=max_tokens,
            )
        return list(found[0][0].tokens)

    def continuation(self, ids: Sequence[int]) -> str:
        """Text of generated ``ids`` that follow a prompt: each end of line a newline, a leading
        word mark a space."""
        tok = self.task.tokenizer
        lines: list[list[int]] = [[]]
        for i in ids:
            if i == EOS_ID:
                lines.append([])
            else:
                lines[-1].append(int(i))
        text = "\n".join(tok.decode(line) for line in lines)
        first = int(ids[0]) if ids else EOS_ID
        if first != EOS_ID and tok.kind != "char" and tok.id_to_piece(first).startswith(WORD_MARK):
            text = " " + text
        return text


LanguageModelTask.predictor = LanguageModelPredictor
