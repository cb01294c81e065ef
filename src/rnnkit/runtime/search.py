r"""NumPy greedy and beam search, the same algorithms as :mod:`rnnkit.decoding` (torch).

A decoder is anything with ``pad_id``, ``bos_id``, ``eos_id`` and::

    log_probs, state, attention = decoder.step(tokens, state, memory)   # (N,) -> (N, V), ...
    decoder.select_state(state, rows)      # rows (N',): reorder or repeat beams
    decoder.select_memory(memory, rows)

(:class:`rnnkit.runtime.base.StepDecoder` runs an ONNX step graph this way). The length limit,
scores and finishing rules are those of :mod:`rnnkit.decoding.search`: at most
``floor(a * S_b + b)`` steps (eos included), pad and bos never produced, greedy scores the raw
log-probability (summed in float64), beam scores ``log p / ((5 + n) / 6) ** alpha``; beam search
keeps the best 2K of the K*V continuations, sets aside those among the best K that end (eos or
the limit), keeps the best K without eos, and stops a sentence at its limit or once it has K
finished hypotheses the best live beam (scored as if it ended now) does not beat. Done sentences
leave the batch at once (the torch search keeps their rows a while; the results are the same).
Attention histories are copied with the beams (the torch search reads them back along
pointers; the same weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = [
    "Hypothesis",
    "SearchOptions",
    "beam_search",
    "format_nbest",
    "greedy_search",
    "length_penalty",
    "log_softmax",
    "max_lengths",
    "softmax",
]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``, stable for large values (same shape as x)."""
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / np.sum(e, axis=axis, keepdims=True)
    return out


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x - log(sum(exp(x)))`` along ``axis`` (same shape as x)."""
    z = x - np.max(x, axis=axis, keepdims=True)
    out: np.ndarray = z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
    return out


@dataclass(frozen=True, eq=False)
class Hypothesis:
    """One decoded sequence (as :class:`rnnkit.decoding.Hypothesis`).

    Attributes:
        tokens: the produced ids, without bos and eos.
        score: beam search: the length-penalised log-probability; greedy: the raw one.
        attention: (T', S_real) or (T', Hg, Wg), T' = ``len(tokens) + ended``; or None.
        ended: True if it ended with eos, False if cut at the maximum length.
    """

    tokens: list[int]
    score: float
    attention: np.ndarray | None
    ended: bool


@dataclass(frozen=True)
class SearchOptions:
    """Beam size K, n-best, length limit ``floor(a * S + b)`` and length penalty alpha."""

    beam_size: int = 5
    n_best: int = 1
    max_len_a: float = 1.5
    max_len_b: int = 10
    length_penalty: float = 1.0


class Decoder(Protocol):
    """What the searches read (module docstring)."""

    pad_id: int
    bos_id: int
    eos_id: int

    def step(self, tokens: np.ndarray, state: Any, memory: Any) -> tuple[np.ndarray, Any, Any]:
        """log-probs (N, V), the new state, the attention (N, ...) or None."""
        ...

    def select_state(self, state: Any, rows: np.ndarray) -> Any:
        """The state of ``rows``."""
        ...

    def select_memory(self, memory: Any, rows: np.ndarray) -> Any:
        """The memory of ``rows``."""
        ...


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (1 for ``alpha = 0``)."""
    return float(((5.0 + length) / 6.0) ** alpha)


def max_lengths(lengths: np.ndarray, max_len_a: float, max_len_b: float) -> list[int]:
    """Each input's most steps, ``floor(max_len_a * S_b + max_len_b)``; ValueError below 1."""
    result = [math.floor(max_len_a * int(n) + max_len_b) for n in lengths.tolist()]
    for n, m in zip(lengths.tolist(), result, strict=True):
        if m < 1:
            raise ValueError(
                f"maximum length max_len_a * source_length + max_len_b must be at least 1, "
                f"got {max_len_a} * {n} + {max_len_b}"
            )
    return result


def _masked(decoder: Decoder, log_probs: np.ndarray) -> np.ndarray:
    """(N, V) float32 log-probs with pad and bos at -inf (a copy)."""
    logp = np.array(log_probs, dtype=np.float32, copy=True)
    logp[:, [decoder.pad_id, decoder.bos_id]] = -np.inf
    return logp


def _cut(attention: np.ndarray | None, length: int) -> np.ndarray | None:
    """A hypothesis's weights cut to the real source columns (a sequence) or whole (a grid)."""
    if attention is None:
        return None
    return attention[:, :length] if attention.ndim == 2 else attention


def greedy_search(
    decoder: Decoder,
    memory: Any,
    state: Any,
    lengths: np.ndarray,
    max_len_a: float = 1.5,
    max_len_b: float = 10,
) -> list[list[Hypothesis]]:
    """Greedy decoding, batched: at each step feed back the most likely token.

    Args:
        decoder: the step (module docstring).
        memory, state: the B inputs' memory and initial state.
        lengths: (B,) input lengths S_b, for the length limit.
        max_len_a, max_len_b: at most ``floor(a * S_b + b)`` steps, eos included.

    Returns:
        B lists of one :class:`Hypothesis`; its score is the raw log-probability.
    """
    B = lengths.shape[0]
    limit = np.array(max_lengths(lengths, max_len_a, max_len_b))  # (B,)
    prev = np.full(B, decoder.bos_id, dtype=np.int64)  # (B,)
    score = np.zeros(B, dtype=np.float64)
    steps = np.zeros(B, dtype=np.int64)
    ended = np.zeros(B, dtype=bool)
    done = np.zeros(B, dtype=bool)
    tokens: list[np.ndarray] = []
    attention: list[np.ndarray] = []
    for t in range(1, int(limit.max()) + 1):
        log_probs, state, att = decoder.step(prev, state, memory)
        logp = _masked(decoder, log_probs)  # (B, V)
        token = logp.argmax(axis=-1)  # (B,)
        live = ~done
        chosen = logp[np.arange(B), token].astype(np.float64)  # (B,)
        score = score + np.where(live, chosen, 0.0)
        steps = steps + live
        is_eos = token == decoder.eos_id
        ended = ended | (live & is_eos)
        done = done | is_eos | (limit == t)
        tokens.append(token)
        if att is not None:
            attention.append(att)
        prev = token
        if done.all():
            break
    rows = np.stack(tokens, axis=1)  # (B, T')
    weights = np.stack(attention, axis=1) if attention else None  # (B, T', ...)
    result = []
    for b in range(B):
        n = int(steps[b])
        att_b = None if weights is None else weights[b, :n]
        result.append(
            [
                Hypothesis(
                    tokens=rows[b, : n - int(ended[b])].tolist(),
                    score=float(score[b]),
                    attention=_cut(att_b, int(lengths[b])),
                    ended=bool(ended[b]),
                )
            ]
        )
    return result


def beam_search(
    decoder: Decoder,
    memory: Any,
    state: Any,
    lengths: np.ndarray,
    options: SearchOptions | None = None,
) -> list[list[Hypothesis]]:
    """Batched beam search (the algorithm of :func:`rnnkit.decoding.beam_search`).

    Args:
        decoder: the step (module docstring).
        memory, state: the B inputs' memory and initial state (one row each).
        lengths: (B,) input lengths S_b, for the length limit.
        options: beam size, n-best, length limit, length penalty.

    Returns:
        B lists of ``n_best`` hypotheses (fewer only if fewer finished), best score first.
    """
    options = options or SearchOptions()
    K = options.beam_size
    B = lengths.shape[0]
    limit = max_lengths(lengths, options.max_len_a, options.max_len_b)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    active = list(range(B))
    rows = np.repeat(np.arange(B), K)  # (B*K,)
    memory = decoder.select_memory(memory, rows)
    state = decoder.select_state(state, rows)
    prev = np.full(B * K, decoder.bos_id, dtype=np.int64)
    scores = np.full((B, K), -np.inf, dtype=np.float32)
    scores[:, 0] = 0.0
    history = np.zeros((B * K, 0), dtype=np.int64)
    att_history: np.ndarray | None = None  # (N*K, t, ...)
    for t in range(1, max(limit) + 1):
        N = len(active)
        log_probs, new_state, att = decoder.step(prev, state, memory)
        logp = _masked(decoder, log_probs)  # (N*K, V)
        V = logp.shape[-1]
        cand = (logp.reshape(N, K, V) + scores[:, :, None]).reshape(N, K * V)  # (N, K*V)
        width = min(2 * K, K * V)
        top_index = np.argsort(-cand, axis=1, kind="stable")[:, :width]  # (N, 2K)
        top_scores = np.take_along_axis(cand, top_index, axis=1)  # (N, 2K)
        beam, token = top_index // V, top_index % V
        parent = np.arange(N)[:, None] * K + beam  # (N, 2K)
        is_eos = token == decoder.eos_id
        at_limit = np.array([limit[b] == t for b in active])  # (N,)
        rank = np.arange(width)[None, :]
        finish = (rank < K) & (is_eos | at_limit[:, None]) & np.isfinite(top_scores)
        if att is not None:
            past = att_history if att_history is not None else np.zeros((N * K, 0, *att.shape[1:]))
            step_att = np.concatenate([past, att[:, None].astype(np.float64)], axis=1)
        penalty = length_penalty(t, options.length_penalty)
        for n, j in zip(*np.nonzero(finish), strict=True):
            b, row, ended = active[n], int(parent[n, j]), bool(is_eos[n, j])
            finished[b].append(
                Hypothesis(
                    tokens=history[row].tolist() + ([] if ended else [int(token[n, j])]),
                    score=float(top_scores[n, j]) / penalty,
                    attention=None if att is None else _cut(step_att[row], int(lengths[b])),
                    ended=ended,
                )
            )
        keep = np.argsort(is_eos.astype(np.uint8), axis=1, kind="stable")[:, :K]  # (N, K)
        scores = np.take_along_axis(top_scores, keep, axis=1)  # (N, K)
        chosen = np.take_along_axis(parent, keep, axis=1).reshape(-1)  # (N*K,)
        prev = np.take_along_axis(token, keep, axis=1).reshape(-1)  # (N*K,)
        history = np.concatenate([history[chosen], prev[:, None]], axis=1)
        state = decoder.select_state(new_state, chosen)
        if att is not None:
            att_history = step_att[chosen]
        best_live = scores.max(axis=1)  # (N,)
        still = [
            n
            for n, b in enumerate(active)
            if limit[b] > t
            and (
                len(finished[b]) < K
                or float(best_live[n]) / penalty
                > sorted((h.score for h in finished[b]), reverse=True)[K - 1]
            )
        ]
        if not still:
            break
        if len(still) < N:
            sel = np.array(still)
            sel_rows = (sel[:, None] * K + np.arange(K)).reshape(-1)
            active = [active[n] for n in still]
            scores, prev, history = scores[sel], prev[sel_rows], history[sel_rows]
            state = decoder.select_state(state, sel_rows)
            memory = decoder.select_memory(memory, sel_rows)
            if att_history is not None:
                att_history = att_history[sel_rows]
    return [sorted(h, key=lambda x: x.score, reverse=True)[: options.n_best] for h in finished]


def format_nbest(outputs: Sequence[tuple[str, float, bool]]) -> str:
    """The text of a decoded input's n-best list of ``(text, score, ended)``: the text alone for
    one output, else ``rank<TAB>score<TAB>text`` lines (score to 4 decimals, ranks from 1); a
    text cut at the length limit (not ended) is followed by `` [truncated]``."""

    def text(words: str, ended: bool) -> str:
        return words if ended else f"{words} [truncated]"

    if len(outputs) == 1:
        return text(outputs[0][0], outputs[0][2])
    return "\n".join(
        f"{k}\t{score:.4f}\t{text(words, ended)}"
        for k, (words, score, ended) in enumerate(outputs, 1)
    )


def search_options(
    options: Any,
    *,
    max_len_a: float | None = None,
    max_len_b: int | None = None,
    default_beam: int = 5,
) -> SearchOptions:
    """The :class:`SearchOptions` of parsed predict options, as
    :func:`rnnkit.tasks.decoding_options.search_config` resolves them (same defaults, same
    messages): ``beam_size`` defaults to ``default_beam`` or ``n_best`` when larger, the length
    limit to the run's (``max_len_a`` / ``max_len_b``), flags override it.

    Raises:
        ValueError: a value out of range, naming its flag.
    """
    n_best = options.get("n_best")
    n_best = 1 if n_best is None else int(n_best)
    beam = options.get("beam_size")
    beam = max(default_beam, n_best) if beam is None else int(beam)
    for flag, value in (("--beam", beam), ("--nbest", n_best)):
        if value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
    if n_best > beam:
        raise ValueError(f"--nbest {n_best} must not exceed --beam {beam}")
    values: dict[str, Any] = {"max_len_a": 1.5, "max_len_b": 10, "length_penalty": 1.0}
    for key, default in (("max_len_a", max_len_a), ("max_len_b", max_len_b)):
        if default is not None:
            values[key] = default
    flags = {"length_penalty": "--length-penalty", "max_len_a": "--max-len-a"}
    flags["max_len_b"] = "--max-len-b"
    for key, flag in flags.items():
        if options.get(key) is not None:
            values[key] = options[key]
        if not values[key] >= 0:
            raise ValueError(f"{flag}: {key} must be non-negative, got {values[key]}")
    return SearchOptions(
        beam,
        n_best,
        float(values["max_len_a"]),
        values["max_len_b"],
        float(values["length_penalty"]),
    )
