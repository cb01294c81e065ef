"""A fixture that keeps every figure :mod:`rnnkit.viz` saves, so tests read what was drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import rnnkit.viz.attention as attention
import rnnkit.viz.figures as figures


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The matplotlib figures saved through ``save_png``, in order (the PNGs are still written)."""
    saved: list[Any] = []
    save = figures.save_png

    def keep(figure: Any, path: Path) -> Path:
        saved.append(figure)
        return save(figure, path)

    for module in (figures, attention):
        monkeypatch.setattr(module, "save_png", keep)
    return saved
