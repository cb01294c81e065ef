"""SIGKILL at random moments (mostly mid-checkpoint): every resume is clean and the final weights
are byte-identical to an uninterrupted run.

A parent process imports torch once and forks one training child per launch (as DataLoader
workers do), so twelve kills cost seconds rather than twelve interpreter start-ups.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rnnkit.io import is_temp_file, load_checkpoint
from rnnkit.training import Trainer
from rnnkit.training.checkpoint import checkpoint_step, list_checkpoints
from tests.training.test_tasks import LinearTask, run_config

REPO = Path(__file__).resolve().parents[2]

# A 256 -> 1024 -> 1 MLP: each checkpoint (weights + Adam moments) is about 3 MB, so saving it
# (every step) takes most of a step's time and random kills mostly land inside a save.
TRAIN = {
    "max_steps": 60,
    "checkpoint_every": 1,
    "keep_checkpoints": 2,
    "eval_every": 10,
    "log_every": 1,
    "threads": 1,
    "schedule": "cosine",
    "warmup_steps": 5,
}
TASK = {"d": 256, "width": 1024, "dropout": 0.2, "n_batches": 9}

# Reads "go" lines; for each, forks a child that trains (resuming when a checkpoint exists),
# prints the child's pid, waits for it and prints its exit code (-9 after SIGKILL).
FORK_SERVER = """
import json, os, sys, traceback
from pathlib import Path
import torch
from rnnkit.training import Trainer
from rnnkit.training.checkpoint import list_checkpoints
from tests.training.test_tasks import LinearTask, run_config

run_dir = Path(sys.argv[1])
cfg = run_config(**json.loads(sys.argv[2]))
task_kwargs = json.loads(sys.argv[3])
torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # pay torch's lazy imports once, here
import tqdm.auto  # noqa: F401

for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            resume = bool(list_checkpoints(run_dir))  # a first launch may die before any
            result = Trainer(LinearTask(cfg, **task_kwargs), cfg.train, run_dir).fit(resume)
            sys.stderr.write(f"done {result.step} {result.resumed_from}\\n")
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_sigkill_at_random_moments_always_resumes_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "fork_server.py"
    script.write_text(FORK_SERVER)
    run_dir = tmp_path / "run"
    args = [sys.executable, str(script), str(run_dir), json.dumps(TRAIN), json.dumps(TASK)]
    server = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    assert server.stdin is not None and server.stdout is not None

    def launch() -> int:
        server.stdin.write("go\n")
        server.stdin.flush()
        line = server.stdout.readline()
        assert line.strip().isdigit(), line
        return int(line)

    def newest() -> int:
        files = list_checkpoints(run_dir)
        return (checkpoint_step(files[-1]) or 0) if files else 0

    rng = random.Random(20240611)
    mid_write = 0  # kills that left a temp file behind, i.e. landed inside an atomic write
    resumed_steps = []
    try:
        for launch_index in range(12):
            before = newest()
            pid = launch()
            # wait until the child has taken a step (so every launch makes progress), then kill
            # it at a random moment of the following steps, most of which is checkpoint writing
            deadline = time.monotonic() + 60
            while newest() <= before:
                assert time.monotonic() < deadline, "the child made no progress"
                time.sleep(0.002)
            if launch_index % 2:
                time.sleep(rng.uniform(0.0, 0.04))
            else:  # targeted: as soon as the next checkpoint's temp file shows up
                while not any(is_temp_file(p) for p in (run_dir / "checkpoints").iterdir()):
                    assert time.monotonic() < deadline, "no checkpoint write seen"
                time.sleep(rng.uniform(0.0, 0.001))
            with contextlib.suppress(ProcessLookupError):  # exited on its own: fails below
                os.kill(pid, signal.SIGKILL)
            code = int(server.stdout.readline())
            if code != -signal.SIGKILL:
                server.stdin.close()
                assert server.stderr is not None
                pytest.fail(
                    f"the child exited with {code} before the kill:\n{server.stderr.read()}"
                )
            leftovers = [p for p in run_dir.rglob("*") if p.is_file() and is_temp_file(p)]
            mid_write += bool(leftovers)
            # whatever the kill interrupted, every visible file is complete
            for path in list_checkpoints(run_dir):
                assert load_checkpoint(path)["step"] >= 1
            if (run_dir / "metrics.csv").exists():
                with (run_dir / "metrics.csv").open(newline="") as handle:
                    steps = [int(row["step"]) for row in csv.DictReader(handle)]
                assert steps == list(range(1, len(steps) + 1))
            if list_checkpoints(run_dir):
                resumed_steps.append(load_checkpoint(list_checkpoints(run_dir)[-1])["step"])
        launch()
        assert int(server.stdout.readline()) == 0, "the last launch failed (stderr below)"
    finally:
        server.stdin.close()
        server.wait(timeout=60)
        assert server.stderr is not None
        err = server.stderr.read()
    assert "done 60 " in err.splitlines()[-1]
    assert len(resumed_steps) == 12 and resumed_steps == sorted(resumed_steps)
    assert resumed_steps[0] >= 1 and len(set(resumed_steps)) >= 6
    assert resumed_steps[-1] < 60
    # the six targeted kills (and some random ones) interrupted an atomic write in flight
    assert mid_write >= 4, f"only {mid_write} of 12 kills landed inside a write"

    cfg = run_config(**TRAIN)
    Trainer(LinearTask(cfg, **TASK), cfg.train, tmp_path / "straight").fit()
    for name in ("model.safetensors", "best.safetensors"):
        assert (run_dir / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()
