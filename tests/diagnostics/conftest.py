"""A fixture that keeps every figure the diagnostics draw, so tests can read what was drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import rnnkit.viz.figures as figures


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The matplotlib figures saved through :func:`rnnkit.viz.figures.save_png`, in order."""
    saved: list[Any] = []
    save = figures.save_png

    def keep(figure: Any, path: Path) -> Path:
        saved.append(figure)
        return save(figure, path)

    monkeypatch.setattr(figures, "save_png", keep)
    return saved
