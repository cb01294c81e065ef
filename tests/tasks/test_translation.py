"""Tests for rnnkit.tasks.translation: every model kind learns a few real sentence pairs, beam
search agrees with greedy search and with itself across batches, tokenisers live in the run
folder, and the translation-only training options and data errors are checked."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from rnnkit import api
from rnnkit.config import ConfigError, RunConfig
from rnnkit.data.parallel import Pair, ParallelDataError, write_tsv
from rnnkit.data.tokenizers import PAD_ID, normalize
from rnnkit.decoding import SearchConfig, greedy_search
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.tasks.run import build_run_config
from rnnkit.tasks.translation import TranslationTask, translate

# Eight official emoji names (English -> French) of the emoji-en-fr training split, one to ten
# words a side: load_corpus("emoji-en-fr", "train")[::500][:8], pasted so the test needs no corpus.
PAIRS: list[Pair] = [
    ("1st place medal", "médaille d’or"),
    ("breast-feeding medium-light skin tone", "allaitement peau moyennement claire"),
    ("expressionless face", "visage sans expression"),
    (
        "kiss person person medium-light skin tone medium skin tone",
        "bisou adulte adulte peau moyennement claire et peau légèrement mate",
    ),
    (
        "man in motorized wheelchair medium skin tone",
        "homme en fauteuil motorisé peau légèrement mate",
    ),
    (
        "men with bunny ears dark skin tone light skin tone",
        "hommes avec des oreilles de lapin peau foncée et peau claire",
    ),
    ("person in tuxedo light skin tone", "personne en smoking peau claire"),
    ("skier", "skieur"),
]
SOURCES = [s for s, _ in PAIRS]
REFERENCES = [t for _, t in PAIRS]
STEPS = 150

KINDS = [
    ("lstm", "none"),
    ("gru", "none"),
    ("lstm", "additive"),
    ("gru", "additive"),
    ("gru", "dot"),
    ("lstm", "general"),
]


def run_config(
    folder: Path,
    pairs: list[Pair] = PAIRS,
    *,
    model: dict[str, Any] | None = None,
    objective: dict[str, Any] | None = None,
    **train: Any,
) -> RunConfig:
    """A tiny translation config (word tokeniser, E 16, H 32) whose train and valid file is
    ``pairs`` written to ``folder/pairs.tsv``; ``train`` overrides the training section."""
    folder.mkdir(parents=True, exist_ok=True)
    write_tsv(pairs, folder / "pairs.tsv")
    tsv = str(folder / "pairs.tsv")
    train_section: dict[str, Any] = {
        "batch_size": len(pairs),
        "max_steps": STEPS,
        "eval_every": STEPS,
        "lr": 0.02,
        "progress": False,
        "checkpoint_every": 10_000,
        "log_every": 10_000,
    }
    train_section.update(train)
    model_section: dict[str, Any] = {"embedding_size": 16, "hidden_size": 32}
    model_section.update(model or {})
    return build_run_config(
        {
            "task": "translation",
            "data": {"train": tsv, "valid": tsv, "tokenizer": "word", "vocab_size": 200},
            "model": model_section,
            "objective": objective or {},
            "train": train_section,
        }
    )


def trained(folder: Path, **kwargs: Any) -> tuple[TranslationTask, Seq2Seq]:
    """Train :func:`run_config` into ``folder/run`` and load its final weights."""
    config = run_config(folder, **kwargs)
    api.train(config, folder / "run")
    run = api.load_run(folder / "run", "final")
    assert isinstance(run.task, TranslationTask)
    assert isinstance(run.model, Seq2Seq)
    return run.task, run.model


def greedy_texts(task: TranslationTask, model: Seq2Seq, sentences: list[str]) -> list[str]:
    """Greedy translations of ``sentences``, decoded in one padded batch."""
    src, lengths = encode_batch(task, sentences)
    _, tgt_tok = task.tokenizers
    with torch.no_grad():
        return [
            tgt_tok.decode(h[0].tokens)
            for h in greedy_search(model.eval(), model.encode(src, lengths))
        ]


def encode_batch(task: TranslationTask, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(src (B, S) padded with PAD_ID, src_lengths (B,)) of ``sentences``."""
    src_tok, _ = task.tokenizers
    ids = [src_tok.encode(s) for s in sentences]
    src = torch.full((len(ids), max(map(len, ids))), PAD_ID, dtype=torch.long)
    for b, row in enumerate(ids):
        src[b, : len(row)] = torch.tensor(row)
    return src, torch.tensor([len(row) for row in ids])


@pytest.fixture(scope="module")
def partly_trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TranslationTask, Seq2Seq]:
    """GRU + additive attention stopped after 40 steps: confident on nothing, so beam search
    has real choices to make."""
    return trained(tmp_path_factory.mktemp("partly"), max_steps=40, eval_every=40)


# ------------------------------------------------------------------------------- learning


def test_first_loss_is_about_log_v(tmp_path: Path) -> None:
    task = TranslationTask(run_config(tmp_path), tmp_path / "run")
    task.prepare()
    torch.manual_seed(0)
    model = task.build_model()
    batch = task.make_batches(PAIRS)[0]
    with torch.no_grad():
        loss = float(task.step(model.eval(), batch).loss)
    assert loss == pytest.approx(math.log(task.tokenizers[1].vocab_size), abs=0.3)


@pytest.mark.parametrize(("cell", "attention"), KINDS)
def test_every_model_kind_learns_eight_pairs(tmp_path: Path, cell: str, attention: str) -> None:
    model: dict[str, Any] = {"cell": cell, "attention": attention}
    if attention == "dot":  # dot needs encoder states of the decoder's size: 2 x 16 = 32
        model["encoder_hidden_size"] = 16
    task, seq2seq = trained(tmp_path, model=model)
    assert greedy_texts(task, seq2seq, SOURCES) == REFERENCES


# ---------------------------------------------------------------------------------- search


def test_beam_of_one_is_greedy_search(partly_trained: tuple[TranslationTask, Seq2Seq]) -> None:
    task, model = partly_trained
    sentences = [*SOURCES, "red apple", "person in medium skin tone face"]
    src, lengths = encode_batch(task, sentences)
    with torch.no_grad():
        greedy = greedy_search(model, model.encode(src, lengths))
    beam = translate(task, model, sentences, SearchConfig(beam_size=1, length_penalty=0.0))
    _, tgt_tok = task.tokenizers
    for hyps, found in zip(greedy, beam, strict=True):
        assert found[0].text == tgt_tok.decode(hyps[0].tokens)
        assert found[0].score == pytest.approx(hyps[0].score, abs=1e-5)


def test_beam_search_scores_at_least_as_well_as_greedy_search(tmp_path: Path) -> None:
    task, model = trained(tmp_path, model={"cell": "gru", "attention": "additive"})
    greedy = translate(task, model, SOURCES, SearchConfig(beam_size=1, length_penalty=0.0))
    for K in (2, 3, 5):
        beam = translate(task, model, SOURCES, SearchConfig(beam_size=K, length_penalty=0.0))
        for g, b in zip(greedy, beam, strict=True):
            assert b[0].score >= g[0].score - 1e-5, (K, g[0].text, b[0].text)


def test_beam_search_does_not_depend_on_the_batch(
    partly_trained: tuple[TranslationTask, Seq2Seq],
) -> None:
    task, model = partly_trained
    search = SearchConfig(beam_size=4, n_best=3)
    together = translate(task, model, SOURCES, search)
    in_pairs = translate(task, model, SOURCES, search, batch_size=2)
    for k, sentence in enumerate(SOURCES):
        alone = translate(task, model, [sentence], search)[0]
        for batched in (together[k], in_pairs[k]):
            assert [t.text for t in batched] == [t.text for t in alone]
            for a, b in zip(batched, alone, strict=True):
                assert a.score == pytest.approx(b.score, abs=1e-5)
                assert a.attention is not None and b.attention is not None
                torch.testing.assert_close(a.attention, b.attention, atol=1e-5, rtol=0)


def test_attention_rows_sum_to_one_over_the_real_source(
    partly_trained: tuple[TranslationTask, Seq2Seq],
) -> None:
    task, model = partly_trained
    for found in translate(task, model, SOURCES, SearchConfig(beam_size=3, n_best=2)):
        for t in found:
            assert t.attention is not None
            assert t.attention.shape == (len(t.output_pieces), len(t.source_pieces))
            torch.testing.assert_close(
                t.attention.sum(dim=1), torch.ones(len(t.output_pieces)), atol=1e-5, rtol=0
            )


def test_empty_input_is_an_error(partly_trained: tuple[TranslationTask, Seq2Seq]) -> None:
    task, model = partly_trained
    with pytest.raises(ValueError, match="input 2 is empty: nothing to translate"):
        translate(task, model, ["skier", "   "])


# ------------------------------------------------------------------------------ run folder


def test_loading_a_run_only_reads_files(tmp_path: Path) -> None:
    """Without the tokeniser file a task says so; it never trains one behind the user's back."""
    task = TranslationTask(run_config(tmp_path), tmp_path / "run")
    with pytest.raises(ValueError, match=r"tokenizer\.json: no tokeniser; prepare\(\) trains it"):
        task.build_model()
    assert not (tmp_path / "run").exists()


def test_tokeniser_is_saved_in_the_run_folder(tmp_path: Path) -> None:
    config = run_config(tmp_path, max_steps=2, eval_every=2)
    api.train(config, tmp_path / "run")
    assert (tmp_path / "run" / "tokenizer.json").is_file()
    (tmp_path / "pairs.tsv").unlink()  # the run folder alone must be enough from now on
    first, second = api.load_run(tmp_path / "run"), api.load_run(tmp_path / "run")
    assert isinstance(first.task, TranslationTask) and isinstance(second.task, TranslationTask)
    for text in [*SOURCES, *REFERENCES, "an unseen sentence"]:
        ids = first.task.tokenizers[0].encode(text)
        assert ids == second.task.tokenizers[0].encode(text)
        assert ids == first.task.tokenizers[1].encode(text)  # joint vocabulary
    for text in SOURCES + REFERENCES:
        tok = first.task.tokenizers[1]
        assert tok.decode(tok.encode(text)) == normalize(text)


# --------------------------------------------------------------------- training options


def test_label_smoothing_and_scheduled_sampling_train_a_translation_model(tmp_path: Path) -> None:
    config = run_config(
        tmp_path,
        max_steps=10,
        eval_every=10,
        objective={
            "label_smoothing": 0.1,
            "scheduled_sampling": 0.5,
            "scheduled_sampling_steps": 8,
        },
    )
    result = api.train(config, tmp_path / "run")
    assert result.step == 10
    task = TranslationTask(config, tmp_path / "run")
    task.begin_step(4)
    assert task.sampling_rate == pytest.approx(0.25)
    task.begin_step(100)
    assert task.sampling_rate == pytest.approx(0.5)


def test_label_smoothing_is_the_loss_the_step_takes(
    partly_trained: tuple[TranslationTask, Seq2Seq], tmp_path: Path
) -> None:
    """The step's loss is (1 - eps) * NLL + eps * (mean over V of -log p), by hand, on a model
    trained far enough that the two terms differ."""
    eps = 0.1
    trained_task, model = partly_trained
    config = run_config(tmp_path, objective={"label_smoothing": eps})
    task = TranslationTask(config, trained_task.run_dir)  # the trained run's tokeniser
    model.eval()
    batch = task.make_batches(PAIRS)[0]
    with torch.no_grad():
        smoothed = float(task.step(model, batch).loss)
        logp = model(batch.src, batch.src_lengths, batch.tgt_in).logits.double().log_softmax(-1)
    real = batch.tgt_out != PAD_ID  # (B, T)
    nll = -logp.gather(-1, batch.tgt_out[..., None])[..., 0][real]  # (N,)
    uniform = -logp.mean(-1)[real]  # (N,)
    assert smoothed == pytest.approx(float(((1 - eps) * nll + eps * uniform).mean()), rel=1e-5)
    assert abs(smoothed - float(nll.mean())) > 1e-3  # smoothing changes the number


@pytest.mark.parametrize("option", ["label_smoothing", "scheduled_sampling"])
def test_translation_options_are_rejected_for_another_task(option: str) -> None:
    with pytest.raises(ConfigError, match=rf"^unknown config key 'objective\.{option}'"):
        build_run_config(
            {
                "task": "adding",
                "data": {"length": 5},
                "objective": {option: 0.1},
                "train": {"max_steps": 1},
            }
        )


def test_a_run_of_the_earlier_layout_loads_with_its_options_moved(tmp_path: Path) -> None:
    """Run folders written before ``objective`` existed kept these keys under ``train``."""
    config = run_config(tmp_path, max_steps=2, eval_every=2)
    api.train(config, tmp_path / "run")
    path = tmp_path / "run" / "config.yaml"
    old = path.read_text(encoding="utf-8").replace(
        "objective:\n  label_smoothing: 0.0\n  scheduled_sampling: 0.0\n  scheduled_sampling_steps: 5000\n",
        "",
    )
    old = old.replace("train:\n", "train:\n  label_smoothing: 0.2\n  scheduled_sampling: 0.0\n")
    assert "objective" not in old
    path.write_text(old, encoding="utf-8")
    run = api.load_run(tmp_path / "run")
    assert run.config.objective.model_dump() == {
        "label_smoothing": 0.2,
        "scheduled_sampling": 0.0,
        "scheduled_sampling_steps": 5000,
    }


# -------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tokenizer": "word"}, "set data.corpus, or both data.train and data.valid"),
        ({"train": "a.tsv"}, "set data.corpus, or both data.train and data.valid"),
        (
            {"corpus": "emoji-en-fr", "train": "a.tsv", "valid": "b.tsv"},
            "set either data.corpus or data.train/data.valid, not both",
        ),
        (
            {"train": ["a.en", "b.fr", "c.de"], "valid": "v.tsv"},
            "data.train must be a TSV path or a list of two aligned files, got 3 paths",
        ),
    ],
)
def test_data_config_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^invalid value for 'data': .*{message}"):
        build_run_config({"task": "translation", "data": data})


def test_a_bad_training_line_names_file_and_line(tmp_path: Path) -> None:
    config = run_config(tmp_path)
    path = tmp_path / "pairs.tsv"
    path.write_text("skier\tskieur\nexpressionless face\n", encoding="utf-8")
    with pytest.raises(
        ParallelDataError,
        match=rf"^{path}:2: expected at least 2 tab-separated columns, found 1$",
    ):
        api.train(config, tmp_path / "run")
