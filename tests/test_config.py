"""Config loading: typed, frozen, unknown keys, malformed YAML and bad values rejected with
one-line errors; the train section validates itself on construction."""

import math
from pathlib import Path

import pydantic
import pytest

from rnnkit.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    build_section,
    parse_override,
)
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.tasks.run import load_config

GOOD = """\
task: reverse
data:
  vocab_size: 10
  length: 8
model:
  hidden_size: 32
train:
  lr: 0.01
  max_steps: 10
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_valid_config_is_typed_and_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.task == "reverse"
    assert isinstance(config.model, Seq2SeqConfig)
    assert config.model.hidden_size == 32
    assert config.train.lr == 0.01
    assert config.train.max_steps == 10
    assert config.train.optimizer == "adam"  # default
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.train.lr = 1.0  # type: ignore[misc]


def test_override_parses_yaml_values(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, GOOD), ["train.lr=3e-4", "model.attention=none", "train.max_time_s=5"]
    )
    assert config.train.lr == pytest.approx(3e-4)
    assert isinstance(config.model, Seq2SeqConfig)
    assert config.model.attention == "none"
    assert config.train.max_time_s == 5.0
    assert parse_override("train.clip_grad_norm=null") == (["train", "clip_grad_norm"], None)


def test_unknown_key_names_it_and_the_valid_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GOOD.replace("lr: 0.01", "lrr: 0.01")))
    message = str(err.value)
    assert "unknown config key 'train.lrr'" in message
    assert "did you mean 'lr'?" in message
    assert "valid keys in 'train':" in message and "max_time_s" in message
    assert "\n" not in message


def test_mistyped_value_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"invalid value for 'train.max_steps': .*integer"):
        load_config(write(tmp_path, GOOD), ["train.max_steps=lots"])
    with pytest.raises(ConfigError, match=r"invalid value for 'train.optimizer'"):
        load_config(write(tmp_path, GOOD), ["train.optimizer=adagrad"])


def test_unknown_task_and_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'revers'; valid tasks: .*reverse"):
        load_config(write(tmp_path, GOOD.replace("task: reverse", "task: revers")))
    with pytest.raises(ConfigError, match=r"unknown config section 'optim'; valid sections"):
        load_config(write(tmp_path, GOOD + "optim: {}\n"))
    with pytest.raises(ConfigError, match=r"unknown config section 'trian'"):
        apply_overrides({}, ["trian.lr=1"])


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "task: reverse\ndata:\n  length: [8\nmodel: {}\n")
    with pytest.raises(ConfigError, match=r"config.yaml:\d+: malformed YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"the config must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match=r"no such file"):
        load_config(tmp_path / "missing.yaml")


def test_train_defaults_are_sane() -> None:
    train = TrainConfig(max_steps=1)
    assert train.clip_grad_norm == 1.0
    assert train.nonfinite == "skip"
    assert train.batch_size == 64
    with pytest.raises(pydantic.ValidationError, match="extra"):
        TrainConfig(max_steps=1, learning_rate=1.0)  # type: ignore[call-arg]


# --------------------------------------------------------------------------- train.* values


def train_error(**values: object) -> str:
    """The one-line message of the train section ``values`` (a step budget unless given)."""
    with pytest.raises(ConfigError) as err:
        build_section(TrainConfig, {"max_steps": 10, **values}, "train")
    return str(err.value)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("batch_size", 0, "must be >= 1, got 0"),
        ("max_steps", -3, "must be >= 1, got -3"),
        ("epochs", 0, "must be >= 1, got 0"),
        ("eval_every", 0, "must be >= 1, got 0"),
        ("log_every", 0, "must be >= 1, got 0"),
        ("checkpoint_every", 0, "must be >= 1, got 0"),
        ("keep_checkpoints", 0, "must be >= 1, got 0"),
        ("max_nonfinite", 0, "must be >= 1, got 0"),
        ("early_stopping_patience", 0, "must be >= 1, got 0"),
        ("threads", 0, "must be >= 1, got 0"),
        ("max_time_s", -1.0, "must be > 0, got -1.0"),
        ("max_time_s", math.nan, "must be > 0, got nan"),
        ("lr", 0.0, "must be > 0, got 0.0"),
        ("weight_decay", -1.0, "must be >= 0, got -1.0"),
        ("momentum", -0.5, "must be >= 0, got -0.5"),
        ("warmup_steps", -1, "must be >= 0, got -1"),
        ("clip_grad_norm", 0.0, "must be > 0 or null, got 0.0"),
    ],
)
def test_bad_train_value_names_key_bound_and_value(key: str, value: object, problem: str) -> None:
    assert train_error(**{key: value}) == f"invalid value for 'train.{key}': {problem}"


def test_train_settings_that_depend_on_each_other() -> None:
    assert train_error(momentum=0.9) == (
        "invalid value for 'train.momentum': applies only to optimizer 'sgd', not 'adam'"
    )
    assert build_section(TrainConfig, {"max_steps": 1, "optimizer": "sgd", "momentum": 0.9}, "t")
    with pytest.raises(ConfigError) as err:
        build_section(TrainConfig, {}, "train")
    assert str(err.value) == (
        "invalid value for 'train': no training budget: set at least one of train.max_steps, "
        "train.epochs, train.max_time_s"
    )
    assert train_error(max_steps=None, max_time_s=60, schedule="cosine") == (
        "invalid value for 'train': schedule 'cosine' needs the total number of steps: set "
        "train.max_steps or train.epochs"
    )
    assert train_error(schedule="linear", warmup_steps=10) == (
        "invalid value for 'train': schedule 'linear': train.max_steps (10) must exceed "
        "train.warmup_steps (10)"
    )
    for budget in ({"max_steps": 1}, {"epochs": 1}, {"max_time_s": 0.5}):
        assert isinstance(build_section(TrainConfig, budget, "train"), TrainConfig)


def test_train_config_validates_on_construction() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"batch_size\n.*must be >= 1, got 0"):
        TrainConfig(max_steps=1, batch_size=0)
    with pytest.raises(ValueError, match="no training budget"):
        TrainConfig()


def test_bad_train_value_from_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GOOD), ["train.batch_size=0"])
    assert str(err.value) == "invalid value for 'train.batch_size': must be >= 1, got 0"


@pytest.mark.parametrize(
    "key", ["label_smoothing", "scheduled_sampling", "scheduled_sampling_steps"]
)
def test_task_options_are_not_train_keys(key: str) -> None:
    assert train_error(**{key: 0.1}).startswith(f"unknown config key 'train.{key}'")
