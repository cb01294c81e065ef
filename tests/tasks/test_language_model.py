"""Tests for rnnkit.tasks.language_model: batches are the cut stream, validation carries the
state, a uniform model's perplexity is V, predict matches the softmax, generation is
reproducible and obeys top-k / top-p, resume mid-epoch is bitwise exact, and the CLI verbs run
end to end on real text."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from rnnkit import api
from rnnkit.cli.main import main
from rnnkit.config import ConfigError
from rnnkit.data.text_stream import cut_streams
from rnnkit.data.tokenizers import EOS_ID, PAD_ID, UNK_ID
from rnnkit.decoding import SamplingConfig
from rnnkit.models.language_model import LMOutput
from rnnkit.tasks.base import TaskError
from rnnkit.tasks.language_model import (
    LanguageModelPredictor,
    LanguageModelTask,
    count_parameters,
)
from rnnkit.tasks.run import build_run_config

# Genesis 1:1-8 in the Bible in Basic English (the bible-bbe training split), pasted so the tests
# need no corpus package.
GENESIS = [
    "At the first God made the heaven and the earth.",
    "And the earth was waste and without form; and it was dark on the face of the deep: and the "
    "Spirit of God was moving on the face of the waters.",
    "And God said, Let there be light: and there was light.",
    "And God, looking on the light, saw that it was good: and God made a division between the "
    "light and the dark,",
    "Naming the light, Day, and the dark, Night. And there was evening and there was morning, "
    "the first day.",
    "And God said, Let there be a solid arch stretching over the waters, parting the waters "
    "from the waters.",
    "And God made the arch for a division between the waters which were under the arch and "
    "those which were over it: and it was so.",
    "And God gave the arch the name of Heaven. And there was evening and there was morning, the "
    "second day.",
]


def write_corpus(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    train, test = folder / "train.txt", folder / "test.txt"
    train.write_text("\n".join(GENESIS) + "\n", encoding="utf-8")
    test.write_text("And God said, Let there be an apple.\n", encoding="utf-8")
    return train, test


def raw_config(
    folder: Path,
    *,
    data: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    **train: Any,
) -> dict[str, Any]:
    train_file, _ = write_corpus(folder)
    data_section: dict[str, Any] = {
        "train": str(train_file),
        "valid": str(train_file),
        "tokenizer": "word",
        "eval_batch_size": 3,
    }
    data_section.update(data or {})
    model_section: dict[str, Any] = {
        "embedding_size": 8,
        "hidden_size": 12,
        "num_layers": 2,
        "dropout": 0.0,
        "num_heads": 2,
    }
    model_section.update(model or {})
    train_section: dict[str, Any] = {
        "batch_size": 4,
        "max_steps": 10,
        "eval_every": 1000,
        "lr": 0.01,
        "progress": False,
        "checkpoint_every": 1000,
        "log_every": 1000,
        "threads": 1,
        "bptt": 5,
    }
    train_section.update(train)
    return {
        "task": "language_model",
        "data": data_section,
        "model": model_section,
        "train": train_section,
    }


def prepared(folder: Path, **kwargs: Any) -> LanguageModelTask:
    task = LanguageModelTask(build_run_config(raw_config(folder, **kwargs)), folder / "run")
    task.prepare()
    return task


def trained(folder: Path, **kwargs: Any) -> LanguageModelPredictor:
    out = folder / "run"
    api.train(build_run_config(raw_config(folder, **kwargs)), out)
    predictor = api.load_predictor(out, "final")
    assert isinstance(predictor, LanguageModelPredictor)
    return predictor


class UniformLM(nn.Module):
    """Logits of zero for every token: the uniform distribution over V."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.scale = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, state: Any = None) -> LMOutput:
        return LMOutput(self.scale * torch.zeros(*x.shape, self.vocab_size), None)


# ----------------------------------------------------------------------------- batches


def test_training_batches_are_the_cut_stream_window_by_window(tmp_path: Path) -> None:
    task = prepared(tmp_path)
    ids = task.stream("train").ids
    n = ids.numel() - 1
    assert n == sum(len(task.tokenizer.encode(line)) + 1 for line in GENESIS)
    x, y = cut_streams(ids, 4, pad=False)
    batches = list(task.train_batches(0))
    L = n // 4
    assert len(batches) == math.ceil(L / 5)
    for k, batch in enumerate(batches):
        assert batch.x.shape[0] == 4
        assert torch.equal(batch.x, x[:, 5 * k : 5 * k + 5])
        assert torch.equal(batch.y, y[:, 5 * k : 5 * k + 5])
        # row b of window k continues row b of window k - 1: y is the next token of x
        for b in range(4):
            start = b * L + 5 * k
            assert batch.x[b].tolist() == ids[start : start + batch.x.shape[1]].tolist()
            assert batch.y[b].tolist() == ids[start + 1 : start + 1 + batch.y.shape[1]].tolist()
    assert batches[0].x[0, 0].item() == EOS_ID  # the stream starts at a line start


def test_variable_windows_change_with_the_epoch_only(tmp_path: Path) -> None:
    task = prepared(tmp_path, variable_bptt=True, bptt=8)
    sizes = [[b.x.shape[1] for b in task.train_batches(e)] for e in (0, 0, 1)]
    assert sizes[0] == sizes[1]
    assert sum(sizes[0]) == sum(sizes[2]) == (task.stream("train").num_targets // 4)


# ------------------------------------------------------------------------ evaluation


def test_validation_carries_the_state_across_windows(tmp_path: Path) -> None:
    task = prepared(tmp_path)
    torch.manual_seed(0)
    model = task.build_model().eval()
    windows = task.evaluate(model, task.valid_batches())  # windows of 5
    whole = prepared(tmp_path / "b", bptt=10_000)
    once = whole.evaluate(model, whole.valid_batches())  # one window per row
    assert len(task.valid_batches()) > 5
    assert windows["loss"] == pytest.approx(once["loss"], rel=1e-6)
    assert windows["ppl"] == pytest.approx(math.exp(windows["loss"]))


def test_a_uniform_model_has_the_perplexity_of_the_vocabulary(tmp_path: Path) -> None:
    task = prepared(tmp_path)
    V = task.tokenizer.vocab_size
    _, test = write_corpus(tmp_path)
    report = task.evaluate_file(UniformLM(V), test, {})
    # exact up to float32 rounding of the log-softmax
    assert report.metrics["perplexity"] == pytest.approx(V, rel=1e-6)
    assert report.metrics["loss"] == pytest.approx(math.log(V), rel=1e-6)
    # "And God said, Let there be an apple." + end of line; "▁an" and "▁apple" are unknown
    assert report.metrics["tokens"] == 11
    assert report.metrics["oov_rate"] == pytest.approx(2 / 11)


def test_evaluate_json_prints_the_four_numbers(tmp_path: Path, capsys: Any) -> None:
    trained(tmp_path)
    _, test = write_corpus(tmp_path)
    assert main(["evaluate", str(tmp_path / "run"), "--data", str(test), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert sorted(metrics) == ["loss", "oov_rate", "perplexity", "tokens"]
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    assert (metrics["tokens"], metrics["oov_rate"]) == (11, pytest.approx(2 / 11))


def test_a_bad_test_file_is_named_with_its_line(tmp_path: Path, capsys: Any) -> None:
    trained(tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"And God said\nlet \xe9 be\n")
    assert main(["evaluate", str(tmp_path / "run"), "--data", str(bad)]) == 2
    assert f"rnnkit: error: {bad}:2: not valid UTF-8" in capsys.readouterr().err


def test_a_model_learns_the_corpus(tmp_path: Path) -> None:
    cfg = build_run_config(raw_config(tmp_path, max_steps=150, eval_every=150, lr=0.02))
    result = api.train(cfg, tmp_path / "run")
    V = LanguageModelTask(cfg, tmp_path / "run").tokenizer.vocab_size
    first = math.log(V)
    assert result.valid_metrics["loss"] < 0.6 * first  # well below the uniform model's


# ----------------------------------------------------------------------------- resume


def test_resume_mid_epoch_is_bitwise_identical(tmp_path: Path) -> None:
    knobs: dict[str, Any] = {
        "variable_bptt": True,
        "bptt": 6,
        "model": {"dropout": 0.3, "locked_dropout": True, "tie_embeddings": True},
        "eval_every": 3,
        "checkpoint_every": 2,
        "clip_grad_norm": 0.5,
    }
    straight = build_run_config(raw_config(tmp_path / "a", max_steps=9, **knobs))
    api.train(straight, tmp_path / "a" / "run")
    first = build_run_config(raw_config(tmp_path / "b", max_steps=5, **knobs))
    api.train(first, tmp_path / "b" / "run")
    task = LanguageModelTask(first, tmp_path / "b" / "run")
    per_epoch = sum(1 for _ in task.train_batches(0))
    assert 5 < per_epoch < 9  # stopped mid-epoch 0, and the rest crosses into epoch 1
    rest = build_run_config(raw_config(tmp_path / "b", max_steps=9, **knobs))
    result = api.train(rest, tmp_path / "b" / "run", resume=True)
    assert (result.resumed_from, result.step) == (5, 9)
    a = (tmp_path / "a" / "run" / "model.safetensors").read_bytes()
    assert (tmp_path / "b" / "run" / "model.safetensors").read_bytes() == a


# ---------------------------------------------------------------------------- predict


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_predict_top_k_is_the_models_softmax(tmp_path: Path, arch: str) -> None:
    predictor = trained(tmp_path, model={"arch": arch, "tie_embeddings": True})
    [found] = predictor.predict(["Apple was"], {"top_k": 5})
    assert found.prompt_tokens == ["<unk>", "▁was"]  # "Apple" is not in Genesis 1:1-8
    probs = [c.probability for c in found.candidates]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True)
    assert sum(probs) <= 1.0
    tok = predictor.task.tokenizer
    ids = torch.tensor([[EOS_ID, UNK_ID, tok.encode("was")[0]]])
    with torch.no_grad():
        softmax = predictor.model(ids, None).logits[0, -1].softmax(-1)
    top = softmax.topk(5)
    assert [c.token for c in found.candidates] == [tok.id_to_piece(int(i)) for i in top.indices]
    torch.testing.assert_close(torch.tensor(probs), top.values, rtol=1e-5, atol=1e-7)


def test_predict_cli_prints_words_and_probabilities(tmp_path: Path, capsys: Any) -> None:
    predictor = trained(tmp_path)
    run = str(tmp_path / "run")
    assert main(["predict", run, "And God", "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [found] = predictor.predict(["And God"], {"top_k": 3})
    assert lines == [f"{c.text}\t{c.probability:.4f}" for c in found.candidates]
    assert all(not c.text.startswith("▁") for c in found.candidates)
    assert main(["predict", run, "And God", "--top-k", "3", "--json"]) == 0
    [body] = json.loads(capsys.readouterr().out)
    assert body["input"] == "And God"
    assert [c["token"] for c in body["candidates"]] == [c.token for c in found.candidates]
    assert main(["predict", run, "And", "--top-k", "0"]) == 2
    assert "--top-k must be at least 1, got 0" in capsys.readouterr().err


# --------------------------------------------------------------------------- generate


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_generation_with_a_seed_is_reproducible(tmp_path: Path, arch: str) -> None:
    predictor = trained(tmp_path, model={"arch": arch})
    sampling = SamplingConfig(temperature=1.5)
    text = predictor.generate("And God said", 30, sampling, seed=7)
    assert text == predictor.generate("And God said", 30, sampling, seed=7)
    assert text.startswith("And God said")
    ids = predictor.generate_ids("And God said", 30, sampling, seed=7)
    assert len(ids) == 30 and PAD_ID not in ids
    others = {tuple(predictor.generate_ids("And God said", 30, sampling, seed=s)) for s in range(4)}
    assert len(others) > 1


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_generation_respects_top_k_and_top_p(tmp_path: Path, arch: str) -> None:
    # windows of 40: the Transformer's context holds the whole prompt and sample
    predictor = trained(tmp_path, model={"arch": arch}, bptt=40)
    prompt = [EOS_ID, *predictor.task.tokenizer.encode("And God")]
    for sampling, allowed in [(SamplingConfig(top_k=3, temperature=2.0), 3), (None, 1)]:
        config = sampling or SamplingConfig(top_p=1e-6)  # only the most likely token
        ids = predictor.generate_ids("And God", 12, config, seed=3)
        with torch.no_grad():
            logits = predictor.model(torch.tensor([prompt + ids]), None).logits[0]  # (T, V)
        for t, token in enumerate(ids):
            step = logits[len(prompt) - 1 + t]  # (V,), the distribution token t was drawn from
            rank = int((step > step[token]).sum())
            assert rank < allowed, (t, rank)
    greedy = predictor.generate_ids("And God", 12, SamplingConfig(top_k=1), seed=0)
    assert greedy == predictor.generate_ids("And God", 12, SamplingConfig(top_p=1e-6), seed=9)


def test_generated_lines_become_lines_of_text(tmp_path: Path) -> None:
    predictor = trained(tmp_path)
    tok = predictor.task.tokenizer
    ids = [*tok.encode("and God"), EOS_ID, *tok.encode("Let there")]
    assert predictor.continuation(ids) == " and God\nLet there"


def test_max_tokens_must_be_positive(tmp_path: Path) -> None:
    predictor = trained(tmp_path)
    with pytest.raises(TaskError, match="--max-tokens must be at least 1, got 0"):
        predictor.generate("And", 0, SamplingConfig(), None)


# ----------------------------------------------------------------------------- config


def test_compare_puts_runs_side_by_side(tmp_path: Path) -> None:
    trained(tmp_path / "lstm")
    trained(tmp_path / "tf", model={"arch": "transformer"})
    _, test = write_corpus(tmp_path)
    report = api.compare(
        [tmp_path / "lstm" / "run", tmp_path / "tf" / "run"],
        ["lstm", "tf"],
        test,
        {"gen_tokens": 5},
    )
    rows = report.metrics["runs"]
    assert [r["arch"] for r in rows] == ["lstm", "transformer"]
    loaded = api.load_run(tmp_path / "tf" / "run")
    assert rows[1]["parameters"] == count_parameters(loaded.model)
    assert all(r["tokens"] == 11 and r["generation_tokens_per_s"] > 0 for r in rows)
    assert report.text is not None and report.text.splitlines()[1].startswith("lstm")


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    raw = raw_config(tmp_path, data={"tokenizer": "unigram"})
    with pytest.raises(ConfigError, match=r"tokenizer 'unigram' needs data\.vocab_size"):
        build_run_config(raw)
    raw = raw_config(tmp_path, data={"corpus": "bible-bbe"})
    with pytest.raises(ConfigError, match=r"set either data\.corpus or data\.train/valid/test"):
        build_run_config(raw)
    raw = raw_config(tmp_path)
    raw["data"] = {"corpus": "shakespeare"}
    with pytest.raises(ConfigError, match="unknown corpus 'shakespeare'; valid corpora: bible-bbe"):
        build_run_config(raw)


def test_an_empty_training_file_is_named(tmp_path: Path) -> None:
    raw = raw_config(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    raw["data"]["train"] = [raw["data"]["train"], str(empty)]
    with pytest.raises(TaskError, match=re.escape(f"data.train: {empty}: the file holds no text")):
        api.train(build_run_config(raw), tmp_path / "run")


def test_a_sentencepiece_vocabulary_too_large_is_refused(tmp_path: Path) -> None:
    raw = raw_config(tmp_path, data={"tokenizer": "unigram", "vocab_size": 5000})
    with pytest.raises(TaskError, match=r"data\.vocab_size=5000 is too large for this training"):
        api.train(build_run_config(raw), tmp_path / "run")
    assert not (tmp_path / "run" / "tokenizer.model").exists()


def test_generate_cli_writes_the_seeded_sample(tmp_path: Path, capsys: Any) -> None:
    predictor = trained(tmp_path)
    run = str(tmp_path / "run")
    args = ["generate", run, "--prompt", "And God said", "--max-tokens", "20"]
    assert (
        main([*args, "--temperature", "1.5", "--top-k", "5", "--seed", "3", "--weights", "final"])
        == 0
    )
    want = predictor.generate("And God said", 20, SamplingConfig(temperature=1.5, top_k=5), seed=3)
    assert capsys.readouterr().out == want + "\n"
    assert main([*args, "--temperature", "0"]) == 2
    assert (
        capsys.readouterr().err
        == "rnnkit: error: --temperature: temperature must be positive, got 0.0\n"
    )


def test_generate_refuses_a_run_that_writes_no_text(tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "adding"
    assert main(["train", "adding", "--out", str(run), "--set", "train.max_steps=2"]) == 0
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "1 2"]) == 2
    assert capsys.readouterr().err == (
        f"rnnkit: error: {run}: adding runs do not generate text; "
        "rnnkit generate needs a language_model run\n"
    )
