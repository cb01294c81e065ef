"""The ``classification`` task: labelled texts in, a :class:`TextClassifier` out (sentiment etc.).

A run config::

    task: classification
    data:
      corpus: rotten-tomatoes        # a built-in corpus, or:  train: train.csv  valid: valid.csv
      text_column: text              # the columns (JSONL: fields) of a file
      label_column: label
      tokenizer: word                # word | char | unigram | bpe
      vocab_size: 20000
    model: {cell: gru, bidirectional: true, pooling: attention, embedding_size: 200, ...}
    train: {batch_size: 32, max_time_s: 600, ...}

Data. ``data.train`` / ``data.valid`` (and optionally ``data.test``) are CSV, TSV or JSONL files
(:func:`rnnkit.data.text.read_labelled`; bad records are errors naming file and line, or skipped
and counted with ``data.on_error: skip``). ``data.corpus`` takes a built-in corpus and its fixed
split instead (:mod:`rnnkit.data.text`). Labels are any strings; the classes are the labels of the
training split, sorted; a validation or test label training never saw is an error.

:meth:`ClassificationTask.prepare` trains the tokeniser on the training texts and writes it and
``labels.json`` (the classes and their training counts) into the run folder; loading a run only
reads them. ``data.lowercase`` lowercases every text first; texts are cut to their first
``data.max_length`` tokens.

Batches group texts of similar length (:func:`rnnkit.data.parallel.bucket_batches`)::

    tokens (B, T) ids, padded with 0     lengths (B,)     labels (B,) class ids
    positions (B,) the examples' positions in their split

Loss: the mean cross-entropy; validation reports ``loss``, ``accuracy`` and ``macro_f1``;
``accuracy`` picks ``best.safetensors``.

``rnnkit evaluate RUN --data FILE`` (or ``--data rotten-tomatoes:test`` for a built-in split)
reports accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix of the RNN
next to two baselines fitted on the run's training split there and then
(:mod:`rnnkit.models.text_baselines`): the majority class and TF-IDF + logistic regression.
``rnnkit predict RUN "text" ...`` prints each text's label and class probabilities; with
attention pooling ``--attention-plot DIR`` draws the words shaded by their weights.

:class:`Prediction` and :class:`ClassificationPredictor` live in
:mod:`rnnkit.tasks.classification_predict` (importable from here too). What is left stays in
one module (a little over 600 lines) because data reading, the baselines fitted beside the
model and the scores of ``evaluate`` and ``compare`` all read the same split and label files.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.data.parallel import OnError, bucket_batches
from rnnkit.data.text import (
    TEXT_CORPORA,
    LabelledText,
    TextDataError,
    TextFormat,
    load_text_corpus,
    read_labelled,
    text_format,
    write_table,
)
from rnnkit.data.tokenizers import PAD_ID, Tokenizer, TokenizerKind, build_tokenizer, load_tokenizer
from rnnkit.io import write_text_atomic
from rnnkit.metrics.classification import (
    ClassificationScores,
    classification_scores,
    format_scores,
)
from rnnkit.models.classifier import TextClassifier, TextClassifierConfig
from rnnkit.models.text_baselines import (
    SKLEARN_HINT,
    MajorityClass,
    TfidfLogReg,
    sklearn_available,
)
from rnnkit.tasks.base import (
    Option,
    Report,
    StepOutput,
    Task,
    TaskError,
)
from rnnkit.tasks.classification_predict import ClassificationPredictor as ClassificationPredictor
from rnnkit.tasks.classification_predict import Prediction as Prediction
from rnnkit.training.device import flush_denormals
from rnnkit.viz.text import plot_confusion

logger = logging.getLogger(__name__)

LABELS_FILE = "labels.json"
"""The run folder's file of the classes and their training counts, written by prepare()."""

Split = Literal["train", "valid", "test"]
_BUILTIN_SPLIT = re.compile(r"^(?P<corpus>[\w-]+):(?P<split>train|valid|test)$")


class ClassificationDataConfig(FrozenConfig):
    """The ``data`` section of a classification run.

    Attributes:
        corpus: a built-in corpus (``rotten-tomatoes``); or give ``train`` and ``valid``.
        train, valid, test: CSV, TSV or JSONL files (``test`` optional: ``rnnkit evaluate``
            takes any file).
        format: ``csv``, ``tsv`` or ``jsonl`` for all three files; None: from each suffix.
        text_column, label_column: the text's and the label's column (JSONL: field).
        on_error: ``raise`` at the first bad record, or ``skip`` bad records and count them.
        tokenizer: ``word``, ``char``, or ``unigram`` / ``bpe`` (sentencepiece subwords).
        vocab_size: V (the maximum for word/char; sentencepiece's size), reserved ids included.
        min_count: word/char tokens seen fewer times in training map to ``<unk>``.
        lowercase: lowercase every text before tokenising.
        max_length: tokens kept per text (its first ones).
    """

    corpus: str | None = None
    train: str | None = None
    valid: str | None = None
    test: str | None = None
    format: TextFormat | None = None
    text_column: str = "text"
    label_column: str = "label"
    on_error: OnError = "raise"
    tokenizer: TokenizerKind = "word"
    vocab_size: int = Field(20000, ge=8)
    min_count: int = Field(1, ge=1)
    lowercase: bool = False
    max_length: int = Field(200, ge=1)

    @field_validator("corpus")
    @classmethod
    def _builtin(cls, value: str | None) -> str | None:
        if value is not None and value not in TEXT_CORPORA:
            raise ValueError(f"unknown corpus '{value}'; valid corpora: {', '.join(TEXT_CORPORA)}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ClassificationDataConfig:
        files = (self.train, self.valid, self.test)
        if self.corpus is not None and any(f is not None for f in files):
            raise ValueError("set either data.corpus or data.train/data.valid, not both")
        if self.corpus is None and (self.train is None or self.valid is None):
            raise ValueError("set data.corpus, or both data.train and data.valid")
        if self.text_column == self.label_column:
            raise ValueError(f"text_column and label_column are both '{self.text_column}'")
        return self


class ClassificationBatch(NamedTuple):
    """Texts of similar length (shapes in the module docstring)."""

    tokens: Tensor
    lengths: Tensor
    labels: Tensor
    positions: Tensor


class ClassificationTask(Task):
    """Classify texts with an embedding, a (bi)RNN and a pooling of its states."""

    name = "classification"
    DataConfig: ClassVar[type[FrozenConfig]] = ClassificationDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = TextClassifierConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "accuracy", "macro_f1")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("accuracy", "max")
    evaluate_options: ClassVar[tuple[Option, ...]] = (
        Option("confusion_plot", "--confusion-plot", Path, "draw the confusion matrix", "PNG"),
        Option("output", "--output", Path, "write text, label and prediction per example", "FILE"),
        Option("no_baselines", "--no-baselines", bool, "skip the majority and TF-IDF baselines"),
    )
    compare_options: ClassVar[tuple[Option, ...]] = (
        Option("no_baselines", "--no-baselines", bool, "skip the majority and TF-IDF baselines"),
    )
    predict_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "attention_plot",
            "--attention-plot",
            Path,
            "draw each input's words shaded by their attention weight: DIR/001.png, ...",
            "DIR",
        ),
    )

    def __init__(self, config: Any, run_dir: Path | None = None) -> None:
        super().__init__(config, run_dir)
        self._tokenizer: Tokenizer | None = None
        self._classes: tuple[tuple[str, ...], tuple[int, ...]] | None = None
        self._train: list[tuple[list[int], int]] | None = None
        self._valid: list[ClassificationBatch] | None = None

    @property
    def data(self) -> ClassificationDataConfig:
        assert isinstance(self.config.data, ClassificationDataConfig)
        return self.config.data

    @property
    def model_config(self) -> TextClassifierConfig:
        assert isinstance(self.config.model, TextClassifierConfig)
        return self.config.model

    # ------------------------------------------------------------------------------- data

    def read_split(self, split: Split, labels: Sequence[str] | None = None) -> list[LabelledText]:
        """The configured ``split``'s examples (built-in corpus or file); ``labels`` (default:
        the run's classes, except for training) are the labels allowed."""
        d = self.data
        if d.corpus is not None:
            examples = load_text_corpus(d.corpus, split)
        else:
            path = {"train": d.train, "valid": d.valid, "test": d.test}[split]
            if path is None:
                raise TaskError(f"data.{split} is not set")
            if labels is None and split != "train":
                labels = self.labels
            data = read_labelled(
                path,
                text_column=d.text_column,
                label_column=d.label_column,
                fmt=d.format,
                on_error=d.on_error,
                labels=labels,
            )
            if data.skipped:
                logger.warning(
                    "data.%s: skipped %d bad record(s); first: %s",
                    split,
                    data.skipped,
                    data.problems[0],
                )
            examples = data.examples
        if not examples:
            raise TaskError(f"data.{split}: no examples")
        return examples

    def read_file(self, path: Path) -> list[LabelledText]:
        """A user's labelled file (the run's columns; every record counts, none is skipped),
        or ``CORPUS:SPLIT`` for a built-in corpus's split (``rotten-tomatoes:test``)."""
        match = _BUILTIN_SPLIT.match(str(path))
        if match is not None and not path.exists():
            examples = load_text_corpus(match["corpus"], match["split"])
        else:
            d = self.data
            fmt = d.format if path.suffix.lower() not in (".csv", ".tsv", ".jsonl") else None
            examples = read_labelled(
                path,
                text_column=d.text_column,
                label_column=d.label_column,
                fmt=fmt,
                labels=self.labels,
            ).examples
        if not examples:
            raise TaskError(f"{path}: no examples")
        unknown = next((e for e in examples if e.label not in self.labels), None)
        if unknown is not None:
            raise TaskError(
                f"{path}: label '{unknown.label}' never occurs in the training data (training "
                f"labels: {', '.join(self.labels)})"
            )
        return examples

    def _tokenizer_path(self) -> Path:
        ext = ".model" if self.data.tokenizer in ("unigram", "bpe") else ".json"
        return self.folder() / f"tokenizer{ext}"

    def normalize(self, text: str) -> str:
        """The text as the tokeniser sees it (lowercased with ``data.lowercase``)."""
        return text.lower() if self.data.lowercase else text

    def prepare(self) -> None:
        """Train the tokeniser on the training texts; save it and the classes in the run folder."""
        d = self.data
        examples = self.read_split("train", labels=None)
        folder = self.folder()
        folder.mkdir(parents=True, exist_ok=True)
        try:
            build_tokenizer(
                d.tokenizer,
                [self.normalize(e.text) for e in examples],
                self._tokenizer_path().with_suffix(""),
                vocab_size=d.vocab_size,
                min_count=d.min_count,
            )
        except ValueError as err:
            raise TaskError(f"data.tokenizer: {err}") from None
        counts: dict[str, int] = {}
        for e in examples:
            counts[e.label] = counts.get(e.label, 0) + 1
        if len(counts) < 2:
            raise TaskError(
                f"data.train: one class only ('{next(iter(counts))}'); a classifier needs two"
            )
        labels = sorted(counts)
        body = {"labels": labels, "counts": [counts[label] for label in labels]}
        write_text_atomic(folder / LABELS_FILE, json.dumps(body, ensure_ascii=False) + "\n")
        self._tokenizer, self._classes, self._train, self._valid = None, None, None, None

    @property
    def tokenizer(self) -> Tokenizer:
        """The run's tokeniser (written by :meth:`prepare`)."""
        if self._tokenizer is None:
            path = self._tokenizer_path()
            if not path.is_file():
                raise TaskError(f"{path}: no tokeniser; prepare() trains it (rnnkit train does)")
            self._tokenizer = load_tokenizer(path)
        return self._tokenizer

    def _read_classes(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        if self._classes is None:
            path = self.folder() / LABELS_FILE
            try:
                body = json.loads(path.read_text(encoding="utf-8"))
                labels = tuple(str(label) for label in body["labels"])
                counts = tuple(int(n) for n in body["counts"])
            except FileNotFoundError:
                raise TaskError(
                    f"{path}: no class list; prepare() writes it (rnnkit train does)"
                ) from None
            except (ValueError, KeyError, TypeError) as err:
                raise TaskError(f"{path}: not a class list ({err})") from None
            if len(labels) < 2 or len(counts) != len(labels):
                raise TaskError(f"{path}: needs two or more labels, each with a count")
            self._classes = (labels, counts)
        return self._classes

    @property
    def labels(self) -> tuple[str, ...]:
        """The K class names, index = class id (the training labels, sorted)."""
        return self._read_classes()[0]

    @property
    def label_counts(self) -> tuple[int, ...]:
        """(K,) training examples per class."""
        return self._read_classes()[1]

    def encode(self, text: str) -> list[int]:
        """The token ids the model reads of ``text`` (at most ``data.max_length``)."""
        return self.tokenizer.encode(self.normalize(text))[: self.data.max_length]

    def encode_examples(self, examples: Sequence[LabelledText]) -> list[tuple[list[int], int]]:
        """(ids, class id) of each example; a text without tokens is an error naming it."""
        ids = {label: k for k, label in enumerate(self.labels)}
        out = []
        for i, e in enumerate(examples):
            tokens = self.encode(e.text)
            if not tokens:
                where = f"line {e.line}" if e.line else f"example {i + 1}"
                raise TaskError(f"{where}: the text has no tokens")
            out.append((tokens, ids[e.label]))
        return out

    def make_batches(
        self, encoded: Sequence[tuple[list[int], int]], *, shuffle: bool = False, epoch: int = 0
    ) -> list[ClassificationBatch]:
        """Length-bucketed batches of ``train.batch_size`` texts (shuffled by seed and epoch)."""
        cap = self.config.train.batch_size
        lengths = [len(ids) for ids, _ in encoded]
        groups = bucket_batches(
            lengths,
            [0] * len(lengths),
            max_tokens=cap * max(lengths, default=1),
            max_sentences=cap,
            seed=self.config.train.seed,
            epoch=epoch,
            shuffle=shuffle,
        )
        batches = []
        for group in groups:
            tokens, lens = pad_ids([encoded[i][0] for i in group])
            labels = torch.tensor([encoded[i][1] for i in group], dtype=torch.long)
            batches.append(ClassificationBatch(tokens, lens, labels, torch.tensor(group)))
        return batches

    def train_batches(self, epoch: int) -> Iterator[ClassificationBatch]:
        if self._train is None:
            self._train = self.encode_examples(self.read_split("train", labels=None))
        return iter(self.make_batches(self._train, shuffle=True, epoch=epoch))

    def valid_batches(self) -> list[ClassificationBatch]:
        if self._valid is None:
            self._valid = self.make_batches(self.encode_examples(self.read_split("valid")))
        return self._valid

    def load_examples(self, path: Path) -> list[ClassificationBatch]:
        return self.make_batches(self.encode_examples(self.read_file(path)))

    # ------------------------------------------------------------------------------ model

    def build_model(self) -> TextClassifier:
        return TextClassifier(
            self.model_config, self.tokenizer.vocab_size, len(self.labels), PAD_ID
        )

    def step(self, model: nn.Module, batch: ClassificationBatch, state: Any = None) -> StepOutput:
        """Mean cross-entropy over the batch's texts, and their accuracy."""
        logits = model(batch.tokens, batch.lengths).logits  # (B, K)
        loss = F.cross_entropy(logits, batch.labels)
        accuracy = (logits.detach().argmax(dim=-1) == batch.labels).float().mean()
        return StepOutput(loss, {"accuracy": accuracy}, num_tokens=len(batch.labels))

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Loss, accuracy and macro-F1 over ``batches``."""
        total, count = 0.0, 0
        true: list[int] = []
        pred: list[int] = []
        with torch.no_grad():
            for batch in batches:
                logits = model(batch.tokens, batch.lengths).logits  # (B, K)
                total += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
                count += len(batch.labels)
                true += batch.labels.tolist()
                pred += logits.argmax(dim=-1).tolist()
        if not count:
            return {"loss": math.nan, "accuracy": math.nan, "macro_f1": math.nan}
        scores = classification_scores(true, pred, self.labels)
        return {"loss": total / count, "accuracy": scores.accuracy, "macro_f1": scores.macro_f1}

    # ------------------------------------------------------------------ classify texts

    def classify(
        self, model: nn.Module, texts: Sequence[str], *, batch_size: int = 128
    ) -> tuple[np.ndarray, list[Tensor | None]]:
        """Class probabilities (N, K) of ``texts`` and each one's (T_i,) attention weights
        (None without attention pooling), in input order.

        Raises:
            TaskError: a text without tokens (naming its position).
        """
        ids = [self.encode(t) for t in texts]
        for i, row in enumerate(ids):
            if not row:
                raise TaskError(f"input {i + 1} is empty: nothing to classify")
        probs = np.zeros((len(ids), len(self.labels)))
        attention: list[Tensor | None] = [None] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        device = next(model.parameters()).device
        model.eval()
        with torch.no_grad(), flush_denormals():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                tokens, lengths = pad_ids([ids[i] for i in chunk])
                out = model(tokens.to(device), lengths.to(device))
                p = torch.softmax(out.logits.float(), dim=-1).cpu().double().numpy()  # (B, K)
                for b, i in enumerate(chunk):
                    probs[i] = p[b]
                    if out.attention is not None:
                        attention[i] = out.attention[b, : len(ids[i])].float().cpu()
        return probs, attention

    def tokens_of(self, text: str) -> list[str]:
        """The token strings the model reads of ``text`` (as :meth:`encode`)."""
        return self.tokenizer.pieces(self.normalize(text))[: self.data.max_length]

    # ------------------------------------------------------------ evaluate and compare

    def baselines(self) -> tuple[dict[str, MajorityClass | TfidfLogReg], list[str]]:
        """The baselines fitted on the run's training split (TF-IDF: C chosen on its
        validation split), and notes on those that could not be fitted."""
        K = len(self.labels)
        majority = MajorityClass(K)
        majority.counts = np.asarray(self.label_counts, dtype=np.int64)
        fitted: dict[str, MajorityClass | TfidfLogReg] = {"majority": majority}
        notes = []
        if not sklearn_available():
            notes.append(f"tfidf_logreg: not run; it needs {SKLEARN_HINT}")
            return fitted, notes
        try:
            train, valid = self.read_split("train"), self.read_split("valid")
        except (TextDataError, TaskError) as err:
            notes.append(f"tfidf_logreg: not run; the training data cannot be read ({err})")
            return fitted, notes
        ids = {label: k for k, label in enumerate(self.labels)}
        train = [e for e in train if e.label in ids]
        fitted["tfidf_logreg"] = TfidfLogReg(K, seed=self.config.train.seed).fit(
            [e.text for e in train],
            [ids[e.label] for e in train],
            valid=([e.text for e in valid], [ids[e.label] for e in valid]),
        )
        return fitted, notes

    def _scores(self, model: nn.Module, examples: Sequence[LabelledText]) -> ClassificationScores:
        ids = {label: k for k, label in enumerate(self.labels)}
        probs, _ = self.classify(model, [e.text for e in examples])
        true = [ids[e.label] for e in examples]
        return classification_scores(true, probs.argmax(axis=1).tolist(), self.labels)

    def _baseline_scores(
        self, examples: Sequence[LabelledText], skip: bool
    ) -> tuple[dict[str, ClassificationScores], dict[str, float], list[str]]:
        if skip:
            return {}, {}, []
        fitted, notes = self.baselines()
        ids = {label: k for k, label in enumerate(self.labels)}
        true = [ids[e.label] for e in examples]
        texts = [e.text for e in examples]
        scores = {
            name: classification_scores(true, b.predict(texts).tolist(), self.labels)
            for name, b in fitted.items()
        }
        params = {name: b.C for name, b in fitted.items() if isinstance(b, TfidfLogReg)}
        return scores, params, notes

    def evaluate_file(self, model: nn.Module, path: Path, options: Mapping[str, Any]) -> Report:
        """Accuracy, macro-F1, per-class scores and the confusion matrix of the model and the
        baselines on a labelled file; ``--confusion-plot PNG`` draws the model's matrix and
        ``--output FILE`` writes each example's prediction."""
        for key in ("confusion_plot", "output"):
            value = options.get(key)
            if value is not None and Path(value).is_dir():
                flag = "--" + key.replace("_", "-")
                raise TaskError(f"{flag} {value} is a folder; give the file to write")
        if options.get("output") is not None:
            text_format(options["output"])  # an unknown suffix fails before any work
        examples = self.read_file(path)
        ids = {label: k for k, label in enumerate(self.labels)}
        probs, _ = self.classify(model, [e.text for e in examples])
        pred = probs.argmax(axis=1)
        scores = classification_scores([ids[e.label] for e in examples], pred.tolist(), self.labels)
        others, params, notes = self._baseline_scores(examples, bool(options.get("no_baselines")))
        name = self.run_dir.name if self.run_dir is not None else "model"
        files: list[Path] = []
        plot = options.get("confusion_plot")
        if plot is not None:
            files.append(plot_confusion(scores.confusion, self.labels, Path(plot), title=name))
        output = options.get("output")
        if output is not None:
            rows = [
                {"text": e.text, "label": e.label, "predicted": self.labels[int(k)]}
                for e, k in zip(examples, pred, strict=True)
            ]
            files.append(write_table(rows, ("text", "label", "predicted"), Path(output)))
        metrics: dict[str, Any] = {"data": str(path), "count": len(examples)}
        metrics.update(scores.to_dict())
        metrics["labels"] = list(self.labels)
        for key, other in others.items():
            metrics[key] = {**other.to_dict(), **({"C": params[key]} if key in params else {})}
        lines = [
            f"{path}: {len(examples)} examples, {len(self.labels)} classes",
            "",
            _summary({name: scores, **others}),
            "",
            f"{name}:",
            format_scores(scores),
            "",
            "confusion (rows true, columns predicted):",
            _confusion_table(scores),
            *notes,
        ]
        if "tfidf_logreg" in params:
            lines.append(f"tfidf_logreg: C = {params['tfidf_logreg']:g} (chosen on validation)")
        return Report(metrics, "\n".join(lines), tuple(files))

    def compare(
        self,
        names: Sequence[str],
        models: Sequence[nn.Module],
        path: Path,
        options: Mapping[str, Any],
    ) -> Report:
        """Accuracy and macro-F1 of each run and of the baselines on one file. The runs are
        read with this (the first) run's tokeniser and classes, so they must share them."""
        vocab = self.tokenizer.vocab_size
        for n, m in zip(names, models, strict=True):
            if not isinstance(m, TextClassifier) or m.embed.num_embeddings != vocab:
                raise TaskError(
                    f"compare: run '{n}' has another tokeniser than '{names[0]}'; compare runs "
                    "trained on the same data with the same tokeniser settings"
                )
            if m.num_classes != len(self.labels):
                raise TaskError(f"compare: run '{n}' has other classes than '{names[0]}'")
        examples = self.read_file(path)
        scores = {n: self._scores(m, examples) for n, m in zip(names, models, strict=True)}
        others, params, notes = self._baseline_scores(examples, bool(options.get("no_baselines")))
        payload = {
            "data": str(path),
            "count": len(examples),
            "runs": [{"name": n, **s.to_dict()} for n, s in scores.items()],
            **{
                k: {**s.to_dict(), **({"C": params[k]} if k in params else {})}
                for k, s in others.items()
            },
        }
        text = "\n".join(
            [f"{path}: {len(examples)} examples", "", _summary({**scores, **others}), *notes]
        )
        return Report(payload, text)


def pad_ids(ids: Sequence[Sequence[int]], pad_id: int = PAD_ID) -> tuple[Tensor, Tensor]:
    """Pad B id lists: tokens (B, T) with T the longest, and lengths (B,)."""
    T = max((len(row) for row in ids), default=1)
    tokens = torch.full((len(ids), T), pad_id, dtype=torch.long)  # (B, T)
    for b, row in enumerate(ids):
        tokens[b, : len(row)] = torch.tensor(list(row), dtype=torch.long)
    return tokens, torch.tensor([len(row) for row in ids], dtype=torch.long)


def _summary(results: Mapping[str, ClassificationScores]) -> str:
    width = max(len("model"), *(len(n) for n in results))
    lines = [f"{'model'.ljust(width)}  accuracy  macro-F1"]
    lines += [f"{n.ljust(width)}  {s.accuracy:8.4f}  {s.macro_f1:8.4f}" for n, s in results.items()]
    return "\n".join(lines)


def _confusion_table(scores: ClassificationScores) -> str:
    width = max(len(label) for label in scores.labels)
    cells = max(width, *(len(str(int(v))) for v in scores.confusion.flat))
    lines = [" " * width + "  " + "  ".join(label.rjust(cells) for label in scores.labels)]
    for label, row in zip(scores.labels, scores.confusion, strict=True):
        lines.append(label.ljust(width) + "  " + "  ".join(str(int(v)).rjust(cells) for v in row))
    return "\n".join(lines)


ClassificationTask.predictor = ClassificationPredictor
