"""``rnnkit compare`` scores every run through the first run's data pipeline, so runs whose data
sections differ (another tokeniser, vocabulary, sequence length) are refused, naming the keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.cli.main import main


def test_runs_with_different_data_sections_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short, long = tmp_path / "short", tmp_path / "long"
    steps = ["--set", "train.max_steps=2"]
    assert main(["train", "adding", "--out", str(short), *steps, "--set", "data.length=10"]) == 0
    assert main(["train", "adding", "--out", str(long), *steps, "--set", "data.length=20"]) == 0
    data = tmp_path / "sums.txt"
    data.write_text("0.5* 0.1 0.2*\t0.7\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["compare", str(short), str(long), "--data", str(data)]) == 2
    assert capsys.readouterr().err == (
        f"rnnkit: error: compare reads the data file through {short}'s data pipeline, but {long} "
        "differs in 'data.length'; compare runs trained on the same data section\n"
    )
    assert main(["compare", str(short), str(short), "--data", str(data), "--json"]) == 0
