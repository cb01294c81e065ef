"""The ``tagging`` task: one tag per token (aligned many-to-many), with a :class:`SequenceTagger`.

A run config::

    task: tagging
    data:
      corpus: punctuation-bible     # a built-in corpus, or:  train: train.conll  valid: dev.conll
      format: conll                 # conll | conllu; inferred from the extension when absent
      tag_column: -1                # CoNLL: the tag's column index (default last); CoNLL-U: upos | xpos
      lowercase: false              # lower-case words for the word vocabulary
      vocab_size: 50000             # at most V words, <pad> and <unk> included
      min_count: 1                  # words seen fewer times in training are <unk>
    model: {cell: lstm, bidirectional: true, embedding_size: 128, hidden_size: 256,
            char_features: none, dropout: 0.3}
    train: {batch_size: 32, max_time_s: 600, ...}

Data. ``data.train`` / ``data.valid`` (and optionally ``data.test``) are CoNLL or CoNLL-U files
(:mod:`rnnkit.data.conll` reads them; bad lines are errors naming file and line, or, with
``data.on_error: skip``, their sentences are skipped and counted). ``data.corpus`` takes a
built-in corpus and its fixed split instead (``punctuation-bible``). Words not in the vocabulary
are ``<unk>``; a tag of a valid or test sentence that training never saw is an error naming its
file and line. With ``model.char_features`` each word's first ``data.max_word_length`` characters
(as written, not lower-cased) feed a char CNN or biLSTM.

:meth:`TaggingTask.prepare` builds the word, character and tag vocabularies from the training
split (``vocab.json``) and the most-frequent-tag baseline (``baseline.json``: each training word's
most frequent tag, ties to the tag listed first; words never seen get the most frequent tag
overall); loading a run only reads them.

Batches. Sentences are grouped by length (:func:`rnnkit.data.parallel.bucket_batches`),
``train.batch_size`` per batch::

    tokens  (B, T)     word ids, padded with 0      lengths (B,)
    tags    (B, T)     tag ids, -100 at padding     chars   (B, T, L) char ids, or None

Loss: the mean cross-entropy over real tokens. Validation reports ``loss``, token ``accuracy`` and
``macro_f1`` (over the tags present); ``macro_f1`` picks ``best.safetensors``.

``rnnkit evaluate RUN --data FILE`` scores a CoNLL(-U) file; when no such file exists,
``--data punctuation-bible:test`` scores a built-in corpus's split and ``--data test`` (``valid``,
``train``) the run's own split (``data.test``, or its corpus's test books): token accuracy, per-tag precision/recall/F1 and macro-F1 (:mod:`rnnkit.metrics.
classification`), span-level precision/recall/F1 of BIO/IOBES tags with ``seqeval``'s default
(CoNLL-2000 ``conlleval``) conventions, each beside the most-frequent-tag baseline.
``rnnkit predict RUN "text"`` tags whitespace-separated tokens (a ``punctuation-bible`` run reads
words as its corpus does: lower-cased, punctuation removed) and prints ``token/TAG`` pairs, and
the restored text when the tags are punctuation marks.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.data.conll import (
    PUNCTUATION_TAGS,
    TAGGING_CORPORA,
    ConllError,
    ConllFormat,
    TaggedSentence,
    UposField,
    Vocabulary,
    load_tagging_corpus,
    read_tagged,
    write_conll,
)
from rnnkit.data.parallel import OnError, bucket_batches
from rnnkit.io import write_text_atomic
from rnnkit.metrics.classification import ClassificationScores, classification_scores
from rnnkit.models.tagger import SequenceTagger, SequenceTaggerConfig
from rnnkit.tasks.base import Option, Report, StepOutput, Task, TaskError
from rnnkit.tasks.tagging_predict import Tagged, TaggingPredictor
from rnnkit.tasks.tagging_scores import BASELINE_NAME, is_bio, score_table, span_scores
from rnnkit.training.device import flush_denormals

logger = logging.getLogger(__name__)

__all__ = [
    "BASELINE_NAME",
    "Tagged",
    "TaggingBatch",
    "TaggingDataConfig",
    "TaggingPredictor",
    "TaggingTask",
    "is_bio",
    "span_scores",
]

PAD, UNK = 0, 1  # word and character ids
SPECIALS = ("<pad>", "<unk>")
IGNORE = -100  # the tag id of padding (ignored by the loss)

_VOCAB_FILE = "vocab.json"
_BASELINE_FILE = "baseline.json"
_VOCAB_FORMAT = "rnnkit.tagging-vocab"
_BASELINE_FORMAT = "rnnkit.tagging-baseline"
_SPLITS = ("train", "valid", "test")
_BUILTIN_SPLIT = re.compile(r"^(?P<corpus>[\w-]+):(?P<split>\w+)$")


class TaggingDataConfig(FrozenConfig):
    """The ``data`` section of a tagging run.

    Attributes:
        corpus: a built-in corpus (``punctuation-bible``); or give ``train``/``valid``.
        train, valid, test: CoNLL or CoNLL-U files (``test`` only for ``--data test``).
        format: ``conll`` or ``conllu``; None infers it per file (``.conllu`` is CoNLL-U).
        tag_column: CoNLL: the tag's column, 0-based, negative from the end (None: the last);
            CoNLL-U: ``upos`` or ``xpos`` (None: ``upos``).
        token_column: CoNLL: the token's column, 0-based.
        lowercase: lower-case words for the word vocabulary (tokens are shown as written).
        vocab_size: the most words V, ``<pad>`` and ``<unk>`` included (None: every word).
        min_count: words seen fewer times in training are ``<unk>``.
        max_word_length: characters per word read by the char features.
        on_error: ``raise`` at the first bad line, or ``skip`` sentences with one and count them.
    """

    corpus: str | None = None
    train: str | None = None
    valid: str | None = None
    test: str | None = None
    format: ConllFormat | None = None
    tag_column: int | UposField | None = None
    token_column: int = Field(0, ge=0)
    lowercase: bool = False
    vocab_size: int | None = Field(50_000, ge=3)
    min_count: int = Field(1, ge=1)
    max_word_length: int = Field(24, ge=1)
    on_error: OnError = "raise"

    @model_validator(mode="after")
    def _one_source(self) -> TaggingDataConfig:
        files = self.train is not None or self.valid is not None or self.test is not None
        if self.corpus is None and (self.train is None or self.valid is None):
            raise ValueError("set data.corpus, or both data.train and data.valid")
        if self.corpus is not None and files:
            raise ValueError("set either data.corpus or data.train/data.valid/data.test, not both")
        if self.corpus is not None and self.corpus not in TAGGING_CORPORA:
            raise ValueError(
                f"unknown tagging corpus {self.corpus!r}; valid corpora: "
                + ", ".join(TAGGING_CORPORA)
            )
        if self.format == "conllu" and isinstance(self.tag_column, int):
            raise ValueError(
                f"data.tag_column {self.tag_column} is a column index; CoNLL-U takes upos or xpos"
            )
        if self.format == "conll" and isinstance(self.tag_column, str):
            raise ValueError(
                f"data.tag_column {self.tag_column} is for CoNLL-U; CoNLL takes a column index"
            )
        return self


class TaggingBatch(NamedTuple):
    """A batch of tagged sentences (shapes in the module docstring)."""

    tokens: Tensor
    lengths: Tensor
    tags: Tensor
    chars: Tensor | None


class TaggingTask(Task):
    """Tag every token of a sentence with a (bidirectional) recurrent tagger."""

    name = "tagging"
    DataConfig: ClassVar[type[FrozenConfig]] = TaggingDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = SequenceTaggerConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "accuracy", "macro_f1")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("macro_f1", "max")
    predictor = TaggingPredictor
    evaluate_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "output",
            "--output",
            Path,
            "write token<TAB>gold<TAB>predicted lines here (CoNLL)",
            "FILE",
        ),
    )

    def __init__(self, config: Any, run_dir: Path | None = None) -> None:
        super().__init__(config, run_dir)
        self._vocab: tuple[Vocabulary, Vocabulary, Vocabulary | None] | None = None
        self._baseline: tuple[dict[str, str], str] | None = None
        self._train_encoded: list[tuple[list[int], list[list[int]], list[int]]] | None = None
        self._valid: list[TaggingBatch] | None = None

    @property
    def data(self) -> TaggingDataConfig:
        """The ``data`` section."""
        assert isinstance(self.config.data, TaggingDataConfig)
        return self.config.data

    @property
    def model_config(self) -> SequenceTaggerConfig:
        """The ``model`` section."""
        assert isinstance(self.config.model, SequenceTaggerConfig)
        return self.config.model

    # ------------------------------------------------------------------------------- data

    def read_split(self, split: str) -> list[TaggedSentence]:
        """The configured ``split``'s sentences (``train``, ``valid``, ``test``)."""
        d = self.data
        try:
            if d.corpus is not None:
                return load_tagging_corpus(d.corpus, split)
            value = getattr(d, split)
            if value is None:
                raise TaskError(f"data.{split} is not set in the run's config")
            data = read_tagged(
                value,
                format=d.format,
                tag_column=d.tag_column,
                token_column=d.token_column,
                on_error=d.on_error,
            )
        except ConllError as err:
            raise TaskError(str(err)) from None
        if data.skipped:
            logger.warning(
                "data.%s: skipped %d sentence(s) with a bad line; first: %s",
                split,
                data.skipped,
                data.problems[0],
            )
        return data.sentences

    def read_file(self, path: Path) -> list[TaggedSentence]:
        """A user's data file (every line counts, none is skipped), or, when no such file exists,
        ``CORPUS:SPLIT`` for a built-in corpus's split (``punctuation-bible:test``), or ``train``
        / ``valid`` / ``test`` for the run's own split (its files or its corpus)."""
        if not path.exists():
            if str(path) in _SPLITS:
                return self.read_split(str(path))
            match = _BUILTIN_SPLIT.match(str(path))
            if match is not None:
                try:
                    return load_tagging_corpus(match["corpus"], match["split"])
                except ConllError as err:
                    raise TaskError(f"--data {path}: {err}") from None
        d = self.data
        try:
            return read_tagged(
                path, format=d.format, tag_column=d.tag_column, token_column=d.token_column
            ).sentences
        except ConllError as err:
            raise TaskError(str(err)) from None

    def word(self, token: str) -> str:
        """The form of ``token`` the word vocabulary holds (lower-cased with data.lowercase)."""
        return token.lower() if self.data.lowercase else token

    def prepare(self) -> None:
        """Build the vocabularies and the most-frequent-tag baseline from the training split and
        save them in the run folder (``vocab.json``, ``baseline.json``)."""
        d = self.data
        sentences = self.read_split("train")
        words = Counter(self.word(t) for s in sentences for t in s.tokens)
        tag_counts = Counter(t for s in sentences for t in s.tags)
        if d.corpus == "punctuation-bible":
            tag_list = [t for t in PUNCTUATION_TAGS if t in tag_counts]
        else:
            tag_list = (["O"] if "O" in tag_counts else []) + sorted(
                t for t in tag_counts if t != "O"
            )
        word_vocab = Vocabulary.build(
            words, reserved=SPECIALS, unk="<unk>", min_count=d.min_count, max_size=d.vocab_size
        )
        body: dict[str, Any] = {
            "format": _VOCAB_FORMAT,
            "version": 1,
            "words": word_vocab.to_dict(),
            "tags": Vocabulary(tuple(tag_list)).to_dict(),
            "chars": None,
        }
        if self.model_config.char_features != "none":
            chars = Counter(c for s in sentences for t in s.tokens for c in t[: d.max_word_length])
            body["chars"] = Vocabulary.build(chars, reserved=SPECIALS, unk="<unk>").to_dict()
        folder = self.folder()
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / _VOCAB_FILE, json.dumps(body, ensure_ascii=False) + "\n")
        # the baseline: each word's most frequent tag (ties: the tag listed first)
        rank = {t: k for k, t in enumerate(tag_list)}
        per_word: dict[str, Counter[str]] = defaultdict(Counter)
        for s in sentences:
            for token, tag in zip(s.tokens, s.tags, strict=True):
                per_word[self.word(token)][tag] += 1
        table = {w: min(c, key=lambda t: (-c[t], rank[t])) for w, c in sorted(per_word.items())}
        default = min(tag_counts, key=lambda t: (-tag_counts[t], rank[t]))
        baseline = {"format": _BASELINE_FORMAT, "version": 1, "default": default, "words": table}
        write_text_atomic(folder / _BASELINE_FILE, json.dumps(baseline, ensure_ascii=False) + "\n")
        self._vocab = None
        self._baseline = None

    def _read_json(self, name: str, marker: str) -> dict[str, Any]:
        path = self.folder() / name
        if not path.is_file():
            raise TaskError(f"{path}: missing; prepare() writes it (rnnkit train does)")
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise TaskError(f"{path}: not a JSON file ({err})") from None
        if not isinstance(body, dict) or body.get("format") != marker:
            raise TaskError(f"{path}: not an rnnkit tagging file (no '{marker}' marker)")
        return body

    @property
    def vocabularies(self) -> tuple[Vocabulary, Vocabulary, Vocabulary | None]:
        """(words, tags, chars or None), read from the run folder (written by :meth:`prepare`)."""
        if self._vocab is None:
            body = self._read_json(_VOCAB_FILE, _VOCAB_FORMAT)
            try:
                words = Vocabulary.from_dict(body.get("words"))
                tags = Vocabulary.from_dict(body.get("tags"))
                chars = None if body.get("chars") is None else Vocabulary.from_dict(body["chars"])
            except ValueError as err:
                raise TaskError(f"{self.folder() / _VOCAB_FILE}: {err}") from None
            if (chars is None) != (self.model_config.char_features == "none"):
                raise TaskError(
                    f"{self.folder() / _VOCAB_FILE}: its character vocabulary does not fit "
                    f"model.char_features: {self.model_config.char_features}"
                )
            self._vocab = (words, tags, chars)
        return self._vocab

    @property
    def baseline(self) -> tuple[dict[str, str], str]:
        """(word -> its most frequent training tag, the tag of words never seen)."""
        if self._baseline is None:
            body = self._read_json(_BASELINE_FILE, _BASELINE_FORMAT)
            table, default = body.get("words"), body.get("default")
            if not isinstance(table, dict) or not isinstance(default, str):
                raise TaskError(f"{self.folder() / _BASELINE_FILE}: bad baseline table")
            self._baseline = ({str(k): str(v) for k, v in table.items()}, default)
        return self._baseline

    def encode_tokens(self, tokens: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """Word ids (N,) and, with char features, each word's character ids (else empty)."""
        words, _, chars = self.vocabularies
        ids = words.encode(self.word(t) for t in tokens)
        char_ids = (
            [chars.encode(t[: self.data.max_word_length]) for t in tokens]
            if chars is not None
            else []
        )
        return ids, char_ids

    def encode(
        self, sentences: Sequence[TaggedSentence]
    ) -> list[tuple[list[int], list[list[int]], list[int]]]:
        """(word ids, char ids, tag ids) of each sentence.

        Raises:
            TaskError: a tag training never saw, naming its file and line.
        """
        _, tags, _ = self.vocabularies
        out = []
        for s in sentences:
            for i, tag in enumerate(s.tags):
                if tag not in tags:
                    known = ", ".join(tags.tokens[:20]) + (", ..." if len(tags) > 20 else "")
                    raise TaskError(
                        f"{s.where(i)}: tag {tag!r} was not seen in training (the run's tags: "
                        f"{known})"
                    )
            ids, char_ids = self.encode_tokens(s.tokens)
            out.append((ids, char_ids, tags.encode(s.tags)))
        return out

    def pad(self, encoded: Sequence[tuple[list[int], list[list[int]], list[int]]]) -> TaggingBatch:
        """Pad encoded sentences into a batch (tags of unlabelled inputs may be empty lists)."""
        B = len(encoded)
        T = max((len(w) for w, _, _ in encoded), default=1)
        tokens = torch.full((B, T), PAD, dtype=torch.long)  # (B, T)
        tags = torch.full((B, T), IGNORE, dtype=torch.long)  # (B, T)
        for b, (w, _, t) in enumerate(encoded):
            tokens[b, : len(w)] = torch.tensor(w, dtype=torch.long)
            if t:
                tags[b, : len(t)] = torch.tensor(t, dtype=torch.long)
        lengths = torch.tensor([len(w) for w, _, _ in encoded], dtype=torch.long)  # (B,)
        chars = None
        if self.vocabularies[2] is not None:
            L = max((len(c) for _, cs, _ in encoded for c in cs), default=1)
            chars = torch.full((B, T, L), PAD, dtype=torch.long)  # (B, T, L)
            for b, (_, cs, _) in enumerate(encoded):
                for i, c in enumerate(cs):
                    chars[b, i, : len(c)] = torch.tensor(c, dtype=torch.long)
        return TaggingBatch(tokens, lengths, tags, chars)

    def _batches(
        self,
        encoded: Sequence[tuple[list[int], list[list[int]], list[int]]],
        *,
        shuffle: bool,
        epoch: int = 0,
    ) -> list[TaggingBatch]:
        cap = self.config.train.batch_size
        lengths = [len(w) for w, _, _ in encoded]
        groups = bucket_batches(
            lengths,
            lengths,
            max_tokens=cap * max(max(lengths, default=1), 1),
            max_sentences=cap,
            seed=self.config.train.seed,
            epoch=epoch,
            shuffle=shuffle,
        )
        return [self.pad([encoded[i] for i in group]) for group in groups]

    def make_batches(self, sentences: Sequence[TaggedSentence]) -> list[TaggingBatch]:
        """Length-bucketed batches of ``sentences`` (file order kept within buckets)."""
        return self._batches(self.encode(sentences), shuffle=False)

    def train_batches(self, epoch: int) -> Iterator[TaggingBatch]:
        if self._train_encoded is None:
            self._train_encoded = self.encode(self.read_split("train"))
        return iter(self._batches(self._train_encoded, shuffle=True, epoch=epoch))

    def valid_batches(self) -> list[TaggingBatch]:
        if self._valid is None:
            self._valid = self.make_batches(self.read_split("valid"))
        return self._valid

    def load_examples(self, path: Path) -> list[TaggingBatch]:
        return self.make_batches(self.read_file(path))

    # ------------------------------------------------------------------------------ model

    def build_model(self) -> SequenceTagger:
        words, tags, chars = self.vocabularies
        return SequenceTagger(
            self.model_config,
            len(words),
            len(tags),
            num_chars=len(chars) if chars is not None else 0,
            pad_id=PAD,
        )

    def step(self, model: nn.Module, batch: TaggingBatch, state: Any = None) -> StepOutput:
        logits = model(batch.tokens, batch.lengths, batch.chars)  # (B, T, K)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.tags.flatten(), ignore_index=IGNORE)
        real = batch.tags != IGNORE  # (B, T)
        correct = ((logits.argmax(-1) == batch.tags) & real).sum()
        n = int(real.sum())
        return StepOutput(
            loss=loss, metrics={"accuracy": correct.float() / max(n, 1)}, num_tokens=n
        )

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Loss, token accuracy and macro-F1 over the tags present."""
        total, count = 0.0, 0
        true: list[Tensor] = []
        pred: list[Tensor] = []
        with torch.no_grad():
            for batch in batches:
                logits = model(batch.tokens, batch.lengths, batch.chars)  # (B, T, K)
                real = batch.tags != IGNORE
                n = int(real.sum())
                total += (
                    float(
                        F.cross_entropy(
                            logits.flatten(0, 1), batch.tags.flatten(), ignore_index=IGNORE
                        )
                    )
                    * n
                )
                count += n
                true.append(batch.tags[real].cpu())
                pred.append(logits.argmax(-1)[real].cpu())
        _, tags, _ = self.vocabularies
        scores = classification_scores(
            torch.cat(true).tolist(), torch.cat(pred).tolist(), tags.tokens
        )
        return {
            "loss": total / max(count, 1),
            "accuracy": scores.accuracy,
            "macro_f1": scores.macro_f1,
        }

    # ------------------------------------------------------------------------ prediction

    def tag(
        self, model: nn.Module, token_lists: Sequence[Sequence[str]], *, batch_size: int = 64
    ) -> list[tuple[list[int], list[float]]]:
        """Each token list's predicted tag ids and their probabilities, batched by length.

        Raises:
            TaskError: an input with no tokens (naming its position).
        """
        for k, tokens in enumerate(token_lists):
            if not tokens:
                raise TaskError(f"input {k + 1} is empty: nothing to tag")
        empty: list[int] = []  # no gold tags
        encoded = [(*self.encode_tokens(t), empty) for t in token_lists]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        device = next(model.parameters()).device
        results: list[tuple[list[int], list[float]]] = [([], []) for _ in encoded]
        model.eval()
        with torch.no_grad(), flush_denormals():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = self.pad([encoded[i] for i in chunk])
                chars = batch.chars.to(device) if batch.chars is not None else None
                logits = model(batch.tokens.to(device), batch.lengths, chars)  # (B, T, K)
                probs, ids = logits.float().softmax(-1).max(-1)  # (B, T) each
                for row, i in enumerate(chunk):
                    n = len(encoded[i][0])
                    results[i] = (ids[row, :n].tolist(), probs[row, :n].tolist())
        return results

    def punctuation_tags(self) -> bool:
        """True when every tag of the run is a punctuation tag (``O , . ; : ? !``)."""
        _, tags, _ = self.vocabularies
        return set(tags.tokens) <= set(PUNCTUATION_TAGS)

    # ------------------------------------------------------------ evaluate and compare

    def _baseline_tags(self, sentences: Sequence[TaggedSentence]) -> list[list[str]]:
        table, default = self.baseline
        return [[table.get(self.word(t), default) for t in s.tokens] for s in sentences]

    def _scores(
        self, sentences: Sequence[TaggedSentence], predicted: Sequence[Sequence[str]]
    ) -> tuple[ClassificationScores, dict[str, Any]]:
        _, tags, _ = self.vocabularies
        true = [tags.id(t) for s in sentences for t in s.tags]
        pred = [tags.id(t) for p in predicted for t in p]
        scores = classification_scores(true, pred, tags.tokens)
        out = scores.to_dict()
        if is_bio(tags.tokens):
            out["spans"] = span_scores([s.tags for s in sentences], predicted)
        return scores, out

    def _score_file(
        self, model: nn.Module, path: Path
    ) -> tuple[list[TaggedSentence], list[list[str]], dict[str, Any]]:
        sentences = self.read_file(path)
        self.encode(sentences)  # refuse unseen tags before any work
        words, tags, _ = self.vocabularies
        found = self.tag(model, [s.tokens for s in sentences])
        predicted = [[tags.tokens[i] for i in ids] for ids, _ in found]
        _, model_scores = self._scores(sentences, predicted)
        _, base_scores = self._scores(sentences, self._baseline_tags(sentences))
        tokens = [self.word(t) for s in sentences for t in s.tokens]
        metrics = {
            "data": str(path),
            "sentences": len(sentences),
            "tokens": len(tokens),
            "unknown_words": sum(t not in words for t in tokens) / max(len(tokens), 1),
            "model": model_scores,
            BASELINE_NAME: base_scores,
        }
        return sentences, predicted, metrics

    def evaluate_file(self, model: nn.Module, path: Path, options: Mapping[str, Any]) -> Report:
        """Token accuracy, per-tag precision/recall/F1, macro-F1 (and BIO span F1) of the model
        beside the most-frequent-tag baseline; ``--output FILE`` keeps the predicted tags."""
        output = options.get("output")
        if output is not None and Path(output).is_dir():
            raise TaskError(f"--output {output} is a folder; give the file to write")
        sentences, predicted, metrics = self._score_file(model, path)
        files: tuple[Path, ...] = ()
        if output is not None:
            files = (write_conll(sentences, Path(output), predicted=predicted),)
        name = self.run_dir.name if self.run_dir is not None else "model"
        return Report(metrics, score_table({name: metrics["model"]}, metrics), files)

    def compare(
        self,
        names: Sequence[str],
        models: Sequence[nn.Module],
        path: Path,
        options: Mapping[str, Any],
    ) -> Report:
        """Per-tag F1, accuracy and macro-F1 of each run on one file, a column per run, and the
        most-frequent-tag baseline of the first run."""
        results = [self._score_file(m, path)[2] for m in models]
        runs = {n: r["model"] for n, r in zip(names, results, strict=True)}
        first = results[0]
        payload = {
            "data": str(path),
            "sentences": first["sentences"],
            "tokens": first["tokens"],
            "runs": [{"name": n, **s} for n, s in runs.items()],
            BASELINE_NAME: first[BASELINE_NAME],
        }
        return Report(payload, score_table(runs, first, per_tag="f1"))
