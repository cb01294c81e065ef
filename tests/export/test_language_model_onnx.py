"""The language model through ONNX: logits against torch (recurrent and Transformer), the
next-token top-k of the runtime against the torch predictor's, and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit import api
from rnnkit import runtime as rt
from rnnkit.cli.main import main
from rnnkit.data.tokenizers import EOS_ID
from rnnkit.export import export_run
from rnnkit.tasks.base import to_json
from rnnkit.tasks.run import build_run_config
from tests.export import json_close
from tests.tasks.test_language_model import raw_config

ARCHS = {
    "lstm": {"arch": "rnn", "cell": "lstm"},
    "gru-tied": {"arch": "rnn", "cell": "gru", "tie_embeddings": True},
    "transformer": {"arch": "transformer", "tie_embeddings": True},
}
PROMPTS = ["Apple was", "And God said, Let there be", "the", "And God made the arch for a"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    found = {}
    for name, model in ARCHS.items():
        folder = tmp_path_factory.mktemp(name)
        api.train(build_run_config(raw_config(folder, model=model)), folder / "run")
        export_run(folder / "run", folder / "onnx")
        found[name] = (folder / "run", folder / "onnx")
    return found


@pytest.mark.parametrize("arch", list(ARCHS))
def test_logits_match_torch(runs: dict[str, tuple[Path, Path]], arch: str) -> None:
    run, exported = runs[arch]
    predictor = api.load_predictor(run)
    onnx = rt.load(exported)
    for prompt in PROMPTS:
        ids = [EOS_ID, *predictor.task.tokenizer.encode(prompt)]
        if onnx.config["context"]:  # the Transformer reads at most train.bptt tokens
            ids = ids[-onnx.config["context"] :]
        with torch.no_grad():
            want = predictor.model.eval()(torch.tensor([ids]), None).logits[0, -1].numpy()
        row = np.array([ids], dtype=np.int64)
        if onnx.config["fixed_length"]:
            row = np.pad(row, ((0, 0), (0, onnx.config["context"] - len(ids))))
        (logits,) = onnx.graph.run(["logits"], {"ids": row})
        np.testing.assert_allclose(logits[0, len(ids) - 1], want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_top_k_equals_the_torch_predictors(runs: dict[str, tuple[Path, Path]], arch: str) -> None:
    run, exported = runs[arch]
    torch_predictor, onnx = api.load_predictor(run), rt.load(exported)
    for options in ({}, {"top_k": 3}):
        want = [
            to_json(torch_predictor.to_json(p, o))
            for p, o in zip(PROMPTS, torch_predictor.predict(PROMPTS, options), strict=True)
        ]
        got = [
            onnx.to_json(p, o) for p, o in zip(PROMPTS, onnx.predict(PROMPTS, options), strict=True)
        ]
        assert [[c["token"] for c in g["candidates"]] for g in got] == [
            [c["token"] for c in w["candidates"]] for w in want
        ]
        assert json_close(got, want, 1e-6)
    with pytest.raises(ValueError, match=r"^--top-k must be at least 1, got 0$"):
        onnx.predict(PROMPTS, {"top_k": 0})


def test_cli_prints_the_torch_engines_json_and_text(
    runs: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    run, exported = runs["lstm"]
    capsys.readouterr()
    for extra in (["--json"], []):
        assert main(["predict", str(run), *PROMPTS[:2], "--top-k", "4", *extra]) == 0
        want = capsys.readouterr().out
        assert (
            main(
                ["predict", str(exported), *PROMPTS[:2], "--top-k", "4", "--engine", "onnx", *extra]
            )
            == 0
        )
        got = capsys.readouterr().out
        if extra:
            assert json_close(json.loads(got), json.loads(want), 1e-6)
        else:
            assert got == want
