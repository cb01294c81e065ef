"""Translation through ONNX: the encoder and decoder-step graphs against torch, the NumPy
searches against rnnkit.decoding, and ``rnnkit export`` / ``predict --engine onnx`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit import api
from rnnkit import runtime as rt
from rnnkit.cli.main import main
from rnnkit.export import export_run
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.tasks.base import to_json
from rnnkit.tasks.translation import TranslationTask
from tests.export import ROUNDED, json_close, max_diff
from tests.tasks.test_translation import SOURCES, encode_batch, run_config

KINDS = {
    "gru-additive": {"cell": "gru", "attention": "additive", "num_layers": 2},
    "lstm-none": {"cell": "lstm", "attention": "none"},
    "lstm-general": {"cell": "lstm", "attention": "general"},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """(run, export) per kind: bidirectional encoders trained 30 steps (unsure: beams differ)."""
    found = {}
    for name, model in KINDS.items():
        folder = tmp_path_factory.mktemp(name)
        api.train(run_config(folder, model=model, max_steps=30, eval_every=30), folder / "run")
        export_run(folder / "run", folder / "onnx")
        found[name] = (folder / "run", folder / "onnx")
    return found


@pytest.mark.parametrize("kind", list(KINDS))
def test_encoder_and_step_graphs_match_torch_on_a_padded_batch(
    runs: dict[str, tuple[Path, Path]], kind: str
) -> None:
    run, exported = runs[kind]
    loaded = api.load_run(run)
    task, model = loaded.task, loaded.model
    assert isinstance(task, TranslationTask) and isinstance(model, Seq2Seq)
    sentences = [SOURCES[3], SOURCES[7], SOURCES[0]]  # 10, 1 and 3 tokens
    src, lengths = encode_batch(task, sentences)
    predictor = rt.load(exported)
    state, memory = predictor.encode([src[b, : lengths[b]].tolist() for b in range(3)])
    model.eval()
    with torch.no_grad():
        want = model.encode(src, lengths)
        np.testing.assert_allclose(memory["states"], want.states.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(
            state["hidden"], want.init_state.hidden.numpy(), atol=1e-4, rtol=0
        )
        if want.projected_keys is not None:
            np.testing.assert_allclose(memory["keys"], want.projected_keys.numpy(), atol=1e-4)
        torch_state = want.init_state
        tokens = torch.tensor([1, 1, 1])
        for t in range(4):  # four steps fed the same tokens, state carried
            got_lp, state, got_att = predictor.decoder.step(tokens.numpy(), state, memory)
            out = model.step(tokens, torch_state, want)
            np.testing.assert_allclose(got_lp, out.log_probs.numpy(), atol=1e-4, rtol=0)
            if out.attention is None:
                assert got_att is None
            else:
                np.testing.assert_allclose(got_att, out.attention.numpy(), atol=1e-4, rtol=0)
                assert np.all(got_att[1, 1:] == 0.0)  # padding gets no weight
            torch_state = out.state
            tokens = torch.tensor([5 + t, 6 + t, 7 + t])


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("options", [{"beam_size": 1}, {"beam_size": 4, "n_best": 3}])
def test_greedy_and_beam_outputs_equal_the_torch_predictors(
    runs: dict[str, tuple[Path, Path]], kind: str, options: dict[str, int]
) -> None:
    run, exported = runs[kind]
    torch_predictor = api.load_predictor(run)
    onnx_predictor = rt.load(exported)
    want = [
        to_json(torch_predictor.to_json(s, o))
        for s, o in zip(SOURCES, torch_predictor.predict(SOURCES, options), strict=True)
    ]
    got = [
        onnx_predictor.to_json(s, o)
        for s, o in zip(SOURCES, onnx_predictor.predict(SOURCES, options), strict=True)
    ]
    tokens = [[t["output_tokens"] for t in w["translations"]] for w in want]
    assert [[t["output_tokens"] for t in g["translations"]] for g in got] == tokens
    assert json_close(got, want, ROUNDED), max_diff(got, want)
    assert [onnx_predictor.format(o) for o in onnx_predictor.predict(SOURCES, options)] == [
        torch_predictor.format(o) for o in torch_predictor.predict(SOURCES, options)
    ]


def test_the_export_folder_holds_graphs_tokenisers_and_config(
    runs: dict[str, tuple[Path, Path]],
) -> None:
    _, exported = runs["gru-additive"]
    names = sorted(p.name for p in exported.iterdir())
    assert names == [
        "config.json",
        "decoder_step.onnx",
        "encoder.onnx",
        "source.json",
        "target.json",
    ]
    config = json.loads((exported / "config.json").read_text())
    assert config["format"] == "rnnkit-onnx" and config["version"] == 1
    assert config["task"] == "translation"
    assert config["runtime"] == "rnnkit.runtime.translation"
    assert config["memory"] == ["states", "mask", "keys"]
    assert config["state"] == {"hidden": 1}


def test_cli_export_and_predict_with_the_onnx_engine_print_the_torch_json(
    runs: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = runs["lstm-general"]
    out = tmp_path / "exported"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    capsys.readouterr()
    args = [SOURCES[0], SOURCES[4], "--beam", "3", "--nbest", "2", "--json"]
    assert main(["predict", str(run), *args]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["predict", str(out), *args, "--engine", "onnx"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert json_close(got, want, ROUNDED)
    assert main(["predict", str(out), SOURCES[0], "--engine", "onnx"]) == 0
    text = capsys.readouterr().out
    assert main(["predict", str(run), SOURCES[0]]) == 0
    assert text == capsys.readouterr().out


def test_onnx_engine_on_a_run_folder_exports_into_run_onnx(
    runs: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = runs["lstm-none"]
    assert not (run / "onnx").exists()
    assert main(["predict", str(run), SOURCES[2], "--engine", "onnx", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (run / "onnx" / "config.json").is_file()
    assert main(["predict", str(run), SOURCES[2], "--json"]) == 0
    assert json_close(got, json.loads(capsys.readouterr().out))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--attention-plot", "plots"],
            "rnnkit: error: --attention-plot is not supported by the onnx engine; use --engine "
            "torch\n",
        ),
        (
            ["--sample"],
            "rnnkit: error: --sample is not supported by the onnx engine; use --engine torch\n",
        ),
        (["--beam", "2", "--nbest", "3"], "rnnkit: error: --nbest 3 must not exceed --beam 2\n"),
    ],
)
def test_onnx_engine_refuses_what_it_cannot_do(
    runs: dict[str, tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    _, exported = runs["gru-additive"]
    capsys.readouterr()
    assert main(["predict", str(exported), SOURCES[0], "--engine", "onnx", *flags]) == 2
    assert capsys.readouterr().err == message


def test_empty_input_is_the_torch_engines_error(runs: dict[str, tuple[Path, Path]]) -> None:
    _, exported = runs["gru-additive"]
    with pytest.raises(ValueError, match=r"^input 2 is empty: nothing to translate$"):
        rt.load(exported).predict([SOURCES[0], "  "], {})
