"""Tests for the tokeniser's vocabulary limits: a sentencepiece ``vocab_size`` the training text
cannot give is a :class:`VocabSizeError` with the bound, and through ``rnnkit train`` one
``rnnkit: error:`` line that names ``data.vocab_size``, leaves nothing in the run folder, and a
retry with a size that fits succeeds in the same folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.cli.main import main
from rnnkit.data.parallel import Pair, write_tsv
from rnnkit.data.tokenizers import SentencePieceTokenizer, VocabSizeError
from tests.number_words import number_words

# 300 pairs, digits to words: a joint unigram vocabulary of this text holds at most 99 pieces.
PAIRS: list[Pair] = [(str(n), number_words(n)) for n in range(1, 301)]
TEXTS = [s for s, _ in PAIRS] + [t for _, t in PAIRS]


def test_too_large_and_too_small_carry_the_bound(tmp_path: Path) -> None:
    with pytest.raises(VocabSizeError) as high:
        SentencePieceTokenizer.train(TEXTS, tmp_path / "u", 8000, "unigram")
    assert (high.value.kind, high.value.requested, high.value.maximum) == ("unigram", 8000, 99)
    assert high.value.advice("vocab_size") == "set vocab_size to 99 or less"
    with pytest.raises(VocabSizeError) as bpe:
        SentencePieceTokenizer.train(TEXTS, tmp_path / "b", 8000, "bpe")
    assert bpe.value.maximum == 609
    # 30 distinct characters (10 digits, 18 letters, the space as the word mark, the hyphen)
    # and the 4 reserved pieces
    with pytest.raises(
        VocabSizeError,
        match=r"^vocab_size=8 is too small for this training text: the unigram tokenizer needs "
        r"at least 34 pieces \(one per character, and the 4 reserved ones\)$",
    ):
        SentencePieceTokenizer.train(TEXTS, tmp_path / "s", 8, "unigram")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written
    tok = SentencePieceTokenizer.train(TEXTS, tmp_path / "ok", 99, "unigram")
    assert tok.vocab_size == 99


def test_rnnkit_train_names_data_vocab_size_and_a_retry_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, valid = tmp_path / "train.tsv", tmp_path / "valid.tsv"
    write_tsv(PAIRS, train)
    write_tsv(PAIRS[:5], valid)
    config = tmp_path / "numbers.yaml"
    config.write_text(
        f"task: translation\ndata: {{train: {train}, valid: {valid}}}\n"  # vocab_size 8000
        "model: {embedding_size: 8, hidden_size: 8}\n"
        "train: {max_steps: 1, eval_every: 1, progress: false}\n",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == (
        "rnnkit: error: data.vocab_size=8000 is too large for this training text: the unigram "
        "tokenizer can hold at most 99 pieces; set data.vocab_size to 99 or less"
    )
    assert list(run.iterdir()) == []  # no tokeniser, no config.yaml: nothing half-made

    assert main(["train", str(config), "--out", str(run), "--set", "data.vocab_size=90"]) == 0
    assert "trained translation to step 1" in capsys.readouterr().out
    assert SentencePieceTokenizer.load(run / "tokenizer.model").vocab_size == 90


def test_a_failed_second_tokeniser_removes_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``joint_vocab: false`` the source side trains, the target side cannot hold the size:
    the source files written a moment before are removed too."""
    train = tmp_path / "train.tsv"
    write_tsv([(t, s) for s, t in PAIRS], train)  # words -> digits: a poor target side
    config = tmp_path / "c.yaml"
    config.write_text(
        f"task: translation\ndata: {{train: {train}, valid: {train}, joint_vocab: false, "
        "vocab_size: 50}\nmodel: {embedding_size: 8, hidden_size: 8}\n"
        "train: {max_steps: 1, eval_every: 1, progress: false}\n",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "rnnkit: error: data.vocab_size=50 is too large for the target side's training text: "
        "the unigram tokenizer can hold at most 45 pieces; set data.vocab_size to 45 or less"
    )
    words = SentencePieceTokenizer.train([t for _, t in PAIRS], tmp_path / "words", 50)
    assert words.vocab_size == 50  # so the source side was trained and written, then removed
    assert list(run.iterdir()) == []
