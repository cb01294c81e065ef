"""``rnnkit train`` reports an invalid ``train.*`` value before it writes anything.

Defect 1 of issue 8: ``--set train.eval_every=0`` used to be reported only after ``config.yaml``
was written, so the next ``rnnkit train`` into that folder said it "already holds a run", and
``train.batch_size=0`` was not validated at all (``range() arg 3 must not be zero``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.cli.main import main

ADDING = "adding"  # the built-in config (src/rnnkit/configs/adding.yaml)
QUIET = ["--set", "train.progress=false", "--set", "train.checkpoint_every=1000"]


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("train.batch_size=0", "invalid value for 'train.batch_size': must be >= 1, got 0"),
        ("train.eval_every=0", "invalid value for 'train.eval_every': must be >= 1, got 0"),
        ("train.max_time_s=-5", "invalid value for 'train.max_time_s': must be > 0, got -5.0"),
    ],
)
def test_invalid_train_value_is_reported_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, problem: str
) -> None:
    out = tmp_path / "run"
    status = main(["train", ADDING, "--out", str(out), "--set", setting, *QUIET])
    err = capsys.readouterr().err
    assert status == 2
    assert err == f"rnnkit: error: {problem}\n"  # one line naming the key and the bound
    assert not out.exists()  # no config.yaml, no run folder at all

    # the same folder then trains with a valid value: nothing was left in the way
    fixed = setting.split("=")[0] + ("=8" if "batch_size" in setting else "=2")
    args = ["train", ADDING, "--out", str(out), "--set", fixed, *QUIET]
    assert main([*args, "--set", "train.max_steps=3"]) == 0
    assert "trained adding to step 3" in capsys.readouterr().out
    for name in ("config.yaml", "metrics.csv", "model.safetensors"):
        assert (out / name).is_file(), name
