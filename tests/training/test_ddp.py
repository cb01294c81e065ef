"""Data-parallel training on CPU with gloo: 2 processes x 1 thread, launched by torchrun.

Checked: a 2-rank run equals a 1-rank run of the same global batch (weights within float
tolerance after K steps); a run whose rank 1 is SIGKILLed and restarted by ``torchrun
--max-restarts`` finishes with the same weights, byte for byte, as an uninterrupted 2-rank run;
rank 1 never writes a file (an audit hook records every write it attempts); the CLI under
torchrun leaves a run folder of the same layout as a single-process run. Sharding itself is
checked in-process.

This file is also the worker torchrun starts: ``python tests/training/test_ddp.py worker SPEC``
trains :class:`SeqTask` as SPEC (JSON) says.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import FrozenConfig, RunConfig, TrainConfig
from rnnkit.io import load_safetensors
from rnnkit.nn import make_layer
from rnnkit.training import Callback, StepOutput, Trainer
from rnnkit.training.checkpoint import list_checkpoints
from rnnkit.training.distributed import Distributed, shard_batches

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
EXAMPLES_PER_EPOCH = 48  # 1 rank at batch 8: 6 batches; 2 ranks at batch 4: 12, 6 each


# ------------------------------------------------------------------------------ the task


class NoConfig(FrozenConfig):
    """The empty data/model sections of the test task."""


class SeqModel(nn.Module):
    """An LSTM (I=3, H=5) reading x (B, T=4, I) and a linear read-out of its last state: (B,)."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.rnn = make_layer("lstm", 3, 5)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(5, 1)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)  # (B, T, H)
        return self.out(self.drop(out[:, -1])).squeeze(-1)  # (B,)


class SeqTask:
    """Regression of the sum of x over time, 48 examples an epoch drawn from (seed, epoch) and
    cut in order into batches of ``train.batch_size``: batch k at batch size 2b holds batches
    2k and 2k + 1 at batch size b, which is what 2 ranks take."""

    name: ClassVar[str] = "test_seq"
    metric_names: ClassVar[tuple[str, ...]] = ("loss",)
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("loss", "min")
    stateful: ClassVar[bool] = False

    def __init__(self, config: RunConfig, dropout: float = 0.0) -> None:
        self.config = config
        self.dropout = dropout

    def build_model(self) -> nn.Module:
        return SeqModel(self.dropout)

    def _examples(self, seed: int, count: int) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(count, 4, 3, generator=g)  # (N, T, I)
        return x, x.sum(dim=(1, 2))  # (N,)

    def train_batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        x, y = self._examples(1000 * self.config.train.seed + epoch, EXAMPLES_PER_EPOCH)
        size = self.config.train.batch_size
        for start in range(0, EXAMPLES_PER_EPOCH, size):
            yield x[start : start + size], y[start : start + size]

    def valid_batches(self) -> Iterable[tuple[Tensor, Tensor]]:
        return [self._examples(7, 16)]

    def load_data(self) -> None:
        return None

    def begin_step(self, step: int) -> None:
        return None

    def step(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        x, y = batch
        loss = F.mse_loss(model(x), y)
        return StepOutput(loss=loss, num_tokens=len(y))

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        losses = [float(self.step(model, b).loss) for b in batches]
        return {"loss": sum(losses) / len(losses)}


def run_config(**train: Any) -> RunConfig:
    """The test task's config: one thread, no progress bar, ``train`` overrides."""
    train = {"threads": 1, "progress": False, "lr": 0.01, "optimizer": "adam", **train}
    return RunConfig(
        task="test_seq",
        data=NoConfig(),
        model=NoConfig(),
        train=TrainConfig(**train),
    )


# ------------------------------------------------------------------------------ the worker


class KillAt(Callback):
    """SIGKILLs this process after step ``step`` of the first attempt (torchrun restarts)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer) -> None:
        first = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if first and trainer.run_state.step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


CHANGES = ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate")


def audit_writes(root: Path) -> list[str]:
    """Record (in the returned list) every file write, rename, removal or folder creation this
    process attempts under ``root``."""
    seen: list[str] = []
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def inside(path: Any) -> bool:
        try:
            return Path(os.fsdecode(path)).resolve().is_relative_to(root)
        except (TypeError, ValueError):
            return False

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else False
            if isinstance(flags, int) and flags & write_flags:
                writing = True
            if writing and inside(path):
                seen.append(f"open {path}")
        elif event in CHANGES and inside(args[0]):
            seen.append(f"{event} {args[0]}")

    sys.addaudithook(hook)
    return seen


def worker(spec: dict[str, Any]) -> None:
    """Train as ``spec`` says (resuming when checkpoints exist); rank 1 reports its writes."""
    rank = int(os.environ.get("RANK", "0"))
    writes = audit_writes(Path(spec["root"])) if rank > 0 else []
    if spec.get("cli"):
        from rnnkit.cli.main import main

        code = main(spec["cli"])
    else:
        run_dir = Path(spec["run_dir"])
        config = run_config(**spec["train"])
        callbacks = [KillAt(spec["kill_at"])] if rank == 1 and spec.get("kill_at") else []
        task = SeqTask(config, dropout=spec.get("dropout", 0.0))
        trainer = Trainer(task, config.train, run_dir, callbacks=callbacks)  # type: ignore[arg-type]
        result = trainer.fit(resume=bool(list_checkpoints(run_dir)))
        print(f"RANK{rank}_DONE step {result.step} resumed_from {result.resumed_from}", flush=True)
        code = 0
    if rank > 0:
        print(f"RANK{rank}_WRITES {json.dumps(writes)}", flush=True)
    sys.exit(code)


def torchrun(spec: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the worker in 2 processes (gloo, 1 thread each) under torchrun; fail on error."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [*TORCHRUN, "2", *extra, str(Path(__file__)), "worker", json.dumps(spec)]
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def rank1_writes(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What rank 1 reported it wrote (it must have reported)."""
    lines = [line for line in done.stdout.splitlines() if line.startswith("RANK1_WRITES ")]
    assert lines, done.stdout[-2000:]
    return [w for line in lines for w in json.loads(line.split(" ", 1)[1])]


def files(run_dir: Path) -> list[str]:
    """The run folder's files, relative, sorted."""
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------ the tests

TRAIN = {"max_steps": 8, "eval_every": 4, "checkpoint_every": 2, "keep_checkpoints": 5}


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A 2-rank run at batch 4 (global batch 8), and what rank 1 wrote."""
    root = tmp_path_factory.mktemp("ddp")
    run_dir = root / "two"
    spec = {"root": str(root), "run_dir": str(run_dir), "train": {**TRAIN, "batch_size": 4}}
    return run_dir, rank1_writes(torchrun(spec))


def test_two_ranks_equal_one_rank_with_the_same_global_batch(
    two_rank_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    run_dir, _ = two_rank_run
    config = run_config(**TRAIN, batch_size=8)
    Trainer(SeqTask(config), config.train, tmp_path / "one").fit()  # type: ignore[arg-type]
    one = load_safetensors(tmp_path / "one" / "model.safetensors")
    two = load_safetensors(run_dir / "model.safetensors")
    torch.manual_seed(0)
    start = SeqModel(0.0)  # the weights both runs started from (seed 0)
    assert one.keys() == two.keys()
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, rtol=1e-5, atol=1e-6)
        assert not torch.equal(tensor, start.state_dict()[name])  # 8 steps moved every weight
    # the rows report the global batch: 8 examples a step, the same losses
    rows_one = (tmp_path / "one" / "metrics.csv").read_text().splitlines()
    rows_two = (run_dir / "metrics.csv").read_text().splitlines()
    assert rows_one[0] == rows_two[0]
    for a, b in zip(rows_one[1:], rows_two[1:], strict=True):
        cells_a, cells_b = a.split(","), b.split(",")
        assert cells_a[:2] == cells_b[:2] and cells_a[8] == cells_b[8] == str(8 * int(cells_a[0]))
        assert float(cells_a[4]) == pytest.approx(float(cells_b[4]), rel=1e-5)
    assert files(run_dir) == files(tmp_path / "one")


def test_rank_one_never_writes(two_rank_run: tuple[Path, list[str]]) -> None:
    run_dir, writes = two_rank_run
    assert writes == []
    assert (run_dir / "model.safetensors").is_file()  # while rank 0 wrote the run


def test_a_killed_rank_is_restarted_and_the_run_ends_as_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    train = {**TRAIN, "batch_size": 4, "max_steps": 10}
    base = {"root": str(tmp_path), "train": train, "dropout": 0.3}
    torchrun({**base, "run_dir": str(tmp_path / "straight")})
    done = torchrun(
        {**base, "run_dir": str(tmp_path / "killed"), "kill_at": 5}, "--max-restarts", "1"
    )
    # both ranks of the restarted group resumed from the step-4 checkpoint
    assert "RANK0_DONE step 10 resumed_from 4" in done.stdout, done.stdout[-3000:]
    assert "RANK1_DONE step 10 resumed_from 4" in done.stdout
    for name in ("model.safetensors", "best.safetensors"):
        straight = (tmp_path / "straight" / name).read_bytes()
        assert (tmp_path / "killed" / name).read_bytes() == straight, name
    assert rank1_writes(done) == []


def test_torchrun_cli_run_folder_has_the_single_process_layout(tmp_path: Path) -> None:
    args = [
        "train",
        "copy",
        "--set",
        "train.max_steps=6",
        "--set",
        "train.eval_every=3",
        "--set",
        "train.checkpoint_every=3",
        "--set",
        "data.valid_size=64",
        "--set",
        "train.progress=false",
        "--threads",
        "1",
    ]
    done = torchrun({"root": str(tmp_path), "cli": [*args, "--out", str(tmp_path / "two")]})
    assert rank1_writes(done) == []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "rnnkit", *args, "--out", str(tmp_path / "one")],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert files(tmp_path / "two") == files(tmp_path / "one")
    assert files(tmp_path / "two") == [
        "best.safetensors",
        "checkpoints/step_00000003.pt",
        "checkpoints/step_00000006.pt",
        "config.yaml",
        "metrics.csv",
        "model.safetensors",
    ]
    assert (tmp_path / "two" / "config.yaml").read_text() == (
        tmp_path / "one" / "config.yaml"
    ).read_text().replace(str(tmp_path / "one"), str(tmp_path / "two"))


def test_shards_interleave_and_drop_the_incomplete_last_group() -> None:
    batches = list(range(7))
    assert list(shard_batches(batches, 0, 2)) == [0, 2, 4]
    assert list(shard_batches(batches, 1, 2)) == [1, 3, 5]
    assert list(shard_batches(batches, 2, 3)) == [2, 5]
    assert list(shard_batches(batches, 0, 1)) == batches


def test_stateful_shards_are_contiguous_blocks() -> None:
    batches = list(range(7))
    assert list(shard_batches(iter(batches), 0, 2, total=7)) == [0, 1, 2]
    assert list(shard_batches(iter(batches), 1, 2, total=7)) == [3, 4, 5]


def test_a_bad_rank_is_refused() -> None:
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\), got 2"):
        list(shard_batches([1, 2], 2, 2))


def test_without_torchrun_the_run_is_one_process() -> None:
    group = Distributed.current()
    assert (group.rank, group.world_size, group.is_main, group.enabled) == (0, 1, True, False)
    assert group.sum([1.5, 2.0]) == [1.5, 2.0]
    assert group.broadcast({"a": 1}) == {"a": 1} and group.gather(3) == [3]


def test_a_group_restarted_by_torchrun_resumes_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnnkit import api
    from rnnkit.config import ConfigError

    config = api.load_config(
        "copy",
        [
            "train.max_steps=4",
            "train.checkpoint_every=2",
            "train.eval_every=4",
            "data.valid_size=16",
            "train.threads=1",
            "train.progress=false",
        ],
    )
    api.train(config, tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a run; pass --resume"):
        api.train(config, tmp_path / "run")  # a first attempt never takes over a run
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    result = api.train(config, tmp_path / "run")
    assert (result.resumed_from, result.step) == (4, 4)


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    torch.set_num_threads(1)
    worker(json.loads(sys.argv[2]))
