"""rnnkit.decoding: greedy search, batched beam search and sampling for any model of the decoder
protocol (:mod:`rnnkit.decoding.protocol`): encoder-decoders, captioners, language models."""

from rnnkit.decoding.protocol import Decoder, Memory, StepOutput
from rnnkit.decoding.search import (
    Hypothesis,
    SamplingConfig,
    SearchConfig,
    beam_search,
    filter_logits,
    greedy_search,
    length_penalty,
    max_lengths,
    sample,
)

__all__ = [
    "Decoder",
    "Hypothesis",
    "Memory",
    "SamplingConfig",
    "SearchConfig",
    "StepOutput",
    "beam_search",
    "filter_logits",
    "greedy_search",
    "length_penalty",
    "max_lengths",
    "sample",
]
