"""Trainer behaviour: budgets, metrics.csv, clipping, evaluation, early stopping, stream state,
non-finite handling and configuration errors."""

from __future__ import annotations

import csv
import logging
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rnnkit.io import load_checkpoint, load_safetensors, read_safetensors_metadata
from rnnkit.training import Callback, Trainer, TrainingError, train_task
from rnnkit.training.callbacks import BASE_COLUMNS, metric_mode
from rnnkit.training.checkpoint import list_checkpoints
from tests.training.test_tasks import LinearTask, ScriptedValidTask, StreamTask, run_config


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def header(run_dir: Path) -> list[str]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return next(csv.reader(handle))


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- budgets


def test_max_steps_budget_writes_every_file(tmp_path: Path) -> None:
    cfg = run_config(max_steps=7, eval_every=100, checkpoint_every=100)
    result = Trainer(LinearTask(cfg), cfg.train, tmp_path).fit()
    assert (result.step, result.stop_reason) == (7, "max_steps")
    assert result.epoch == 1  # 5 batches an epoch: step 7 is batch 2 of epoch 1
    assert result.target_tokens == 7 * 3
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000007.pt"]
    for name in ("model.safetensors", "best.safetensors", "metrics.csv"):
        assert (tmp_path / name).is_file()
    assert read_safetensors_metadata(tmp_path / "model.safetensors")["step"] == "7"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name.startswith(".")) == []


def test_epochs_budget_counts_whole_epochs(tmp_path: Path) -> None:
    cfg = run_config(epochs=2, eval_every=100)
    result = Trainer(LinearTask(cfg, n_batches=4), cfg.train, tmp_path).fit()
    assert (result.step, result.epoch, result.stop_reason) == (8, 2, "epochs")


def test_first_budget_reached_wins(tmp_path: Path) -> None:
    cfg = run_config(epochs=3, max_steps=6, eval_every=100)
    result = Trainer(LinearTask(cfg, n_batches=4), cfg.train, tmp_path).fit()
    assert (result.step, result.stop_reason) == (6, "max_steps")


def test_the_time_budget_starts_after_the_tasks_data_is_loaded(tmp_path: Path) -> None:
    class SlowToLoad(LinearTask):
        def load_data(self) -> None:
            time.sleep(0.5)  # reading files, computing cached features

    cfg = run_config(max_time_s=0.3, max_steps=10_000, eval_every=10_000, checkpoint_every=10_000)
    started = time.perf_counter()
    result = Trainer(SlowToLoad(cfg, sleep_s=0.02), cfg.train, tmp_path).fit()
    assert result.stop_reason == "max_time_s" and result.step >= 5
    assert result.elapsed_s < 0.3 + 1.0 and time.perf_counter() - started >= 0.8


def test_time_budget_stops_on_wall_clock(tmp_path: Path) -> None:
    cfg = run_config(max_time_s=0.3, max_steps=10_000, eval_every=10_000, checkpoint_every=10_000)
    result = Trainer(LinearTask(cfg, sleep_s=0.02), cfg.train, tmp_path).fit()
    assert result.stop_reason == "max_time_s"
    # it stopped at the budget, not before and not long after (one 20 ms step + the final
    # evaluation and files), far short of the step budget
    assert 0.3 <= result.elapsed_s < 0.3 + 1.0
    # each step sleeps 20 ms, so at most 0.3 / 0.02 + 1 steps fit in the budget
    assert 1 <= result.step <= 16 < cfg.train.max_steps
    rows = read_rows(tmp_path)
    assert int(rows[-1]["step"]) == result.step
    assert 0.3 <= float(rows[-1]["elapsed_s"]) <= result.elapsed_s


def test_time_budget_is_summed_over_resumed_sessions(tmp_path: Path) -> None:
    first = run_config(max_time_s=0.2, max_steps=10_000, eval_every=10_000)
    done = Trainer(LinearTask(first, sleep_s=0.02), first.train, tmp_path).fit()
    assert done.stop_reason == "max_time_s"
    longer = run_config(max_time_s=0.4, max_steps=10_000, eval_every=10_000)
    result = Trainer(LinearTask(longer, sleep_s=0.02), longer.train, tmp_path).fit(resume=True)
    assert result.stop_reason == "max_time_s"
    assert result.resumed_from == done.step < result.step
    assert 0.4 <= result.elapsed_s < 0.4 + 1.0  # the first session's 0.2 s counted


def test_no_budget_is_an_error() -> None:
    # the train config refuses it on construction, before any trainer exists
    with pytest.raises(
        ValueError, match=re.escape("no training budget: set at least one of train.max_steps")
    ):
        run_config()


def test_train_task_uses_the_tasks_train_section(tmp_path: Path) -> None:
    cfg = run_config(max_steps=3, eval_every=100)
    result = train_task(LinearTask(cfg), tmp_path)
    assert result.step == 3
    assert result.run_dir == tmp_path


# --------------------------------------------------------------------------- metrics.csv


def test_metrics_rows_columns_and_averages(tmp_path: Path) -> None:
    cfg = run_config(max_steps=20, log_every=5, eval_every=10, clip_grad_norm=None)
    task = LinearTask(cfg)
    Trainer(task, cfg.train, tmp_path).fit()
    cols = header(tmp_path)
    assert cols == [*BASE_COLUMNS, "train_mae", "valid_loss", "valid_mae"]
    rows = read_rows(tmp_path)
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    assert [r["valid_loss"] != "" for r in rows] == [False, True, False, True]
    assert [int(r["target_tokens"]) for r in rows] == [15, 30, 45, 60]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    # train_loss is the mean of the 5 step losses since the previous row
    losses = task.train_losses
    for i, row in enumerate(rows):
        expected = sum(losses[5 * i : 5 * i + 5]) / 5
        assert float(row["train_loss"]) == pytest.approx(expected, rel=1e-6)
        assert float(row["clip_rate"]) == 0.0
        assert float(row["tokens_per_s"]) > 0
    assert float(rows[-1]["elapsed_s"]) >= float(rows[0]["elapsed_s"])


def test_eval_rows_between_log_rows(tmp_path: Path) -> None:
    cfg = run_config(max_steps=9, log_every=4, eval_every=3)
    Trainer(LinearTask(cfg), cfg.train, tmp_path).fit()
    rows = read_rows(tmp_path)
    assert [int(r["step"]) for r in rows] == [3, 4, 6, 8, 9]
    assert [r["valid_mae"] != "" for r in rows] == [True, False, True, False, True]
    assert [int(r["target_tokens"]) for r in rows] == [9, 12, 18, 24, 27]


def test_valid_metrics_are_the_tasks_evaluation(tmp_path: Path) -> None:
    cfg = run_config(max_steps=4, eval_every=4)
    task = LinearTask(cfg)
    trainer = Trainer(task, cfg.train, tmp_path)
    result = trainer.fit()
    trainer.model.eval()
    expected = task.evaluate(trainer.model, task.valid_batches())
    row = read_rows(tmp_path)[-1]
    assert float(row["valid_loss"]) == pytest.approx(expected["loss"], rel=1e-6)
    assert float(row["valid_mae"]) == pytest.approx(expected["mae"], rel=1e-6)
    assert result.valid_metrics == pytest.approx(expected)


def test_evaluation_runs_in_eval_mode_and_training_in_train_mode(tmp_path: Path) -> None:
    cfg = run_config(max_steps=6, eval_every=3)
    task = LinearTask(cfg, dropout=0.5)
    Trainer(task, cfg.train, tmp_path).fit()
    assert task.eval_modes == [False] * 4  # 2 evaluations x 2 validation batches
    assert task.train_modes == [True] * 6


# --------------------------------------------------------------------------- callbacks, progress


class Recorder(Callback):
    """Records each hook call as (hook, step)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        self.events.append(("start", trainer.run_state.step))

    def on_evaluate(self, trainer: Trainer, results: dict[str, float]) -> None:
        assert set(results) == {"loss", "mae"}
        self.events.append(("evaluate", trainer.run_state.step))

    def on_row(self, trainer: Trainer, row: dict[str, object]) -> None:
        assert row["step"] == trainer.run_state.step
        self.events.append(("row", trainer.run_state.step))

    def on_step_end(self, trainer: Trainer) -> None:
        self.events.append(("step", trainer.run_state.step))

    def on_save(self, trainer: Trainer) -> None:
        self.events.append(("save", trainer.run_state.step))

    def on_fit_end(self, trainer: Trainer) -> None:
        self.events.append(("end", trainer.run_state.step))

    def close(self) -> None:
        self.events.append(("close", -1))


def test_callbacks_are_called_at_their_points(tmp_path: Path) -> None:
    cfg = run_config(max_steps=5, eval_every=2, log_every=3, checkpoint_every=3)
    recorder = Recorder()
    Trainer(LinearTask(cfg), cfg.train, tmp_path, callbacks=[recorder]).fit()
    assert recorder.events == [
        ("start", 0),
        ("step", 1),
        ("evaluate", 2),
        ("row", 2),
        ("step", 2),
        ("row", 3),
        ("save", 3),  # the checkpoint of step 3, before the step ends for later callbacks
        ("step", 3),
        ("evaluate", 4),
        ("row", 4),
        ("step", 4),
        ("step", 5),
        ("evaluate", 5),  # the final evaluation and row
        ("row", 5),
        ("save", 5),  # the final checkpoint
        ("end", 5),
        ("close", -1),
    ]


def test_progress_is_logged_without_a_bar(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = run_config(max_steps=6, log_every=2, eval_every=100)  # progress: false, so no bar
    with caplog.at_level(logging.INFO, logger="rnnkit.training"):
        Trainer(LinearTask(cfg), cfg.train, tmp_path).fit()
    lines = [r.getMessage() for r in caplog.records if "train_loss" in r.getMessage()]
    assert [line.split(" ")[:2] for line in lines] == [["step", f"{s}/6"] for s in (2, 4, 6)]
    assert re.fullmatch(
        r"step 2/6 \(33\.3%\) epoch 0: train_loss [0-9.e+-]+, [0-9.e+-]+ tokens/s, ETA \d+s",
        lines[0],
    ), lines[0]
    assert any(r.getMessage().startswith("step 6: valid_loss=") for r in caplog.records)


def test_progress_eta_from_epochs_once_known_and_from_the_time_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "train_loss" in r.getMessage()]

    cfg = run_config(epochs=2, log_every=5, eval_every=100)  # 5 batches an epoch
    with caplog.at_level(logging.INFO, logger="rnnkit.training"):
        Trainer(LinearTask(cfg), cfg.train, tmp_path / "epochs").fit()
    first, second = lines()
    assert first.startswith("step 5 epoch 0: ") and "ETA" not in first  # not known yet
    assert second.startswith("step 10/10 (100.0%) epoch 1: ") and second.endswith("ETA 0s")
    caplog.clear()
    cfg = run_config(max_time_s=0.2, log_every=5, eval_every=10_000)
    with caplog.at_level(logging.INFO, logger="rnnkit.training"):
        Trainer(LinearTask(cfg, sleep_s=0.01), cfg.train, tmp_path / "time").fit()
    assert lines() and all(re.search(r", ETA \d+s$", line) for line in lines())


# --------------------------------------------------------------------------- clipping


def test_grad_norm_is_logged_before_clipping(tmp_path: Path) -> None:
    cfg = run_config(max_steps=1, log_every=1, clip_grad_norm=1e-3, optimizer="sgd", lr=0.1)
    task = LinearTask(cfg)
    Trainer(task, cfg.train, tmp_path).fit()
    # the same model and first batch by hand
    torch.manual_seed(cfg.train.seed)
    model = task.build_model()
    batch = next(task.train_batches(0))
    task.step(model, batch).loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
    row = read_rows(tmp_path)[0]
    assert float(row["grad_norm"]) == pytest.approx(norm, rel=1e-5)
    assert norm > 1e-3
    assert float(row["clip_rate"]) == 1.0
    # SGD moved the weights by exactly lr * clip (the clipped gradient has norm clip)
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    order = [name for name, _ in model.named_parameters()]
    after = torch.cat(
        [load_safetensors(tmp_path / "model.safetensors")[n].flatten() for n in order]
    )
    assert float((after - before).norm()) == pytest.approx(0.1 * 1e-3, rel=1e-3)


def test_clip_rate_is_the_fraction_of_clipped_steps(tmp_path: Path) -> None:
    base = {"max_steps": 12, "optimizer": "sgd", "lr": 0.05, "eval_every": 100}
    probe = run_config(**base, log_every=1, clip_grad_norm=None)
    Trainer(LinearTask(probe), probe.train, tmp_path / "probe").fit()
    norms = [float(r["grad_norm"]) for r in read_rows(tmp_path / "probe")]
    clip = sorted(norms)[len(norms) // 2]  # the median: clips about half the steps
    per_step = run_config(**base, log_every=1, clip_grad_norm=clip)
    Trainer(LinearTask(per_step), per_step.train, tmp_path / "a").fit()
    rows_a = read_rows(tmp_path / "a")
    flags = [float(r["grad_norm"]) > clip for r in rows_a]
    assert [float(r["clip_rate"]) for r in rows_a] == [float(f) for f in flags]
    assert 0 < sum(flags) < len(flags)
    grouped = run_config(**base, log_every=4, clip_grad_norm=clip)
    Trainer(LinearTask(grouped), grouped.train, tmp_path / "b").fit()
    rates = [float(r["clip_rate"]) for r in read_rows(tmp_path / "b")]
    assert rates == pytest.approx([sum(flags[i : i + 4]) / 4 for i in (0, 4, 8)])


# --------------------------------------------------------------------------- best / early stop


def test_early_stopping_counts_evaluations_and_keeps_best(tmp_path: Path) -> None:
    cfg = run_config(max_steps=100, eval_every=3, early_stopping_patience=2, optimizer="sgd")
    task = ScriptedValidTask(cfg, script=[1.0, 0.5, 0.6, 0.7, 0.1])
    result = Trainer(task, cfg.train, tmp_path / "stop").fit()
    assert (result.step, result.stop_reason) == (12, "early_stopping")
    assert (result.best_metric, result.best_step) == (0.5, 6)
    assert result.best_metric_name == "loss" and result.best_mode == "min"
    assert task.evaluations == 4
    assert read_safetensors_metadata(tmp_path / "stop" / "best.safetensors")["step"] == "6"
    # best.safetensors holds the weights of step 6
    six = run_config(max_steps=6, eval_every=100, optimizer="sgd")
    Trainer(LinearTask(six), six.train, tmp_path / "six").fit()
    best = load_safetensors(tmp_path / "stop" / "best.safetensors")
    at_six = load_safetensors(tmp_path / "six" / "model.safetensors")
    for name, tensor in at_six.items():
        torch.testing.assert_close(best[name], tensor, rtol=0, atol=0)


def test_early_stopping_on_a_chosen_metric_with_max_mode(tmp_path: Path) -> None:
    cfg = run_config(
        max_steps=80,
        lr=0.05,
        eval_every=2,
        early_stopping_metric="accuracy",
        early_stopping_patience=3,
    )
    result = Trainer(StreamTask(cfg), cfg.train, tmp_path).fit()
    assert result.best_metric_name == "accuracy" and result.best_mode == "max"
    rows = [r for r in read_rows(tmp_path) if r["valid_accuracy"]]
    evals = [(int(r["step"]), float(r["valid_accuracy"])) for r in rows]
    # replay the rule: stop after 3 evaluations in a row without a new maximum
    best, bad, expected_stop = -math.inf, 0, None
    for step, value in evals:
        best, bad = (value, 0) if value > best else (best, bad + 1)
        if bad == 3:
            expected_stop = step
            break
    assert result.best_metric == best and best > 0.3  # it learned, then stopped improving
    assert expected_stop is not None
    assert (result.step, result.stop_reason) == (expected_stop, "early_stopping")
    assert result.best_step is not None and result.best_step < result.step


@pytest.mark.parametrize(
    ("name", "mode"),
    [("loss", "min"), ("mae", "min"), ("token_error", "min"), ("ppl", "min"), ("accuracy", "max")],
)
def test_metric_direction(name: str, mode: str) -> None:
    assert metric_mode(name, LinearTask(run_config(max_steps=1))) == mode
    # the task's own best_metric decides for its name
    assert metric_mode("accuracy", StreamTask(run_config(max_steps=1))) == "max"


def test_unknown_early_stopping_metric_lists_valid_ones(tmp_path: Path) -> None:
    cfg = run_config(max_steps=2, early_stopping_metric="bleu")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "train.early_stopping_metric 'bleu' is not a metric of task 'test_linear'; "
            "valid metrics: loss, mae"
        ),
    ):
        Trainer(LinearTask(cfg), cfg.train, tmp_path)


# --------------------------------------------------------------------------- truncated BPTT


def test_stream_state_is_detached_carried_and_reset_each_epoch(tmp_path: Path) -> None:
    cfg = run_config(max_steps=17, eval_every=100)
    task = StreamTask(cfg)
    Trainer(task, cfg.train, tmp_path).fit()
    assert len(task.seen) == 17
    for epoch, index, was_none, detached in task.seen:
        assert was_none == (index == 0), (epoch, index)
        assert detached
    assert [e for e, *_ in task.seen] == [0] * 7 + [1] * 7 + [2] * 3


def test_checkpoint_holds_the_carried_state(tmp_path: Path) -> None:
    cfg = run_config(max_steps=3, eval_every=100)
    Trainer(StreamTask(cfg), cfg.train, tmp_path).fit()
    ckpt = torch.load(list_checkpoints(tmp_path)[-1], weights_only=True)
    h, c = ckpt["stream_state"]
    assert h.shape == c.shape == (1, 3, 7)  # (layers, B, H)
    assert (ckpt["epoch"], ckpt["batch_index"], ckpt["step"]) == (0, 3, 3)
    for key in ("model", "optimizer", "scheduler", "rng", "elapsed_s", "target_tokens"):
        assert key in ckpt
    assert set(ckpt["rng"]) >= {"torch", "python", "numpy"}
    assert ckpt["target_tokens"] == 3 * 15


# --------------------------------------------------------------------------- non-finite


def test_nan_loss_is_skipped_and_counted(tmp_path: Path) -> None:
    cfg = run_config(max_steps=8, log_every=4, eval_every=100, checkpoint_every=2)
    task = LinearTask(cfg, nan_loss_at={3, 5})
    result = Trainer(task, cfg.train, tmp_path).fit()
    assert (result.step, result.skipped_steps) == (8, 2)
    rows = read_rows(tmp_path)
    assert [int(r["skipped_steps"]) for r in rows] == [1, 2]
    # train_loss averages the finite steps only
    finite = [x for x in task.train_losses if math.isfinite(x)]
    assert float(rows[0]["train_loss"]) == pytest.approx(sum(finite[:3]) / 3, rel=1e-6)
    for path in [*list_checkpoints(tmp_path), tmp_path / "model.safetensors"]:
        tensors = (
            load_safetensors(path)
            if path.suffix == ".safetensors"
            else load_checkpoint(path)["model"]
        )
        assert all(bool(torch.isfinite(t).all()) for t in tensors.values())


def test_skipped_step_leaves_the_weights_untouched(tmp_path: Path) -> None:
    cfg = run_config(max_steps=1, eval_every=100, optimizer="sgd", lr=0.5)
    task = LinearTask(cfg, nan_grad_at={1})
    result = Trainer(task, cfg.train, tmp_path).fit()
    assert result.skipped_steps == 1
    torch.manual_seed(cfg.train.seed)
    initial = task.build_model().state_dict()
    final = load_safetensors(tmp_path / "model.safetensors")
    for name, tensor in initial.items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=0)


def test_nan_loss_with_stop_raises_at_once(tmp_path: Path) -> None:
    cfg = run_config(max_steps=8, nonfinite="stop", checkpoint_every=1, eval_every=100)
    with pytest.raises(
        TrainingError, match=r"non-finite loss \(nan\) at step 3 \(train.nonfinite: stop\)"
    ):
        Trainer(LinearTask(cfg, nan_loss_at={3}), cfg.train, tmp_path).fit()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000001.pt", "step_00000002.pt"]
    assert not (tmp_path / "model.safetensors").exists()


def test_nan_gradient_with_stop_raises(tmp_path: Path) -> None:
    cfg = run_config(max_steps=8, nonfinite="stop", eval_every=100)
    with pytest.raises(TrainingError, match=r"non-finite gradient norm \(nan\) at step 2"):
        Trainer(LinearTask(cfg, nan_grad_at={2}), cfg.train, tmp_path).fit()


def test_too_many_skips_stop_with_an_error(tmp_path: Path) -> None:
    cfg = run_config(max_steps=8, max_nonfinite=2, eval_every=100)
    with pytest.raises(TrainingError, match=r"at step 5: 2 steps skipped .*max_nonfinite \(2\)"):
        Trainer(LinearTask(cfg, nan_loss_at={3, 5}), cfg.train, tmp_path).fit()


def test_poisoned_weights_are_never_saved(tmp_path: Path) -> None:
    cfg = run_config(max_steps=8, checkpoint_every=2, eval_every=100)
    with pytest.raises(TrainingError, match="step 4: training state is not finite, checkpoint"):
        Trainer(LinearTask(cfg, poison_at={4}), cfg.train, tmp_path).fit()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002.pt"]
    state = load_checkpoint(list_checkpoints(tmp_path)[0])["model"]
    assert all(bool(torch.isfinite(t).all()) for t in state.values())
    assert not (tmp_path / "model.safetensors").exists()
    leftovers = [p.name for p in (tmp_path / "checkpoints").iterdir()]
    assert leftovers == ["step_00000002.pt"]


def test_poisoned_weights_never_reach_best_file(tmp_path: Path) -> None:
    cfg = run_config(max_steps=8, checkpoint_every=100, eval_every=2)
    with pytest.raises(TrainingError, match="step 4: model weights are not finite"):
        # the scripted validation loss claims an improvement at step 4, after the weights
        # turned NaN at step 3: best.safetensors must keep the step-2 weights
        Trainer(ScriptedValidTask(cfg, [1.0, 0.5], poison_at={3}), cfg.train, tmp_path).fit()
    assert read_safetensors_metadata(tmp_path / "best.safetensors")["step"] == "2"


# --------------------------------------------------------------------------- configuration


def test_reduced_precision_on_cpu_is_an_error(tmp_path: Path) -> None:
    cfg = run_config(max_steps=1, precision="bf16")
    with pytest.raises(ValueError, match=re.escape("train.precision 'bf16' needs a CUDA device")):
        Trainer(LinearTask(cfg), cfg.train, tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_an_error(tmp_path: Path) -> None:
    cfg = run_config(max_steps=1, device="cuda")
    with pytest.raises(
        ValueError, match=re.escape("train.device is 'cuda' but CUDA is not available")
    ):
        Trainer(LinearTask(cfg), cfg.train, tmp_path)


def test_threads_setting_is_applied(tmp_path: Path) -> None:
    cfg = run_config(max_steps=1, threads=1)
    Trainer(LinearTask(cfg), cfg.train, tmp_path)
    assert torch.get_num_threads() == 1


def test_seed_decides_the_initial_model(tmp_path: Path) -> None:
    cfg = run_config(max_steps=1)
    a = Trainer(LinearTask(cfg), cfg.train, tmp_path / "a").model.state_dict()
    b = Trainer(LinearTask(cfg), cfg.train, tmp_path / "b").model.state_dict()
    other = run_config(max_steps=1, seed=1)
    c = Trainer(LinearTask(other), other.train, tmp_path / "c").model.state_dict()
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a["hidden.weight"], c["hidden.weight"])


def test_given_model_is_trained(tmp_path: Path) -> None:
    cfg = run_config(max_steps=2, eval_every=100)
    task = LinearTask(cfg)
    model = task.build_model()
    trainer = Trainer(task, cfg.train, tmp_path, model=model)
    before = model.hidden.weight.detach().clone()
    trainer.fit()
    assert trainer.model is model
    assert not torch.equal(model.hidden.weight.detach(), before)
