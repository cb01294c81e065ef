"""ONNX export of the classification task: the graph against torch for every cell and pooling
on padded batches of different lengths (logits and attention within 1e-4), and a trained run
exported and answered by :mod:`rnnkit.runtime.classification` with the torch predictor's labels,
JSON and text, through the API and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.models.classifier import POOLINGS, TextClassifier, TextClassifierConfig
from rnnkit.runtime import tokenizer
from rnnkit.runtime.classification import ClassificationRuntime
from rnnkit.tasks.classification import pad_ids
from rnnkit.tasks.classification_export import ClassifierGraph
from rnnkit.tasks.run import load_predictor
from tests.export import cli_exports, json_close
from tests.tasks.test_classification import config

TEXTS = [
    "the movie was great",
    "a dull plot of the film",
    "okay",
    "the actor is superb , the story awful and the scene bad",
    "bad",
    "zzz unknown words great",
]


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_graph_matches_torch_on_padded_batches(cell: str, pooling: str, tmp_path: Path) -> None:
    from rnnkit.export.graphs import export_graph

    torch.manual_seed(0)
    cfg = TextClassifierConfig(
        cell=cell,
        pooling=pooling,
        bidirectional=True,
        num_layers=2,
        embedding_size=5,
        hidden_size=7,
    )
    model = TextClassifier(cfg, vocab_size=13, num_classes=3).eval()
    attention = pooling == "attention"
    names = ["logits", "attention"] if attention else ["logits"]
    axes = {"tokens": {0: "B", 1: "T"}, "lengths": {0: "B"}, "logits": {0: "B"}}
    axes.update({"attention": {0: "B", 1: "T"}} if attention else {})
    example = pad_ids([[4, 5, 6], [7, 8]])
    path = export_graph(
        ClassifierGraph(model), example, tmp_path / "c.onnx", ["tokens", "lengths"], names, axes
    )
    sess = session(path)
    batches = [[[4, 5, 6, 7, 8], [9, 10], [4, 4, 7]], [[12] * 9, [3], [5, 6, 7, 8]], [[11, 2]]]
    for rows in batches:
        tokens, lengths = pad_ids(rows)
        with torch.no_grad():
            want = model(tokens, lengths)
        got = sess.run(None, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})
        np.testing.assert_allclose(got[0], want.logits.numpy(), atol=1e-4, rtol=0)
        if attention:
            assert want.attention is not None
            np.testing.assert_allclose(got[1], want.attention.numpy(), atol=1e-4, rtol=0)
            assert (got[1][tokens.numpy() == 0] == 0).all()  # no weight on padding
        else:
            assert len(got) == 1


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny run (biLSTM, attention pooling, word tokeniser, 3 classes) and its export."""
    from rnnkit import api
    from rnnkit.export import export_run

    folder = tmp_path_factory.mktemp("classification-onnx")
    labels = ("meh", "neg", "pos")
    cfg = config(folder, model={"cell": "lstm"}, labels=labels, data={"max_length": 8})
    api.train(cfg, folder / "run")
    export_run(folder / "run", folder / "onnx")
    return folder / "run", folder / "onnx"


def runtime(folder: Path) -> ClassificationRuntime:
    from rnnkit import runtime as rt

    predictor = rt.load(folder)
    assert isinstance(predictor, ClassificationRuntime)
    return predictor


def test_export_folder_holds_the_graph_tokenizer_and_classes(exported: tuple[Path, Path]) -> None:
    _, out = exported
    body = json.loads((out / "config.json").read_text())
    assert body["task"] == "classification"
    assert body["runtime"] == "rnnkit.runtime.classification"
    assert body["labels"] == ["meh", "neg", "pos"]
    assert (body["graph"], body["tokenizer"], body["pooling"]) == (
        "classifier.onnx",
        "tokenizer.json",
        "attention",
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "classifier.onnx",
        "config.json",
        "tokenizer.json",
    ]


def test_runtime_answers_as_the_torch_predictor(exported: tuple[Path, Path]) -> None:
    run, out = exported
    torch_predictor = load_predictor(run, "best")
    onnx_predictor = runtime(out)
    want = torch_predictor.predict(TEXTS, {})
    got = onnx_predictor.predict(TEXTS, {})
    assert [g.label for g in got] == [w.label for w in want]
    assert [g.tokens for g in got] == [w.tokens for w in want]
    assert len(got[3].tokens) == 8  # cut to data.max_length
    p_diff = max(
        abs(g.probabilities[k] - w.probabilities[k])
        for g, w in zip(got, want, strict=True)
        for k in w.probabilities
    )
    a_diff = max(
        abs(x - y)
        for g, w in zip(got, want, strict=True)
        for x, y in zip(g.attention or [], w.attention or [], strict=True)
    )
    assert p_diff < 1e-4 and a_diff < 1e-4
    for text, g, w in zip(TEXTS, got, want, strict=True):
        assert json_close(onnx_predictor.to_json(text, g), torch_predictor.to_json(text, w))
        assert onnx_predictor.format(g) == torch_predictor.format(w)


def test_runtime_tokenizer_matches_the_runs(exported: tuple[Path, Path]) -> None:
    run, out = exported
    task = load_predictor(run, "best").task
    tok = tokenizer.load(out / "tokenizer.json")
    for text in [*TEXTS, "  Ünïcode\u2581spaces\t and  ﬁ ligatures!"]:
        assert tok.encode(text) == task.tokenizer.encode(text)
        assert tok.pieces(text) == task.tokenizer.pieces(text)


def test_runtime_refuses_empty_text_and_the_attention_plot(exported: tuple[Path, Path]) -> None:
    predictor = runtime(exported[1])
    with pytest.raises(ValueError, match=r"^input 2 is empty: nothing to classify$"):
        predictor.predict(["good", "   "], {})
    with pytest.raises(
        ValueError,
        match=r"^--attention-plot is not supported by the onnx engine; use --engine torch$",
    ):
        predictor.predict(["good"], {"attention_plot": Path("plots")})


def test_cli_export_then_predict_with_the_onnx_engine(
    exported: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not cli_exports():
        pytest.skip("the CLI has no export verb yet")
    capsys.readouterr()
    run, _ = exported
    out = tmp_path / "cli-onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["predict", str(run), TEXTS[0], TEXTS[1], "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["predict", str(out), TEXTS[0], TEXTS[1], "--engine", "onnx", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert len(got) == 2 and json_close(got, want)
