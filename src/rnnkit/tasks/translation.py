"""The ``translation`` task: sentence pairs in, an encoder-decoder (:class:`Seq2Seq`) out.

A run config::

    task: translation
    data:
      corpus: bible-en-fr          # a built-in corpus, or:  train: pairs.tsv  valid: valid.tsv
      tokenizer: unigram           # unigram | bpe (sentencepiece) | word | char
      vocab_size: 8000
    model: {cell: lstm, attention: additive, embedding_size: 256, hidden_size: 512, ...}
    objective: {label_smoothing: 0.1, scheduled_sampling: 0.0}
    train: {batch_size: 64, max_time_s: 900, ...}

Data. ``data.train`` / ``data.valid`` are TSV files (``source<TAB>target``; other columns are
ignored) or, as a list of two paths, aligned text files (:func:`rnnkit.data.parallel.read_parallel`
reads them; bad lines are errors naming file and line, or skipped and counted with
``data.on_error: skip``). ``data.corpus`` takes a built-in corpus and its fixed train/valid split
instead (:mod:`rnnkit.data.corpora`). Skipped lines are reported once per split, with their count
and first line numbers. Training pairs with more than ``data.max_length`` tokens on either side
are left out, and the log says how many.

Length limits. A translation of a source of S tokens may have at most ``floor(a * S + b)`` tokens
(eos included; fairseq's ``max_len_a`` / ``max_len_b``). :meth:`TranslationTask.prepare` fits
(a, b) to the kept training pairs (:func:`fit_length_limit`: a the 99th percentile of the
target/source length ratio, b so that every training target fits, plus a margin of 2) and saves
them in ``length_limit.json``; ``data.max_len_a`` / ``data.max_len_b`` override them, the
``--max-len-a`` / ``--max-len-b`` flags override both, and a run saved without the file keeps
the old ``1.5 * S + 10``. Validation BLEU, ``evaluate``, ``compare`` and ``predict`` all decode
under it; a translation cut at it is marked (``[truncated]`` in text, ``"truncated": true`` in
JSON, a count in ``evaluate``'s report). Inputs are bounded too: a source of more than
``4 * data.max_length`` tokens (``--max-input-tokens N`` to change it) is refused before any
decoding, naming its file and line (``evaluate``, ``compare``, validation; with ``data.on_error:
skip`` validation leaves it out and counts it) or its position (``predict``).

Tokenisers are trained on the training split by :meth:`TranslationTask.prepare` when training
starts and saved in the run folder (``tokenizer.model``, or ``source.*`` and ``target.*`` with
``joint_vocab: false``); loading a run only reads them, so ``evaluate`` and ``predict`` need only
the run folder. Ids: pad 0, bos 1, eos 2, unk 3 (:mod:`rnnkit.data.tokenizers`). A
sentencepiece ``data.vocab_size`` the training text cannot give is an error naming the key and
the size the text allows, and leaves no file in the run folder.

Batches. Training pairs are grouped by length (:func:`rnnkit.data.parallel.bucket_batches`):
``train.batch_size`` sentences per batch, or, with ``data.batch_tokens``, as many as fit that
budget of padded tokens (``train.batch_size`` then caps the sentences). A batch is::

    src      (B, S)  source ids, padded           src_lengths (B,)
    tgt_in   (B, T)  bos y_1 .. y_n, padded       tgt_out     (B, T)  y_1 .. y_n eos, padded

Loss: the mean cross-entropy over real target tokens, with ``objective.label_smoothing``; with
``objective.scheduled_sampling`` the decoder is fed its own samples at a rate ramped over
``objective.scheduled_sampling_steps``. Validation reports ``loss``, ``ppl`` and the BLEU and chrF
of greedy translations of the validation sentences (sacreBLEU, detokenised); ``bleu`` picks
``best.safetensors`` and drives early stopping.

:func:`translate` (beam search or sampling, n-best, attention weights) serves
:class:`TranslationPredictor` (``rnnkit predict``); :meth:`TranslationTask.evaluate_file` (BLEU,
chrF, signatures and BLEU by source length on a test file) ``rnnkit evaluate``, and
:meth:`TranslationTask.compare` ``rnnkit compare``.

The configs, the length-limit constants, :func:`fit_length_limit` and the command options live
in :mod:`rnnkit.tasks.translation_config`; :class:`Translation`, :func:`translate` and
:class:`TranslationPredictor` in :mod:`rnnkit.tasks.translation_predict` (all importable from
here too). The generic pieces live below them (:mod:`rnnkit.data.parallel`,
:mod:`rnnkit.decoding`, :mod:`rnnkit.tasks.decoding_options`, :mod:`rnnkit.metrics.bleu`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.data.corpora import load_corpus
from rnnkit.data.parallel import Pair, ParallelData, bucket_batches, pad_pairs, read_parallel
from rnnkit.data.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    Tokenizer,
    VocabSizeError,
    build_tokenizer,
    load_tokenizer,
)
from rnnkit.decoding import SearchConfig, greedy_search
from rnnkit.io import write_text_atomic
from rnnkit.metrics.bleu import (
    TranslationScores,
    check_same_buckets,
    format_bleu_table,
    format_scores,
    translation_scores,
)
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks.base import Option, Report, StepOutput, Task, TaskError
from rnnkit.tasks.decoding_options import search_config
from rnnkit.tasks.translation_config import (
    COMPARE_OPTIONS,
    EVALUATE_OPTIONS,
    INPUT_FACTOR,
    LIMIT_MARGIN,
    LIMIT_QUANTILE,
    OLD_LIMIT,
    PREDICTION_OPTIONS,
)
from rnnkit.tasks.translation_config import LENGTH_LIMIT_FILE as LENGTH_LIMIT_FILE
from rnnkit.tasks.translation_config import TranslationDataConfig as TranslationDataConfig
from rnnkit.tasks.translation_config import TranslationObjective as TranslationObjective
from rnnkit.tasks.translation_config import fit_length_limit as fit_length_limit
from rnnkit.tasks.translation_predict import Translation as Translation
from rnnkit.tasks.translation_predict import TranslationPredictor as TranslationPredictor
from rnnkit.tasks.translation_predict import translate as translate
from rnnkit.training.losses import token_cross_entropy
from rnnkit.viz.attention import plot_bleu_by_length

logger = logging.getLogger(__name__)


class TranslationBatch(NamedTuple):
    """A batch of sentence pairs (shapes in the module docstring); texts for BLEU."""

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    sources: tuple[str, ...]
    references: tuple[str, ...]


class TranslationTask(Task):
    """Translate sentences with an RNN encoder-decoder, with or without attention."""

    name = "translation"
    DataConfig: ClassVar[type[FrozenConfig]] = TranslationDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = Seq2SeqConfig
    ObjectiveConfig: ClassVar[type[FrozenConfig]] = TranslationObjective
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "ppl", "bleu", "chrf")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("bleu", "max")
    evaluate_options: ClassVar[tuple[Option, ...]] = EVALUATE_OPTIONS
    compare_options: ClassVar[tuple[Option, ...]] = COMPARE_OPTIONS
    predict_options: ClassVar[tuple[Option, ...]] = PREDICTION_OPTIONS

    def __init__(self, config: Any, run_dir: Path | None = None) -> None:
        super().__init__(config, run_dir)
        self._train_pairs: list[tuple[list[int], list[int]]] | None = None
        self._valid: list[TranslationBatch] | None = None
        self._tokenizers: tuple[Tokenizer, Tokenizer] | None = None
        self._read: dict[str, ParallelData] = {}
        self._limit: tuple[float, int] | None = None
        self.sampling_rate = 0.0

    @property
    def data(self) -> TranslationDataConfig:
        assert isinstance(self.config.data, TranslationDataConfig)
        return self.config.data

    @property
    def model_config(self) -> Seq2SeqConfig:
        assert isinstance(self.config.model, Seq2SeqConfig)
        return self.config.model

    @property
    def objective(self) -> TranslationObjective:
        assert isinstance(self.config.objective, TranslationObjective)
        return self.config.objective

    # ------------------------------------------------------------------------------- data

    def read_data(self, split: Literal["train", "valid"]) -> ParallelData:
        """The configured ``split``'s sentence pairs (built-in corpus or files), read once.

        Skipped lines (``data.on_error: skip``) are logged here, once per split: their count, the
        first line numbers and the first reason.
        """
        if split in self._read:
            return self._read[split]
        d = self.data
        if d.corpus is not None:
            data = ParallelData(pairs=load_corpus(d.corpus, split), name=f"corpus {d.corpus}")
        else:
            value = d.train if split == "train" else d.valid
            assert value is not None
            source: str | tuple[str, str] = (
                value if isinstance(value, str) else (value[0], value[1])
            )
            data = read_parallel(source, on_error=d.on_error, columns=d.columns)
            summary = data.skip_summary()
            if summary is not None:
                logger.warning("data.%s: %s", split, summary)
            if not data.pairs:
                raise TaskError(f"data.{split}: no sentence pairs in {value}")
        self._read[split] = data
        return data

    def read_pairs(self, split: Literal["train", "valid"]) -> list[Pair]:
        """The configured ``split``'s sentence pairs (:meth:`read_data`'s)."""
        return self.read_data(split).pairs

    def _tokenizer_paths(self) -> list[Path]:
        folder = self.folder()
        ext = ".model" if self.data.tokenizer in ("unigram", "bpe") else ".json"
        stems = ("tokenizer",) if self.data.joint_vocab else ("source", "target")
        return [folder / (stem + ext) for stem in stems]

    def prepare(self) -> None:
        """Train the tokeniser(s) on the training split, fit the length limit to the kept
        training pairs, and save both in the run folder.

        Raises:
            TaskError: a ``data.vocab_size`` the training text cannot give (naming the key and
                the size it allows). On any failure the files this call writes are removed.
        """
        d = self.data
        pairs = self.read_pairs("train")
        texts: list[list[str]] = (
            [[s for s, _ in pairs] + [t for _, t in pairs]]
            if d.joint_vocab
            else [[s for s, _ in pairs], [t for _, t in pairs]]
        )
        paths = self._tokenizer_paths()
        sides = (
            ("this training text",)
            if d.joint_vocab
            else ("the source side's training text", "the target side's training text")
        )
        limit_path = paths[0].parent / LENGTH_LIMIT_FILE
        written = [limit_path]
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        try:
            for text, path, side in zip(texts, paths, sides, strict=True):
                written += [path, path.with_suffix(".vocab")]
                try:
                    build_tokenizer(
                        d.tokenizer, text, path.with_suffix(""), vocab_size=d.vocab_size
                    )
                except VocabSizeError as err:
                    raise TaskError(
                        f"data.vocab_size={d.vocab_size} is {err.reason(side)}; "
                        f"{err.advice('data.vocab_size')}"
                    ) from None
            self._tokenizers = None
            self._train_pairs = None
            kept = self._training_pairs()
            a, b = fit_length_limit([(len(s), len(t)) for s, t in kept])
            body = {
                "max_len_a": a,
                "max_len_b": b,
                "fitted_on": len(kept),
                "quantile": LIMIT_QUANTILE,
                "margin": LIMIT_MARGIN,
            }
            write_text_atomic(limit_path, json.dumps(body, indent=1) + "\n")
            self._limit = None
            logger.info(
                "length limit: floor(%g * S + %d) target tokens for a source of S (fitted to "
                "%d training pairs)",
                a,
                b,
                len(kept),
            )
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            self._tokenizers = None
            self._train_pairs = None
            raise

    @property
    def length_limit(self) -> tuple[float, int]:
        """(max_len_a, max_len_b) of decoding: ``data.max_len_a/b`` where set, else the run's
        fitted ``length_limit.json``, else :data:`OLD_LIMIT` (runs saved without one)."""
        if self._limit is None:
            path = self.folder() / LENGTH_LIMIT_FILE
            a, b = OLD_LIMIT
            if path.is_file():
                try:
                    body = json.loads(path.read_text(encoding="utf-8"))
                    a, b = float(body["max_len_a"]), int(body["max_len_b"])
                except (ValueError, KeyError, TypeError) as err:
                    raise TaskError(f"{path}: not a length limit file ({err})") from None
            d = self.data
            self._limit = (
                a if d.max_len_a is None else d.max_len_a,
                b if d.max_len_b is None else d.max_len_b,
            )
        return self._limit

    def max_input_tokens(self, options: Mapping[str, Any] | None = None) -> tuple[int, str]:
        """The most source tokens an input may have, and where that number comes from.

        ``--max-input-tokens`` when given, else ``INPUT_FACTOR * data.max_length``.
        """
        given = (options or {}).get("max_input_tokens")
        if given is not None:
            if given < 1:
                raise TaskError(f"--max-input-tokens must be at least 1, got {given}")
            return int(given), "--max-input-tokens"
        limit = INPUT_FACTOR * self.data.max_length
        return limit, f"{INPUT_FACTOR} x data.max_length={self.data.max_length}"

    def search(self, options: Mapping[str, Any]) -> SearchConfig:
        """The beam search of ``options`` under the run's length limit (flags override it)."""
        a, b = self.length_limit
        return search_config(options, max_len_a=a, max_len_b=b)

    @property
    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        """(source, target) tokenisers, read from the run folder (written by :meth:`prepare`)."""
        if self._tokenizers is None:
            paths = self._tokenizer_paths()
            missing = [p for p in paths if not p.is_file()]
            if missing:
                raise TaskError(
                    f"{missing[0]}: no tokeniser; prepare() trains it (rnnkit train does)"
                )
            loaded = [load_tokenizer(p) for p in paths]
            self._tokenizers = (loaded[0], loaded[-1])
        return self._tokenizers

    def encode_pairs(self, pairs: Sequence[Pair]) -> list[tuple[list[int], list[int]]]:
        """Token ids of each pair's source and target (no bos/eos)."""
        src_tok, tgt_tok = self.tokenizers
        return [(src_tok.encode(s), tgt_tok.encode(t)) for s, t in pairs]

    def _training_pairs(self) -> list[tuple[list[int], list[int]]]:
        if self._train_pairs is None:
            encoded = self.encode_pairs(self.read_pairs("train"))
            limit = self.data.max_length
            empty = [(s, t) for s, t in encoded if not s or not t]
            long = [(s, t) for s, t in encoded if s and t and max(len(s), len(t)) > limit]
            kept = [(s, t) for s, t in encoded if 0 < len(s) <= limit and 0 < len(t) <= limit]
            if long:
                longest = max(max(len(s), len(t)) for s, t in long)
                logger.warning(
                    "data.max_length=%d: left out %d of %d training pairs with more tokens on a "
                    "side (the longest has %d); raise data.max_length to keep them",
                    limit,
                    len(long),
                    len(encoded),
                    longest,
                )
            if empty:
                logger.warning(
                    "left out %d of %d training pairs with a side that has no tokens",
                    len(empty),
                    len(encoded),
                )
            if not kept:
                raise TaskError(
                    f"no training pairs left: all {len(encoded)} have more than "
                    f"data.max_length={limit} tokens on a side, or a side with none"
                )
            self._train_pairs = kept
        return self._train_pairs

    def make_batches(
        self, pairs: Sequence[Pair], *, shuffle: bool = False, epoch: int = 0
    ) -> list[TranslationBatch]:
        """Length-bucketed batches of ``pairs`` (file order kept within buckets when not shuffled)."""
        encoded = self.encode_pairs(pairs)
        empty = [i for i, (s, _) in enumerate(encoded) if not s]
        if empty:
            raise TaskError(f"pair {empty[0] + 1}: the source has no tokens")
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
            data = self.read_data("valid")
            pairs, lines = data.pairs, data.lines
            if self.data.valid_size is not None:
                pairs, lines = pairs[: self.data.valid_size], lines[: self.data.valid_size]
            names = [f"{data.name}:{n}" for n in lines] if lines else None
            self._valid = self.make_batches(self._bounded_valid(pairs, names))
        return self._valid

    def _bounded_valid(self, pairs: list[Pair], names: list[str] | None) -> list[Pair]:
        """Validation pairs whose source is within the input bound: a longer one is an error
        naming it, or with ``data.on_error: skip`` left out and counted in the log."""
        bound, origin = self.max_input_tokens()
        src_tok, _ = self.tokenizers
        sizes = [len(src_tok.encode(s)) for s, _ in pairs]
        over = [i for i, n in enumerate(sizes) if n > bound]
        if not over:
            return pairs
        where = [names[i] if names else f"pair {i + 1}" for i in over]
        if self.data.on_error == "raise":
            raise TaskError(
                f"data.valid: {where[0]}: the source has {sizes[over[0]]} tokens, more than the "
                f"{bound} an input may have ({origin}); shorten it, or set data.on_error: skip"
            )
        shown = ", ".join(where[:5]) + (", ..." if len(over) > 5 else "")
        logger.warning(
            "data.valid: left out %d of %d pairs whose source has more than %d tokens (%s): %s",
            len(over),
            len(pairs),
            bound,
            origin,
            shown,
        )
        dropped = set(over)
        return [p for i, p in enumerate(pairs) if i not in dropped]

    def read_test_pairs(self, path: Path) -> list[Pair]:
        """A user's test TSV (the run's ``data.columns``); every line counts, none is skipped."""
        return self.read_test_data(path).pairs

    def read_test_data(self, path: Path) -> ParallelData:
        """A user's test TSV with its line numbers (:meth:`read_test_pairs`)."""
        data = read_parallel(path, columns=self.data.columns)
        if not data.pairs:
            raise TaskError(f"{path}: no sentence pairs")
        return data

    def load_examples(self, path: Path) -> list[TranslationBatch]:
        return self.make_batches(self.read_test_pairs(path))

    # ------------------------------------------------------------------------------ model

    def build_model(self) -> Seq2Seq:
        src_tok, tgt_tok = self.tokenizers
        return Seq2Seq(
            self.model_config, src_tok.vocab_size, tgt_tok.vocab_size, PAD_ID, BOS_ID, EOS_ID
        )

    def begin_step(self, step: int) -> None:
        o = self.objective
        self.sampling_rate = o.scheduled_sampling * min(1.0, step / o.scheduled_sampling_steps)

    def step(self, model: nn.Module, batch: TranslationBatch, state: Any = None) -> StepOutput:
        rate = self.sampling_rate if model.training else 0.0
        out = model(batch.src, batch.src_lengths, batch.tgt_in, sampling_rate=rate)
        loss = token_cross_entropy(
            out.logits, batch.tgt_out, PAD_ID, self.objective.label_smoothing
        )
        return StepOutput(loss=loss, num_tokens=int((batch.tgt_out != PAD_ID).sum()))

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Loss, perplexity (without label smoothing) and greedy-search BLEU / chrF, decoded
        under the run's length limit (:attr:`length_limit`)."""
        assert isinstance(model, Seq2Seq)
        total, tokens = 0.0, 0
        hypotheses: list[str] = []
        sources: list[str] = []
        references: list[str] = []
        _, tgt_tok = self.tokenizers
        a, b = self.length_limit
        with torch.no_grad():
            for batch in batches:
                logits = model(batch.src, batch.src_lengths, batch.tgt_in).logits
                n = int((batch.tgt_out != PAD_ID).sum())
                total += float(token_cross_entropy(logits, batch.tgt_out, PAD_ID)) * n
                tokens += n
                memory = model.encode(batch.src, batch.src_lengths)
                for hyps in greedy_search(model, memory, max_len_a=a, max_len_b=b):
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

    # ------------------------------------------------------------ evaluate and compare

    def _score_file(
        self, model: nn.Module, path: Path, search: SearchConfig, options: Mapping[str, Any]
    ) -> tuple[TranslationScores, list[str], int]:
        """Scores, translations and how many translations were cut at the length limit."""
        data = self.read_test_data(path)
        pairs = data.pairs
        sources = [s for s, _ in pairs]
        best = [
            t[0]
            for t in translate(
                self,
                model,
                sources,
                search,
                max_source_tokens=self.max_input_tokens(options),
                names=[f"{path}:{n}" for n in data.lines],
            )
        ]
        hypotheses = [t.text for t in best]
        scores = translation_scores(hypotheses, [r for _, r in pairs], sources)
        return scores, hypotheses, sum(not t.ended for t in best)

    def evaluate_file(self, model: nn.Module, path: Path, options: Mapping[str, Any]) -> Report:
        """BLEU, chrF (with signatures) and BLEU by source length with beam search on a TSV;
        ``--output FILE`` keeps the translations."""
        output = options.get("output")
        if output is not None and Path(output).is_dir():
            raise TaskError(f"--output {output} is a folder; give the file to write")
        search = self.search(options)
        scores, hypotheses, cut = self._score_file(model, path, search, options)
        files: tuple[Path, ...] = ()
        if output is not None:
            write_text_atomic(Path(output), "".join(h + "\n" for h in hypotheses))
            files = (Path(output),)
        name = self.run_dir.name if self.run_dir is not None else "model"
        text = format_scores(name, scores) + f"\n({path}, beam {search.beam_size})"
        text += (
            f"\nlength limit floor({search.max_len_a:g} * S + {search.max_len_b}) tokens: "
            f"{cut} of {len(hypotheses)} translations cut at it"
        )
        if cut:
            text += " (marked [truncated] by predict; raise --max-len-a / --max-len-b)"
        return Report(dict(scores), text, files)

    def compare(
        self,
        names: Sequence[str],
        models: Sequence[nn.Module],
        path: Path,
        options: Mapping[str, Any],
    ) -> Report:
        """The table of BLEU by source length, a column per run (Bahdanau et al., 2015), then
        BLEU and chrF per run; ``--plot`` draws the table."""
        plot = options.get("plot")
        if plot is not None and Path(plot).is_dir():
            raise TaskError(f"--plot {plot} is a folder; give the PNG file to write")
        search = self.search(options)
        scores = {
            name: self._score_file(model, path, search, options)[0]
            for name, model in zip(names, models, strict=True)
        }
        by_length = {name: s["by_length"] for name, s in scores.items()}
        check_same_buckets(by_length)
        files: tuple[Path, ...] = ()
        if plot is not None:
            files = (plot_bleu_by_length(by_length, Path(plot)),)
        first = next(iter(scores.values()))
        width = max(len("run"), *(len(name) for name in names))
        lines = [
            f"BLEU by source length on {path} ({first['count']} sentences, "
            f"beam {search.beam_size}):",
            format_bleu_table(by_length),
            "",
            f"{'run'.ljust(width)}   BLEU   chrF",
            *(f"{n.ljust(width)}  {s['bleu']:5.1f}  {s['chrf']:5.1f}" for n, s in scores.items()),
            "",
            f"BLEU: {first['signature']}",
            f"chrF: {first['chrf_signature']}",
        ]
        payload = {
            "data": str(path),
            "beam": search.beam_size,
            "runs": [{"name": n, **s} for n, s in scores.items()],
        }
        return Report(payload, "\n".join(lines), files)


TranslationTask.predictor = TranslationPredictor
