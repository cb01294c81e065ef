"""The export folder (atomic, refusing what it must not replace), the runtime's isolation from
torch, its tokenisers and its NumPy helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rnnkit import api
from rnnkit import runtime as rt
from rnnkit.cli.main import main
from rnnkit.config import builtin_configs
from rnnkit.data.tokenizers import build_tokenizer
from rnnkit.export import export_run
from rnnkit.runtime import search, tokenizer
from rnnkit.tasks.run import build_run_config
from tests.tasks.test_translation import SOURCES, run_config

TEXTS = [*SOURCES, "Dieu dit: Que la lumière soit!", "  double  spaces\tand ▁ marks  ", "ſ ﬁ Ⅻ"]


@pytest.fixture(scope="module")
def translation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("translation")
    api.train(run_config(folder, max_steps=20, eval_every=20), folder / "run")
    export_run(folder / "run", folder / "onnx")
    return folder / "run", folder / "onnx"


def test_a_task_without_an_export_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load(builtin_configs()["reverse"].read_text())
    raw = {**raw, "model": {**raw["model"], "embedding_size": 8, "hidden_size": 8}}
    raw["train"] = {**raw["train"], "max_steps": 2, "eval_every": 2, "progress": False}
    api.train(build_run_config(raw), tmp_path / "run")
    capsys.readouterr()
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == "rnnkit: error: task 'reverse' cannot be exported to ONNX\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing half written


def test_an_out_path_that_is_a_file_or_a_foreign_folder_is_refused(
    translation: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = translation
    file = tmp_path / "out.txt"
    file.write_text("keep me\n")
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(file)]) == 2
    assert (
        capsys.readouterr().err
        == f"rnnkit: error: {file}: is a file; give a folder for the export\n"
    )
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "a.txt").write_text("keep me too\n")
    assert main(["export", str(run), "--out", str(foreign)]) == 2
    assert capsys.readouterr().err == (
        f"rnnkit: error: {foreign}: the folder is not empty and holds no rnnkit export; give a "
        "new or empty folder\n"
    )
    assert file.read_text() == "keep me\n" and (foreign / "a.txt").read_text() == "keep me too\n"


def test_an_earlier_export_is_replaced_whole(
    translation: tuple[Path, Path], tmp_path: Path
) -> None:
    run, _ = translation
    out = tmp_path / "onnx"
    first = export_run(run, out)
    (out / "stale.onnx").write_bytes(b"old")
    second = export_run(run, out, "final")
    assert [p.name for p in second] == [p.name for p in first]
    assert not (out / "stale.onnx").exists()
    assert json.loads((out / "config.json").read_text())["weights"] == "final"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]  # no temporary folder left


def test_the_runtime_runs_with_torch_blocked(translation: tuple[Path, Path]) -> None:
    _, exported = translation
    script = (
        "import sys, json\n"
        "sys.modules['torch'] = None\n"
        "from rnnkit import runtime\n"
        "import rnnkit.runtime.search, rnnkit.runtime.tokenizer, rnnkit.runtime.translation\n"
        "import rnnkit.runtime.language_model\n"
        f"p = runtime.load({str(exported)!r})\n"
        f"out = p.predict([{SOURCES[0]!r}], {{'beam_size': 2}})\n"
        "print(json.dumps(p.to_json('x', out[0])['translations'][0]['translation']))\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules\n"
        "               if sys.modules[m] is not None)\n"
        "assert not [m for m in sys.modules if m.startswith('rnnkit.')\n"
        "            and not m.startswith('rnnkit.runtime')]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert (
        json.loads(done.stdout)
        == api.load_predictor(translation[0]).predict([SOURCES[0]], {"beam_size": 2})[0][0].text
    )


def test_a_folder_that_is_no_export_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"config\.json: no such file; is .* an rnnkit export\?$"):
        rt.load(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match=r'config\.json: not an rnnkit export \(no "format": '):
        rt.load(tmp_path)


@pytest.mark.parametrize("kind", ["word", "char", "unigram"])
def test_runtime_tokenisers_match_rnnkit_data_tokenizers(tmp_path: Path, kind: str) -> None:
    made = build_tokenizer(kind, TEXTS[:8], tmp_path / "tok", vocab_size=50)
    path = tmp_path / ("tok.model" if kind == "unigram" else "tok.json")
    mine = tokenizer.load(path)
    assert mine.vocab_size == made.vocab_size
    for text in [*TEXTS, "unknown words zzz"]:
        ids = made.encode(text)
        assert mine.encode(text) == ids
        assert mine.decode(ids) == made.decode(ids)
        assert [mine.id_to_piece(i) for i in ids] == [made.id_to_piece(i) for i in ids]


def test_numpy_softmax_and_log_softmax() -> None:
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    p = search.softmax(x)
    np.testing.assert_allclose(p.sum(axis=-1), [1.0, 1.0])
    np.testing.assert_allclose(p[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    np.testing.assert_allclose(search.log_softmax(x)[0], np.log(p[0]), atol=1e-12)
    np.testing.assert_allclose(search.log_softmax(x)[1], [0.0, -1000.0, -2000.0])
    assert search.length_penalty(3, 1.0) == 8 / 6 and search.length_penalty(3, 0.0) == 1.0
    assert search.max_lengths(np.array([4, 1]), 1.5, 2) == [8, 3]
    with pytest.raises(ValueError, match=r"must be at least 1, got 0\.0 \* 4 \+ 0"):
        search.max_lengths(np.array([4]), 0.0, 0)
