"""The ``translation`` task: sentence pairs in, an encoder-decoder (:class:`Seq2Seq`) out.

A run config::

    task: translation
    data:
      corpus: bible-en-fr          # a built-in corpus, or:  train: pairs.tsv  valid: valid.tsv
      tokenizer: unigram           # unigram | bpe (sentencepiece) | word | char
      vocab_size: 8000
    model: {cell: lstm, attention: additive, embedding_size: 256, hidden_size: 512, ...}
    train: {batch_size: 64, max_time_s: 900, label_smoothing: 0.1, ...}

Data. ``data.train`` / ``data.valid`` are TSV files (``source<TAB>target``; other columns are
ignored) or, as a list of two paths, aligned text files (:func:`rnnkit.data.parallel.read_parallel`
reads them; bad lines are errors naming file and line, or skipped and counted with
``data.on_error: skip``). ``data.corpus`` takes a built-in corpus and its fixed train/valid split
instead (:mod:`rnnkit.data.corpora`). Training pairs with more than ``data.max_length`` tokens on
either side are left out (counted in the log).

Tokenisers are trained on the training split the first time the run folder is used and saved in
it (``tokenizer.model``, or ``source.*`` and ``target.*`` with ``joint_vocab: false``), so
``evaluate`` and ``predict`` need only the run folder. Ids: pad 0, bos 1, eos 2, unk 3.

Batches. Training pairs are grouped by length (:func:`rnnkit.data.parallel.bucket_batches`):
``train.batch_size`` sentences per batch, or, with ``data.batch_tokens``, as many as fit that
budget of padded tokens (``train.batch_size`` then caps the sentences). A batch is::

    src      (B, S)  source ids, padded           src_lengths (B,)
    tgt_in   (B, T)  bos y_1 .. y_n, padded       tgt_out     (B, T)  y_1 .. y_n eos, padded

Loss: the mean cross-entropy over real target tokens, with ``train.label_smoothing``; with
``train.scheduled_sampling`` the decoder is fed its own samples at a rate ramped over
``train.scheduled_sampling_steps``. Validation reports ``loss``, ``ppl`` and the BLEU and chrF of
greedy translations of the validation sentences (sacreBLEU, detokenised); ``bleu`` picks
``best.safetensors`` and drives early stopping.

:func:`translate` (beam search, n-best, attention weights) and :func:`evaluate_file` (BLEU, chrF,
signature and BLEU by source length on a test file) serve ``rnnkit predict`` and ``rnnkit
evaluate``.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.data.corpora import load_corpus
from rnnkit.data.parallel import OnError, Pair, bucket_batches, pad_pairs, read_parallel
from rnnkit.data.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    Tokenizer,
    TokenizerKind,
    build_tokenizer,
    load_tokenizer,
)
from rnnkit.decoding.search import Hypothesis, SearchConfig, beam_search, greedy_search
from rnnkit.metrics.bleu import TranslationScores, translation_scores
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.registry import register_task
from rnnkit.runtime import flush_denormals
from rnnkit.training.losses import token_cross_entropy
from rnnkit.training.task import StepOutput, Task

logger = logging.getLogger(__name__)

PathList = str | list[str]


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
        max_length: training pairs longer than this (tokens, either side) are left out.
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


class TranslationBatch(NamedTuple):
    """A batch of sentence pairs (shapes in the module docstring); texts for BLEU."""

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    sources: tuple[str, ...]
    references: tuple[str, ...]


@dataclass(frozen=True)
class Translation:
    """One translation of one source sentence.

    Attributes:
        text: the detokenised translation.
        score: the hypothesis score (length-penalised log-probability for beam search).
        source_pieces: the source's S tokens as strings.
        output_pieces: the T' output tokens as strings (``</s>`` last when the hypothesis ended).
        attention: (T', S) weights of each output token over the source tokens, or None.
    """

    text: str
    score: float
    source_pieces: list[str]
    output_pieces: list[str]
    attention: Tensor | None

    def to_dict(self, with_attention: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (``attention`` as nested lists, rounded to 4 decimals)."""
        out: dict[str, Any] = {
            "translation": self.text,
            "score": self.score,
            "source_tokens": self.source_pieces,
            "output_tokens": self.output_pieces,
        }
        if with_attention and self.attention is not None:
            out["attention"] = [[round(float(v), 4) for v in row] for row in self.attention]
        return out


@register_task
class TranslationTask(Task):
    """Translate sentences with an RNN encoder-decoder, with or without attention."""

    name = "translation"
    DataConfig: ClassVar[type[FrozenConfig]] = TranslationDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = Seq2SeqConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "ppl", "bleu", "chrf")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("bleu", "max")
    train_options: ClassVar[frozenset[str]] = frozenset({"label_smoothing", "scheduled_sampling"})

    def __init__(self, config: Any, run_dir: Path | None = None) -> None:
        super().__init__(config, run_dir)
        self._train_pairs: list[tuple[list[int], list[int]]] | None = None
        self._valid: list[TranslationBatch] | None = None
        self._tokenizers: tuple[Tokenizer, Tokenizer] | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self.sampling_rate = 0.0

    @property
    def data(self) -> TranslationDataConfig:
        assert isinstance(self.config.data, TranslationDataConfig)
        return self.config.data

    @property
    def model_config(self) -> Seq2SeqConfig:
        assert isinstance(self.config.model, Seq2SeqConfig)
        return self.config.model

    # ------------------------------------------------------------------------------- data

    def read_pairs(self, split: Literal["train", "valid"]) -> list[Pair]:
        """The configured ``split``'s sentence pairs (built-in corpus or files)."""
        d = self.data
        if d.corpus is not None:
            return load_corpus(d.corpus, split)
        value = d.train if split == "train" else d.valid
        assert value is not None
        source: str | tuple[str, str] = value if isinstance(value, str) else (value[0], value[1])
        data = read_parallel(source, on_error=d.on_error, columns=d.columns)
        if data.skipped:
            logger.warning("data.%s: skipped %d bad line(s)", split, data.skipped)
        if not data.pairs:
            raise ValueError(f"data.{split}: no sentence pairs in {value}")
        return data.pairs

    def _tokenizer_dir(self) -> Path:
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            return self.run_dir
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="rnnkit-tok-")
        return Path(self._scratch.name)

    def _tokenizer_path(self, stem: str) -> Path:
        ext = ".model" if self.data.tokenizer in ("unigram", "bpe") else ".json"
        return self._tokenizer_dir() / (stem + ext)

    @property
    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        """(source, target) tokenisers: loaded from the run folder, or trained and saved there."""
        if self._tokenizers is None:
            d = self.data
            stems = ("tokenizer", "tokenizer") if d.joint_vocab else ("source", "target")
            paths = [self._tokenizer_path(stem) for stem in stems]
            if all(p.is_file() for p in paths):
                loaded = [load_tokenizer(p) for p in paths]
            else:
                pairs = self.read_pairs("train")
                texts: list[list[str]] = (
                    [[s for s, _ in pairs] + [t for _, t in pairs]]
                    if d.joint_vocab
                    else [[s for s, _ in pairs], [t for _, t in pairs]]
                )
                loaded = [
                    build_tokenizer(
                        d.tokenizer, text, path.with_suffix(""), vocab_size=d.vocab_size
                    )
                    for text, path in zip(texts, paths, strict=False)
                ]
                if d.joint_vocab:
                    loaded.append(loaded[0])
            self._tokenizers = (loaded[0], loaded[1])
        return self._tokenizers

    def encode_pairs(self, pairs: Sequence[Pair]) -> list[tuple[list[int], list[int]]]:
        """Token ids of each pair's source and target (no bos/eos)."""
        src_tok, tgt_tok = self.tokenizers
        return [(src_tok.encode(s), tgt_tok.encode(t)) for s, t in pairs]

    def _training_pairs(self) -> list[tuple[list[int], list[int]]]:
        if self._train_pairs is None:
            encoded = self.encode_pairs(self.read_pairs("train"))
            limit = self.data.max_length
            kept = [(s, t) for s, t in encoded if 0 < len(s) <= limit and 0 < len(t) <= limit]
            if len(kept) < len(encoded):
                logger.info(
                    "left out %d of %d training pairs (empty, or over data.max_length=%d tokens)",
                    len(encoded) - len(kept),
                    len(encoded),
                    limit,
                )
            if not kept:
                raise ValueError("no training pairs left after data.max_length")
            self._train_pairs = kept
        return self._train_pairs

    def make_batches(
        self, pairs: Sequence[Pair], *, shuffle: bool = False, epoch: int = 0
    ) -> list[TranslationBatch]:
        """Length-bucketed batches of ``pairs`` (file order kept within buckets when not shuffled)."""
        encoded = self.encode_pairs(pairs)
        empty = [i for i, (s, _) in enumerate(encoded) if not s]
        if empty:
            raise ValueError(f"pair {empty[0] + 1}: the source has no tokens")
        return self._batches(encoded, list(pairs), shuffle=shuffle, epoch=epoch)

    def _batches(
        self,
        encoded: Sequence[tuple[list[int], list[int]]],
        texts: Sequence[Pair] | None,
        *,
        shuffle: bool,
        epoch: int,
    ) -> list[TranslationBatch]:
        cap = self.config.train.batch_size
        budget = self.data.batch_tokens
        src_len = [len(s) for s, _ in encoded]
        tgt_len = [len(t) + 1 for _, t in encoded]
        longest = max(max(src_len, default=1), max(tgt_len, default=1))
        groups = bucket_batches(
            src_len,
            tgt_len,
            max_tokens=budget if budget is not None else cap * longest,
            max_sentences=cap,
            seed=self.config.train.seed,
            epoch=epoch,
            shuffle=shuffle,
        )
        batches = []
        for group in groups:
            tensors = pad_pairs([encoded[i][0] for i in group], [encoded[i][1] for i in group])
            sources = tuple(texts[i][0] for i in group) if texts is not None else ()
            references = tuple(texts[i][1] for i in group) if texts is not None else ()
            batches.append(TranslationBatch(*tensors, sources, references))
        return batches

    def train_batches(self, epoch: int) -> Iterator[TranslationBatch]:
        return iter(self._batches(self._training_pairs(), None, shuffle=True, epoch=epoch))

    def valid_batches(self) -> list[TranslationBatch]:
        if self._valid is None:
            pairs = self.read_pairs("valid")
            if self.data.valid_size is not None:
                pairs = pairs[: self.data.valid_size]
            self._valid = self.make_batches(pairs)
        return self._valid

    def load_examples(self, path: Path) -> list[TranslationBatch]:
        data = read_parallel(path, columns=self.data.columns)  # test data: every line counts
        if not data.pairs:
            raise ValueError(f"{path}: no sentence pairs")
        return self.make_batches(data.pairs)

    # ------------------------------------------------------------------------------ model

    def build_model(self) -> Seq2Seq:
        src_tok, tgt_tok = self.tokenizers
        return Seq2Seq(
            self.model_config, src_tok.vocab_size, tgt_tok.vocab_size, PAD_ID, BOS_ID, EOS_ID
        )

    def begin_step(self, step: int) -> None:
        t = self.config.train
        self.sampling_rate = t.scheduled_sampling * min(1.0, step / t.scheduled_sampling_steps)

    def step(self, model: nn.Module, batch: TranslationBatch, state: Any = None) -> StepOutput:
        rate = self.sampling_rate if model.training else 0.0
        out = model(batch.src, batch.src_lengths, batch.tgt_in, sampling_rate=rate)
        loss = token_cross_entropy(
            out.logits, batch.tgt_out, PAD_ID, self.config.train.label_smoothing
        )
        return StepOutput(loss=loss, num_tokens=int((batch.tgt_out != PAD_ID).sum()))

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Loss, perplexity (without label smoothing) and greedy-search BLEU / chrF."""
        assert isinstance(model, Seq2Seq)
        total, tokens = 0.0, 0
        hypotheses: list[str] = []
        sources: list[str] = []
        references: list[str] = []
        _, tgt_tok = self.tokenizers
        with torch.no_grad():
            for batch in batches:
                logits = model(batch.src, batch.src_lengths, batch.tgt_in).logits
                n = int((batch.tgt_out != PAD_ID).sum())
                total += float(token_cross_entropy(logits, batch.tgt_out, PAD_ID)) * n
                tokens += n
                for hyps in greedy_search(model, batch.src, batch.src_lengths):
                    hypotheses.append(tgt_tok.decode(hyps[0].tokens))
                sources += batch.sources
                references += batch.references
        loss = total / max(tokens, 1)
        scores = translation_scores(hypotheses, references, sources)
        return {
            "loss": loss,
            "ppl": math.exp(min(loss, 50.0)),
            "bleu": scores["bleu"],
            "chrf": scores["chrf"],
        }

    def predict(self, model: nn.Module, inputs: Sequence[str]) -> list[str]:
        return [t[0].text for t in translate(self, model, inputs)]


def translate(
    task: TranslationTask,
    model: nn.Module,
    sentences: Sequence[str],
    search: SearchConfig | None = None,
    *,
    batch_size: int = 64,
) -> list[list[Translation]]:
    """Translate ``sentences`` with batched beam search (beam 1 is greedy search).

    Args:
        task: the run's task (its tokenisers).
        model: the run's model.
        sentences: source sentences, raw text.
        search: beam size, n-best, maximum length and length penalty (default beam 5).
        batch_size: sentences decoded together.

    Returns:
        For each sentence, ``search.n_best`` translations, best first.

    Raises:
        ValueError: an input with no tokens (naming its position).
    """
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"translate needs a Seq2Seq model, got {type(model).__name__}")
    search = search or SearchConfig()
    src_tok, tgt_tok = task.tokenizers
    ids = [src_tok.encode(s) for s in sentences]
    for i, s in enumerate(ids):
        if not s:
            raise ValueError(f"input {i + 1} is empty: nothing to translate")
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths together
    results: list[list[Translation]] = [[] for _ in ids]
    model.eval()
    with torch.no_grad(), flush_denormals():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            src, lengths, _, _ = pad_pairs([ids[i] for i in chunk], [[] for _ in chunk])
            found = beam_search(model, src, lengths, search)
            for i, hyps in zip(chunk, found, strict=True):
                results[i] = [_translation(h, ids[i], src_tok, tgt_tok) for h in hyps]
    return results


def _translation(
    hyp: Hypothesis, source: list[int], src_tok: Tokenizer, tgt_tok: Tokenizer
) -> Translation:
    pieces = [tgt_tok.id_to_piece(t) for t in hyp.tokens]
    if hyp.ended:
        pieces.append(tgt_tok.id_to_piece(EOS_ID))
    return Translation(
        text=tgt_tok.decode(hyp.tokens),
        score=float(hyp.score),
        source_pieces=[src_tok.id_to_piece(t) for t in source],
        output_pieces=pieces,
        attention=None if hyp.attention is None else hyp.attention.detach().cpu(),
    )


def evaluate_file(
    task: TranslationTask,
    model: nn.Module,
    path: Path,
    search: SearchConfig | None = None,
) -> tuple[TranslationScores, list[str]]:
    """BLEU, chrF (with signatures) and BLEU by source length of ``model`` on a TSV file.

    Args:
        task, model: a loaded run.
        path: TSV of ``source<TAB>reference`` (the run's ``data.columns``); a bad line is an
            error naming it, whatever the run's ``data.on_error``.
        search: decoding options (default beam 5).

    Returns:
        The scores (:func:`rnnkit.metrics.bleu.translation_scores`) and the translations.
    """
    data = read_parallel(path, columns=task.data.columns)  # a test file is never skipped over
    if not data.pairs:
        raise ValueError(f"{path}: no sentence pairs")
    sources = [s for s, _ in data.pairs]
    hypotheses = [t[0].text for t in translate(task, model, sources, search)]
    scores = translation_scores(hypotheses, [r for _, r in data.pairs], sources)
    return scores, hypotheses
