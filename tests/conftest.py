"""Test-wide settings and fixtures: one intra-op thread per test process, and ``drawn``.

Tests use small tensors, for which thread hand-off costs more than it saves; one thread also keeps
timings stable when tests run in parallel processes.
"""

from pathlib import Path
from typing import Any

import pytest
import torch

import rnnkit.viz.attention as attention
import rnnkit.viz.captioning as captioning
import rnnkit.viz.figures as figures

torch.set_num_threads(1)


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The matplotlib figures saved through ``save_png``, in order (the PNGs are still written),
    so a test can read what was drawn: axes, tick labels, the arrays shown."""
    saved: list[Any] = []
    save = figures.save_png

    def keep(figure: Any, path: Path) -> Path:
        saved.append(figure)
        return save(figure, path)

    for module in (figures, attention, captioning):
        monkeypatch.setattr(module, "save_png", keep)
    return saved
