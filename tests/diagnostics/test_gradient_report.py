"""Both gradient experiments as one report: strict JSON, the text tables and the figure's panels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rnnkit.diagnostics.exploding import exploding_experiment
from rnnkit.diagnostics.gradient_report import (
    GradientReport,
    format_gradient_report,
    plot_gradient_report,
)
from rnnkit.diagnostics.vanishing import gradient_flow_experiment

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_json_figure_and_text(tmp_path: Path, drawn: list[Any]) -> None:
    flow = gradient_flow_experiment(length=12, hidden_size=8, train_time_s=0)
    assert [(c.cell, c.stage) for c in flow.curves] == [
        ("rnn", "init"),
        ("lstm", "init"),
        ("gru", "init"),
    ]
    assert all(len(c.norms) == 12 for c in flow.curves) and flow.training == []
    exploding = exploding_experiment(length=10, hidden_size=8, steps=40, radius=3.0, lr=0.5)
    report = GradientReport(flow=flow, exploding=exploding)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))  # strict JSON
    assert data["flow"]["curves"][0]["ratio"] == pytest.approx(flow.curves[0].ratio)
    assert data["exploding"]["runs"][1]["clip_rate"] == pytest.approx(exploding.runs[1].clip_rate)
    text = format_gradient_report(report)
    assert "T=12, H=8" in text and "spectral radius W_hh" in text and "i " in text
    path = plot_gradient_report(report, tmp_path / "gradients.png")
    assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 10_000

    (figure,) = drawn
    flow_axes, norm_axes, loss_axes = figure.axes  # no trained curves: three panels
    flow_lines = {line.get_label(): line for line in flow_axes.get_lines()}
    assert set(flow_lines) == {"rnn", "lstm", "gru"}
    assert list(flow_lines["gru"].get_xdata()) == [float(t) for t in range(1, 13)]
    assert list(flow_lines["gru"].get_ydata()) == flow.curves[2].norms
    assert flow_axes.get_yscale() == "log" and "T=12" in flow_axes.get_title()
    labels = [line.get_label() for line in norm_axes.get_lines()]
    assert labels == ["no clipping", "clip_grad_norm 1", "clipping threshold"]
    assert list(norm_axes.get_lines()[0].get_ydata()) == exploding.runs[0].grad_norm
    assert list(loss_axes.get_lines()[1].get_ydata()) == exploding.runs[1].loss
    assert loss_axes.get_ylabel() == "MSE (log)"
