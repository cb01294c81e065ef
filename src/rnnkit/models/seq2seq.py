r"""Encoder-decoder (sequence to sequence) models: fixed context (Sutskever) and attention.

Encoder (all variants): source tokens are embedded (E), and an rnnkit recurrent layer (fused
backend, ``lengths``, optionally bidirectional) reads the source::

    h_1 .. h_S = Encoder(emb(x_1) .. emb(x_S))          states (B, S, De),  De = D * He
    s_0 = tanh(W_b h_T + b_b)   per layer               (B, H); identity if De = H

``h_T`` is the encoder's final state at each source's real end (for a bidirectional encoder the
forward state at the end next to the backward state at the start). The bridge ``W_b`` is a
Linear + tanh used when De != H; the LSTM's memory cell gets its own bridge. With
``reverse_source`` each source is fed backwards (Sutskever et al., 2014); the encoder states are
put back in source order, so attention weights always index the source as given.

Decoder: one step ``s_t = g(y_{t-1}, s_{t-1}, c_t)``, ``x_t = emb(y_{t-1})`` (B, E), written out
in the lecture's letters in :mod:`rnnkit.nn.decoder` (the reference this model is tested against):
fixed context ``c = h_T`` (``attention="none"``); Bahdanau (``"additive"``,
``e_{t,i} = v^T tanh(W s_{t-1} + U h_i)``, ``a_t = softmax(e_t)``, ``c_t = sum_i a_{t,i} h_i``,
``s_t = g([x_t; c_t], s_{t-1})``); Luong (``"dot"``, ``"general"``) with input feeding
(``s_t = g([x_t; o_{t-1}], s_{t-1})``, then ``e_{t,i} = s_t^T h_i`` or ``s_t^T W_a h_i``). Then
``o_t = tanh(W_s s_t + W_c c_t + W_e x_t + b_o)`` (size E, so the output matrix can share the target
embedding, ``tie_embeddings``) and ``logits_t = W_out o_t + b_out``. ``g`` is a stack of
``num_layers`` cells; ``dot`` needs De == H.

The fast path (``forward``, ``step``) hoists everything that does not depend on the step out of the
time loop: the projected keys ``U h_i`` and the fixed context's terms (once per source, in
``encode``), the embeddings' share ``W_ih[:, :E] x_t + b`` of the first cell's gates and
``W_e x_t + b_o`` of the output (once per call, for all T steps). In the loop the first LSTM or RNN
cell reads the fed vector f_t (c_t, or o_{t-1}) and h_{t-1} in one matmul with
``[W_ih[:, E:] | W_hh]``. Without input feeding the output layer runs after the loop, on all steps.

The API is the decoder protocol of :mod:`rnnkit.decoding`: :meth:`Seq2Seq.encode` once per batch
(the memory, :class:`EncoderOutput`), :meth:`Seq2Seq.step` once per token (log-probabilities, the
new state, the attention weights; memory and state reorder by ``index_select``), and
:meth:`Seq2Seq.forward` for teacher forcing (logits; losses live in training code).

Length: about 660 lines, for one model read top to bottom: its config, its memory and step types,
the encoder, the fast decoder step and teacher forcing (with scheduled sampling and the choice of
the fused loop). What can live elsewhere does: the plain step is in :mod:`rnnkit.nn.decoder`, the
fused teacher-forced loop in :mod:`rnnkit.nn.fused_decoder`, the layers in :mod:`rnnkit.nn`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, cast

import torch
import torch.nn.functional as F
from pydantic import ValidationInfo, field_validator, model_validator
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.nn.attention import Attention
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.decoder import DecoderLayers, DecoderState
from rnnkit.nn.factory import make_cell, make_layer
from rnnkit.nn.functional import CellKind, State, cell_step
from rnnkit.nn.fused_decoder import bahdanau_lstm_loop
from rnnkit.nn.padding import length_mask, reverse_padded

AttentionKind = Literal["none", "additive", "dot", "general"]

__all__ = [
    "AttentionKind",
    "DecoderState",
    "EncoderOutput",
    "Seq2Seq",
    "Seq2SeqConfig",
    "Seq2SeqOutput",
    "StepResult",
]


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


class EncoderOutput(NamedTuple):
    """The memory: everything the decoder needs from one batch of sources, computed by ``encode``.

    Attributes:
        states: (B, S, De) the encoder states h_i in source order, zero at padding.
        mask: (B, S) bool, True at real source tokens.
        lengths: (B,) long, the real source lengths.
        init_state: the decoder's initial state s_0.
        projected_keys: (B, S, Dp) the keys' share of the score (``U h_i + b`` or ``W_a h_i``,
            :meth:`Attention.project_keys`); None without attention.
        context: (B, De) the fixed context c = h_T (``attention="none"``); else None.
        context_gates: (B, G) the fixed context's share ``W_ih[:, E:] c`` of the first decoder
            cell's input projection; None with attention.
        context_out: (B, E) the fixed context's share ``W_c c`` of the output; None with attention.
    """

    states: Tensor
    mask: Tensor
    lengths: Tensor
    init_state: DecoderState
    projected_keys: Tensor | None
    context: Tensor | None
    context_gates: Tensor | None
    context_out: Tensor | None

    def index_select(self, rows: Tensor) -> EncoderOutput:
        """The memory of rows ``rows`` (N',) in that order (to expand a batch into beams)."""

        def pick(t: Tensor | DecoderState | None) -> Tensor | DecoderState | None:
            if isinstance(t, Tensor):
                return t.index_select(0, rows)  # every tensor field is per row, on dim 0
            return None if t is None else t.index_select(rows)

        return EncoderOutput._make(pick(t) for t in self)


class StepResult(NamedTuple):
    """One decoder step for N rows.

    Attributes:
        log_probs: (N, V) ``log_softmax`` of the logits, in float32 or wider.
        state: the decoder state after the step.
        attention: (N, S) the weights a_t over the source, or None (``attention="none"``).
    """

    log_probs: Tensor
    state: DecoderState
    attention: Tensor | None


class Seq2SeqOutput(NamedTuple):
    """Teacher-forced outputs: logits (B, T, V) and attention weights (B, T, S) or None."""

    logits: Tensor
    attention: Tensor | None


class _Hoisted(NamedTuple):
    """What the steps of one call share, computed before the time loop (:meth:`Seq2Seq._hoist`).

    Attributes:
        gates: (B, [T,] G) the first cell's gates known before the step: ``W_ih[:, :E] x_t + b_ih``,
            plus ``b_hh`` (LSTM, RNN) and the fixed context's share ``W_ih[:, E:] c``.
        out: (B, [T,] E) the output's terms known before the step: ``W_e x_t + b_o`` (+ ``W_c c``).
        w_feed: (G, Df) ``W_ih[:, E:]``, the first cell's weight for the fed vector f_t.
        w_hh: (G, H) the first cell's ``W_hh``, or (G, Df + H) ``[W_ih[:, E:] | W_hh]`` when
            ``fused``: then one matmul reads ``[f_t; h_{t-1}]``.
        b_hh: (G,) the first GRU cell's ``b_hh`` (its ``b_hn`` sits inside the reset gate's
            product, so it stays in the cell); None when folded into ``gates``.
        fused: whether ``w_hh`` is the concatenated weight.
    """

    gates: Tensor
    out: Tensor
    w_feed: Tensor
    w_hh: Tensor
    b_hh: Tensor | None
    fused: bool


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
        memory = model.encode(src, src_lengths)
        hypotheses = rnnkit.decoding.greedy_search(model.eval(), memory)
    """

    attention: Attention | None
    bridge: nn.Linear | None
    bridge_cell: nn.Linear | None
    fused_loop: bool = True
    """Teacher-force one LSTM layer with additive attention through the fused loop (False: the
    step-by-step fast path, for comparison)."""

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
        feed_size = E if self.luong else De  # what is fed next to x_t: o_{t-1}, or the context

        self.dropout = nn.Dropout(config.dropout)
        self.src_embed = nn.Embedding(source_vocab_size, E, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(target_vocab_size, E, padding_idx=pad_id)
        self.encoder = make_layer(
            config.cell,
            E,
            He,
            num_layers=L,
            bidirectional=config.bidirectional_encoder,
            dropout=config.dropout if L > 1 else 0.0,  # the layer's dropout is between layers
        )
        self.bridge = nn.Linear(De, H) if De != H else None
        self.bridge_cell = nn.Linear(De, H) if De != H and config.cell == "lstm" else None
        if config.attention == "none":
            self.attention = None
        elif config.attention == "additive":
            self.attention = Attention(H, De, score="additive", hidden_size=H)
        else:
            self.attention = Attention(H, De, score=config.attention)
        self.decoder_cells = nn.ModuleList(
            [make_cell(config.cell, E + feed_size if layer == 0 else H, H) for layer in range(L)]
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

    def _cell(self, layer: int) -> RNNCell | LSTMCell | GRUCell:
        return cast(RNNCell | LSTMCell | GRUCell, self.decoder_cells[layer])

    @property
    def decoder_layers(self) -> DecoderLayers:
        """The decoder's modules, as the reference step of :mod:`rnnkit.nn.decoder` reads them."""
        return DecoderLayers(
            list(self.decoder_cells),
            self.attention,
            self.out_state,
            self.out_context,
            self.out_embed,
            self.output,
            self.dropout,
        )

    # ----------------------------------------------------------------------------------- encoder

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encode a batch of sources once, for any number of decoder steps.

        The lengths are checked here, once per batch (one host sync): every source has a real
        token, so the attention's mask needs no check at each step.

        Args:
            src: (B, S) source token ids, padded after each source's end.
            src_lengths: (B,) real lengths, each in ``[1, S]``.

        Returns:
            :class:`EncoderOutput` with states (B, S, De), mask (B, S), lengths (B,), the initial
            decoder state, projected keys (B, S, Dp) and, without attention, the fixed context.
        """
        if src.dim() != 2:
            raise ValueError(f"src must be (B, S) token ids, got shape {tuple(src.shape)}")
        B, S = src.shape
        if src_lengths.shape != (B,):
            raise ValueError(f"src_lengths must have shape ({B},), got {tuple(src_lengths.shape)}")
        if B > 0 and not bool(((src_lengths >= 1) & (src_lengths <= S)).all()):
            raise ValueError(f"src_lengths must be in [1, {S}], got {src_lengths.tolist()}")
        lengths = src_lengths.to(device=src.device, dtype=torch.long)  # (B,)
        if self.config.reverse_source:
            src = reverse_padded(src, lengths)
        emb = self.dropout(self.src_embed(src))  # (B, S, E)
        states, final = self.encoder(emb, lengths=lengths)  # (B, S, De)
        if self.config.reverse_source:
            states = reverse_padded(states, lengths)  # (B, S, De), back in source order

        h_n, c_n = final if isinstance(final, tuple) else (final, None)  # (L*D, B, He)
        hidden = self._by_layer(h_n)  # (L, B, De)
        top = hidden[-1]  # (B, De), h_T of the top layer
        cell = None if c_n is None else self._by_layer(c_n)  # (L, B, De)
        if self.bridge is not None:
            hidden = torch.tanh(self.bridge(hidden))  # (L, B, H)
        if cell is not None and self.bridge_cell is not None:
            cell = torch.tanh(self.bridge_cell(cell))  # (L, B, H)
        feed = emb.new_zeros(B, self.config.embedding_size) if self.luong else None  # o_0
        init_state = DecoderState(hidden.contiguous(), cell, feed)

        projected_keys = context = context_gates = context_out = None
        if self.attention is not None:
            projected_keys = self.attention.project_keys(states)  # (B, S, Dp)
        else:
            context = top  # (B, De), the fixed context c = h_T
            w_feed = self._cell(0).weight_ih[:, self.config.embedding_size :]  # (G, De)
            context_gates = F.linear(context, w_feed)  # (B, G)
            context_out = self.out_context(context)  # (B, E)
        mask = length_mask(lengths, S)  # (B, S)
        return EncoderOutput(
            states, mask, lengths, init_state, projected_keys, context, context_gates, context_out
        )

    def _by_layer(self, state: Tensor) -> Tensor:
        """torch's (L*D, B, H) final state -> (L, B, D*H), the directions side by side."""
        D = 2 if self.config.bidirectional_encoder else 1
        LD, B, H = state.shape
        return state.reshape(LD // D, D, B, H).permute(0, 2, 1, 3).reshape(LD // D, B, D * H)

    # ------------------------------------------------------------------------------ one step

    def step(self, tokens: Tensor, state: DecoderState, memory: EncoderOutput) -> StepResult:
        """One decoder step for N rows (the decoder protocol of :mod:`rnnkit.decoding`).

        Args:
            tokens: (N,) the previous target tokens y_{t-1} (``bos_id`` at the first step).
            state: the state after the previous step (``memory.init_state`` at the first step).
            memory: :meth:`encode`'s output for these N rows.

        Returns:
            :class:`StepResult`: log-probabilities (N, V) in float32 or wider, the new state and
            the attention weights (N, S) or None.
        """
        N = memory.states.shape[0]
        if tokens.shape != (N,):
            raise ValueError(f"tokens must have shape ({N},), got {tuple(tokens.shape)}")
        logits, state, a_t = self._decode(tokens, state, memory)
        wide = torch.promote_types(logits.dtype, torch.float32)
        return StepResult(torch.log_softmax(logits, dim=-1, dtype=wide), state, a_t)

    def _decode(
        self, tokens: Tensor, state: DecoderState, memory: EncoderOutput
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One step from tokens (N,): logits (N, V), the new state, a_t (N, S) or None."""
        x_t = self.dropout(self.tgt_embed(tokens))  # (N, E), x_t = emb(y_{t-1})
        hoisted = self._hoist(x_t, memory, fuse=False)
        s_t, c_t, state, a_t = self._step(hoisted.gates, state, memory, hoisted)
        o_t = self._output(s_t, c_t, hoisted.out)  # (N, E)
        if self.luong:
            state = state._replace(feed=o_t)
        return self.output(o_t), state, a_t

    def _hoist(self, x: Tensor, memory: EncoderOutput, fuse: bool) -> _Hoisted:
        """The terms of one step (x (B, E)) or of all steps (x (B, T, E)) known before the loop.

        With ``fuse`` (teacher forcing: many steps) an LSTM or RNN with a fed vector gets the
        concatenated weight ``[W_ih[:, E:] | W_hh]``, built here once per call.
        """
        E = self.config.embedding_size
        first = self._cell(0)
        w_ih, w_hh = first.weight_ih, first.weight_hh  # (G, E + Df), (G, H)
        b_ih: Tensor | None = first.bias_ih  # (G,) or None
        b_hh: Tensor | None = first.bias_hh
        fold = self.config.cell != "gru"  # b_ih + b_hh is a plain sum, except in the GRU
        if fold and b_hh is not None:
            b_ih, b_hh = (b_hh if b_ih is None else b_ih + b_hh), None  # (G,)
        gates = F.linear(x, w_ih[:, :E], b_ih)  # (B, [T,] G)
        out = self.out_embed(x)  # (B, [T,] E)
        if memory.context_gates is not None and memory.context_out is not None:
            per_step = (slice(None), None) if x.dim() == 3 else (slice(None),)
            gates = gates + memory.context_gates[per_step]  # (B, [T,] G)
            out = out + memory.context_out[per_step]  # (B, [T,] E)
        w_feed = w_ih[:, E:]  # (G, Df)
        fused = fuse and fold and self.config.attention != "none"
        w_rec = torch.cat([w_feed, w_hh], dim=1) if fused else w_hh  # (G, Df + H) or (G, H)
        return _Hoisted(gates, out, w_feed, w_rec, b_hh, fused)

    def _step(
        self, gates: Tensor, state: DecoderState, memory: EncoderOutput, hoisted: _Hoisted
    ) -> tuple[Tensor, Tensor | None, DecoderState, Tensor | None]:
        """One step up to the output layer: ``s_t = g(y_{t-1}, s_{t-1}, c_t)``, the fast way.

        Args:
            gates: (B, G) this step's slice of ``hoisted.gates``.
            state: s_{t-1} and the rest of the previous state.
            memory: the encoded sources.
            hoisted: :meth:`_hoist`.

        Returns:
            s_t (B, H); c_t (B, De), or None for the fixed context (its share is in ``hoisted``);
            the new state (``feed`` not yet set); a_t (B, S) or None.
        """
        # unbind, not [layer]: its backward is one stack, not a zero-filled (L, B, H) per layer
        h_prev = state.hidden.unbind(0)  # L x (B, H)
        c_prev = None if state.cell is None else state.cell.unbind(0)  # L x (B, H)

        def prev(layer: int, h: Tensor) -> State:  # the cell state tuple (h,) or (h, c)
            return (h,) if c_prev is None else (h, c_prev[layer])

        def attend(s: Tensor) -> tuple[Tensor, Tensor]:  # c (B, De), a (B, S), keys hoisted
            assert self.attention is not None
            h, mask, keys = memory.states, memory.mask, memory.projected_keys
            context, weights = self.attention(s, h, mask=mask, projected_keys=keys)
            return context, weights

        # 1. Bahdanau attends from s_{t-1}; Luong feeds o_{t-1}; the fixed context is in gates
        c_t = a_t = f_t = None
        if self.config.attention == "additive":
            c_t, a_t = attend(h_prev[-1])  # the query is s_{t-1}
            f_t = c_t
        elif self.luong:
            f_t = state.feed  # (B, E)

        # 2. the first layer: gates + W_ih[:, E:] f_t + W_hh h_{t-1} (one matmul when fused)
        h_in = h_prev[0]
        if f_t is not None and hoisted.fused:
            h_in = torch.cat([f_t, h_in], dim=1)  # (B, Df + H), read by [W_ih[:, E:] | W_hh]
        elif f_t is not None:
            gates = torch.addmm(gates, f_t, hoisted.w_feed.t())  # (B, G)
        cell = self.config.cell
        new = [cell_step(cell, gates, prev(0, h_in), hoisted.w_hh, hoisted.b_hh)]

        # 3. the layers above read the new h below them
        for layer in range(1, self.config.num_layers):
            w = self._cell(layer)
            gates_l = F.linear(self.dropout(new[-1][0]), w.weight_ih, w.bias_ih)  # (B, G)
            new.append(cell_step(cell, gates_l, prev(layer, h_prev[layer]), w.weight_hh, w.bias_hh))
        s_t = new[-1][0]  # (B, H)

        # 4. Luong attends from the new state s_t
        if self.luong:
            c_t, a_t = attend(s_t)  # the query is s_t
        new_state = DecoderState(
            torch.stack([n[0] for n in new]),  # (L, B, H)
            None if c_prev is None else torch.stack([n[1] for n in new]),  # (L, B, H)
            None,
        )
        return s_t, c_t, new_state, a_t

    def _output(self, s: Tensor, c: Tensor | None, out: Tensor) -> Tensor:
        """``o = dropout(tanh(W_s s + W_c c + out))``, (B, [T,] E), ``out`` from :meth:`_hoist`.

        ``s`` (B, [T,] H); ``c`` (B, [T,] De), or None when its share is already in ``out``.
        """
        pre = self.out_state(s) + out  # (B, [T,] E)
        if c is not None:
            pre = pre + self.out_context(c)  # (B, [T,] E)
        o: Tensor = self.dropout(torch.tanh(pre))  # (B, [T,] E)
        return o

    # -------------------------------------------------------------------------- teacher forcing

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, sampling_rate: float = 0.0
    ) -> Seq2SeqOutput:
        """Teacher forcing: decode ``tgt_in`` given the source, all steps in one call.

        With ``sampling_rate`` p > 0 (scheduled sampling, Bengio et al. 2015), the input at each
        step t > 1 is, independently per sentence with probability p, a token drawn from the
        model's own distribution at step t - 1 instead of the reference ``tgt_in[:, t]``; the
        draw is not differentiated through and never yields ``pad_id`` or ``bos_id`` (decoding
        never produces them).

        Args:
            src: (B, S) source token ids.
            src_lengths: (B,) real source lengths.
            tgt_in: (B, T) decoder inputs (``bos_id`` then the target); padding after a target's
                end does not change the logits before it.
            sampling_rate: p in [0, 1], the probability of feeding back a model sample.

        Returns:
            :class:`Seq2SeqOutput`: logits (B, T, V) and attention (B, T, S) or None.
        """
        memory = self.encode(src, src_lengths)
        if tgt_in.dim() != 2 or tgt_in.shape[0] != src.shape[0] or tgt_in.shape[1] == 0:
            raise ValueError(
                f"tgt_in must be (B, T) with the source's B={src.shape[0]} and T >= 1, got shape "
                f"{tuple(tgt_in.shape)}"
            )
        if not 0.0 <= sampling_rate <= 1.0:
            raise ValueError(f"sampling_rate must be in [0, 1], got {sampling_rate}")
        if sampling_rate > 0.0:
            return self._forward_sampled(memory, tgt_in, sampling_rate)
        x = self.dropout(self.tgt_embed(tgt_in))  # (B, T, E), x_t = emb(y_{t-1})
        hoisted = self._hoist(x, memory, fuse=True)
        state = memory.init_state
        if self._loop_fusable(x):  # one LSTM layer with additive attention: the fused loop
            assert self.attention is not None and state.cell is not None
            assert self.attention.query_proj is not None and self.attention.v is not None
            assert memory.projected_keys is not None
            s_all, c_all, a_all = bahdanau_lstm_loop(
                hoisted.gates,
                state.hidden[0],
                state.cell[0],
                memory.projected_keys,
                memory.states,
                memory.mask,
                self.attention.query_proj.weight,
                self.attention.v.weight,
                hoisted.w_hh,
            )  # (B, T, H), (B, T, De), (B, T, S)
            return Seq2SeqOutput(self.output(self._output(s_all, c_all, hoisted.out)), a_all)
        states: list[Tensor] = []
        contexts: list[Tensor] = []
        outputs: list[Tensor] = []
        attention: list[Tensor] = []
        # unbind, not [:, t]: its backward stacks the T step gradients once instead of adding T
        # zero-padded (B, T, G) tensors
        for gates_t, out_t in zip(hoisted.gates.unbind(1), hoisted.out.unbind(1), strict=True):
            s_t, c_t, state, a_t = self._step(gates_t, state, memory, hoisted)
            if self.luong:  # o_t is fed to the next step: the output layer runs in the loop
                o_t = self._output(s_t, c_t, out_t)  # (B, E)
                outputs.append(o_t)
                state = state._replace(feed=o_t)
            else:  # o_t feeds nothing: the output layer runs once, on all steps, below
                states.append(s_t)  # (B, H)
                if c_t is not None:
                    contexts.append(c_t)  # (B, De)
            if a_t is not None:
                attention.append(a_t)  # (B, S)
        if self.luong:
            o = torch.stack(outputs, dim=1)  # (B, T, E)
        else:
            c = torch.stack(contexts, dim=1) if contexts else None  # (B, T, De)
            o = self._output(torch.stack(states, dim=1), c, hoisted.out)  # (B, T, E)
        return Seq2SeqOutput(
            self.output(o),  # (B, T, V)
            torch.stack(attention, dim=1) if attention else None,  # (B, T, S)
        )

    def _loop_fusable(self, x: Tensor) -> bool:
        """Whether teacher forcing runs :func:`~rnnkit.nn.fused_decoder.bahdanau_lstm_loop`.

        It does for one LSTM layer with additive attention (the Bahdanau model), unless
        ``fused_loop`` is set False or autocast is on (the loop keeps its buffers in one dtype).
        """
        cfg = self.config
        return (
            self.fused_loop
            and cfg.cell == "lstm"
            and cfg.attention == "additive"
            and cfg.num_layers == 1
            and not torch.is_autocast_enabled(x.device.type)
        )

    def _forward_sampled(self, memory: EncoderOutput, tgt_in: Tensor, rate: float) -> Seq2SeqOutput:
        """:meth:`forward` with scheduled sampling: step by step, mixing in the model's samples."""
        state = memory.init_state
        never = torch.tensor([self.pad_id, self.bos_id], device=tgt_in.device)  # never sampled
        tokens = tgt_in[:, 0]  # (B,)
        logits: list[Tensor] = []
        attention: list[Tensor] = []
        for t in range(tgt_in.shape[1]):
            if t > 0:
                with torch.no_grad():
                    scores = logits[-1].float().index_fill(1, never, float("-inf"))  # (B, V)
                    sampled = torch.multinomial(torch.softmax(scores, dim=-1), 1).squeeze(1)
                    use = torch.rand(tokens.shape, device=tokens.device) < rate  # (B,)
                tokens = torch.where(use, sampled, tgt_in[:, t])  # (B,)
            logits_t, state, a_t = self._decode(tokens, state, memory)
            logits.append(logits_t)  # (B, V)
            if a_t is not None:
                attention.append(a_t)  # (B, S)
        return Seq2SeqOutput(
            torch.stack(logits, dim=1),  # (B, T, V)
            torch.stack(attention, dim=1) if attention else None,  # (B, T, S)
        )
