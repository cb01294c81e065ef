"""Ten kills at random moments of ``rnnkit train``; every one recovers bit for bit.

The full count (100 trials) is ``python tests/kill_resume.py --trials 100``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kill_resume import run_trials


@pytest.mark.slow
def test_ten_random_kills_all_recover_to_the_straight_runs_weights(tmp_path: Path) -> None:
    lines: list[str] = []
    results = run_trials(10, tmp_path, seed=1, steps=30, report=lines.append)
    failed = [line for line, t in zip(lines[1:], results, strict=True) if not t.identical]
    assert not failed, "\n".join(failed)
    assert len(results) == 10
