"""Config loading: typed, frozen, unknown keys and malformed YAML rejected with one-line errors."""

from pathlib import Path

import pydantic
import pytest

from rnnkit.config import ConfigError, TrainConfig, apply_overrides, load_config, parse_override
from rnnkit.models.seq2seq import Seq2SeqConfig

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
    train = TrainConfig()
    assert train.clip_grad_norm == 1.0
    assert train.nonfinite == "skip"
    with pytest.raises(pydantic.ValidationError, match="extra"):
        TrainConfig(learning_rate=1.0)  # type: ignore[call-arg]
