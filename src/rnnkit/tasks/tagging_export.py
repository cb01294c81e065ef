"""ONNX export of a ``tagging`` run: one graph, and the vocabularies beside it.

The graph ``tagger.onnx`` is the :class:`~rnnkit.models.tagger.SequenceTagger` in eval mode with
its recurrent layers (the sentence's and a char-LSTM's) replaced by fused twins over packed
sequences (:class:`rnnkit.export.graphs.PackedRNN`), so padding stays exact and batch, sentence
length and word length are free::

    tokens (B, T) int64, padded with 0     lengths (B,) int64 in [1, T]
    chars (B, T, L) int64, padded with 0   (only with model.char_features)
      -> logits (B, T, K)

The char features are computed for all B*T word slots at once (a word without characters reads
one padding character) and zeroed where the model has none (padded words), which is what
:meth:`SequenceTagger.features` computes on the real words only. There is no CRF: the runtime
(:mod:`rnnkit.runtime.tagging`) takes each position's most probable tag.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from rnnkit.models.tagger import CharLSTM, SequenceTagger

if TYPE_CHECKING:
    from rnnkit.tasks.tagging import TaggingTask

__all__ = ["GRAPH_FILE", "VOCAB_FILE", "TaggerGraph", "export_tagger"]

GRAPH_FILE = "tagger.onnx"
VOCAB_FILE = "vocab.json"


class TaggerGraph(nn.Module):
    """A :class:`SequenceTagger` as a traceable graph: tokens (B, T), lengths (B,) and chars
    (B, T, L) (with char features) -> logits (B, T, K).

    Args:
        model: the trained tagger (weights shared, recurrent layers twinned).
    """

    def __init__(self, model: SequenceTagger) -> None:
        super().__init__()
        from rnnkit.export.graphs import PackedRNN, rnn_graph_module

        self.model = model.eval()
        self.rnn = PackedRNN(rnn_graph_module(model.rnn))
        self.char_rnn = (
            PackedRNN(rnn_graph_module(model.chars.rnn))
            if isinstance(model.chars, CharLSTM)
            else None
        )

    def char_features(self, tokens: Tensor, lengths: Tensor, chars: Tensor) -> Tensor:
        """(B, T, C) char features of every word slot, zero where the word has no characters
        or lies past its sentence's end."""
        assert self.model.chars is not None
        B, T, L = chars.shape
        char_lengths = (chars != 0).sum(dim=2)  # (B, T)
        position = torch.arange(T, device=tokens.device)[None, :]  # (1, T)
        real = (char_lengths > 0) & (position < lengths[:, None])  # (B, T)
        flat = chars.reshape(B * T, L)  # (N, L), N = B*T
        n = char_lengths.reshape(B * T).clamp(min=1)  # (N,)
        if self.char_rnn is None:
            words = self.model.chars(flat, n)  # (N, C), the char CNN
        else:
            assert isinstance(self.model.chars, CharLSTM)
            # the two final states, read from the outputs (an export whose padded outputs go
            # unused fails): forward at each word's last character, backward at its first
            out, _, _ = self.char_rnn(self.model.chars.embed(flat), n)  # (N, L, 2 Hc)
            Hc = out.shape[-1] // 2
            last = out[torch.arange(B * T, device=out.device), n - 1, :Hc]  # (N, Hc)
            words = torch.cat([last, out[:, 0, Hc:]], dim=-1)  # (N, 2 Hc)
        words = words.reshape(B, T, -1)  # (B, T, C)
        return torch.where(real[..., None], words, torch.zeros_like(words))

    def forward(self, tokens: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        """logits (B, T, K) of tokens (B, T) with lengths (B,) (and chars (B, T, L))."""
        x = self.model.embed(tokens)  # (B, T, E)
        if chars is not None:
            x = torch.cat([x, self.char_features(tokens, lengths, chars)], dim=-1)
        out, _, _ = self.rnn(x, lengths)  # (B, T, D*H)
        logits: Tensor = self.model.head(out)  # (B, T, K)
        return logits


def export_tagger(task: TaggingTask, model: nn.Module, folder: Path) -> dict[str, Any]:
    """Write ``tagger.onnx`` and ``vocab.json`` into ``folder``; return config entries.

    Args:
        task: the run's task (vocabularies, ``data`` options).
        model: its trained :class:`SequenceTagger`.
        folder: the (temporary) export folder.

    Returns:
        ``config.json`` entries: the files, how inputs are read (``words``: ``whitespace`` or
        ``punctuation``), ``lowercase``, ``max_word_length``, ``char_features`` and whether the
        tags are punctuation marks (then the outputs carry the restored text).
    """
    from rnnkit.export.graphs import export_graph

    assert isinstance(model, SequenceTagger)
    graph = TaggerGraph(model.cpu().float())
    words, _, chars = task.vocabularies
    tokens = torch.tensor([[2, 3, 4, 5], [6, 7, 0, 0]]) % len(words)
    lengths = torch.tensor([4, 2])
    args: tuple[Tensor, ...] = (tokens, lengths)
    names = ["tokens", "lengths"]
    axes = {"tokens": {0: "B", 1: "T"}, "lengths": {0: "B"}, "logits": {0: "B", 1: "T"}}
    if chars is not None:
        example = torch.tensor(
            [[[2, 3, 0], [4, 0, 0], [2, 2, 2], [3, 0, 0]], [[5, 4, 0], [2, 0, 0], [0] * 3, [0] * 3]]
        )  # (B, T, L), the second sentence's last two words padding
        args, names = (tokens, lengths, example % len(chars)), [*names, "chars"]
        axes["chars"] = {0: "B", 1: "T", 2: "L"}
    export_graph(graph, args, folder / GRAPH_FILE, names, ["logits"], axes)
    shutil.copyfile(task.folder() / VOCAB_FILE, folder / VOCAB_FILE)
    d = task.data
    return {
        "graph": GRAPH_FILE,
        "vocab": VOCAB_FILE,
        "words": "punctuation" if d.corpus == "punctuation-bible" else "whitespace",
        "lowercase": d.lowercase,
        "max_word_length": d.max_word_length,
        "char_features": chars is not None,
        "punctuation": task.punctuation_tags(),
    }
