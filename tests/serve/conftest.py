"""Fixtures of the server tests: a tiny trained run of every served task, an app serving them
all, and a live uvicorn server on a free loopback port (for the browser and load tests).

The runs reuse the tiny configs of the task tests (``tests/tasks``), trained once per session.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from fastapi.testclient import TestClient

from rnnkit import api
from rnnkit.config import RunConfig
from rnnkit.serve import ServeConfig, create_app
from rnnkit.tasks.run import build_run_config
from tests.tasks import test_captioning as captioning
from tests.tasks import test_classification as classification
from tests.tasks import test_forecasting as forecasting
from tests.tasks import test_language_model as language_model
from tests.tasks import test_tagging as tagging
from tests.tasks import test_translation as translation
from tests.tasks.test_tagging import next_word_sentences, write_conll


def _configs(folder: Path) -> dict[str, RunConfig]:
    series = forecasting.monthly_csv(folder / "sales.csv")
    conll = write_conll(next_word_sentences(120, 0), folder / "tagging" / "train.conll")
    return {
        "translation": translation.run_config(folder / "translation"),
        "captioning": captioning.config(folder / "captioning"),
        "forecasting": forecasting.run_config(series, model={"head": "attention"}),
        "classification": classification.config(
            folder / "classification", model={"pooling": "attention"}
        ),
        "tagging": tagging.config(folder / "tagging", conll, conll),
        "language_model": build_run_config(language_model.raw_config(folder / "lm", max_steps=30)),
    }


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Task name -> run folder of a tiny trained run (translation with attention, captioning
    with soft attention, forecasting, classification with attention pooling, tagging, a word
    language model)."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "tagging").mkdir()
    runs = {}
    for name, config in _configs(folder).items():
        run = folder / "runs" / name
        api.train(config, run)
        runs[name] = run
    return runs


@pytest.fixture(scope="session")
def sample_image(served_runs: dict[str, Path]) -> Path:
    """A PNG the captioning run was trained on (a red circle)."""
    return served_runs["captioning"].parent.parent / "captioning" / "images" / "red-circle.png"


@pytest.fixture(scope="session")
def client(served_runs: dict[str, Path]) -> Iterator[TestClient]:
    """A test client of an app serving every run under the default limits."""
    with TestClient(create_app(list(served_runs.values()))) as c:
        yield c


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """uvicorn serving an app on a free loopback port in a background thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(served_runs: dict[str, Path]) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT``) of a live server of every run."""
    with LiveServer(create_app(list(served_runs.values()), ServeConfig())) as server:
        yield server.url
