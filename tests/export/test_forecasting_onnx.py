"""ONNX export of the forecasting task: the graph plus the NumPy scaling and quantiles against
:meth:`Forecaster.predict` for every head and likelihood on batches of windows (within 1e-4),
and a trained run exported and answered by :mod:`rnnkit.runtime.forecasting` with the torch
predictor's table, JSON and CSV, through the API and through the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.data.series_windows import ScalerStats
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.nn.distributions import student_t_icdf as torch_student_t_icdf
from rnnkit.runtime.forecasting import ForecastingRuntime, combine, student_t_icdf
from rnnkit.tasks.forecasting_export import ForecasterGraph
from rnnkit.tasks.run import load_predictor
from tests.export import cli_exports
from tests.tasks.test_forecasting import monthly_csv, run_config, train_run

L, H, C, P, K = 8, 4, 2, 1, 2


@pytest.mark.parametrize(
    ("head", "likelihood", "cell", "layers", "members"),
    [
        ("direct", "quantile", "gru", 2, 1),
        ("direct", "gaussian", "lstm", 1, 2),
        ("autoregressive", "quantile", "lstm", 2, 1),
        ("autoregressive", "student_t", "gru", 1, 1),
        ("attention", "quantile", "gru", 1, 2),
        ("attention", "gaussian", "rnn", 2, 1),
        ("attention", "student_t", "lstm", 1, 1),
    ],
)
def test_graph_and_numpy_match_predict(
    head: str, likelihood: str, cell: str, layers: int, members: int, tmp_path: Path
) -> None:
    from rnnkit.export.graphs import export_graph

    torch.manual_seed(0)
    cfg = ForecasterConfig(
        cell=cell,
        head=head,
        hidden_size=7,
        num_layers=layers,
        likelihood=likelihood,
        quantiles=(0.1, 0.25, 0.5, 0.75, 0.9),
        ensemble=members,
    )
    model = Forecaster(
        cfg, targets=C, past=P, calendar=K, lookback=L, horizon=H, season=4, log=True
    ).eval()
    model.set_scaling(
        ScalerStats(np.array([3.0, 4.0]), np.array([0.5, 2.0]), log=True),
        ScalerStats(np.array([10.0]), np.array([3.0])),
    )
    rng = np.random.default_rng(1)
    names = ["scaled", "calendar", "past"]
    outputs = ["params", "level", *(["attention"] if head == "attention" else [])]
    axes = {"scaled": {0: "B"}, "calendar": {0: "B"}, "past": {0: "B"}, "level": {0: "B"}}
    axes.update({"params": {1: "B"}, "attention": {1: "B"}})
    example = (torch.randn(2, L, C), torch.randn(2, L + H, K), torch.randn(2, L, P))
    path = export_graph(
        ForecasterGraph(model),
        example,
        tmp_path / "f.onnx",
        names,
        outputs,
        {k: axes[k] for k in [*names, *outputs]},
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    loc, scale = model.target_loc.numpy(), model.target_scale.numpy()
    for B in (3, 1):
        history = rng.uniform(5.0, 200.0, size=(B, L, C)).astype(np.float32)
        calendar = rng.uniform(-1, 1, size=(B, L + H, K)).astype(np.float32)
        past = rng.normal(10.0, 3.0, size=(B, L, P)).astype(np.float32)
        with torch.no_grad():
            want = model.predict(
                torch.from_numpy(history), torch.from_numpy(calendar), torch.from_numpy(past)
            )
        feeds = {
            "scaled": (np.log(history) - loc) / scale,
            "calendar": calendar,
            "past": (past - model.past_loc.numpy()) / model.past_scale.numpy(),
        }
        out = sess.run(None, feeds)
        point, q, attention = combine(
            out[0],
            out[1],
            out[2] if head == "attention" else None,
            likelihood,
            cfg.quantiles,
            (loc, scale, True),
        )
        # raw values up to ~1e3: compare relative to their size
        np.testing.assert_allclose(point, want[0].numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(q, want[1].numpy(), rtol=1e-4, atol=1e-4)
        if head == "attention":
            assert attention is not None and want[2] is not None
            np.testing.assert_allclose(attention, want[2].numpy(), atol=1e-4, rtol=0)
        else:
            assert attention is None and want[2] is None


def test_numpy_student_t_quantiles_match_torch() -> None:
    df = np.array([2.001, 2.5, 4.0, 10.0, 60.0])
    for q in (0.05, 0.25, 0.5, 0.9, 0.99):
        want = torch_student_t_icdf(q, torch.from_numpy(df)).numpy()
        np.testing.assert_allclose(student_t_icdf(q, df), want, atol=1e-12, rtol=0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny run (attention head, log transform) on a monthly series, its export and data."""
    from rnnkit.export import export_run

    folder = tmp_path_factory.mktemp("forecast-onnx")
    data = monthly_csv(folder / "sales.csv")
    train_run(run_config(data, model={"head": "attention"}), folder / "run")
    export_run(folder / "run", folder / "onnx")
    return folder / "run", folder / "onnx", data


def runtime(folder: Path) -> ForecastingRuntime:
    from rnnkit import runtime as rt

    predictor = rt.load(folder)
    assert isinstance(predictor, ForecastingRuntime)
    return predictor


def close(a: Any, b: Any, tol: float = 1e-4) -> bool:
    """JSON values equal, floats within ``tol`` relative to their size."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol * max(1.0, abs(b))
    return bool(a == b)


def test_runtime_answers_as_the_torch_predictor(exported: tuple[Path, Path, Path]) -> None:
    run, out, data = exported
    torch_predictor = load_predictor(run, "best")
    onnx_predictor = runtime(out)
    history = data.with_name("history.csv")
    pd.read_csv(data).iloc[:50].to_csv(history, index=False)  # a history shorter than training
    for horizon in (None, 3):
        options = {"horizon": horizon}
        (want,) = torch_predictor.predict([history], options)
        (got,) = onnx_predictor.predict([history], options)
        w, g = want.result, got.result
        assert list(g.time) == list(w.time) and len(g.time) == (horizon or 6)
        assert g.time[0] == pd.Timestamp("2004-03-01")  # the month after the 50th row
        assert list(g.lookback_time) == list(w.lookback_time)
        scale = np.abs(w.quantiles).max()
        assert np.abs(g.point - w.point).max() <= 1e-4 * scale
        assert np.abs(g.quantiles - w.quantiles).max() <= 1e-4 * scale
        assert g.attention is not None and w.attention is not None
        assert np.abs(g.attention - w.attention).max() <= 1e-4
        got_json = onnx_predictor.to_json(history, got)
        assert close(got_json, torch_predictor.to_json(history, want))
        columns = ["month", "forecast", "lower_80", "upper_80", "q0.1", "q0.5", "q0.9"]
        assert list(got_json["output"]) == columns
        got_csv = pd.read_csv(io.StringIO(onnx_predictor.format(got)))
        want_csv = pd.read_csv(io.StringIO(torch_predictor.format(want)))
        assert list(got_csv.columns) == list(want_csv.columns)
        assert (got_csv["month"] == want_csv["month"]).all()
        np.testing.assert_allclose(
            got_csv.iloc[:, 1:].to_numpy(), want_csv.iloc[:, 1:].to_numpy(), rtol=1e-4
        )


def test_runtime_errors(exported: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, out, data = exported
    predictor = runtime(out)
    with pytest.raises(
        ValueError,
        match=r"^horizon 7 is longer than the model was trained for \(data.horizon = 6\)$",
    ):
        predictor.predict([data], {"horizon": 7})
    short = tmp_path / "short.csv"
    pd.read_csv(data).iloc[:5].to_csv(short, index=False)
    with pytest.raises(
        ValueError,
        match=rf"^{short}: too few rows: 5 rows of history, the model reads lookback 12$",
    ):
        predictor.predict([short], {})
    with pytest.raises(
        ValueError, match=r"^--output is not supported by the onnx engine; use --engine torch$"
    ):
        predictor.predict([data], {"output": tmp_path / "f.csv"})
    gap = tmp_path / "gap.csv"
    pd.read_csv(data).drop(index=[20, 21]).to_csv(gap, index=False)
    with pytest.raises(
        ValueError,
        match=rf"^{gap}: gap of 2 missing timestamp\(s\) between 2001-08-01 00:00:00 and "
        r"2001-11-01 00:00:00 at frequency 'MS'$",
    ):
        predictor.predict([gap], {})
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'none.csv'}: no such file; "):
        predictor.predict([tmp_path / "none.csv"], {})


def test_cli_export_then_predict_with_the_onnx_engine(
    exported: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not cli_exports():
        pytest.skip("the CLI has no export verb yet")
    capsys.readouterr()
    run, _, data = exported
    out = tmp_path / "cli-onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["runtime"] == (
        "rnnkit.runtime.forecasting"
    )
    capsys.readouterr()
    assert main(["predict", str(run), str(data), "--horizon", "4", "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert (
        main(
            [
                "predict",
                str(out),
                "--data",
                str(data),
                "--horizon",
                "4",
                "--engine",
                "onnx",
                "--json",
            ]
        )
        == 0
    )
    got = json.loads(capsys.readouterr().out)
    assert len(got) == 1 and len(got[0]["output"]["month"]) == 4 and close(got, want)
