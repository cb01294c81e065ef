r"""The ``captioning`` task: images in, a caption word by word out (Show and Tell; Show, Attend
and Tell). A run config::

    task: captioning
    data: {corpus: emoji-scenes}        # a built-in set, or:  train: a.csv  valid: b.csv
    model: {encoder: efficientnet_lite0, attention: soft, cell: lstm}   # attention none: S&T
    train: {batch_size: 64, max_time_s: 600}

The pipeline is the lecture's. A CNN turns the image into a grid of features ``h_{i,j}``
(Hg x Wg x D: 7 x 7 x 1280 for EfficientNet-Lite0), and an RNN decoder writes the caption. With
``model.attention: none`` (Vinyals et al., 2015) the image enters once, through ``s_0``; with
``soft`` (Xu et al., 2015) every step attends over the grid::

    e_{t,i,j} = f_att(s_{t-1}, h_{i,j}),   a_t = softmax(e_t) over the Hg x Wg cells,
    c_t = sum_{i,j} a_{t,i,j} h_{i,j}

(:class:`rnnkit.models.captioner.Captioner`, on :class:`rnnkit.nn.Attention`). Images are
converted to RGB and resized to the encoder's input **without cropping**, so cell (i, j) covers
rows i/Hg..(i+1)/Hg and columns j/Wg..(j+1)/Wg of the whole image.

Data. ``data.train`` / ``valid`` / ``test`` are CSV/TSV files with an ``image,caption`` header
(several rows of one image are several references; an optional ``boxes`` column holds the
objects' boxes) or a Karpathy-split JSON (:mod:`rnnkit.data.captions`); ``data.corpus`` takes
``emoji-captions`` (Twemoji pictures and their names) or ``emoji-scenes`` (generated scenes of two
or three emoji with their positions and boxes, :mod:`rnnkit.data.emoji_images`). Captions are
tokenised by :func:`rnnkit.data.captions.caption_tokens` (lower case, words only), and a word
vocabulary is built from the training captions by :meth:`CaptioningTask.prepare`
(``vocab.json``; words seen fewer than ``data.min_count`` times become ``<unk>``).

Features. With a frozen pretrained CNN (the default) each image's grid is computed once and cached
next to the run (:mod:`rnnkit.tasks.captioning_features`), so training reads features, not
pixels; ``model.finetune_cnn: N`` trains the CNN's last N blocks too (at ``model.cnn_lr``), and
``small_cnn`` trains a small CNN from scratch, both from pixels.

Loss. Every (image, caption) pair is a training example. The loss is the paper's objective per
target token: the cross-entropy summed over the caption's words (eos included), plus, for soft
attention, the doubly stochastic penalty ``lambda * sum_{i,j} (1 - sum_t a_{t,i,j})^2`` per
caption (``model.attention_regularization``), both summed over the batch and divided by its
number of target tokens. ``objective.label_smoothing`` and ``objective.scheduled_sampling`` as
in translation.

Metrics come from decoding, never from teacher forcing: validation decodes greedily (BLEU-4,
CIDEr-D: the latter picks ``best.safetensors``); ``rnnkit evaluate`` decodes with beam search
(``--beam``, default 5, many images at once) and reports BLEU-1..4, CIDEr-D, ROUGE-L and METEOR
(pycocoevalcap; METEOR needs Java) x 100, and on data with boxes ``attention_hit_rate`` and
``attention_mass_in_box``. ``rnnkit predict RUN a.png b.png`` captions images
(:mod:`rnnkit.tasks.captioning_predict`: attention per hypothesis, the lecture's figure).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.data.captions import (
    KARPATHY_SPLITS,
    CaptionData,
    CaptionDataError,
    CaptionExample,
    caption_tokens,
    read_caption_table,
    read_karpathy_json,
)
from rnnkit.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, WordTokenizer, load_tokenizer
from rnnkit.decoding import Hypothesis, SearchConfig, beam_search, greedy_search
from rnnkit.io import write_text_atomic
from rnnkit.metrics.captioning import attention_box_scores, caption_scores
from rnnkit.models.captioner import Captioner, CaptionerConfig
from rnnkit.models.captioning_model import CaptioningModel
from rnnkit.models.image_encoders import ImageEncoder, build_encoder, default_efficientnet_weights
from rnnkit.tasks.base import Report, StepOutput, Task, TaskError
from rnnkit.tasks.captioning_config import (
    CACHE_FOLDER,
    COMPARE_OPTIONS,
    EVALUATE_OPTIONS,
    PREDICTION_OPTIONS,
    CaptioningDataConfig,
    CaptioningModelConfig,
    CaptioningObjective,
)
from rnnkit.tasks.captioning_features import FEATURE_DTYPE, ImageInputs, load_inputs
from rnnkit.tasks.captioning_predict import CaptioningPredictor
from rnnkit.tasks.captioning_scores import TOKENIZATION, compare_table, format_caption_scores
from rnnkit.tasks.decoding_options import DEFAULT_BEAM, search_config
from rnnkit.training.losses import token_cross_entropy

logger = logging.getLogger(__name__)

VOCAB_FILE = "vocab.json"
DECODE_BATCH = 64
"""Images decoded together by ``evaluate``, validation and ``predict``."""

Split = Literal["train", "valid", "test"]


class CaptionBatch(NamedTuple):
    """A batch of (image, caption) pairs.

    Attributes:
        inputs: (B, Hg, Wg, D) grid features, or (B, 3, H, W) pixels when the CNN trains.
        tokens_in: (B, T) bos w_1 .. w_n, padded.  tokens_out: (B, T) w_1 .. w_n eos, padded.
        images: (B,) each pair's row in its split's images.
        split: which split the rows index.
    """

    inputs: Tensor
    tokens_in: Tensor
    tokens_out: Tensor
    images: Tensor
    split: str


def references(example: CaptionExample) -> list[str]:
    """The example's reference captions, tokenised and joined by spaces."""
    return [" ".join(caption_tokens(c)) for c in example.captions]


def pad_captions(captions: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """(B, T) decoder inputs ``bos w..`` and targets ``w.. eos`` of word-id lists, padded."""
    T = max(len(c) for c in captions) + 1
    tokens_in = torch.full((len(captions), T), PAD_ID, dtype=torch.long)
    tokens_out = torch.full((len(captions), T), PAD_ID, dtype=torch.long)
    for b, ids in enumerate(captions):
        n = len(ids)
        tokens_in[b, 0] = BOS_ID
        tokens_in[b, 1 : n + 1] = torch.tensor(ids, dtype=torch.long)
        tokens_out[b, :n] = torch.tensor(ids, dtype=torch.long)
        tokens_out[b, n] = EOS_ID
    return tokens_in, tokens_out


class CaptioningTask(Task):
    """Caption images with a CNN grid and an RNN decoder, with or without spatial attention."""

    name = "captioning"
    DataConfig: ClassVar[type[FrozenConfig]] = CaptioningDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = CaptioningModelConfig
    ObjectiveConfig: ClassVar[type[FrozenConfig]] = CaptioningObjective
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "ppl", "bleu_4", "cider_d")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("cider_d", "max")
    evaluate_options = EVALUATE_OPTIONS
    compare_options = COMPARE_OPTIONS
    predict_options = PREDICTION_OPTIONS

    def __init__(self, config: Any, run_dir: Path | None = None) -> None:
        super().__init__(config, run_dir)
        self._data: dict[str, CaptionData] = {}
        self._inputs: dict[str, ImageInputs] = {}
        self._pairs: dict[str, list[tuple[int, list[int]]]] = {}
        self._tokenizer: WordTokenizer | None = None
        self._encoder: ImageEncoder | None = None
        self._valid: list[CaptionBatch] | None = None
        self.sampling_rate = 0.0

    @property
    def data(self) -> CaptioningDataConfig:
        assert isinstance(self.config.data, CaptioningDataConfig)
        return self.config.data

    @property
    def model_config(self) -> CaptioningModelConfig:
        assert isinstance(self.config.model, CaptioningModelConfig)
        return self.config.model

    @property
    def objective(self) -> CaptioningObjective:
        assert isinstance(self.config.objective, CaptioningObjective)
        return self.config.objective

    # ------------------------------------------------------------------------------- data

    def cache_dir(self) -> Path:
        """Where features and generated scenes are kept: ``data.cache``, else a folder
        ``rnnkit-cache`` next to the run folder (inside the scratch folder without one)."""
        if self.data.cache is not None:
            return Path(self.data.cache)
        if self.run_dir is not None:
            return self.run_dir.resolve().parent / CACHE_FOLDER
        return self.folder() / CACHE_FOLDER

    def read_file(
        self, path: Path, split: Split, on_error: Literal["raise", "skip"] = "raise"
    ) -> CaptionData:
        """The examples of a data file: a Karpathy JSON's ``split`` images, or a CSV/TSV whole.

        Raises:
            TaskError: a bad file, row or entry, naming it (with ``on_error: raise``).
        """
        try:
            if path.suffix.lower() == ".json":
                root = Path(self.data.image_root) if self.data.image_root else path.parent
                splits = KARPATHY_SPLITS[split]
                if split == "train" and not self.data.restval:
                    splits = tuple(s for s in splits if s != "restval")
                return read_karpathy_json(path, root, splits, on_error=on_error)
            return read_caption_table(path, on_error=on_error)
        except CaptionDataError as err:
            raise TaskError(str(err)) from None

    def read_split(self, split: Split) -> CaptionData:
        """The configured split's examples (built-in set or files), read once; skipped rows
        (``data.on_error: skip``) are logged with their count and the first of them."""
        if split in self._data:
            return self._data[split]
        d = self.data
        if d.corpus == "emoji-captions":
            from rnnkit.data.emoji_images import emoji_captions

            try:
                data = CaptionData(emoji_captions(split), [])
            except CaptionDataError as err:
                raise TaskError(str(err)) from None
        elif d.corpus == "emoji-scenes":
            from rnnkit.data.emoji_images import emoji_scene_splits

            a, b, c = d.scenes
            folder = self.cache_dir() / f"emoji-scenes-seed{d.scenes_seed}-{a}-{b}-{c}"
            paths = emoji_scene_splits(folder, seed=d.scenes_seed, sizes=d.scenes)
            data = self.read_file(paths[split], split)
        else:
            value = {"train": d.train, "valid": d.valid, "test": d.test}[split]
            if value is None:
                raise TaskError(f"data.{split} is not set")
            data = self.read_file(Path(value), split, d.on_error)
        if data.skipped:
            logger.warning(
                "data.%s: skipped %d rows (data.on_error: skip); the first: %s",
                split,
                len(data.skipped),
                data.skipped[0],
            )
        if not data.examples:
            raise TaskError(f"data.{split}: no captioned images")
        self._data[split] = data
        return data

    def prepare(self) -> None:
        """Build the word vocabulary of the training captions and save it (``vocab.json``)."""
        captions = [c for ex in self.read_split("train").examples for c in ex.captions]
        texts = [" ".join(caption_tokens(c)) for c in captions]
        tok = WordTokenizer.train(texts, min_count=self.data.min_count)
        folder = self.folder()
        folder.mkdir(parents=True, exist_ok=True)
        tok.save(folder / VOCAB_FILE)
        self._tokenizer = None
        logger.info("vocabulary: %d words from %d training captions", tok.vocab_size, len(texts))

    @property
    def tokenizer(self) -> WordTokenizer:
        """The run's word vocabulary (written by :meth:`prepare`)."""
        if self._tokenizer is None:
            path = self.folder() / VOCAB_FILE
            if not path.is_file():
                raise TaskError(f"{path}: no vocabulary; prepare() builds it (rnnkit train does)")
            tok = load_tokenizer(path)
            assert isinstance(tok, WordTokenizer)
            self._tokenizer = tok
        return self._tokenizer

    def encode_caption(self, caption: str) -> list[int]:
        """Word ids of a raw caption (no bos/eos)."""
        return self.tokenizer.encode(" ".join(caption_tokens(caption)))

    def weights_path(self) -> Path | None:
        """The pretrained encoder's weights file (None for ``small_cnn``)."""
        m = self.model_config
        if m.encoder_weights is not None:
            path = Path(m.encoder_weights)
            if not path.is_file():
                raise TaskError(f"model.encoder_weights: {path}: no such file")
            return path
        if m.encoder == "small_cnn":
            return None
        if m.encoder == "efficientnet_lite0":
            try:
                return default_efficientnet_weights()
            except (ImportError, ValueError) as err:
                raise TaskError(str(err)) from None
        raise TaskError(f"model.encoder: {m.encoder} needs model.encoder_weights (a file on disk)")

    def new_encoder(self) -> ImageEncoder:
        """A fresh image encoder of the config (pretrained weights read from disk)."""
        m = self.model_config
        try:
            encoder = build_encoder(
                m.encoder,
                self.weights_path(),
                grid=7 if m.grid is None else m.grid,
                feature_size=m.cnn_features,
                input_size=m.image_size,
            )
        except (ImportError, ValueError) as err:
            raise TaskError(f"model.encoder: {err}") from None
        blocks = len(encoder.blocks())
        if m.encoder != "small_cnn" and m.finetune_cnn > blocks:
            raise TaskError(f"model.finetune_cnn={m.finetune_cnn}: {m.encoder} has {blocks} blocks")
        encoder.set_trainable_blocks(blocks if m.encoder == "small_cnn" else m.finetune_cnn)
        return encoder

    @property
    def encoder(self) -> ImageEncoder:
        """The encoder the task computes cached features and pixels with (frozen, eval)."""
        if self._encoder is None:
            self._encoder = self.new_encoder().eval()
        return self._encoder

    def image_inputs(
        self, examples: Sequence[CaptionExample], on_error: Literal["raise", "skip"] = "raise"
    ) -> ImageInputs:
        """Features (cached) or pixels of ``examples``' images (:func:`load_inputs`)."""
        cache = self.cache_dir() if self.model_config.cached else None
        return load_inputs(
            examples,
            self.encoder,
            cache=cache,
            weights=self.weights_path(),
            on_error=on_error,
            batch_size=self.data.extract_batch,
        )

    def split_inputs(self, split: Split) -> ImageInputs:
        """The images of a configured split, computed once (the first ``data.valid_size`` for
        validation)."""
        if split not in self._inputs:
            examples = self.read_split(split).examples
            if split == "valid" and self.data.valid_size is not None:
                examples = examples[: self.data.valid_size]
            inputs = self.image_inputs(examples, self.data.on_error)
            if inputs.skipped:
                logger.warning(
                    "data.%s: left out %d images that cannot be read; the first: %s",
                    split,
                    len(inputs.skipped),
                    inputs.skipped[0],
                )
            if not inputs.examples:
                raise TaskError(f"data.{split}: no readable images")
            self._inputs[split] = inputs
        return self._inputs[split]

    def _split_pairs(self, split: Split) -> list[tuple[int, list[int]]]:
        """(image row, word ids) of every caption of a split; training drops the long ones."""
        if split not in self._pairs:
            examples = self.split_inputs(split).examples
            pairs = [
                (n, self.encode_caption(c)) for n, ex in enumerate(examples) for c in ex.captions
            ]
            empty = sum(not ids for _, ids in pairs)
            pairs = [(n, ids) for n, ids in pairs if ids]
            if split == "train":
                limit = self.data.max_length
                long = [ids for _, ids in pairs if len(ids) > limit]
                if long:
                    logger.warning(
                        "data.max_length=%d: left out %d of %d training captions with more "
                        "words (the longest has %d); raise data.max_length to keep them",
                        limit,
                        len(long),
                        len(pairs),
                        max(len(ids) for ids in long),
                    )
                pairs = [(n, ids) for n, ids in pairs if len(ids) <= limit]
            if empty:
                logger.warning("data.%s: left out %d captions with no words", split, empty)
            if not pairs:
                raise TaskError(f"data.{split}: no captions left to train on")
            self._pairs[split] = pairs
        return self._pairs[split]

    def _batch(self, split: Split, pairs: Sequence[tuple[int, list[int]]]) -> CaptionBatch:
        rows = torch.tensor([n for n, _ in pairs], dtype=torch.long)
        tokens_in, tokens_out = pad_captions([ids for _, ids in pairs])
        inputs = self.split_inputs(split).inputs.index_select(0, rows)
        return CaptionBatch(inputs, tokens_in, tokens_out, rows, split)

    def load_data(self) -> None:
        """Read the training and validation data and compute (or read) their image features."""
        self._split_pairs("train")
        self._split_pairs("valid")

    def train_batches(self, epoch: int) -> Iterator[CaptionBatch]:
        pairs = self._split_pairs("train")
        generator = torch.Generator().manual_seed(self.config.train.seed * 1_000_003 + epoch)
        order = torch.randperm(len(pairs), generator=generator).tolist()
        size = self.config.train.batch_size
        for start in range(0, len(order), size):
            yield self._batch("train", [pairs[i] for i in order[start : start + size]])

    def valid_batches(self) -> list[CaptionBatch]:
        if self._valid is None:
            pairs = self._split_pairs("valid")
            size = self.config.train.batch_size
            self._valid = [
                self._batch("valid", pairs[start : start + size])
                for start in range(0, len(pairs), size)
            ]
        return self._valid

    # ------------------------------------------------------------------------------ model

    def build_model(self) -> CaptioningModel:
        m = self.model_config
        encoder = self.new_encoder()
        decoder = Captioner(
            CaptionerConfig(
                feature_size=encoder.feature_size,
                vocab_size=self.tokenizer.vocab_size,
                embedding_size=m.embedding_size,
                hidden_size=m.hidden_size,
                attention=m.attention,
                attention_size=m.attention_size,
                cell=m.cell,
                dropout=m.dropout,
                tie_embeddings=m.tie_embeddings,
                gate=m.gate,
                grid_positions=encoder.grid if m.grid_positions else None,
                pad_id=PAD_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
            )
        )
        return CaptioningModel(encoder, decoder, cache_dtype=FEATURE_DTYPE if m.cached else None)

    def parameter_groups(self, model: nn.Module, lr: float) -> list[dict[str, Any]]:
        """The optimiser's groups: the decoder at ``lr``, trained CNN blocks at ``model.cnn_lr``
        (default ``lr / 10``)."""
        assert isinstance(model, CaptioningModel)
        cnn = [p for p in model.encoder.parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": list(model.decoder.parameters())}]
        if cnn:
            m = self.model_config
            default = lr if m.encoder == "small_cnn" else lr / 10  # from scratch: the decoder's
            groups.append({"params": cnn, "lr": default if m.cnn_lr is None else m.cnn_lr})
        return groups

    def begin_step(self, step: int) -> None:
        o = self.objective
        self.sampling_rate = o.scheduled_sampling * min(1.0, step / o.scheduled_sampling_steps)

    def step(self, model: nn.Module, batch: CaptionBatch, state: Any = None) -> StepOutput:
        from rnnkit.models.captioner import doubly_stochastic_penalty

        rate = self.sampling_rate if model.training else 0.0
        out = model(batch.inputs, batch.tokens_in, sampling_rate=rate)
        mask = batch.tokens_out != PAD_ID  # (B, T)
        tokens = int(mask.sum())
        loss = token_cross_entropy(
            out.logits, batch.tokens_out, PAD_ID, self.objective.label_smoothing
        )
        metrics: dict[str, float | Tensor] = {}
        lam = self.model_config.attention_regularization
        if out.attention is not None and lam > 0:
            penalty = doubly_stochastic_penalty(out.attention, mask).sum() * (lam / tokens)
            loss = loss + penalty
            metrics["attention_penalty"] = penalty.detach()
        return StepOutput(loss=loss, metrics=metrics, num_tokens=tokens)

    # ------------------------------------------------------------------------ decoding

    def search(self, options: Mapping[str, Any]) -> SearchConfig:
        """Beam search of ``options``: at most ``data.max_length + 1`` steps unless ``--max-len``."""
        values = dict(options)
        if values.get("beam_size") is None and values.get("n_best") is None:
            values["beam_size"] = DEFAULT_BEAM
        return search_config(values, max_len_a=0.0, max_len_b=self.data.max_length + 1)

    def decode(
        self, model: nn.Module, inputs: Tensor, search: SearchConfig | None
    ) -> list[list[Hypothesis]]:
        """Captions of a batch's inputs (features or pixels): beam search, or greedy when
        ``search`` is None; :data:`DECODE_BATCH` images at a time."""
        assert isinstance(model, CaptioningModel)
        found: list[list[Hypothesis]] = []
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, inputs.shape[0], DECODE_BATCH):
                    grid = model.grid(inputs[start : start + DECODE_BATCH])
                    memory = model.decoder.encode(grid)
                    if search is None:
                        limit = self.data.max_length + 1
                        found += greedy_search(model.decoder, memory, 0.0, limit)
                    else:
                        found += beam_search(model.decoder, memory, search)
        finally:
            model.train(was_training)
        return found

    def words(self, tokens: Sequence[int]) -> list[str]:
        """The words of decoded ids (pad/bos/eos dropped)."""
        text = self.tokenizer.decode(tokens)
        return text.split() if text else []

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Loss and perplexity under teacher forcing, then BLEU-4 and CIDEr-D of greedy
        captions of the batches' images (decoded, never teacher-forced)."""
        total, tokens = 0.0, 0
        seen: dict[str, dict[int, None]] = {}  # split -> its image rows, in first-seen order
        with torch.no_grad():
            for batch in batches:
                out = model(batch.inputs, batch.tokens_in)
                n = int((batch.tokens_out != PAD_ID).sum())
                total += float(token_cross_entropy(out.logits, batch.tokens_out, PAD_ID)) * n
                tokens += n
                seen.setdefault(batch.split, {}).update(dict.fromkeys(batch.images.tolist()))
        loss = total / max(tokens, 1)
        hyps: list[str] = []
        refs: list[list[str]] = []
        for split, kept in seen.items():
            inputs, rows = self._inputs[split], list(kept)
            index = torch.tensor(rows, dtype=torch.long)
            found = self.decode(model, inputs.inputs.index_select(0, index), None)
            hyps += [" ".join(self.words(h[0].tokens)) for h in found]
            refs += [references(inputs.examples[r]) for r in rows]
        scores = caption_scores(hyps, refs, meteor=False)
        return {
            "loss": loss,
            "ppl": math.exp(min(loss, 50.0)),
            "bleu_4": 100 * scores.bleu_4,
            "cider_d": 100 * scores.cider_d,
        }

    # ------------------------------------------------------------ evaluate and compare

    def score_file(
        self, model: nn.Module, path: Path, options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """The metrics of beam-searched captions of a data file, and the captions."""
        split: Split = options.get("split") or "test"
        data = self.read_file(path, split)
        inputs = self.image_inputs(data.examples)
        search = self.search(options)
        found = [h[0] for h in self.decode(model, inputs.inputs, search)]
        words = [self.words(h.tokens) for h in found]
        hyps = [" ".join(w) for w in words]
        refs = [references(ex) for ex in inputs.examples]
        scores = caption_scores(hyps, refs)
        metrics: dict[str, Any] = {
            "images": len(hyps),
            "references": sum(len(r) for r in refs),
            "beam": search.beam_size,
            **{
                key: 100 * getattr(scores, key)
                for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider_d", "rouge_l")
            },
            "meteor": None if scores.meteor is None else 100 * scores.meteor,
            "truncated": sum(not h.ended for h in found),
            "tokenization": TOKENIZATION,
        }
        if scores.notice:
            metrics["notice"] = scores.notice
        if any(ex.boxes for ex in inputs.examples) and found and found[0].attention is not None:
            attention = [h.attention for h in found]
            box = attention_box_scores(
                words, [a for a in attention if a is not None], [ex.boxes for ex in inputs.examples]
            )
            metrics["attention_hit_rate"] = box.attention_hit_rate
            metrics["attention_mass_in_box"] = box.attention_mass_in_box
            metrics["object_words"] = box.object_words
        return metrics, hyps

    def evaluate_file(self, model: nn.Module, path: Path, options: Mapping[str, Any]) -> Report:
        """BLEU-1..4, CIDEr-D, ROUGE-L, METEOR (and attention in boxes) of beam-searched
        captions of a data file; ``--output FILE`` keeps the captions."""
        output = options.get("output")
        if output is not None and Path(output).is_dir():
            raise TaskError(f"--output {output} is a folder; give the file to write")
        metrics, hyps = self.score_file(model, path, options)
        files: tuple[Path, ...] = ()
        if output is not None:
            write_text_atomic(Path(output), "".join(h + "\n" for h in hyps))
            files = (Path(output),)
        return Report(metrics, format_caption_scores(metrics, path), files)

    def compare(
        self,
        names: Sequence[str],
        models: Sequence[nn.Module],
        path: Path,
        options: Mapping[str, Any],
    ) -> Report:
        """Each run's metrics on one data file, a column per run (Show and Tell beside Show,
        Attend and Tell, say)."""
        results = {
            n: self.score_file(m, path, options)[0] for n, m in zip(names, models, strict=True)
        }
        return Report({"data": str(path), "runs": results}, compare_table(results, path))


CaptioningTask.predictor = CaptioningPredictor
