"""rnnkit.decoding: greedy search, batched beam search and sampling for encoder-decoders."""

from rnnkit.decoding.search import (
    Hypothesis,
    SearchConfig,
    beam_search,
    filter_logits,
    greedy_search,
    length_penalty,
    max_lengths,
    sample,
)

__all__ = [
    "Hypothesis",
    "SearchConfig",
    "beam_search",
    "filter_logits",
    "greedy_search",
    "length_penalty",
    "max_lengths",
    "sample",
]
