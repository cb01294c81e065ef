"""ONNX export of the tagging task: the graph against torch for every cell and char feature on
padded batches of different sentence and word lengths (logits within 1e-4), and trained runs
exported and answered by :mod:`rnnkit.runtime.tagging` with the torch predictor's tags, JSON and
text (the restored text of punctuation tags included), through the API and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from rnnkit import api
from rnnkit.cli.main import main
from rnnkit.data.conll import TaggedSentence, punctuate, write_conll
from rnnkit.models.tagger import SequenceTagger, SequenceTaggerConfig
from rnnkit.runtime.tagging import TaggingRuntime, punctuation_words
from rnnkit.tasks.run import load_predictor
from rnnkit.tasks.tagging_export import TaggerGraph
from tests.export import cli_exports, json_close
from tests.tasks.test_tagging import VERSES, config, next_word_sentences

SENTENCES = ["a b c", "e d c b a a b", "b", "c c zz a", "d e"]


def padded(rows: list[list[str]], k: int = 11) -> tuple[torch.Tensor, ...]:
    """tokens (B, T), lengths (B,) and chars (B, T, L) of words written as letters a.. (ids
    hashed into [2, k))."""
    B, T = len(rows), max(len(r) for r in rows)
    L = max(len(w) for r in rows for w in r)
    tokens = torch.zeros(B, T, dtype=torch.long)
    chars = torch.zeros(B, T, L, dtype=torch.long)
    for b, row in enumerate(rows):
        for t, word in enumerate(row):
            tokens[b, t] = 2 + sum(map(ord, word)) % (k - 2)
            chars[b, t, : len(word)] = torch.tensor([2 + ord(c) % (k - 2) for c in word])
    return tokens, torch.tensor([len(r) for r in rows]), chars


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("char_features", ["none", "cnn", "lstm"])
def test_graph_matches_torch_on_padded_batches(
    cell: str, char_features: str, tmp_path: Path
) -> None:
    from rnnkit.export.graphs import export_graph

    torch.manual_seed(0)
    cfg = SequenceTaggerConfig(
        cell=cell,
        num_layers=2,
        embedding_size=5,
        hidden_size=7,
        char_features=char_features,
        char_embedding_size=3,
        char_hidden_size=4,
    )
    chars_on = char_features != "none"
    model = SequenceTagger(cfg, 11, 6, num_chars=11 if chars_on else 0, pad_id=0).eval()
    tokens, lengths, chars = padded([["ab", "c", "dde"], ["e", "fa"]])
    args = (tokens, lengths, chars) if chars_on else (tokens, lengths)
    names = ["tokens", "lengths", "chars"] if chars_on else ["tokens", "lengths"]
    axes = {"tokens": {0: "B", 1: "T"}, "lengths": {0: "B"}, "chars": {0: "B", 1: "T", 2: "L"}}
    axes["logits"] = {0: "B", 1: "T"}
    path = export_graph(
        TaggerGraph(model),
        args,
        tmp_path / "t.onnx",
        names,
        ["logits"],
        {n: axes[n] for n in [*names, "logits"]},
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batches = [
        [["abcdefg", "b"], ["c"], ["d", "ee", "f", "g", "hh"]],
        [["a"] * 9, ["bcd", "e"]],
        [["xyz"]],
    ]
    for rows in batches:
        tokens, lengths, chars = padded(rows)
        with torch.no_grad():
            want = model(tokens, lengths, chars if chars_on else None)
        feeds = {"tokens": tokens.numpy(), "lengths": lengths.numpy()}
        if chars_on:
            feeds["chars"] = chars.numpy()
        (got,) = sess.run(None, feeds)
        real = (torch.arange(tokens.shape[1])[None] < lengths[:, None]).numpy()
        np.testing.assert_allclose(got[real], want.numpy()[real], atol=1e-4, rtol=0)


def punctuation_sentences() -> list[TaggedSentence]:
    out = []
    for verse in VERSES * 10:
        words, tags = punctuate(verse)
        out.append(TaggedSentence(tuple(words), tuple(tags)))
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Two tiny runs and their exports: the next-word task with a char LSTM, and punctuation
    restoration from files."""
    from rnnkit.export import export_run

    folder = tmp_path_factory.mktemp("tagging-onnx")
    train = write_conll(next_word_sentences(120, 0), folder / "train.conll")
    valid = write_conll(next_word_sentences(20, 1), folder / "valid.conll")
    api.train(
        config(folder, train, valid, model={"char_features": "lstm", "char_hidden_size": 8}),
        folder / "next",
    )
    marks = write_conll(punctuation_sentences(), folder / "marks.conll")
    api.train(config(folder, marks, marks, train={"max_steps": 20}), folder / "marks")
    export_run(folder / "next", folder / "next-onnx")
    export_run(folder / "marks", folder / "marks-onnx")
    return {
        "next": (folder / "next", folder / "next-onnx"),
        "marks": (folder / "marks", folder / "marks-onnx"),
    }


def runtime(folder: Path) -> TaggingRuntime:
    from rnnkit import runtime as rt

    predictor = rt.load(folder)
    assert isinstance(predictor, TaggingRuntime)
    return predictor


@pytest.mark.parametrize("name", ["next", "marks"])
def test_runtime_answers_as_the_torch_predictor(
    exported: dict[str, tuple[Path, Path]], name: str
) -> None:
    run, out = exported[name]
    torch_predictor = load_predictor(run, "best")
    onnx_predictor = runtime(out)
    texts = SENTENCES if name == "next" else ["and god said let there be light", "who is there"]
    inputs = [onnx_predictor.parse(t) for t in texts]
    assert inputs == [torch_predictor.parse(t) for t in texts]
    want = torch_predictor.predict(inputs, {})
    got = onnx_predictor.predict(inputs, {})
    assert [g.tags for g in got] == [w.tags for w in want]
    for inp, g, w in zip(inputs, got, want, strict=True):
        assert json_close(onnx_predictor.to_json(inp, g), torch_predictor.to_json(inp, w))
        assert onnx_predictor.format(g) == torch_predictor.format(w)
    if name == "next":  # learned: each word is tagged with the next one
        assert got[0].tags == ["B", "C", "END"]
    else:
        assert "text" in onnx_predictor.to_json(inputs[1], got[1])
        assert len(onnx_predictor.format(got[1]).splitlines()) == 2


def test_export_folder(exported: dict[str, tuple[Path, Path]]) -> None:
    _, out = exported["next"]
    body = json.loads((out / "config.json").read_text())
    assert (body["task"], body["runtime"], body["graph"], body["vocab"]) == (
        "tagging",
        "rnnkit.runtime.tagging",
        "tagger.onnx",
        "vocab.json",
    )
    assert (body["char_features"], body["punctuation"], body["words"]) == (
        True,
        False,
        "whitespace",
    )
    assert json.loads((exported["marks"][1] / "config.json").read_text())["punctuation"] is True


def test_runtime_refuses_an_empty_input(exported: dict[str, tuple[Path, Path]]) -> None:
    with pytest.raises(ValueError, match=r"^input 2 is empty: nothing to tag$"):
        runtime(exported["next"][1]).predict([["a"], []], {})


def test_punctuation_words_match_the_corpus_reader() -> None:
    from rnnkit.data.conll import punctuation_words as corpus_words

    for verse in [*VERSES, "Don't stop-it, O'Brien’s x_y 3rd!"]:
        assert punctuation_words(verse) == corpus_words(verse)


def test_cli_export_then_predict_with_the_onnx_engine(
    exported: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not cli_exports():
        pytest.skip("the CLI has no export verb yet")
    capsys.readouterr()
    run, _ = exported["marks"]
    out = tmp_path / "cli-onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    capsys.readouterr()
    text = "and god said let there be light"
    assert main(["predict", str(run), text, "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["predict", str(out), text, "--engine", "onnx", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert len(got) == 1 and json_close(got, want) and "text" in got[0]
