"""``benchmarks/peer_opennmt.py`` without OpenNMT-py: its log parser on lines OpenNMT-py 3.5.1
printed, the config that makes its model rnnkit's, the text it trains on, and the check that a
python without onmt is refused with one line."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peer_opennmt as peer

# Lines of one OpenNMT-py 3.5.1 training log (torch 2.13.0, report_every 1), in order.
LOG = """\
[2026-12-02 01:39:47,332 INFO] * number of parameters: 12928320
[2026-12-02 01:39:47,332 INFO]  * src vocab size = 8000
[2026-12-02 01:39:47,332 INFO]  * tgt vocab size = 8000
[2026-12-02 01:39:47,335 INFO] Start training loop without validation...
[2026-12-02 01:39:47,335 INFO] Scoring with: None
[2026-12-02 01:40:04,630 INFO] Step  1/1000000; acc: 0.0; ppl: 8497.8; xent: 9.0; lr: 0.00100; sents:      64; bsz: 3520/3395/64; 204/196 tok/s;     17 sec;
  @custom_bwd
[2026-12-02 01:40:07,041 INFO] Step  2/1000000; acc: 2.9; ppl: 6369.9; xent: 8.8; lr: 0.00100; sents:      64; bsz: 1024/1206/64; 425/500 tok/s;     20 sec;
[2026-12-02 01:40:10,169 INFO] Step  3/1000000; acc: 6.0; ppl: 3963.9; xent: 8.3; lr: 0.00100; sents:      64; bsz: 1216/1519/64; 389/486 tok/s;     23 sec;
"""
# A window of 2 steps, its rates padded to 3 characters.
SLOW = "[2026-12-02 01:45:07,641 INFO] Step  2/1000000000; acc: 0.9; ppl: 7156.6; xent: 8.9; lr: 0.00100; sents:     128; bsz: 2176/2050/64;  91/ 86 tok/s;     48 sec;"


@dataclass(frozen=True)
class Sizes:
    """translation.Settings' full-size model."""

    embedding_size: int = 256
    encoder_hidden_size: int = 256
    hidden_size: int = 512
    dropout: float = 0.2
    batch_size: int = 64


def test_parse_log_reads_windows_start_vocabulary_and_parameters() -> None:
    log = peer.parse_log(LOG)
    assert log.start == datetime(2026, 12, 2, 1, 39, 47, 335000)
    assert log.vocab_size == 8000
    assert log.parameters == 12928320
    assert [w.step for w in log.windows] == [1, 2, 3]
    assert log.windows[1] == peer.Window(
        time=datetime(2026, 12, 2, 1, 40, 7, 41000),
        step=2,
        sentences=64,
        source_per_batch=1024,
        target_per_batch=1206,
        source_tokens_per_s=425.0,
        target_tokens_per_s=500.0,
    )
    (slow,) = peer.parse_log(SLOW).windows
    assert (slow.step, slow.sentences, slow.target_per_batch) == (2, 128, 2050)
    assert (slow.source_tokens_per_s, slow.target_tokens_per_s) == (91.0, 86.0)


def test_summarize_counts_the_windows_after_the_first() -> None:
    result = peer.summarize(peer.parse_log(LOG), 1, 2, "OpenNMT-py 3.5.1 (torch 2.13.0+cpu)", "x")
    # windows 2 and 3: 1206 + 1519 target tokens from 01:40:04.630 to 01:40:10.169
    assert result.target_tokens == 2725
    assert result.measured_s == pytest.approx(5.539)
    assert result.tokens_per_s == pytest.approx(2725 / 5.539)
    assert result.median_window_tokens_per_s == 493.0
    assert result.source_tokens_per_s == pytest.approx(2240 / 5.539)
    assert result.first_window_s == pytest.approx(17.295)
    assert (result.windows, result.steps, result.threads) == (2, 3, 2)
    assert (result.vocab_size, result.parameters) == (8000, 12928320)


def test_summarize_needs_two_windows_and_the_start() -> None:
    one = "\n".join(LOG.splitlines()[:6])
    with pytest.raises(peer.PeerError) as err:
        peer.summarize(peer.parse_log(one), 5, 2, "peer", "run/train.log")
    assert str(err.value) == (
        "run/train.log: OpenNMT-py reported 1 training window(s); at least 2 are needed "
        "(train longer or lower report_every, now 5)"
    )
    with pytest.raises(peer.PeerError) as err:
        peer.summarize(peer.parse_log(SLOW), 5, 2, "peer", "run/train.log")
    assert str(err.value) == "run/train.log: OpenNMT-py never logged 'Start training loop'"


def test_config_is_rnnkits_model(tmp_path: Path) -> None:
    config = peer.opennmt_config(
        tmp_path, Sizes(), learning_rate=1e-3, clip_norm=5.0, pairs=22841, report_every=5
    )
    model = {
        "encoder_type": "brnn",  # bidirectional, hidden_size / 2 = 256 per direction
        "decoder_type": "rnn",
        "rnn_type": "LSTM",
        "layers": 1,
        "hidden_size": 512,
        "word_vec_size": 256,
        "global_attention": "mlp",  # additive (Bahdanau)
        "input_feed": 1,
        "dropout": [0.2],
        "batch_type": "sents",
        "batch_size": 64,
        "batch_size_multiple": 1,
        "bucket_size": 22841,
        "optim": "adam",
        "learning_rate": 1e-3,
        "learning_rate_decay": 1.0,
        "max_grad_norm": 5.0,
        "normalization": "tokens",
        "label_smoothing": 0.0,
        "num_workers": 0,
        "gpu_ranks": [],
        "model_dtype": "fp32",
        "share_vocab": True,
        "report_every": 5,
    }
    assert {k: config[k] for k in model} == model
    assert "valid" not in config["data"]  # no validation
    assert config["data"]["corpus_1"]["path_tgt"] == str(tmp_path / "tgt.txt")
    assert yaml.safe_load(yaml.safe_dump(config)) == config


def test_config_needs_half_the_decoder_per_direction(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        peer.opennmt_config(
            tmp_path,
            Sizes(encoder_hidden_size=512),
            learning_rate=1e-3,
            clip_norm=5.0,
            pairs=10,
            report_every=5,
        )
    assert str(err.value) == (
        "OpenNMT-py's brnn encoder has hidden_size / 2 per direction: needs hidden_size = "
        "2 x encoder_hidden_size, got 512 and 512"
    )


def test_write_pieces_one_sentence_a_line(tmp_path: Path) -> None:
    pairs = [(["▁In", "▁the"], ["▁Au", "▁commence", "ment"]), (["."], ["▁."])]
    peer.write_pieces(pairs, tmp_path)
    assert (tmp_path / "src.txt").read_text(encoding="utf-8") == "▁In ▁the\n.\n"
    assert (tmp_path / "tgt.txt").read_text(encoding="utf-8") == "▁Au ▁commence ment\n▁.\n"


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (([], ["a"]), "training pair 1: empty source"),
        ((["a"], ["b c"]), "training pair 1: target piece 'b c' is empty or holds whitespace"),
        ((["a", ""], ["b"]), "training pair 1: source piece '' is empty or holds whitespace"),
    ],
)
def test_write_pieces_refuses_what_opennmt_would_split(
    tmp_path: Path, pair: tuple[list[str], list[str]], message: str
) -> None:
    with pytest.raises(ValueError) as err:
        peer.write_pieces([(["x"], ["y"]), pair], tmp_path)
    assert str(err.value) == message
    assert not (tmp_path / "src.txt").exists()


def test_available_names_a_python_without_onmt(tmp_path: Path) -> None:
    message = (
        f"{sys.executable} cannot import OpenNMT-py (onmt): "
        "ModuleNotFoundError: No module named 'onmt'"
    )
    assert peer.available(sys.executable) == message
    missing = str(tmp_path / "python")
    assert peer.available(missing) == f"{missing}: cannot run it (No such file or directory)"
    with pytest.raises(peer.PeerError) as err:
        peer.train_opennmt(
            sys.executable,
            [(["a"], ["b"])],
            1.0,
            1,
            tmp_path,
            Sizes(),
            learning_rate=1e-3,
            clip_norm=5.0,
        )
    assert str(err.value) == message
    assert list(tmp_path.iterdir()) == []  # nothing written
