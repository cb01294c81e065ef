"""Tests for the translation task's limits: the decoding length limit fitted to the training pairs
(and its overrides, and the mark on a cut translation), the bound on input length (evaluate,
predict, validation), and the log lines for pairs that ``data.max_length`` or ``on_error: skip``
left out."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from rnnkit import api
from rnnkit.cli.main import main
from rnnkit.data.parallel import Pair, write_tsv
from rnnkit.data.tokenizers import EOS_ID
from rnnkit.decoding import greedy_search
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.tasks.base import TaskError
from rnnkit.tasks.run import build_run_config
from rnnkit.tasks.translation import (
    LENGTH_LIMIT_FILE,
    TranslationPredictor,
    TranslationTask,
    fit_length_limit,
)
from tests.number_words import number_words

# Every tenth number from 1 to 391 and its words: a character-level task whose targets are up to
# ten times longer than their sources, where the old 1.5 * S + 10 cut "123" at 14 characters.
NUMBERS: list[Pair] = [(str(n), number_words(n)) for n in range(1, 400, 10)]


def config(folder: Path, pairs: list[Pair] = NUMBERS, **data: Any) -> Any:
    """A tiny character-level run config (E 8, H 16, 2 steps) on ``pairs`` (train and valid)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_tsv(pairs, folder / "pairs.tsv")
    tsv = str(folder / "pairs.tsv")
    section: dict[str, Any] = {"train": tsv, "valid": tsv, "tokenizer": "char", "vocab_size": 64}
    section.update(data)
    return build_run_config(
        {
            "task": "translation",
            "data": section,
            "model": {"embedding_size": 8, "hidden_size": 16, "attention": "additive"},
            "train": {
                "batch_size": 8,
                "max_steps": 2,
                "eval_every": 2,
                "progress": False,
                "checkpoint_every": 1000,
                "log_every": 1000,
            },
        }
    )


def never_ends(model: Seq2Seq, token: int) -> Seq2Seq:
    """Rig the output layer so every step's most likely token is ``token``, never eos: each
    translation runs to the length limit."""
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.zero_()
        model.output.bias[token] = 10.0
        model.output.bias[EOS_ID] = -10.0
    return model.eval()


def rigged_predictor(run: Path) -> TranslationPredictor:
    """The run's predictor, its model rigged by :func:`never_ends` to write ``x`` forever."""
    loaded = api.load_run(run, "final")
    assert isinstance(loaded.task, TranslationTask) and isinstance(loaded.model, Seq2Seq)
    x = loaded.task.tokenizers[1].encode("x")[0]
    return TranslationPredictor(loaded.task, never_ends(loaded.model, x))


@pytest.fixture(scope="module")
def numbers_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A character-level run on :data:`NUMBERS` (two steps: the model is rigged where used)."""
    folder = tmp_path_factory.mktemp("numbers")
    api.train(config(folder), folder / "run")
    return folder / "run"


# ------------------------------------------------------------------------- the length limit


def test_fit_length_limit_by_hand() -> None:
    # (T + 1) / S = 6, 29/3, 5, 4; the 99th percentile interpolates between 6 and 29/3:
    # 6 + 0.97 * (29/3 - 6) = 9.5567 -> 9.56. With a = 9.56, (3, 28) needs b >= 29 - 28 = 1,
    # the others fit with b = 0; plus the margin of 2.
    assert fit_length_limit([(1, 5), (3, 28), (2, 9), (3, 11)]) == (9.56, 3)
    assert fit_length_limit([(4, 3)], quantile=1.0, margin=0) == (1.0, 0)
    with pytest.raises(ValueError, match="every source must have at least one token"):
        fit_length_limit([(0, 3)])


def test_the_fitted_limit_lets_every_training_target_fit(numbers_run: Path) -> None:
    body = json.loads((numbers_run / LENGTH_LIMIT_FILE).read_text(encoding="utf-8"))
    lengths = [(len(s), len(t)) for s, t in NUMBERS]  # characters: the char tokeniser's tokens
    a, b = fit_length_limit(lengths)
    assert body == {"max_len_a": a, "max_len_b": b, "fitted_on": 40, "quantile": 0.99, "margin": 2}
    assert all(math.floor(a * s + b) >= t + 1 for s, t in lengths)
    assert math.floor(a * 3 + b) >= len("one hundred and twenty-three") + 1  # the "123"
    assert math.floor(1.5 * 3 + 10) == 14  # what the old fixed limit allowed


def test_predict_decodes_under_the_fitted_limit_and_marks_the_cut(numbers_run: Path) -> None:
    predictor = rigged_predictor(numbers_run)
    a, b = predictor.task.length_limit
    (found,) = predictor.predict(["123"], {"beam_size": 1})
    limit = math.floor(a * 3 + b)
    assert limit > 14
    assert found[0].output_pieces == ["x"] * limit
    assert predictor.format(found) == "x" * limit + " [truncated]"
    assert predictor.to_json("123", found)["translations"][0]["truncated"] is True
    (flagged,) = predictor.predict(["123"], {"beam_size": 1, "max_len_a": 0.0, "max_len_b": 3})
    assert flagged[0].output_pieces == ["x"] * 3  # --max-len-a / --max-len-b win


def test_the_config_overrides_the_fitted_limit_and_old_runs_keep_the_old_one(
    numbers_run: Path, tmp_path: Path
) -> None:
    predictor = rigged_predictor(numbers_run)
    task = predictor.task
    assert isinstance(task, TranslationTask)
    fitted = task.length_limit
    overridden = TranslationTask(config(tmp_path, max_len_a=2.0, max_len_b=1), numbers_run)
    assert overridden.length_limit == (2.0, 1)
    partly = TranslationTask(config(tmp_path, max_len_b=7), numbers_run)
    assert partly.length_limit == (fitted[0], 7)
    old = tmp_path / "old"
    old.mkdir()
    for name in ("config.yaml", "tokenizer.json", "model.safetensors", "best.safetensors"):
        (old / name).write_bytes((numbers_run / name).read_bytes())
    rigged = rigged_predictor(old)
    assert rigged.task.length_limit == (1.5, 10)
    (found,) = rigged.predict(["123"], {"beam_size": 1})
    assert len(found[0].output_pieces) == 14


def test_validation_bleu_decodes_under_the_fitted_limit(
    numbers_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = rigged_predictor(numbers_run)
    task = predictor.task
    assert isinstance(task, TranslationTask)
    lengths: list[int] = []
    real = greedy_search

    def spy(model: Any, memory: Any, **kwargs: Any) -> Any:
        found = real(model, memory, **kwargs)
        lengths.extend(len(h[0].tokens) for h in found)
        return found

    monkeypatch.setattr("rnnkit.tasks.translation.greedy_search", spy)
    task.evaluate(predictor.model, task.valid_batches())
    a, b = task.length_limit
    assert sorted(lengths) == sorted(math.floor(a * len(s) + b) for s, _ in NUMBERS)


def test_evaluate_reports_the_limit_and_how_many_were_cut(
    numbers_run: Path, tmp_path: Path
) -> None:
    predictor = rigged_predictor(numbers_run)
    task = predictor.task
    assert isinstance(task, TranslationTask)
    test = tmp_path / "test.tsv"
    write_tsv(NUMBERS[:5], test)
    report = task.evaluate_file(predictor.model, test, {"beam_size": 1})
    a, b = task.length_limit
    assert report.text is not None
    assert report.text.splitlines()[-1] == (
        f"length limit floor({a:g} * S + {b}) tokens: 5 of 5 translations cut at it "
        "(marked [truncated] by predict; raise --max-len-a / --max-len-b)"
    )


# ------------------------------------------------------------------------ bounded inputs

WORDS: list[Pair] = [
    ("red apple", "pomme rouge"),
    ("green tree", "arbre vert"),
    ("blue car", "voiture bleue"),
]


def word_config(folder: Path, **data: Any) -> Any:
    """A word-level config with ``data.max_length: 5``: inputs may have 20 tokens."""
    return config(folder, WORDS, tokenizer="word", max_length=5, **data)


@pytest.fixture(scope="module")
def words_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("words")
    api.train(word_config(folder), folder / "run")
    return folder / "run"


def test_evaluate_refuses_a_long_line_at_once_naming_file_and_line(
    words_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = tmp_path / "test.tsv"
    huge = " ".join(["red apple"] * 50_000)  # 100,000 tokens, about 500 KB
    test.write_text(f"red apple\tpomme rouge\n{huge}\tpomme\n", encoding="utf-8")
    start = time.perf_counter()
    status = main(["evaluate", str(words_run), "--data", str(test), "--weights", "final"])
    elapsed = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err == (
        f"rnnkit: error: {test}:2: the source has 100000 tokens, more than the 20 an input may "
        "have (4 x data.max_length=5); shorten it, or pass --max-input-tokens N\n"
    )
    assert elapsed < 10.0
    test.write_text("red apple\tpomme rouge\n" + "red " * 30 + "\tpomme\n", encoding="utf-8")
    argv = ["evaluate", str(words_run), "--data", str(test), "--weights", "final", "--json"]
    status = main([*argv, "--max-input-tokens", "40", "--beam", "1"])
    out, _ = capsys.readouterr()
    assert status == 0 and json.loads(out)["count"] == 2


def test_predict_refuses_a_long_input_naming_its_position(
    words_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["predict", str(words_run), "red apple", "red " * 21, "--weights", "final"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "rnnkit: error: input 2: the source has 21 tokens, more than the 20 an input may have "
        "(4 x data.max_length=5); shorten it, or pass --max-input-tokens N\n"
    )
    assert main([*argv, "--max-input-tokens", "21", "--beam", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main([*argv, "--max-input-tokens", "0"]) == 2
    assert (
        capsys.readouterr().err == "rnnkit: error: --max-input-tokens must be at least 1, got 0\n"
    )


def test_a_long_validation_line_is_an_error_or_a_counted_skip(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    valid = tmp_path / "valid.tsv"
    valid.write_text("red apple\tpomme rouge\n" + "red " * 25 + "\tpomme\n", encoding="utf-8")
    cfg = word_config(tmp_path, valid=str(valid))
    with pytest.raises(
        TaskError,
        match=rf"^data\.valid: {valid}:2: the source has 25 tokens, more than the 20 an input may "
        r"have \(4 x data\.max_length=5\); shorten it, or set data\.on_error: skip$",
    ):
        api.train(cfg, tmp_path / "run")
    cfg = word_config(tmp_path, valid=str(valid), on_error="skip")
    with caplog.at_level(logging.WARNING, logger="rnnkit.tasks.translation"):
        api.train(cfg, tmp_path / "skip")
    assert [r.getMessage() for r in caplog.records] == [
        "data.valid: left out 1 of 2 pairs whose source has more than 20 tokens "
        f"(4 x data.max_length=5): {valid}:2"
    ]


def test_training_reports_the_pairs_max_length_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    pairs = [*WORDS, ("red " * 9, "rouge"), ("green", "vert " * 12)]
    folder = tmp_path / "f"
    cfg = config(folder, pairs, tokenizer="word", max_length=8)
    with caplog.at_level(logging.WARNING, logger="rnnkit.tasks.translation"):
        api.train(cfg, folder / "run")
    assert [r.getMessage() for r in caplog.records] == [
        "data.max_length=8: left out 2 of 5 training pairs with more tokens on a side (the "
        "longest has 12); raise data.max_length to keep them"
    ]


def test_skipped_lines_are_reported_once_with_their_numbers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train, valid = tmp_path / "train.tsv", tmp_path / "valid.tsv"
    lines = [f"{s}\t{t}" for s, t in WORDS * 6]
    for number in (4, 9, 17):  # 1-based line numbers of the bad lines
        lines.insert(number - 1, "no tab here")
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_tsv(WORDS, valid)
    cfg = config(
        tmp_path, WORDS, tokenizer="word", train=str(train), valid=str(valid), on_error="skip"
    )
    with caplog.at_level(logging.WARNING, logger="rnnkit.tasks.translation"):
        api.train(cfg, tmp_path / "run")
    assert [r.getMessage() for r in caplog.records] == [
        f"data.train: skipped 3 bad lines of {train} (lines 4, 9, 17; line 4: expected at least "
        "2 tab-separated columns, found 1)"
    ]
