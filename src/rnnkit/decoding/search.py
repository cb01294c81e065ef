r"""Decoding: greedy, batched beam search and sampling, for any model of the decoder protocol.

All three know no model class: they read a model only through the protocol of
:mod:`rnnkit.decoding.protocol`, ``step(tokens, state, memory)`` once per output position for
every row at once, and the ``memory`` its ``encode`` returned (reordered with ``index_select``).
So an encoder-decoder with any attention, a captioner attending over an image grid and a language
model with no memory at all are decoded by the same code. Each function returns one list of
:class:`Hypothesis` per input, in the batch's order.

Length. Input b may take at most ``max_len = floor(a * S_b + b0)`` decoder steps (``a`` =
``max_len_a``, ``b0`` = ``max_len_b``, S_b = ``memory.lengths[b]``); eos counts as a step. A
hypothesis ends at eos (``ended=True``, eos not in ``tokens``) or is cut after ``max_len`` tokens
(``ended=False``). The pad and bos ids are never produced.

Scores. With y_1 .. y_n the produced tokens (eos included when produced, n = the number of steps)::

    log p(y) = sum_t log_probs_t[y_t]                     (the model's own probabilities)
    score    = log p(y) / lp(n),   lp(n) = ((5 + n) / 6) ** alpha      (Wu et al., 2016)

``alpha = SearchConfig.length_penalty``; ``alpha = 0`` gives lp = 1, the raw log-probability.
Greedy search and sampling report the raw log-probability (sampling: under the model, not the
tempered or filtered distribution).

Beam search, batched. The B sentences' K beams are B*K rows of one ``step`` call per step. Each
sentence scores its K*V continuations (beam score + log-prob), keeps the best 2K, and:

- a continuation among the best K that ends with eos (or reaches ``max_len``) is *finished*: it is
  set aside with its length-penalised score;
- the best K that do not end with eos become the new beams; the decoder state and the token
  history are reordered with ``index_select``. Attention histories are not copied at every step:
  each step's weights are kept with a back-pointer from every new beam to the beam it extends,
  and a returned hypothesis's weights are read back along the pointers once, at the end;
- a sentence is done when it reached its ``max_len``, or when it has K finished hypotheses and
  the best live beam, scored as if it ended at this step (log-probability over ``lp(t)``), does
  not beat the K-th of them. Without a length penalty this is exact (log-probabilities only fall,
  so no live beam could still win); with one it is the usual heuristic (a bound over all
  reachable lengths would keep nearly every sentence searching to ``max_len``). Done sentences
  leave the batch once they are a quarter of it (until then their rows are computed and
  ignored: reordering a large memory, an image grid of 49 x 1280 features a row, at every
  finish costs more than the rows), and the search stops when none is left.

The ``n_best`` best finished hypotheses are returned, best first. With K = 1 this is greedy
search. Searching one sentence at a time is the same call with a batch of one.

The three algorithms stay in one module (a little over 500 lines) because they share the length
limit, the log-prob masking and the attention bookkeeping above.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from pydantic import ValidationInfo, field_validator, model_validator
from torch import Tensor

from rnnkit.config import FrozenConfig
from rnnkit.decoding.protocol import Decoder, Memory


@dataclass(frozen=True, eq=False)
class Hypothesis:
    """One decoded target sentence.

    Attributes:
        tokens: the produced target ids, without bos and eos.
        score: its score (module docstring): the length-penalised log-probability for beam
            search, the raw log-probability for greedy search and sampling.
        attention: the attention weights of each step, T' = ``len(tokens) + ended`` rows (the eos
            step included), each summing to 1: (T', S_real) over the real source tokens of a
            sequence memory, (T', H, W) over an image grid; None for a model without attention.
        ended: True if the hypothesis ended with eos, False if it was cut at the maximum length.
    """

    tokens: list[int]
    score: float
    attention: Tensor | None
    ended: bool


class SearchConfig(FrozenConfig):
    """Options of :func:`beam_search` (keyword-only, frozen, validated).

    Attributes:
        beam_size: K, hypotheses kept per sentence at each step.
        n_best: hypotheses returned per sentence, at most ``beam_size``.
        max_len_a, max_len_b: the most decoder steps for a source of real length S is
            ``floor(max_len_a * S + max_len_b)`` (eos included); it must be at least 1.
        length_penalty: alpha of the GNMT penalty ``((5 + n) / 6) ** alpha``; 0 for none.
    """

    beam_size: int = 5
    n_best: int = 1
    max_len_a: float = 1.5
    max_len_b: int = 10
    length_penalty: float = 1.0

    @field_validator("beam_size", "n_best")
    @classmethod
    def _positive(cls, value: int, info: ValidationInfo) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be at least 1, got {value}")
        return value

    @field_validator("max_len_a", "max_len_b", "length_penalty")
    @classmethod
    def _non_negative(cls, value: float, info: ValidationInfo) -> float:
        if not value >= 0:  # also rejects nan
            raise ValueError(f"{info.field_name} must be non-negative, got {value}")
        return value

    @model_validator(mode="after")
    def _n_best_fits_the_beam(self) -> SearchConfig:
        if self.n_best > self.beam_size:
            raise ValueError(f"n_best={self.n_best} must not exceed beam_size={self.beam_size}")
        return self


class SamplingConfig(FrozenConfig):
    """Options of :func:`sample` as a config (keyword-only, frozen, validated).

    Attributes:
        temperature: > 0; below 1 sharpens the distribution, above 1 flattens it.
        top_k: sample among the k most likely tokens; 0 for all.
        top_p: sample among the most likely tokens that hold probability p, in (0, 1].
        seed: seed of the random generator the samples are drawn with.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0

    @field_validator("temperature")
    @classmethod
    def _positive_temperature(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"temperature must be positive, got {value}")
        return value

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"top_k must be non-negative (0 = off), got {value}")
        return value

    @field_validator("top_p")
    @classmethod
    def _top_p(cls, value: float) -> float:
        if not 0.0 < value <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {value}")
        return value


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (1 for ``alpha = 0``)."""
    return float(((5.0 + length) / 6.0) ** alpha)


def max_lengths(src_lengths: Tensor, max_len_a: float, max_len_b: float) -> list[int]:
    """Each sentence's most decoder steps, ``floor(max_len_a * S_b + max_len_b)``.

    Args:
        src_lengths: (B,) real source lengths.
        max_len_a, max_len_b: the coefficients.

    Returns:
        B ints, each at least 1.

    Raises:
        ValueError: if a maximum length is below 1.
    """
    result = [math.floor(max_len_a * n + max_len_b) for n in src_lengths.tolist()]
    for n, m in zip(src_lengths.tolist(), result, strict=True):
        if m < 1:
            raise ValueError(
                f"maximum length max_len_a * source_length + max_len_b must be at least 1, "
                f"got {max_len_a} * {n} + {max_len_b}"
            )
    return result


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Top-k then top-p (nucleus) filtering: removed tokens get logit ``-inf``.

    Top-k keeps the k largest logits (ties with the k-th are kept too); top-p keeps the smallest
    set of most likely tokens whose probability adds up to at least ``top_p`` (the most likely
    token is always kept).

    Args:
        logits: (N, V) logits (divide by the temperature first).
        top_k: k, 0 for no top-k filtering.
        top_p: p in (0, 1]; 1 for no top-p filtering.

    Returns:
        (N, V) the filtered logits.
    """
    if top_k < 0:
        raise ValueError(f"top_k must be non-negative (0 = off), got {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, -math.inf)  # (N, V)
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)  # (N, V)
        probs = ordered.softmax(dim=-1)  # (N, V)
        before = probs.cumsum(dim=-1) - probs  # (N, V), mass of the more likely tokens
        remove_sorted = before >= top_p  # (N, V)
        remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)  # (N, V)
        logits = logits.masked_fill(remove, -math.inf)  # (N, V)
    return logits


def _log_probs(model: Decoder, log_probs: Tensor) -> Tensor:
    """The step's log-probs (N, V) in float32 or wider, pad and bos excluded (-inf); a new tensor."""
    dtype = torch.promote_types(log_probs.dtype, torch.float32)
    logp = log_probs.to(dtype, copy=True)  # (N, V)
    never = torch.tensor([model.pad_id, model.bos_id], device=logp.device)
    return logp.index_fill_(-1, never, -math.inf)  # (N, V), in place on the copy


def _attention_rows(attention: Tensor | None, steps: int, length: int) -> Tensor | None:
    """The first ``steps`` rows of one hypothesis's weights, on the CPU: (T, S) cut to the
    ``length`` real source columns, (T, H, W) over a grid whole."""
    if attention is None:
        return None
    rows = attention[:steps]
    return (rows[:, :length] if rows.dim() == 2 else rows).cpu()


# ------------------------------------------------------------------------- greedy and sampling


@torch.no_grad()
def _ancestral(
    model: Decoder,
    memory: Memory,
    max_len_a: float,
    max_len_b: float,
    copies: int,
    choose: Callable[[Tensor], Tensor],
) -> list[list[Hypothesis]]:
    """Decode ``copies`` rows per input, each step's token from ``choose(logp)``.

    ``choose`` maps the log-probs (N, V) (pad and bos at -inf) to (N,) tokens; the score is the
    sum of the chosen tokens' log-probs.
    """
    src_lengths = memory.lengths  # (B,)
    B = src_lengths.shape[0]
    device = src_lengths.device
    limit = max_lengths(src_lengths, max_len_a, max_len_b)  # B ints
    rows = torch.arange(B, device=device).repeat_interleave(copies)  # (N,), N = B * copies
    if copies > 1:
        memory = memory.index_select(rows)
    N = B * copies
    row_limit = torch.tensor(limit, device=device).repeat_interleave(copies)  # (N,)
    prev = torch.full((N,), model.bos_id, dtype=torch.long, device=device)  # (N,)
    state = memory.init_state
    score = torch.zeros(N, dtype=torch.float64, device=device)  # (N,)
    steps = torch.zeros(N, dtype=torch.long, device=device)  # (N,) steps taken
    ended = torch.zeros(N, dtype=torch.bool, device=device)  # (N,) stopped at eos
    done = torch.zeros(N, dtype=torch.bool, device=device)  # (N,)
    tokens, attention = [], []
    for t in range(1, max(limit) + 1):
        step = model.step(prev, state, memory)
        logp = _log_probs(model, step.log_probs)  # (N, V)
        token = choose(logp)  # (N,)
        live = ~done  # (N,)
        score = score + torch.where(live, logp.gather(1, token[:, None])[:, 0], 0.0)  # (N,)
        steps = steps + live.long()  # (N,)
        is_eos = token == model.eos_id  # (N,)
        ended = ended | (live & is_eos)
        done = done | is_eos | (row_limit == t)
        tokens.append(token)  # (N,)
        if step.attention is not None:
            attention.append(step.attention)  # (N, S) or (N, H, W)
        prev, state = token, step.state
        if bool(done.all()):
            break
    token_rows = torch.stack(tokens, dim=1).tolist()  # (N, T')
    weights = torch.stack(attention, dim=1) if attention else None  # (N, T', S | H, W)
    lengths = src_lengths.tolist()
    result: list[list[Hypothesis]] = [[] for _ in range(B)]
    for n, (n_steps, n_ended, n_score) in enumerate(
        zip(steps.tolist(), ended.tolist(), score.tolist(), strict=True)
    ):
        b = n // copies
        result[b].append(
            Hypothesis(
                tokens=token_rows[n][: n_steps - int(n_ended)],
                score=n_score,
                attention=_attention_rows(
                    None if weights is None else weights[n], n_steps, lengths[b]
                ),
                ended=n_ended,
            )
        )
    return result


def greedy_search(
    model: Decoder,
    memory: Memory,
    max_len_a: float = 1.5,
    max_len_b: float = 10,
) -> list[list[Hypothesis]]:
    """Greedy decoding, batched: at each step feed back the most likely token.

    Args:
        model: the decoder (put it in ``eval()`` mode).
        memory: what the model's ``encode`` returned for B inputs.
        max_len_a, max_len_b: at most ``floor(max_len_a * S_b + max_len_b)`` steps, eos included.

    Returns:
        B lists of one :class:`Hypothesis` each; its score is the raw log-probability.
    """
    return _ancestral(
        model, memory, max_len_a, max_len_b, copies=1, choose=lambda logp: logp.argmax(dim=-1)
    )


def sample(
    model: Decoder,
    memory: Memory,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    num_samples: int = 1,
    max_len_a: float = 1.5,
    max_len_b: float = 10,
) -> list[list[Hypothesis]]:
    """Ancestral sampling with temperature and top-k / top-p (nucleus) filtering, batched.

    Each step draws from ``softmax(filter_logits(log_probs / temperature, top_k, top_p))`` (pad
    and bos excluded; log-probs and logits differ by a constant per row, so this is the usual
    tempered softmax of the logits). ``top_k=1`` is greedy search.

    Args:
        model: the decoder (put it in ``eval()`` mode).
        memory: what the model's ``encode`` returned for B inputs.
        temperature: > 0; below 1 sharpens the distribution, above 1 flattens it.
        top_k: sample among the k most likely tokens; 0 for all.
        top_p: sample among the most likely tokens that hold probability p; 1 for all.
        generator: random generator on the model's device, for reproducible samples.
        num_samples: samples per sentence.
        max_len_a, max_len_b: at most ``floor(max_len_a * S_b + max_len_b)`` steps, eos included.

    Returns:
        B lists of ``num_samples`` :class:`Hypothesis`, in drawing order; each score is the
        model's raw log-probability of the sample.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    filter_logits(torch.zeros(1, 1), top_k, top_p)  # validate early

    def choose(logp: Tensor) -> Tensor:
        probs = filter_logits(logp / temperature, top_k, top_p).softmax(dim=-1)  # (N, V)
        return torch.multinomial(probs, 1, generator=generator)[:, 0]  # (N,)

    return _ancestral(model, memory, max_len_a, max_len_b, copies=num_samples, choose=choose)


# ---------------------------------------------------------------------------------- beam search


@torch.no_grad()
def _backtrack(
    step_weights: list[Tensor], back: list[Tensor], ends: list[tuple[int, int]]
) -> Tensor:
    """The attention histories of hypotheses that ended at step t_i in row r_i of that step.

    One walk from the last step down to the first, following the back pointers of every
    hypothesis at once (each joins the walk at its own last step).

    Args:
        step_weights: T tensors, step s's weights (N_s*K, *A) by the rows decoded at step s,
            A = (S,) over a sequence or (H, W) over a grid.
        back: T - 1 (or T) tensors, ``back[s-1][r]`` the step-s row that step s+1's row r extends.
        ends: n pairs (t_i, r_i), 1 <= t_i <= T.

    Returns:
        (n, T, *A): row i holds hypothesis i's weights at steps 1 .. t_i, zeros after.
    """
    T, A = len(step_weights), step_weights[0].shape[1:]
    out = step_weights[0].new_zeros(len(ends), T, *A)  # (n, T, *A)
    joining: dict[int, list[int]] = {}
    for i, (t, _) in enumerate(ends):
        joining.setdefault(t, []).append(i)
    device = out.device
    ids = torch.empty(0, dtype=torch.long, device=device)  # (m,) hypotheses walking
    rows = torch.empty(0, dtype=torch.long, device=device)  # (m,) their rows at step s
    for s in range(T, 0, -1):
        if s in joining:
            new = joining[s]
            ids = torch.cat([ids, torch.tensor(new, device=device)])
            rows = torch.cat([rows, torch.tensor([ends[i][1] for i in new], device=device)])
        if ids.numel() == 0:
            continue
        out[ids, s - 1] = step_weights[s - 1].index_select(0, rows)  # (m, *A)
        if s > 1:
            rows = back[s - 2].index_select(0, rows)  # (m,), their rows at step s - 1
    return out


def _kth_best_score(hypotheses: list[Hypothesis], k: int) -> float:
    """The k-th best score among ``hypotheses`` (at least k of them)."""
    return sorted((h.score for h in hypotheses), reverse=True)[k - 1]


def beam_search(
    model: Decoder,
    memory: Memory,
    config: SearchConfig | None = None,
) -> list[list[Hypothesis]]:
    """Batched beam search (algorithm in the module docstring).

    Args:
        model: the decoder (put it in ``eval()`` mode).
        memory: what the model's ``encode`` returned for B inputs.
        config: beam size, n-best, maximum length, length penalty; ``SearchConfig()`` if None.

    Returns:
        B lists of ``config.n_best`` hypotheses (fewer only if the search finished fewer), best
        score first.
    """
    config = SearchConfig() if config is None else config
    K = config.beam_size
    src_lengths = memory.lengths  # (B,)
    B = src_lengths.shape[0]
    device = src_lengths.device
    limit = max_lengths(src_lengths, config.max_len_a, config.max_len_b)  # B ints
    lengths = src_lengths.tolist()
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]

    active = list(range(B))  # ids of the sentences still searching; N = len(active)
    rows = torch.arange(B, device=device).repeat_interleave(K)  # (N*K,)
    memory = memory.index_select(rows)
    state = memory.init_state
    prev = torch.full((B * K,), model.bos_id, dtype=torch.long, device=device)  # (N*K,)
    scores = torch.full((B, K), -math.inf, device=device)  # (N, K) beam log-probs
    scores[:, 0] = 0.0  # all beams start equal: expand only the first at step 1
    history = torch.empty(B * K, 0, dtype=torch.long, device=device)  # (N*K, t)
    # Attention histories are not reordered at every step (a copy of (N*K, t, S) per step): each
    # step's weights are kept with a pointer from each next-step row to the row it extends, and the
    # returned hypotheses' histories are read back along the pointers at the end (_backtrack).
    step_weights: list[Tensor] = []  # step t's (N_t*K, *A), rows as decoded at step t
    back: list[Tensor] = []  # back[t-1]: (N_{t+1}*K,), the step-t row each next row extends
    ends: dict[Hypothesis, tuple[int, int]] = {}  # finished hypothesis -> (its step, its row)
    arange_k = torch.arange(K, device=device)  # (K,)

    done = [False] * B  # done[n]: sentence active[n] has finished but still holds its rows
    for t in range(1, max(limit) + 1):
        N = len(active)
        step = model.step(prev, state, memory)
        logp = _log_probs(model, step.log_probs)  # (N*K, V)
        V = logp.shape[-1]
        scores = scores.to(logp.dtype)
        cand = logp.view(N, K, V).add_(scores[:, :, None]).view(N, K * V)  # (N, K*V), in place
        top_scores, top_index = cand.topk(min(2 * K, K * V), dim=1)  # (N, 2K), best first
        beam, token = top_index // V, top_index % V  # (N, 2K)
        parent = torch.arange(N, device=device)[:, None] * K + beam  # (N, 2K) rows extended
        is_eos = token == model.eos_id  # (N, 2K)
        at_limit = torch.tensor([limit[b] == t for b in active], device=device)  # (N,)
        rank = torch.arange(top_index.shape[1], device=device)[None, :]  # (1, 2K)
        finish = (rank < K) & (is_eos | at_limit[:, None]) & torch.isfinite(top_scores)
        if step.attention is not None:
            step_weights.append(step.attention)  # (N*K, *A)

        # Set the finished hypotheses aside.
        pairs = finish.nonzero().tolist()
        if pairs:
            penalty = length_penalty(t, config.length_penalty)
            top_list, token_list, parent_list = (
                top_scores.tolist(),
                token.tolist(),
                parent.tolist(),
            )
            eos_list = is_eos.tolist()
            for n, j in pairs:
                if done[n]:
                    continue
                b, row, ended = active[n], parent_list[n][j], eos_list[n][j]
                hypothesis = Hypothesis(
                    tokens=history[row].tolist() + ([] if ended else [token_list[n][j]]),
                    score=top_list[n][j] / penalty,
                    attention=None,  # read back at the end
                    ended=ended,
                )
                finished[b].append(hypothesis)
                ends[hypothesis] = (t, row)

        # The best K continuations without eos become the beams (a stable sort keeps the order).
        keep = torch.sort(is_eos.to(torch.uint8), dim=1, stable=True).indices[:, :K]  # (N, K)
        scores = top_scores.gather(1, keep)  # (N, K)
        chosen = parent.gather(1, keep).view(-1)  # (N*K,)
        prev = token.gather(1, keep).view(-1)  # (N*K,)
        history = torch.cat([history.index_select(0, chosen), prev[:, None]], dim=1)
        back.append(chosen)
        state = step.state.index_select(chosen)

        # Drop the sentences that are done: at the length limit, or with K finished hypotheses
        # that the best live beam, scored as if it ended now, no longer beats (exact without a
        # length penalty, where scores only fall).
        best_live = scores.max(dim=1).values.tolist()  # (N,)
        penalty_now = length_penalty(t, config.length_penalty)
        still = [
            n
            for n, b in enumerate(active)
            if not done[n]
            and limit[b] > t
            and (
                len(finished[b]) < K or best_live[n] / penalty_now > _kth_best_score(finished[b], K)
            )
        ]
        if not still:
            break
        done = [True] * N
        for n in still:
            done[n] = False
        if 4 * (N - len(still)) >= N:  # a quarter of the rows are done: they leave the batch
            sel = torch.tensor(still, device=device)  # (N',)
            sel_rows = (sel[:, None] * K + arange_k).view(-1)  # (N'*K,)
            active = [active[n] for n in still]
            scores = scores.index_select(0, sel)
            prev = prev.index_select(0, sel_rows)
            history = history.index_select(0, sel_rows)
            back[-1] = back[-1].index_select(0, sel_rows)
            state = state.index_select(sel_rows)
            memory = memory.index_select(sel_rows)
            done = [False] * len(active)

    best = [sorted(hyps, key=lambda h: h.score, reverse=True)[: config.n_best] for hyps in finished]
    if not step_weights:
        return best
    returned = [(b, h) for b, hyps in enumerate(best) for h in hyps]
    weights = _backtrack(step_weights, back, [ends[h] for _, h in returned])  # (n, T, *A)
    result: list[list[Hypothesis]] = [[] for _ in range(B)]
    for i, (b, h) in enumerate(returned):
        t = ends[h][0]
        result[b].append(replace(h, attention=_attention_rows(weights[i], t, lengths[b])))
    return result
