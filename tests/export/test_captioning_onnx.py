"""Captioning through ONNX: the image encoder and step graphs against torch, the NumPy pixels
against rnnkit.data.images, captions and attention against the torch predictor, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnnkit import api
from rnnkit import runtime as rt
from rnnkit.cli.main import main
from rnnkit.data.images import image_tensor, load_image
from rnnkit.export import export_run
from rnnkit.models.captioning_model import CaptioningModel
from rnnkit.runtime import images
from tests.export import ROUNDED, json_close
from tests.tasks.test_captioning import config

KINDS = {"soft-lstm": {}, "none-gru": {"attention": "none", "cell": "gru"}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, list[Path]]]:
    found = {}
    for name, model in KINDS.items():
        folder = tmp_path_factory.mktemp(name)
        api.train(config(folder, model=model, max_steps=40, eval_every=40), folder / "run")
        export_run(folder / "run", folder / "onnx")
        pictures = sorted((folder / "images").glob("*.png"))
        found[name] = (folder / "run", folder / "onnx", pictures)
    return found


def test_numpy_pixels_equal_rnnkit_data_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgba = Image.fromarray(rng.integers(0, 256, (21, 34, 4), dtype=np.uint8), "RGBA")
    grey16 = Image.fromarray(rng.integers(0, 65535, (9, 13), dtype=np.uint16))
    pictures = {"rgba.png": rgba, "grey16.png": grey16, "p.gif": rgba.convert("RGB").convert("P")}
    for name, picture in pictures.items():
        picture.save(tmp_path / name)
        want = image_tensor(load_image(tmp_path / name), (32, 24), (0.5, 0.4, 0.3), (0.2, 0.3, 0.4))
        got = images.image_pixels(
            images.load_image(tmp_path / name), (32, 24), (0.5, 0.4, 0.3), (0.2, 0.3, 0.4)
        )
        np.testing.assert_array_equal(got, want.numpy())


@pytest.mark.parametrize("kind", list(KINDS))
def test_graphs_match_torch(runs: dict[str, tuple[Path, Path, list[Path]]], kind: str) -> None:
    run, exported, pictures = runs[kind]
    model = api.load_run(run).model
    assert isinstance(model, CaptioningModel)
    onnx = rt.load(exported)
    pixels = np.stack([onnx.pixels(p) for p in pictures[:3]])
    state, memory = onnx.encode(pixels)
    model.eval()
    with torch.no_grad():
        want = model.decoder.encode(model.image_grid(torch.from_numpy(pixels)))
        np.testing.assert_allclose(memory["features"], want.features.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(state["hidden"], want.init_state.hidden.numpy(), atol=1e-4)
        torch_state, tokens = want.init_state, torch.tensor([1, 1, 1])
        for t in range(3):
            got_lp, state, got_att = onnx.decoder.step(tokens.numpy(), state, memory)
            out = model.decoder.step(tokens, torch_state, want)
            np.testing.assert_allclose(got_lp, out.log_probs.numpy(), atol=1e-4, rtol=0)
            if out.attention is None:
                assert got_att is None
            else:
                np.testing.assert_allclose(got_att, out.attention.numpy(), atol=1e-4, rtol=0)
            torch_state, tokens = out.state, torch.tensor([4 + t, 5 + t, 6 + t])


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("options", [{"beam_size": 1}, {"beam_size": 3, "n_best": 2}])
def test_captions_equal_the_torch_predictors(
    runs: dict[str, tuple[Path, Path, list[Path]]], kind: str, options: dict[str, int]
) -> None:
    run, exported, pictures = runs[kind]
    torch_predictor, onnx = api.load_predictor(run), rt.load(exported)
    want = [
        torch_predictor.to_json(p, o)
        for p, o in zip(pictures, torch_predictor.predict(pictures, options), strict=True)
    ]
    got = [
        onnx.to_json(p, o) for p, o in zip(pictures, onnx.predict(pictures, options), strict=True)
    ]
    assert [[c["tokens"] for c in g["captions"]] for g in got] == [
        [c["tokens"] for c in w["captions"]] for w in want
    ]
    assert json_close(got, json.loads(json.dumps(want)), ROUNDED)


def test_cli_json_and_errors(
    runs: dict[str, tuple[Path, Path, list[Path]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run, exported, pictures = runs["soft-lstm"]
    capsys.readouterr()
    args = [str(pictures[0]), str(pictures[3]), "--json"]
    assert main(["predict", str(run), *args]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["predict", str(exported), *args, "--engine", "onnx"]) == 0
    assert json_close(json.loads(capsys.readouterr().out), want, ROUNDED)
    assert main(["predict", str(exported), str(pictures[0]), "--engine", "onnx", "--plot-all"]) == 2
    assert capsys.readouterr().err == (
        "rnnkit: error: --plot-all is not supported by the onnx engine; use --engine torch\n"
    )
    missing = tmp_path / "nothing.png"
    assert main(["predict", str(exported), str(missing), "--engine", "onnx"]) == 2
    assert capsys.readouterr().err == f"rnnkit: error: input 1: {missing}: no such image file\n"
