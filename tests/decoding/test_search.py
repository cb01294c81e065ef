"""Tests for rnnkit.decoding.search: greedy, batched beam search, sampling, filtering, errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import Tensor
from torch.testing import assert_close

from rnnkit.decoding import (
    Hypothesis,
    SearchConfig,
    beam_search,
    filter_logits,
    greedy_search,
    length_penalty,
    max_lengths,
    sample,
)
from rnnkit.models.seq2seq import EncoderOutput, Seq2Seq, Seq2SeqConfig

PAD, BOS, EOS = 0, 1, 2
V = 11
ATTENTIONS = ("none", "additive", "dot", "general")


def tiny(cell: str = "lstm", attention: str = "additive", seed: int = 0) -> Seq2Seq:
    """A random tiny model: hidden 32, embedding 16, vocab 11 (dot: unidirectional encoder)."""
    torch.manual_seed(seed)
    config = Seq2SeqConfig(
        cell=cell,  # type: ignore[arg-type]
        attention=attention,  # type: ignore[arg-type]
        hidden_size=32,
        embedding_size=16,
        bidirectional_encoder=attention != "dot",
    )
    return Seq2Seq(config, V, V).eval()


def pad(sources: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Token lists -> src (B, S) padded with PAD, src_lengths (B,)."""
    src = torch.full((len(sources), max(map(len, sources))), PAD)
    for b, s in enumerate(sources):
        src[b, : len(s)] = torch.tensor(s)
    return src, torch.tensor([len(s) for s in sources])


def encode(model: Seq2Seq, sources: list[list[int]]) -> EncoderOutput:
    """The model's memory of ``sources`` (padded with PAD)."""
    return model.encode(*pad(sources))


def random_sources(seed: int = 0, lengths: tuple[int, ...] = (7, 4, 2)) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, V, (n,), generator=g).tolist() for n in lengths]


def teacher_forced(model: Seq2Seq, source: list[int], hyp: Hypothesis) -> tuple[float, Tensor]:
    """Log-probability of ``hyp`` (eos included if it ended) and its attention, by forward()."""
    src, lengths = pad([source])
    target = hyp.tokens + ([EOS] if hyp.ended else [])
    tgt_in = torch.tensor([[BOS, *target[:-1]]])  # (1, T')
    with torch.no_grad():
        out = model(src, lengths, tgt_in)
    logp = F.log_softmax(out.logits[0].double(), dim=-1)  # (T', V)
    total = float(logp.gather(1, torch.tensor(target)[:, None]).sum())
    attention = out.attention[0] if out.attention is not None else torch.empty(0)  # (T', S)
    return total, attention


@pytest.fixture(scope="module")
def trained() -> tuple[Seq2Seq, list[list[int]]]:
    """A tiny additive-attention model overfit to reverse three sources (100 % token accuracy)."""
    model = tiny("gru", "additive", seed=1)
    sources = random_sources(seed=3, lengths=(5, 3, 4))
    src, lengths = pad(sources)
    targets = [s[::-1] for s in sources]
    T = max(map(len, targets)) + 1
    tgt_in, tgt_out = torch.full((3, T), PAD), torch.full((3, T), PAD)
    for b, t in enumerate(targets):
        tgt_in[b, : len(t) + 1] = torch.tensor([BOS, *t])
        tgt_out[b, : len(t) + 1] = torch.tensor([*t, EOS])
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    model.train()
    for _ in range(150):
        logits = model(src, lengths, tgt_in).logits
        loss = F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.02:
            break
    model.eval()
    return model, sources


# -------------------------------------------------------------------------------- greedy search


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_greedy_picks_the_teacher_forced_argmax_and_never_pad_or_bos(attention: str) -> None:
    model = tiny("lstm", attention)
    sources = random_sources(seed=2)
    hyps = greedy_search(model, encode(model, sources), max_len_a=1.0, max_len_b=2)
    for source, hyp_list in zip(sources, hyps, strict=True):
        assert len(hyp_list) == 1
        hyp = hyp_list[0]
        target = hyp.tokens + ([EOS] if hyp.ended else [])
        assert len(target) == len(source) + 2 or hyp.ended  # cut only at the maximum length
        assert len(target) <= len(source) + 2
        src, lengths = pad([source])
        with torch.no_grad():
            out = model(src, lengths, torch.tensor([[BOS, *target[:-1]]]))
        logits = out.logits[0]  # (T', V)
        logits[:, [PAD, BOS]] = -math.inf
        assert logits.argmax(-1).tolist() == target
        if attention == "none":
            assert hyp.attention is None
        else:
            assert out.attention is not None and hyp.attention is not None
            assert_close(hyp.attention, out.attention[0, :, : len(source)])
        score, _ = teacher_forced(model, source, hyp)
        assert_close(hyp.score, score, rtol=1e-5, atol=1e-5)


def test_greedy_search_on_a_trained_model_reverses_and_attends_as_teacher_forcing(
    trained: tuple[Seq2Seq, list[list[int]]],
) -> None:
    model, sources = trained
    hyps = greedy_search(model, encode(model, sources), max_len_a=1.0, max_len_b=3)
    for source, (hyp,) in zip(sources, hyps, strict=True):
        assert hyp.ended
        assert hyp.tokens == source[::-1]
        _, attention = teacher_forced(model, source, hyp)  # (T', S)
        assert hyp.attention is not None
        assert_close(hyp.attention, attention[:, : len(source)])


# --------------------------------------------------------------------------------- beam search


@pytest.mark.parametrize(
    ("cell", "attention"), [("lstm", a) for a in ATTENTIONS] + [("gru", "dot")]
)
def test_beam_of_one_equals_greedy(cell: str, attention: str) -> None:
    model = tiny(cell, attention, seed=4)
    src, lengths = pad(random_sources(seed=5))
    greedy = greedy_search(model, model.encode(src, lengths), max_len_a=1.0, max_len_b=3)
    config = SearchConfig(beam_size=1, max_len_a=1.0, max_len_b=3, length_penalty=0.0)
    beam = beam_search(model, model.encode(src, lengths), config)
    for (g,), (b,) in zip(greedy, beam, strict=True):
        assert b.tokens == g.tokens
        assert b.ended == g.ended
        assert_close(b.score, g.score, rtol=1e-5, atol=1e-5)
        if attention == "none":
            assert b.attention is None and g.attention is None
        else:
            assert b.attention is not None and g.attention is not None
            assert_close(b.attention, g.attention)


@pytest.mark.parametrize("attention", ["none", "additive", "general"])
def test_beam_results_do_not_depend_on_the_batch(attention: str) -> None:
    model = tiny("lstm", attention, seed=6)
    sources = random_sources(seed=7, lengths=(3, 7, 5, 2))
    config = SearchConfig(beam_size=4, n_best=3, max_len_a=1.0, max_len_b=2)
    together = beam_search(model, encode(model, sources), config)
    # Reversed order and a different companion: still the same per-sentence results.
    other = beam_search(
        model, encode(model, [sources[3], random_sources(8, (6,))[0], sources[0]]), config
    )
    for b, source in enumerate(sources):
        alone = beam_search(model, encode(model, [source]), config)[0]
        assert len(alone) == 3
        for batch_hyps in [together[b]] + ([other[2 if b == 0 else 0]] if b in (0, 3) else []):
            assert [h.tokens for h in batch_hyps] == [h.tokens for h in alone]
            assert [h.ended for h in batch_hyps] == [h.ended for h in alone]
            assert_close([h.score for h in batch_hyps], [h.score for h in alone])
            for h, a in zip(batch_hyps, alone, strict=True):
                if attention == "none":
                    assert h.attention is None
                else:
                    assert h.attention is not None and a.attention is not None
                    assert_close(h.attention, a.attention)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_scores_are_teacher_forced_log_probs_over_the_length_penalty(alpha: float) -> None:
    model = tiny("gru", "additive", seed=9)
    sources = random_sources(seed=10)
    config = SearchConfig(beam_size=5, n_best=5, max_len_a=1.0, max_len_b=1, length_penalty=alpha)
    for source, hyps in zip(
        sources, beam_search(model, encode(model, sources), config), strict=True
    ):
        for hyp in hyps:
            log_prob, attention = teacher_forced(model, source, hyp)
            steps = len(hyp.tokens) + hyp.ended
            assert_close(hyp.score, log_prob / ((5 + steps) / 6) ** alpha, rtol=1e-5, atol=1e-5)
            assert hyp.attention is not None
            assert_close(hyp.attention, attention[:, : len(source)])


def test_n_best_are_sorted_distinct_and_valid() -> None:
    model = tiny("lstm", "general", seed=11)
    sources = random_sources(seed=12)
    config = SearchConfig(beam_size=6, n_best=6, max_len_a=0.5, max_len_b=2)
    results = beam_search(model, encode(model, sources), config)
    for source, hyps in zip(sources, results, strict=True):
        limit = math.floor(0.5 * len(source) + 2)
        assert len(hyps) == 6
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({(tuple(h.tokens), h.ended) for h in hyps}) == 6
        for h in hyps:
            assert not {PAD, BOS, EOS} & set(h.tokens)
            assert len(h.tokens) + h.ended <= limit
            assert h.ended or len(h.tokens) == limit  # cut only at the maximum length


def test_large_beam_is_exact_search() -> None:
    """With a beam holding every prefix, the n-best are the n best of all sequences."""
    model = tiny("gru", "additive", seed=13)
    source = random_sources(seed=14, lengths=(4,))[0]
    alpha = 0.7
    config = SearchConfig(beam_size=81, n_best=5, max_len_a=0.0, max_len_b=3, length_penalty=alpha)
    hyps = beam_search(model, encode(model, [source]), config)[0]
    words = list(range(3, V))  # every token but pad, bos, eos
    candidates = [Hypothesis([], 0.0, None, True)]
    candidates += [Hypothesis([x], 0.0, None, True) for x in words]
    for x, y in itertools.product(words, words):
        candidates.append(Hypothesis([x, y], 0.0, None, True))
        candidates += [Hypothesis([x, y, z], 0.0, None, False) for z in words]
    scored = sorted(
        (
            teacher_forced(model, source, c)[0] / length_penalty(len(c.tokens) + c.ended, alpha),
            c.tokens,
        )
        for c in candidates
    )[::-1][:5]
    assert [h.tokens for h in hyps] == [tokens for _, tokens in scored]
    assert_close([h.score for h in hyps], [score for score, _ in scored], rtol=1e-5, atol=1e-5)


def test_overfit_model_beam_recovers_the_targets_and_stops_at_eos(
    trained: tuple[Seq2Seq, list[list[int]]],
) -> None:
    model, sources = trained
    config = SearchConfig(beam_size=3, n_best=2, max_len_a=2.0, max_len_b=5)
    results = beam_search(model, encode(model, sources), config)
    for source, hyps in zip(sources, results, strict=True):
        best = hyps[0]
        assert best.tokens == source[::-1]
        assert best.ended
        assert best.attention is not None
        assert best.attention.shape == (len(source) + 1, len(source))
        assert_close(best.attention.sum(-1), torch.ones(len(source) + 1))
        assert best.score > hyps[1].score
    greedy = greedy_search(model, encode(model, sources))
    assert [g[0].tokens for g in greedy] == [s[::-1] for s in sources]


@pytest.mark.parametrize("attention", ["additive", "dot"])
def test_attention_rows_sum_to_one_over_the_real_source(attention: str) -> None:
    model = tiny("lstm", attention, seed=15)
    sources = random_sources(seed=16, lengths=(2, 6, 3))
    config = SearchConfig(beam_size=3, n_best=3, max_len_b=4)
    for search in (
        beam_search(model, encode(model, sources), config),
        greedy_search(model, encode(model, sources)),
    ):
        for source, hyps in zip(sources, search, strict=True):
            for h in hyps:
                assert h.attention is not None
                assert h.attention.shape == (len(h.tokens) + h.ended, len(source))
                assert_close(h.attention.sum(-1), torch.ones(h.attention.shape[0]))


# ------------------------------------------------------------------------------------ sampling


@pytest.mark.parametrize("attention", ["none", "additive"])
def test_sampling_with_top_k_one_is_greedy(attention: str) -> None:
    model = tiny("gru", attention, seed=17)
    src, lengths = pad(random_sources(seed=18))
    greedy = greedy_search(model, model.encode(src, lengths))
    sampled = sample(model, model.encode(src, lengths), temperature=3.0, top_k=1, num_samples=2)
    for (g,), samples in zip(greedy, sampled, strict=True):
        assert len(samples) == 2
        for s in samples:
            assert s.tokens == g.tokens and s.ended == g.ended
            assert_close(s.score, g.score)


def test_sampling_is_reproducible_with_a_generator_and_scores_are_log_probs() -> None:
    model = tiny("lstm", "additive", seed=19)
    sources = random_sources(seed=20)
    src, lengths = pad(sources)

    def draw(seed: int) -> list[list[Hypothesis]]:
        g = torch.Generator().manual_seed(seed)
        return sample(
            model, model.encode(src, lengths), top_p=0.9, generator=g, num_samples=3, max_len_b=4
        )

    first, again, other = draw(0), draw(0), draw(1)
    tokens = [[h.tokens for h in hyps] for hyps in first]
    assert tokens == [[h.tokens for h in hyps] for hyps in again]
    assert tokens != [[h.tokens for h in hyps] for hyps in other]
    for source, hyps in zip(sources, first, strict=True):
        for h in hyps:
            assert not {PAD, BOS, EOS} & set(h.tokens)
            assert_close(h.score, teacher_forced(model, source, h)[0], rtol=1e-5, atol=1e-5)


def test_sampled_first_tokens_follow_the_filtered_tempered_distribution() -> None:
    model = tiny("gru", "additive", seed=21)
    src, lengths = pad(random_sources(seed=22, lengths=(4,)))
    n, temperature, top_k = 4000, 2.0, 4
    g = torch.Generator().manual_seed(0)
    hyps = sample(
        model,
        model.encode(src, lengths),
        temperature,
        top_k,
        generator=g,
        num_samples=n,
        max_len_a=0.0,
        max_len_b=1,
    )[0]
    first = torch.tensor([h.tokens[0] if h.tokens else EOS for h in hyps])  # (n,)
    with torch.no_grad():
        logits = model(src, lengths, torch.tensor([[BOS]])).logits[0]  # (1, V)
    logits[:, [PAD, BOS]] = -math.inf
    expected = filter_logits(logits / temperature, top_k).softmax(-1)[0]  # (V,)
    observed = torch.bincount(first, minlength=V).double() / n  # (V,)
    assert int((expected > 0).sum()) == top_k
    assert_close(observed, expected.double(), rtol=0.0, atol=0.03)


def test_filter_logits_top_p_and_top_k_on_a_hand_made_distribution() -> None:
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3], [0.25, 0.25, 0.25, 0.25]])  # (2, 4)
    logits = probs.log()
    kept = torch.isfinite(filter_logits(logits, top_p=0.75))
    assert kept.tolist() == [[False, True, False, True], [True, True, True, False]]
    kept = torch.isfinite(filter_logits(logits, top_p=0.9))
    assert kept[0].tolist() == [False, True, True, True]
    kept = torch.isfinite(filter_logits(logits, top_p=0.1))  # the most likely token always stays
    assert kept[0].tolist() == [False, True, False, False]
    kept = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept[0].tolist() == [False, True, False, True]
    assert kept[1].all()  # ties with the k-th are kept
    # Kept logits are unchanged, so the renormalised distribution is proportional to the original.
    filtered = filter_logits(logits, top_k=3, top_p=0.75)
    assert_close(filtered.softmax(-1)[0], torch.tensor([0.0, 0.5, 0.0, 0.3]) / 0.8)
    assert torch.equal(filter_logits(logits), logits)


# -------------------------------------------------------------------------------------- errors


def test_search_config_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"beam_size must be at least 1, got 0"):
        SearchConfig(beam_size=0)
    with pytest.raises(ValidationError, match=r"n_best=3 must not exceed beam_size=2"):
        SearchConfig(beam_size=2, n_best=3)
    with pytest.raises(ValidationError, match=r"length_penalty must be non-negative, got -1"):
        SearchConfig(length_penalty=-1.0)
    with pytest.raises(ValidationError, match=r"max_len_a must be non-negative"):
        SearchConfig(max_len_a=-0.5)
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        SearchConfig(beam=3)  # type: ignore[call-arg]


def test_bad_arguments_raise_clear_errors() -> None:
    model = tiny()
    src, lengths = pad(random_sources())
    with pytest.raises(ValueError, match=r"must be at least 1, got 0.0 \* 7 \+ 0"):
        greedy_search(model, model.encode(src, lengths), max_len_a=0.0, max_len_b=0)
    with pytest.raises(ValueError, match=r"must be at least 1, got 0.1 \* 7 \+ 0"):
        beam_search(model, model.encode(src, lengths), SearchConfig(max_len_a=0.1, max_len_b=0))
    with pytest.raises(ValueError, match=r"temperature must be positive, got 0.0"):
        sample(model, model.encode(src, lengths), temperature=0.0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 1.5"):
        sample(model, model.encode(src, lengths), top_p=1.5)
    with pytest.raises(ValueError, match=r"top_k must be non-negative \(0 = off\), got -1"):
        sample(model, model.encode(src, lengths), top_k=-1)
    with pytest.raises(ValueError, match=r"num_samples must be at least 1, got 0"):
        sample(model, model.encode(src, lengths), num_samples=0)
    with pytest.raises(ValueError, match=r"src_lengths must be in \[1, 7\]"):
        model.encode(src, torch.tensor([7, 0, 2]))
    assert max_lengths(torch.tensor([4, 1]), 1.5, 2) == [8, 3]
