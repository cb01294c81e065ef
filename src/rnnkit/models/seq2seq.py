r"""Encoder-decoder (sequence to sequence) models: fixed context (Sutskever) and attention.

Encoder (all variants): target and source tokens are embedded (E), and an rnnkit recurrent layer
(fused backend, ``lengths``, optionally bidirectional) reads the source::

    h_1 .. h_S = Encoder(emb(x_1) .. emb(x_S))          states (B, S, De),  De = D * He
    s_0 = tanh(W_b h_T + b_b)   per layer               (B, H); identity if De = H

``h_T`` is the encoder's final state at each source's real end (for a bidirectional encoder the
forward state at the end next to the backward state at the start). The bridge ``W_b`` is a
Linear + tanh used when De != H (a bidirectional encoder with He = H); the LSTM's memory cell gets its
own bridge. With ``reverse_source`` each source is fed backwards (Sutskever et al., 2014); the
encoder states are put back in source order, so attention weights always index the source as
given.

Decoder, one step (y_{t-1} the previous target token, e_t = emb(y_{t-1}), (B, E)):

``attention="none"`` (fixed context, Sutskever/Cho): the context is the same at every step,
``c = h_T`` (B, De)::

    s_t = g([e_t; c], s_{t-1})

``attention="additive"`` (Bahdanau et al., 2015): the query is the previous state s_{t-1}::

    e_{t,i} = v^T tanh(W s_{t-1} + U h_i)       U h_i projected once per source (B, S, Ha)
    a_t     = softmax(e_t) over real source tokens                                (B, S)
    c_t     = sum_i a_{t,i} h_i                                                   (B, De)
    s_t     = g([e_t; c_t], s_{t-1})

``attention="dot" | "general"`` (Luong et al., 2015) with input feeding: the query is the *new*
state s_t, and the previous step's attentional vector o_{t-1} (zeros at t = 1) is fed back in::

    s_t  = g([e_t; o_{t-1}], s_{t-1})
    e_{t,i} = s_t^T h_i  (dot)   or   s_t^T W h_i  (general, W h_i projected once per source)
    a_t, c_t as above

Output (all variants), a "deep output" over the state, the context and the previous token, of size
E so the output matrix can share the target embedding (``tie_embeddings``)::

    o_t = tanh(W_s s_t + W_c c_t + W_e e_t + b_o)       (B, E)
    logits_t = W_out o_t + b_out                        (B, V)

``g`` is a stack of ``num_layers`` explicit cells (:class:`rnnkit.nn.LSTMCell` etc.; ``s_t`` is
the top layer's h). Everything that does not depend on the step is computed before the time loop:
the target embeddings, their share ``W_ih[:, :E] e_t + b_ih (+ b_hh)`` of the first cell's input
projection and their share ``W_e e_t + b_o`` of the output, the projected keys, and for the
fixed-context model the context's share of both. Inside the loop the first LSTM or RNN cell reads
the fed vector f_t (c_t, or o_{t-1} with input feeding) and its previous state in one matmul,
``[f_t; h_{t-1}] @ [W_ih[:, E:] | W_hh]^T``. Teacher forcing without input feeding
(``attention="none" | "additive"``) runs the output layer after the loop, on all T steps at once.
``dot`` needs De == H, i.e. a unidirectional encoder.

The API is split so that decoding algorithms reuse it: :meth:`Seq2Seq.encode` once per batch,
:meth:`Seq2Seq.decode_step` per token (greedy here, beam search elsewhere; the NamedTuples have
``index_select`` to reorder beams), :meth:`Seq2Seq.forward` for teacher forcing. ``forward``
returns logits; losses live in training code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import torch
from pydantic import ValidationInfo, field_validator, model_validator
from torch import Tensor, nn

from rnnkit import nn as rnn
from rnnkit.config import FrozenConfig
from rnnkit.nn import functional as RF
from rnnkit.nn.attention import Attention

CellKind = Literal["rnn", "lstm", "gru"]
AttentionKind = Literal["none", "additive", "dot", "general"]


class Seq2SeqConfig(FrozenConfig):
    """Architecture of a :class:`Seq2Seq` model (no optimiser settings).

    Attributes:
        cell: recurrent unit of encoder and decoder.
        embedding_size: E, size of the source and target embeddings and of the output layer's input.
        hidden_size: H, hidden units per decoder layer (and per encoder direction unless
            ``encoder_hidden_size`` is set).
        encoder_hidden_size: He, hidden units per encoder layer and direction (default H). With a
            bidirectional encoder and He = H / 2 the encoder states have the decoder's size and no
            bridge is needed (OpenNMT's ``brnn`` convention).
        num_layers: L, layers of the encoder and of the decoder.
        bidirectional_encoder: read the source in both directions (De = 2H).
        attention: ``"none"`` (fixed context), ``"additive"`` (Bahdanau), ``"dot"`` or ``"general"``
            (Luong, input feeding).
        dropout: on embeddings, between layers and before the output layer.
        tie_embeddings: share the target embedding matrix with the output matrix.
        reverse_source: feed each source backwards (Sutskever et al.).
    """

    cell: CellKind = "lstm"
    embedding_size: int = 64
    hidden_size: int = 128
    encoder_hidden_size: int | None = None
    num_layers: int = 1
    bidirectional_encoder: bool = True
    attention: AttentionKind = "additive"
    dropout: float = 0.0
    tie_embeddings: bool = False
    reverse_source: bool = False

    @field_validator("embedding_size", "hidden_size", "encoder_hidden_size", "num_layers")
    @classmethod
    def _positive(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value <= 0:
            raise ValueError(f"{info.field_name} must be positive, got {value}")
        return value

    @field_validator("dropout")
    @classmethod
    def _probability(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {value}")
        return value

    @property
    def encoder_state_size(self) -> int:
        """De, the size of one encoder state: He, or 2 He when bidirectional."""
        he = self.encoder_hidden_size or self.hidden_size
        return 2 * he if self.bidirectional_encoder else he

    @model_validator(mode="after")
    def _dot_needs_matching_sizes(self) -> Seq2SeqConfig:
        if self.attention == "dot" and self.encoder_state_size != self.hidden_size:
            raise ValueError(
                f"attention='dot' needs encoder states of the decoder's size {self.hidden_size}, "
                f"got {self.encoder_state_size}; set encoder_hidden_size (half of hidden_size "
                "for a bidirectional encoder) or use attention='general'"
            )
        return self


class DecoderState(NamedTuple):
    """The decoder's recurrent state between steps.

    Attributes:
        hidden: (L, B, H), each layer's h; ``hidden[-1]`` is s_t.
        cell: (L, B, H), each layer's LSTM memory c; None for RNN and GRU.
        feed: (B, E), the previous attentional vector o_{t-1} (Luong input feeding); else None.
    """

    hidden: Tensor
    cell: Tensor | None
    feed: Tensor | None

    def index_select(self, index: Tensor) -> DecoderState:
        """The state of examples ``index`` (B',) in that order (to reorder or repeat beams)."""
        return DecoderState(
            self.hidden.index_select(1, index),
            None if self.cell is None else self.cell.index_select(1, index),
            None if self.feed is None else self.feed.index_select(0, index),
        )


class EncoderOutput(NamedTuple):
    """Everything the decoder needs from one batch of sources, computed once by ``encode``.

    Attributes:
        states: (B, S, De) encoder states h_i in source order, zero at padding.
        mask: (B, S) bool, True at real source tokens.
        projected_keys: (B, S, Dp) the attention's key projection (``Attention.project_keys``);
            None without attention.
        init_state: the decoder's initial state s_0.
        context: (B, De) the fixed context c = h_T (``attention="none"``); else None.
        context_gates: (B, G) the fixed context's share ``W_ih[:, E:] c`` of the first decoder
            cell's input projection; None with attention.
        context_out: (B, E) the fixed context's share ``W_c c`` of the output layer; None with
            attention.
    """

    states: Tensor
    mask: Tensor
    projected_keys: Tensor | None
    init_state: DecoderState
    context: Tensor | None
    context_gates: Tensor | None
    context_out: Tensor | None

    def index_select(self, index: Tensor) -> EncoderOutput:
        """The encoding of examples ``index`` (B',) in that order (to expand a batch into beams)."""

        def pick(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.index_select(0, index)

        return EncoderOutput(
            self.states.index_select(0, index),
            self.mask.index_select(0, index),
            pick(self.projected_keys),
            self.init_state.index_select(index),
            pick(self.context),
            pick(self.context_gates),
            pick(self.context_out),
        )


class StepResult(NamedTuple):
    """One decoder step: logits (B, V), the new state, attention weights (B, S) or None."""

    logits: Tensor
    state: DecoderState
    attention: Tensor | None


class Seq2SeqOutput(NamedTuple):
    """Teacher-forced outputs: logits (B, T, V) and attention weights (B, T, S) or None."""

    logits: Tensor
    attention: Tensor | None


class _FirstWeights(NamedTuple):
    """The first decoder cell's weights for each step (:meth:`Seq2Seq._first_weights`).

    Attributes:
        feed: (G, Df) ``W_ih[:, E:]``, for the fed vector.
        feed_hh: (G, Df + H) ``[W_ih[:, E:] | W_hh]`` when one matmul reads the fed vector and the
            previous state together; else None.
    """

    feed: Tensor
    feed_hh: Tensor | None


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse the first ``lengths[b]`` steps of each sequence; padding stays in place.

    Args:
        x: (B, T, ...) batch-first sequences.
        lengths: (B,) real lengths.

    Returns:
        (B, T, ...); applying it twice gives ``x`` back.
    """
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device)[None, :]  # (1, T)
    n = lengths.to(x.device)[:, None]  # (B, 1)
    index = torch.where(t < n, n - 1 - t, t)  # (B, T)
    index = index.reshape(B, T, *([1] * (x.dim() - 2))).expand_as(x)  # (B, T, ...)
    return x.gather(1, index)


def _param(module: nn.Module, name: str) -> Tensor | None:
    value = getattr(module, name, None)
    if value is not None and not isinstance(value, Tensor):
        raise TypeError(f"{type(module).__name__}.{name} is not a tensor")
    return value


def _weight(module: nn.Module, name: str) -> Tensor:
    value = _param(module, name)
    if value is None:
        raise TypeError(f"{type(module).__name__} has no {name}")
    return value


class Seq2Seq(nn.Module):
    """An RNN encoder-decoder with optional attention (equations in the module docstring).

    Args:
        config: the architecture.
        source_vocab_size: Vs, source token ids are in ``[0, Vs)``.
        target_vocab_size: V, target token ids are in ``[0, V)``; logits have V columns.
        pad_id, bos_id, eos_id: special target ids (``pad_id`` is also the source padding id).

    Example::

        model = Seq2Seq(Seq2SeqConfig(hidden_size=32), source_vocab_size=11, target_vocab_size=11)
        out = model(src, src_lengths, tgt_in)      # src (B, S), src_lengths (B,), tgt_in (B, T)
        out.logits                                 # (B, T, V)
        out.attention                              # (B, T, S)
        tokens, attention = model.greedy(src, src_lengths, max_len=20)
    """

    attention: Attention | None
    bridge: nn.Linear | None
    bridge_cell: nn.Linear | None

    def __init__(
        self,
        config: Seq2SeqConfig,
        source_vocab_size: int,
        target_vocab_size: int,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
    ) -> None:
        super().__init__()
        for name, size in (
            ("source_vocab_size", source_vocab_size),
            ("target_vocab_size", target_vocab_size),
        ):
            if size <= 0:
                raise ValueError(f"{name} must be positive, got {size}")
        for name, token in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
            if not 0 <= token < target_vocab_size:
                raise ValueError(
                    f"{name}={token} is not a target token id (target_vocab_size="
                    f"{target_vocab_size})"
                )
        if not 0 <= pad_id < source_vocab_size:
            raise ValueError(
                f"pad_id={pad_id} is not a source token id (source_vocab_size={source_vocab_size})"
            )
        if len({pad_id, bos_id, eos_id}) != 3:
            raise ValueError(
                f"pad_id, bos_id and eos_id must differ, got {pad_id}, {bos_id}, {eos_id}"
            )
        self.config = config
        self.source_vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

        E, H, L = config.embedding_size, config.hidden_size, config.num_layers
        He = config.encoder_hidden_size or H
        De = config.encoder_state_size
        luong = config.attention in ("dot", "general")
        feed_size = E if luong else De  # what is fed next to e_t: o_{t-1}, or the context

        self.dropout = nn.Dropout(config.dropout)
        self.src_embed = nn.Embedding(source_vocab_size, E, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(target_vocab_size, E, padding_idx=pad_id)
        layer_cls = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}[config.cell]
        self.encoder = layer_cls(
            E,
            He,
            num_layers=L,
            bidirectional=config.bidirectional_encoder,
            dropout=config.dropout if L > 1 else 0.0,  # the layer's dropout is between layers
            backend="fused",
        )
        self.bridge = nn.Linear(De, H) if De != H else None
        self.bridge_cell = nn.Linear(De, H) if De != H and config.cell == "lstm" else None
        if config.attention == "none":
            self.attention = None
        elif config.attention == "additive":
            self.attention = Attention(H, De, score="additive", hidden_size=H)
        else:
            self.attention = Attention(H, De, score=config.attention)
        cell_cls = {"rnn": rnn.RNNCell, "lstm": rnn.LSTMCell, "gru": rnn.GRUCell}[config.cell]
        self.decoder_cells = nn.ModuleList(
            [cell_cls(E + feed_size if layer == 0 else H, H) for layer in range(L)]
        )
        self.out_state = nn.Linear(H, E, bias=False)  # W_s
        self.out_context = nn.Linear(De, E, bias=False)  # W_c
        self.out_embed = nn.Linear(E, E)  # W_e, b_o
        self.output = nn.Linear(E, target_vocab_size)  # W_out, b_out
        if config.tie_embeddings:
            # The tied matrix multiplies o_t in [-1, 1]^E: draw it small so first logits are small.
            nn.init.normal_(self.tgt_embed.weight, std=E**-0.5)
            with torch.no_grad():
                self.tgt_embed.weight[pad_id].zero_()
            self.output.weight = self.tgt_embed.weight

    @classmethod
    def from_config(
        cls,
        config: Seq2SeqConfig | Mapping[str, Any],
        source_vocab_size: int,
        target_vocab_size: int,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
    ) -> Seq2Seq:
        """Build from a config object or a plain mapping (validated into :class:`Seq2SeqConfig`)."""
        if not isinstance(config, Seq2SeqConfig):
            config = Seq2SeqConfig.model_validate(dict(config))
        return cls(config, source_vocab_size, target_vocab_size, pad_id, bos_id, eos_id)

    @property
    def luong(self) -> bool:
        """True for the dot/general decoders (query s_t, input feeding)."""
        return self.config.attention in ("dot", "general")

    # ----------------------------------------------------------------------------------- encoder

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encode a batch of sources once, for any number of decoder steps.

        Args:
            src: (B, S) source token ids, padded after each source's end.
            src_lengths: (B,) real lengths, each in ``[1, S]``.

        Returns:
            :class:`EncoderOutput` with states (B, S, De), mask (B, S), projected keys (B, S, Dp),
            the initial decoder state and, without attention, the fixed context (B, De).
        """
        if src.dim() != 2:
            raise ValueError(f"src must be (B, S) token ids, got shape {tuple(src.shape)}")
        B, S = src.shape
        if src_lengths.shape != (B,):
            raise ValueError(f"src_lengths must have shape ({B},), got {tuple(src_lengths.shape)}")
        if B > 0 and not bool(((src_lengths >= 1) & (src_lengths <= S)).all()):
            raise ValueError(f"src_lengths must be in [1, {S}], got {src_lengths.tolist()}")
        lengths = src_lengths.to(src.device)
        if self.config.reverse_source:
            src = reverse_padded(src, lengths)
        emb = self.dropout(self.src_embed(src))  # (B, S, E)
        states, final = self.encoder(emb, lengths=lengths)  # (B, S, De)
        if self.config.reverse_source:
            states = reverse_padded(states, lengths)  # (B, S, De), back in source order
        mask = torch.arange(S, device=src.device)[None, :] < lengths[:, None]  # (B, S)

        h_n, c_n = final if isinstance(final, tuple) else (final, None)  # (L*D, B, He)
        hidden = self._by_layer(h_n)  # (L, B, De)
        top = hidden[-1]  # (B, De), h_T of the top layer
        cell = None if c_n is None else self._by_layer(c_n)  # (L, B, De)
        if self.bridge is not None:
            hidden = torch.tanh(self.bridge(hidden))  # (L, B, H)
        if cell is not None and self.bridge_cell is not None:
            cell = torch.tanh(self.bridge_cell(cell))  # (L, B, H)
        feed = (
            torch.zeros(B, self.config.embedding_size, dtype=emb.dtype, device=emb.device)
            if self.luong
            else None
        )
        init_state = DecoderState(hidden.contiguous(), cell, feed)

        projected_keys = context = context_gates = context_out = None
        if self.attention is not None:
            projected_keys = self.attention.project_keys(states)  # (B, S, Dp)
        else:
            context = top  # (B, De), the fixed context c = h_T
            E = self.config.embedding_size
            first = self.decoder_cells[0]
            context_gates = RF.input_projection(context, _weight(first, "weight_ih")[:, E:])
            context_out = self.out_context(context)  # (B, E)
        return EncoderOutput(
            states, mask, projected_keys, init_state, context, context_gates, context_out
        )

    def _by_layer(self, state: Tensor) -> Tensor:
        """torch's (L*D, B, H) final state -> (L, B, D*H), the directions side by side."""
        D = 2 if self.config.bidirectional_encoder else 1
        LD, B, H = state.shape
        return state.reshape(LD // D, D, B, H).permute(0, 2, 1, 3).reshape(LD // D, B, D * H)

    # ----------------------------------------------------------------------------------- decoder

    def _fold_hh_bias(self) -> bool:
        """True if the first cell's ``b_hh`` can join ``b_ih`` before the loop (LSTM, RNN).

        The GRU's ``b_hn`` sits inside the reset gate's product, so it stays in the cell.
        """
        return self.config.cell != "gru"

    def _step_terms(self, emb: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor]:
        """The step's terms known before the step, for one step (B, E) or all steps (B, T, E).

        Returns:
            gates: (B, [T,] G) ``W_ih[:, :E] e_t + b_ih`` of the first decoder cell, plus its
            ``b_hh`` (LSTM, RNN) and the fixed context's share.
            out: (B, [T,] E) ``W_e e_t + b_o`` (plus the fixed context's share ``W_c c``).
        """
        E = self.config.embedding_size
        first = self.decoder_cells[0]
        bias = _param(first, "bias_ih")
        b_hh = _param(first, "bias_hh")
        if self._fold_hh_bias() and b_hh is not None:
            bias = b_hh if bias is None else bias + b_hh  # (G,)
        gates = RF.input_projection(emb, _weight(first, "weight_ih")[:, :E], bias)  # (B, [T,] G)
        out = self.out_embed(emb)  # (B, [T,] E)
        if enc.context_gates is not None and enc.context_out is not None:
            if emb.dim() == 3:
                gates = gates + enc.context_gates[:, None]  # (B, T, G)
                out = out + enc.context_out[:, None]  # (B, T, E)
            else:
                gates = gates + enc.context_gates  # (B, G)
                out = out + enc.context_out  # (B, E)
        return gates, out

    def _first_weights(self, fuse: bool) -> _FirstWeights:
        """The first cell's weights for what it reads at each step, sliced once per call.

        The first cell adds ``W_ih[:, E:] f_t + W_hh h_{t-1}`` to its precomputed gates (f_t the
        fed vector: the attention context c_t, or o_{t-1} with input feeding). With ``fuse`` (a
        teacher-forced sequence, many steps) an LSTM or RNN with a fed vector does that in one
        matmul ``[f_t; h_{t-1}] @ [W_ih[:, E:] | W_hh]^T``; the concatenated weight is built
        here, once. A single step (``decode_step``) does not pay for building it.
        """
        first = self.decoder_cells[0]
        feed = _weight(first, "weight_ih")[:, self.config.embedding_size :]  # (G, Df)
        if fuse and self._fold_hh_bias() and self.config.attention != "none":
            feed_hh = torch.cat([feed, _weight(first, "weight_hh")], dim=1)  # (G, Df + H)
            return _FirstWeights(feed, feed_hh)
        return _FirstWeights(feed, None)

    def _first_cell(
        self, gates: Tensor, feed: Tensor | None, h: Tensor, c: Tensor | None, w: _FirstWeights
    ) -> tuple[Tensor, Tensor | None]:
        """One step of the first decoder layer: (h, c) (B, H).

        Args:
            gates: (B, G) the step's precomputed terms (:meth:`_step_terms`).
            feed: (B, Df) the fed vector f_t, or None (fixed context).
            h, c: (B, H) the layer's previous state (c None for RNN and GRU).
            w: :meth:`_first_weights`.
        """
        cell = self.decoder_cells[0]
        w_hh = _weight(cell, "weight_hh")
        b_hh = None if self._fold_hh_bias() else _param(cell, "bias_hh")  # else already in gates
        if feed is not None and w.feed_hh is not None:
            # the cell's "recurrent" matmul reads [f_t; h_{t-1}] with [W_ih[:, E:] | W_hh]
            h_in, w_hh = torch.cat([feed, h], dim=1), w.feed_hh  # (B, Df + H), (G, Df + H)
        else:
            h_in = h
            if feed is not None:
                gates = torch.addmm(gates, feed, w.feed.t())  # (B, G)
        if self.config.cell == "lstm":
            assert c is not None
            return RF.lstm_cell(gates, h_in, c, w_hh, b_hh)
        if self.config.cell == "gru":
            return RF.gru_cell(gates, h_in, w_hh, b_hh), None
        return RF.rnn_cell(gates, h_in, w_hh, b_hh), None

    def _cell(
        self, layer: int, gates_x: Tensor, h: Tensor, c: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """One step of decoder layer ``layer`` > 0 from its input projection (B, G): (h, c) (B, H)."""
        cell = self.decoder_cells[layer]
        w_hh, b_hh = _weight(cell, "weight_hh"), _param(cell, "bias_hh")
        if self.config.cell == "lstm":
            assert c is not None
            return RF.lstm_cell(gates_x, h, c, w_hh, b_hh)
        if self.config.cell == "gru":
            return RF.gru_cell(gates_x, h, w_hh, b_hh), None
        return RF.rnn_cell(gates_x, h, w_hh, b_hh), None

    def _step(
        self, gates_e: Tensor, state: DecoderState, enc: EncoderOutput, w: _FirstWeights
    ) -> tuple[Tensor, Tensor | None, DecoderState, Tensor | None]:
        """One decoder step up to the output layer, given its precomputed terms ``gates_e`` (B, G).

        ``w`` is :meth:`_first_weights`. Returns s_t (B, H), the context c_t (B, De) or None
        (fixed context), the new state (its ``feed`` not yet set) and the attention weights
        (B, S) or None. The output layer (:meth:`_output`) is left to the caller: teacher forcing
        without input feeding applies it to all steps at once.
        """
        # unbind, not [layer]: its backward is one stack, not a zero-filled (L, B, H) per layer
        h_prev = state.hidden.unbind(0)  # L x (B, H)
        c_prev: Sequence[Tensor | None] = (
            [None] * len(h_prev) if state.cell is None else state.cell.unbind(0)
        )
        weights: Tensor | None = None
        context: Tensor | None = None
        feed: Tensor | None = None
        if self.config.attention == "additive":
            assert self.attention is not None
            context, weights = self.attention(
                h_prev[-1], enc.states, mask=enc.mask, projected_keys=enc.projected_keys
            )  # (B, De), (B, S), the query is s_{t-1}
            feed = context
        elif self.luong:
            feed = state.feed  # (B, E), o_{t-1}

        hiddens, cells = [], []
        x: Tensor | None = None
        for layer in range(self.config.num_layers):
            if layer == 0:
                x, c = self._first_cell(gates_e, feed, h_prev[0], c_prev[0], w)
            else:
                assert x is not None
                cell = self.decoder_cells[layer]
                gates = RF.input_projection(
                    self.dropout(x), _weight(cell, "weight_ih"), _param(cell, "bias_ih")
                )  # (B, G)
                x, c = self._cell(layer, gates, h_prev[layer], c_prev[layer])  # (B, H)
            hiddens.append(x)
            cells.append(c)
        assert x is not None
        s = x  # (B, H), s_t

        if self.luong:
            assert self.attention is not None
            context, weights = self.attention(
                s, enc.states, mask=enc.mask, projected_keys=enc.projected_keys
            )  # (B, De), (B, S), the query is s_t
        new_state = DecoderState(
            torch.stack(hiddens),  # (L, B, H)
            None if state.cell is None else torch.stack([c for c in cells if c is not None]),
            None,
        )
        return s, context, new_state, weights

    def _output(self, s: Tensor, context: Tensor | None, out_e: Tensor) -> Tensor:
        """The output vector ``o = dropout(tanh(W_s s + W_c c + out_e))``, (B, [T,] E).

        ``s`` (B, [T,] H), ``context`` (B, [T,] De) or None (its share is then in ``out_e``),
        ``out_e`` (B, [T,] E) from :meth:`_step_terms`.
        """
        pre = self.out_state(s) + out_e  # (B, [T,] E)
        if context is not None:
            pre = pre + self.out_context(context)  # (B, [T,] E)
        o: Tensor = self.dropout(torch.tanh(pre))  # (B, [T,] E)
        return o

    def decode_step(
        self, prev_tokens: Tensor, dec_state: DecoderState, enc: EncoderOutput
    ) -> StepResult:
        """One decoder step.

        Args:
            prev_tokens: (B,) the previous target tokens y_{t-1} (``bos_id`` at the first step).
            dec_state: the state after the previous step (``enc.init_state`` at the first step).
            enc: the batch's :meth:`encode` output.

        Returns:
            :class:`StepResult`: logits (B, V), the new state, attention weights (B, S) or None.
        """
        B = enc.states.shape[0]
        if prev_tokens.shape != (B,):
            raise ValueError(f"prev_tokens must have shape ({B},), got {tuple(prev_tokens.shape)}")
        return self._token_step(prev_tokens, dec_state, enc, self._first_weights(fuse=False))

    def _token_step(
        self, prev_tokens: Tensor, state: DecoderState, enc: EncoderOutput, w: _FirstWeights
    ) -> StepResult:
        """:meth:`decode_step` without the checks, with the first cell's weights ``w`` given."""
        emb = self.dropout(self.tgt_embed(prev_tokens))  # (B, E)
        gates_e, out_e = self._step_terms(emb, enc)  # (B, G), (B, E)
        s, context, state, weights = self._step(gates_e, state, enc, w)
        o = self._output(s, context, out_e)  # (B, E)
        if self.luong:
            state = state._replace(feed=o)
        return StepResult(self.output(o), state, weights)  # logits (B, V)

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, sampling_rate: float = 0.0
    ) -> Seq2SeqOutput:
        """Teacher forcing: decode ``tgt_in`` given the source, all steps in one call.

        With ``sampling_rate`` p > 0 (scheduled sampling, Bengio et al. 2015), the input at each
        step t > 1 is, independently per sentence with probability p, a token drawn from the
        model's own distribution at step t - 1 instead of the reference ``tgt_in[:, t]``; the
        draw is not differentiated through.

        Args:
            src: (B, S) source token ids.
            src_lengths: (B,) real source lengths.
            tgt_in: (B, T) decoder inputs (``bos_id`` then the target); padding after a target's
                end does not change the logits before it.
            sampling_rate: p in [0, 1], the probability of feeding back a model sample.

        Returns:
            :class:`Seq2SeqOutput`: logits (B, T, V) and attention (B, T, S) or None.
        """
        enc = self.encode(src, src_lengths)
        if tgt_in.dim() != 2 or tgt_in.shape[0] != src.shape[0] or tgt_in.shape[1] == 0:
            raise ValueError(
                f"tgt_in must be (B, T) with the source's B={src.shape[0]} and T >= 1, got shape "
                f"{tuple(tgt_in.shape)}"
            )
        if not 0.0 <= sampling_rate <= 1.0:
            raise ValueError(f"sampling_rate must be in [0, 1], got {sampling_rate}")
        if sampling_rate > 0.0:
            return self._forward_sampled(enc, tgt_in, sampling_rate)
        emb = self.dropout(self.tgt_embed(tgt_in))  # (B, T, E)
        gates_e, out_e = self._step_terms(emb, enc)  # (B, T, G), (B, T, E)
        w = self._first_weights(fuse=True)
        state = enc.init_state
        states, contexts, outputs, attention = [], [], [], []
        # unbind, not [:, t]: its backward stacks the T step gradients once instead of adding T
        # zero-padded (B, T, G) tensors
        for gates_t, out_t in zip(gates_e.unbind(1), out_e.unbind(1), strict=True):
            s, context, state, weights = self._step(gates_t, state, enc, w)
            if self.luong:  # o_t is fed to the next step: the output layer runs in the loop
                assert context is not None
                o = self._output(s, context, out_t)  # (B, E)
                outputs.append(o)
                state = state._replace(feed=o)
            else:  # o_t feeds nothing: the output layer runs once, on all steps, below
                states.append(s)  # (B, H)
                if context is not None:
                    contexts.append(context)  # (B, De)
            if weights is not None:
                attention.append(weights)  # (B, S)
        if self.luong:
            o_all = torch.stack(outputs, dim=1)  # (B, T, E)
        else:
            o_all = self._output(
                torch.stack(states, dim=1),  # (B, T, H)
                torch.stack(contexts, dim=1) if contexts else None,  # (B, T, De)
                out_e,
            )  # (B, T, E)
        return Seq2SeqOutput(
            self.output(o_all),  # (B, T, V)
            torch.stack(attention, dim=1) if attention else None,  # (B, T, S)
        )

    def _forward_sampled(self, enc: EncoderOutput, tgt_in: Tensor, rate: float) -> Seq2SeqOutput:
        """:meth:`forward` with scheduled sampling: step by step, mixing in the model's samples."""
        state = enc.init_state
        w = self._first_weights(fuse=True)  # once for all steps
        prev = tgt_in[:, 0]  # (B,)
        logits: list[Tensor] = []
        attention: list[Tensor] = []
        for t in range(tgt_in.shape[1]):
            if t > 0:
                with torch.no_grad():
                    probs = torch.softmax(logits[-1].float(), dim=-1)  # (B, V)
                    sampled = torch.multinomial(probs, 1).squeeze(1)  # (B,)
                    use = torch.rand(prev.shape, device=prev.device) < rate  # (B,)
                prev = torch.where(use, sampled, tgt_in[:, t])  # (B,)
            step = self._token_step(prev, state, enc, w)
            logits.append(step.logits)  # (B, V)
            if step.attention is not None:
                attention.append(step.attention)  # (B, S)
            state = step.state
        return Seq2SeqOutput(
            torch.stack(logits, dim=1),  # (B, T, V)
            torch.stack(attention, dim=1) if attention else None,  # (B, T, S)
        )

    @torch.no_grad()
    def greedy(
        self, src: Tensor, src_lengths: Tensor, max_len: int
    ) -> tuple[Tensor, Tensor | None]:
        """Greedy decoding (no gradients): at each step feed back the most likely token.

        Args:
            src: (B, S) source token ids.
            src_lengths: (B,) real source lengths.
            max_len: the most target tokens to produce, eos included.

        Returns:
            tokens: (B, T') with T' <= max_len; each row ends with ``eos_id`` followed by
            ``pad_id`` (a row that reached ``max_len`` without eos has none). Decoding stops when
            every row has produced eos.
            attention: (B, T', S) weights of each produced token (zero after eos), or None.
        """
        if max_len < 1:
            raise ValueError(f"max_len must be at least 1, got {max_len}")
        enc = self.encode(src, src_lengths)
        B = src.shape[0]
        prev = torch.full((B,), self.bos_id, dtype=torch.long, device=src.device)  # (B,)
        finished = torch.zeros(B, dtype=torch.bool, device=src.device)  # (B,)
        state = enc.init_state
        tokens, attention = [], []
        for _ in range(max_len):
            step = self.decode_step(prev, state, enc)
            token = step.logits.argmax(dim=-1).masked_fill(finished, self.pad_id)  # (B,)
            tokens.append(token)
            if step.attention is not None:
                attention.append(step.attention.masked_fill(finished[:, None], 0.0))  # (B, S)
            finished = finished | (token == self.eos_id)
            prev, state = token, step.state
            if bool(finished.all()):
                break
        return (
            torch.stack(tokens, dim=1),  # (B, T')
            torch.stack(attention, dim=1) if attention else None,  # (B, T', S)
        )
