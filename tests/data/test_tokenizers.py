"""Tests for rnnkit.data.tokenizers: round trips, reserved ids, save/load, the factory."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from rnnkit.data.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    CharTokenizer,
    SentencePieceTokenizer,
    WordTokenizer,
    build_tokenizer,
    load_tokenizer,
    normalize,
)

TEXTS = [
    "Au commencement, Dieu créa les cieux et la terre.",
    "La terre était informe et vide: il y avait des ténèbres à la surface de l'abîme.",
    "Dieu dit: Que la lumière soit! Et la lumière fut.",
    "At the first God made the heaven and the earth.",
    "And God said, Let there be light: and there was light.",
    "red apple (fruit) — ﬁne “quotes” ½",
]


def corpus(n: int = 300) -> list[str]:
    """n distinct lines built from TEXTS (small enough to train sentencepiece in a second)."""
    return [f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(n)]


def test_normalize_is_nfkc_and_collapses_whitespace() -> None:
    assert normalize("  ﬁne\t½ \u2581 x\n") == "fine 1⁄2 x"
    text = "ﬁne “quotes” ½"
    assert normalize(text) == unicodedata.normalize("NFKC", text)


@pytest.mark.parametrize("cls", [WordTokenizer, CharTokenizer])
def test_vocab_round_trip_and_reserved_ids(cls: type[WordTokenizer], tmp_path: Path) -> None:
    tok = cls.train(TEXTS)
    assert tok.tokens[:4] == SPECIAL_TOKENS
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    for text in TEXTS:
        ids = tok.encode(text)
        assert min(ids) > UNK_ID  # all in vocabulary, no reserved id produced
        assert tok.decode(ids) == unicodedata.normalize("NFKC", text)
        assert tok.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == tok.decode(ids)
    path = tok.save(tmp_path / "tok.json")
    again = load_tokenizer(path)
    assert type(again) is cls and again.vocab_size == tok.vocab_size
    assert [again.encode(t) for t in TEXTS] == [tok.encode(t) for t in TEXTS]


def test_word_pieces_keep_spacing_and_unknowns() -> None:
    tok = WordTokenizer.train(TEXTS)
    assert tok.pieces("Dieu dit: Que l'abîme") == ["▁Dieu", "▁dit", ":", "▁Que", "▁l", "'", "abîme"]
    ids = tok.encode("Dieu zzz dit")
    assert ids[1] == UNK_ID
    assert tok.decode(ids) == "Dieu <unk> dit"


def test_vocab_min_count_and_max_size() -> None:
    tok = WordTokenizer.train(["a a a b b c", "a b"], min_count=2)
    assert tok.tokens == (*SPECIAL_TOKENS, "▁a", "▁b")
    tok = CharTokenizer.train(["aaa bb c"], max_size=6)
    assert tok.tokens == (*SPECIAL_TOKENS, "a", " ")  # most frequent first, ties alphabetical
    assert tok.encode("c") == [UNK_ID] and tok.pieces("a b") == ["a", "▁", "b"]
    with pytest.raises(ValueError, match="max_size must be > 4; got 4"):
        CharTokenizer.train(["a"], max_size=4)
    with pytest.raises(ValueError, match="min_count must be >= 1; got 0"):
        WordTokenizer.train(["a"], min_count=0)


def test_decode_rejects_out_of_range_ids() -> None:
    tok = CharTokenizer.train(["ab"])
    with pytest.raises(ValueError, match=r"id 6 is outside the vocabulary \(size 6\)"):
        tok.decode([4, 6])


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_round_trip_ids_and_determinism(model_type: str, tmp_path: Path) -> None:
    texts = corpus()
    tok = SentencePieceTokenizer.train(texts, tmp_path / "a" / "sp", 80, model_type)  # type: ignore[arg-type]
    assert tok.vocab_size == 80
    assert [tok._sp.id_to_piece(i) for i in range(4)] == list(SPECIAL_TOKENS)
    for text in texts[:20]:
        ids = tok.encode(text)
        assert min(ids) > UNK_ID
        assert tok.decode([BOS_ID, *ids, EOS_ID, PAD_ID]) == normalize(text)
        assert "".join(tok.pieces(text)).replace("▁", " ").strip() == normalize(text)
    assert (tmp_path / "a" / "sp.vocab").read_text().splitlines()[1].startswith("<s>\t")
    loaded = SentencePieceTokenizer.load(tmp_path / "a" / "sp.model")
    again = SentencePieceTokenizer.train(texts, tmp_path / "b" / "sp", 80, model_type)  # type: ignore[arg-type]
    for other in (loaded, again):
        assert [other.encode(t) for t in texts] == [tok.encode(t) for t in texts]
    assert (tmp_path / "a" / "sp.model").read_bytes() == (tmp_path / "b" / "sp.model").read_bytes()


def test_sentencepiece_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"^vocab_size=500 is too large for this training text: the unigram tokenizer can "
        r"hold at most 8 pieces$",
    ):
        SentencePieceTokenizer.train(["ab ab"], tmp_path / "sp", 500)
    with pytest.raises(ValueError, match="model_type must be 'unigram' or 'bpe'; got 'word'"):
        SentencePieceTokenizer.train(["ab"], tmp_path / "sp", 10, "word")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot train a sentencepiece model on no text"):
        SentencePieceTokenizer.train(["  "], tmp_path / "sp", 10)
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"junk\.model: not a sentencepiece model"):
        SentencePieceTokenizer.load(tmp_path / "junk.model")


@pytest.mark.parametrize(
    ("kind", "suffix", "cls"),
    [
        ("bpe", ".model", SentencePieceTokenizer),
        ("word", ".json", WordTokenizer),
        ("char", ".json", CharTokenizer),
    ],
)
def test_build_and_load(kind: str, suffix: str, cls: type, tmp_path: Path) -> None:
    texts = corpus(120)
    tok = build_tokenizer(kind, texts, tmp_path / "tok", vocab_size=60)
    assert isinstance(tok, cls) and tok.vocab_size <= 60
    again = load_tokenizer(tmp_path / f"tok{suffix}")
    assert [again.encode(t) for t in texts] == [tok.encode(t) for t in texts]


def test_factory_and_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match="unknown tokenizer kind 'wordpiece'; valid kinds: unigram, bpe, word, char",
    ):
        build_tokenizer("wordpiece", ["a"], tmp_path / "t")
    with pytest.raises(ValueError, match="a unigram tokenizer needs vocab_size"):
        build_tokenizer("unigram", ["a"], tmp_path / "t")
    with pytest.raises(ValueError, match=r"t\.json: no such tokenizer file"):
        load_tokenizer(tmp_path / "t.json")
    (tmp_path / "x.json").write_text('{"tokens": []}')
    with pytest.raises(ValueError, match=r"x\.json: not an rnnkit tokenizer file"):
        load_tokenizer(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(
        '{"format": "rnnkit.tokenizer", "kind": "word", "tokens": ["a"]}'
    )
    with pytest.raises(ValueError, match=r"y\.json: a vocabulary must start with <pad>"):
        load_tokenizer(tmp_path / "y.json")
