r"""Image captioning decoders: Show and Tell, and Show, Attend and Tell, over a grid of features.

The letters are the lecture's (and :mod:`rnnkit.nn.attention`'s): the image's grid of features
``h_{i,j}`` (B, Hg, Wg, D) from an :mod:`~rnnkit.models.image_encoders` encoder, S = Hg * Wg cells;
``y_{t-1}`` the previous word and ``x_t = E y_{t-1}`` its embedding (B, E); ``s_{t-1}`` the
previous decoder state (B, H); ``a_t`` the attention weights (B, Hg, Wg); ``c_t`` the context
(B, D); V the vocabulary. One recurrent cell ``g`` (:class:`~rnnkit.nn.LSTMCell` or
:class:`~rnnkit.nn.GRUCell`) with memory ``m`` for the LSTM.

Both decoders start from the mean feature (Xu et al. 2015, sec. 3.1.2)::

    hbar = 1/S sum_{i,j} h_{i,j}                        (B, D)
    s_0  = tanh(W_init hbar + b_init)                   (B, H)
    m_0  = tanh(W_mem hbar + b_mem)                     (B, H)     LSTM only

``attention="none"`` (Show and Tell, Vinyals et al. 2015): the image enters only through s_0; the
decoder is a one-to-many RNN language model over the caption::

    s_t = g(x_t, s_{t-1})
    o_t = tanh(L_h s_t + L_e x_t + b_o)                 (B, E)

``attention="soft"`` (Show, Attend and Tell, Xu et al. 2015): additive attention
(:class:`rnnkit.nn.Attention`, ``score="additive"``) of the previous state over the grid, a gating
scalar on the context, and a deep output (their eq. 7) over the state, the context and the word::

    e_{t,i,j} = v^T tanh(W s_{t-1} + U h_{i,j} + b)     (B, Hg, Wg)
    a_t       = softmax(e_t)  over the Hg x Wg cells    sum_{i,j} a_{t,i,j} = 1
    c_t       = sum_{i,j} a_{t,i,j} h_{i,j}             (B, D)
    beta_t    = sigmoid(W_b s_{t-1} + b_b)              (B, 1)     (1 when gate=False)
    z_t       = beta_t c_t                              (B, D)
    s_t       = g([x_t; z_t], s_{t-1})                  (B, H)
    o_t       = tanh(L_h s_t + L_z z_t + L_e x_t + b_o) (B, E)

Where the cells' features say *what* is there but little of *where* (a deep CNN's last map sees
nearly the whole image from every cell), ``grid_positions=(Hg, Wg)`` adds a learned vector per
cell to the features the attention reads, keys and values both: ``h'_{i,j} = h_{i,j} + P_{i,j}``
(P: (Hg, Wg, D)), so the decoder can look "right of where it looked before" and its context says
where it looked. ``s_0`` still starts from the mean of the plain features.

Then, for both, ``logits_t = W_out dropout(o_t) + b_out`` (B, V). ``o_t`` has the embedding's size
E, so ``tie_embeddings`` can always share ``W_out`` with ``E``. The doubly stochastic penalty
(their eq. 14) is :func:`doubly_stochastic_penalty`.

The fast path. What does not depend on the step is computed outside the time loop: the grid's
key projection ``U h_{i,j} + b`` once per image (in :meth:`Captioner.encode`, into the memory;
the beam search reorders it with the memory, never recomputes it), the word's share of the cell's
gates ``W_ih[:, :E] x_t + b`` and of the output ``L_e x_t + b_o`` once per call for all T steps,
and ``L_h s_t``, ``L_z z_t`` and ``W_out`` once after the loop, on all steps at once. In the loop an
LSTM reads ``[z_t; s_{t-1}]`` in one matmul with ``[W_ih[:, E:] | W_hh]``. :meth:`Captioner.step`
runs the same step for one token (the decoder protocol of :mod:`rnnkit.decoding`), and teacher
forcing equals stepping token by token (tested, outputs and gradients). State goes in and out of
every call; nothing is kept on ``self``.
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
from rnnkit.nn.cells import GRUCell, LSTMCell
from rnnkit.nn.decoder import DecoderState
from rnnkit.nn.functional import gru_cell, lstm_cell

__all__ = [
    "CaptionMemory",
    "CaptionStep",
    "Captioner",
    "CaptionerConfig",
    "CaptionerOutput",
    "DecoderState",
    "doubly_stochastic_penalty",
]


class CaptionerConfig(FrozenConfig):
    """Architecture of a :class:`Captioner` (no optimiser settings).

    Attributes:
        feature_size: D, the size of each grid cell's feature (the encoder's ``feature_size``).
        vocab_size: V, token ids are in ``[0, V)``.
        embedding_size: E, the word embedding and the output vector o_t.
        hidden_size: H, the cell's hidden units.
        attention: ``"none"`` (Show and Tell) or ``"soft"`` (Show, Attend and Tell).
        attention_size: Ha, the additive score's hidden size (default H).
        cell: ``"lstm"`` or ``"gru"``.
        dropout: on o_t, before the output layer.
        tie_embeddings: share the output matrix W_out with the embedding matrix E.
        gate: the gating scalar beta_t on the context (``"soft"`` only).
        grid_positions: (Hg, Wg) of the grid whose cells get a learned position vector added
            before attention (``"soft"`` only; module docstring), or None for none.
        pad_id, bos_id, eos_id: padding, start and end ids.
    """

    feature_size: int
    vocab_size: int
    embedding_size: int = 256
    hidden_size: int = 512
    attention: Literal["none", "soft"] = "soft"
    attention_size: int | None = None
    cell: Literal["lstm", "gru"] = "lstm"
    dropout: float = 0.3
    tie_embeddings: bool = False
    gate: bool = True
    grid_positions: tuple[int, int] | None = None
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    @field_validator(
        "feature_size", "vocab_size", "embedding_size", "hidden_size", "attention_size"
    )
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

    @model_validator(mode="after")
    def _special_ids(self) -> CaptionerConfig:
        for name in ("pad_id", "bos_id", "eos_id"):
            token = getattr(self, name)
            if not 0 <= token < self.vocab_size:
                raise ValueError(f"{name}={token} is not a token id (vocab_size={self.vocab_size})")
        if len({self.pad_id, self.bos_id, self.eos_id}) != 3:
            raise ValueError(
                f"pad_id, bos_id and eos_id must differ, got {self.pad_id}, {self.bos_id}, "
                f"{self.eos_id}"
            )
        return self


class CaptionMemory(NamedTuple):
    """What :meth:`Captioner.encode` computes once per image (a ``rnnkit.decoding`` memory).

    Attributes:
        features: (B, Hg, Wg, D) the grid h_{i,j}, the attention's values.
        keys: (B, Hg, Wg, Ha) the projected keys ``U h_{i,j} + b``; None for ``"none"``.
        lengths: (B,) long, Hg * Wg for every image (the search's length limit ``a * S + b``).
        init_state: s_0 (and m_0), hidden (and cell) (1, B, H).
    """

    features: Tensor
    keys: Tensor | None
    lengths: Tensor
    init_state: DecoderState

    def index_select(self, rows: Tensor) -> CaptionMemory:
        """The memory of rows ``rows`` (N',) in that order (to expand images into beams)."""
        return CaptionMemory(
            self.features.index_select(0, rows),
            None if self.keys is None else self.keys.index_select(0, rows),
            self.lengths.index_select(0, rows),
            self.init_state.index_select(rows),
        )


class CaptionStep(NamedTuple):
    """One decoder step for N rows (what :meth:`Captioner.step` returns).

    Attributes:
        log_probs: (N, V) ``log_softmax`` of the logits, in float32 or wider.
        state: the decoder state after the step.
        attention: (N, Hg, Wg) the weights a_t over the grid; None for ``"none"``.
        logits: (N, V).
    """

    log_probs: Tensor
    state: DecoderState
    attention: Tensor | None
    logits: Tensor


class CaptionerOutput(NamedTuple):
    """Teacher-forced outputs: logits (B, T, V) and attention (B, T, Hg, Wg) or None."""

    logits: Tensor
    attention: Tensor | None


class _Hoisted(NamedTuple):
    """What the steps of one call share, computed before the loop (:meth:`Captioner._hoist`).

    Attributes:
        gates: (B, [T,] G) the cell's gates known before the step, ``W_ih[:, :E] x_t + b_ih``
            (+ ``b_hh`` for the LSTM).
        out: (B, [T,] E) ``L_e x_t + b_o``.
        w_feed: (G, D) ``W_ih[:, E:]``, the cell's weight for z_t; None for ``"none"``.
        w_rec: (G, H) ``W_hh``, or (G, D + H) ``[W_ih[:, E:] | W_hh]`` when ``fused``.
        b_hh: (G,) the GRU's ``b_hh`` (inside its reset product); None when folded into gates.
        fused: whether one matmul reads ``[z_t; s_{t-1}]``.
    """

    gates: Tensor
    out: Tensor
    w_feed: Tensor | None
    w_rec: Tensor
    b_hh: Tensor | None
    fused: bool


def doubly_stochastic_penalty(attention: Tensor, mask: Tensor) -> Tensor:
    """Xu et al.'s eq. 14: ``sum_{i,j} (1 - sum_t a_{t,i,j})^2`` per caption, over real steps.

    Each step's weights sum to 1 over the grid, so the penalty pushes every cell to receive a
    total weight of about 1 over the caption (T / S each with T steps and S cells at best). The
    task multiplies it by ``lambda`` and averages over the batch.

    Args:
        attention: (B, T, Hg, Wg) the weights a_t of every step.
        mask: (B, T) bool, True at the caption's real steps (its words and its eos step).

    Returns:
        (B,) the penalty of each caption.
    """
    if attention.dim() != 4:
        raise ValueError(f"attention must be (B, T, Hg, Wg), got shape {tuple(attention.shape)}")
    if mask.dtype != torch.bool or mask.shape != attention.shape[:2]:
        raise ValueError(
            f"mask must be bool of shape {tuple(attention.shape[:2])} (B, T), got "
            f"{mask.dtype} {tuple(mask.shape)}"
        )
    total = (attention * mask[:, :, None, None]).sum(dim=1)  # (B, Hg, Wg), sum_t a_{t,i,j}
    return (1.0 - total).square().sum(dim=(1, 2))  # (B,)


class Captioner(nn.Module):
    """An RNN caption decoder over an image grid, with or without attention (module docstring).

    Args:
        config: the architecture.

    Example::

        model = Captioner(CaptionerConfig(feature_size=1280, vocab_size=1000))
        out = model(grid, tokens_in)          # grid (B, 7, 7, 1280), tokens_in (B, T): bos + caption
        out.logits                            # (B, T, V)
        out.attention                         # (B, T, 7, 7)
        memory = model.encode(grid)
        hypotheses = rnnkit.decoding.beam_search(model.eval(), memory, SearchConfig(beam_size=5))
    """

    attention: Attention | None
    gate: nn.Linear | None
    init_cell: nn.Linear | None
    out_context: nn.Linear | None

    def __init__(self, config: CaptionerConfig) -> None:
        super().__init__()
        self.config = config
        self.pad_id, self.bos_id, self.eos_id = config.pad_id, config.bos_id, config.eos_id
        D, V, E, H = (
            config.feature_size,
            config.vocab_size,
            config.embedding_size,
            config.hidden_size,
        )
        soft = config.attention == "soft"
        self.embed = nn.Embedding(V, E, padding_idx=config.pad_id)  # E
        self.init_hidden = nn.Linear(D, H)  # W_init, b_init
        self.init_cell = nn.Linear(D, H) if config.cell == "lstm" else None  # W_mem, b_mem
        self.attention = (
            Attention(H, D, score="additive", hidden_size=config.attention_size or H)
            if soft
            else None
        )
        self.gate = nn.Linear(H, 1) if soft and config.gate else None  # W_b, b_b
        self.grid_position = (
            nn.Parameter(0.1 * torch.randn(*config.grid_positions, D))  # P, (Hg, Wg, D)
            if soft and config.grid_positions is not None
            else None
        )
        cell_type = LSTMCell if config.cell == "lstm" else GRUCell
        self.cell: LSTMCell | GRUCell = cell_type(E + D if soft else E, H)  # g
        self.out_state = nn.Linear(H, E, bias=False)  # L_h
        self.out_context = nn.Linear(D, E, bias=False) if soft else None  # L_z
        self.out_embed = nn.Linear(E, E)  # L_e, b_o
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(E, V)  # W_out, b_out
        if config.tie_embeddings:
            # The tied matrix multiplies o_t in [-1, 1]^E: draw it small so first logits are small.
            nn.init.normal_(self.embed.weight, std=E**-0.5)
            with torch.no_grad():
                self.embed.weight[config.pad_id].zero_()
            self.output.weight = self.embed.weight

    @classmethod
    def from_config(cls, config: CaptionerConfig | Mapping[str, Any]) -> Captioner:
        """Build from a config or a plain mapping (validated into :class:`CaptionerConfig`)."""
        if not isinstance(config, CaptionerConfig):
            config = CaptionerConfig.model_validate(dict(config))
        return cls(config)

    # ----------------------------------------------------------------------------------- encode

    def encode(self, grid: Tensor) -> CaptionMemory:
        """Everything the decoder needs from a batch of images, once per image.

        Args:
            grid: (B, Hg, Wg, D) the encoder's features h_{i,j}, channels last.

        Returns:
            :class:`CaptionMemory`: the grid, its projected keys (B, Hg, Wg, Ha) (``"soft"``),
            lengths (B,) = Hg * Wg and s_0 (and m_0) from the mean feature.
        """
        D = self.config.feature_size
        if grid.dim() != 4 or grid.shape[-1] != D or grid.shape[1] * grid.shape[2] == 0:
            raise ValueError(
                f"grid must be (B, Hg, Wg, D) with D={D} and at least one cell, got shape "
                f"{tuple(grid.shape)}"
            )
        B, Hg, Wg, _ = grid.shape
        mean = grid.mean(dim=(1, 2))  # (B, D), hbar
        hidden = torch.tanh(self.init_hidden(mean))[None]  # (1, B, H), s_0
        cell = None if self.init_cell is None else torch.tanh(self.init_cell(mean))[None]  # m_0
        if self.grid_position is not None:
            if tuple(self.grid_position.shape[:2]) != (Hg, Wg):
                raise ValueError(
                    f"grid must be {tuple(self.grid_position.shape[:2])} cells (grid_positions), "
                    f"got {(Hg, Wg)}"
                )
            grid = grid + self.grid_position  # (B, Hg, Wg, D), h' = h + P
        keys = None if self.attention is None else self.attention.project_keys(grid)
        lengths = torch.full((B,), Hg * Wg, dtype=torch.long, device=grid.device)  # (B,)
        return CaptionMemory(grid, keys, lengths, DecoderState(hidden, cell, None))

    # --------------------------------------------------------------------------------- one step

    def step(self, tokens: Tensor, state: DecoderState, memory: CaptionMemory) -> CaptionStep:
        """One decoder step for N rows (the decoder protocol of :mod:`rnnkit.decoding`).

        Args:
            tokens: (N,) the previous words y_{t-1} (``bos_id`` at the first step).
            state: the state after the previous step (``memory.init_state`` at the first).
            memory: :meth:`encode`'s output for these N rows.

        Returns:
            :class:`CaptionStep`: log-probabilities (N, V), the new state, a_t (N, Hg, Wg) or
            None, and the logits (N, V).
        """
        N = memory.features.shape[0]
        if tokens.shape != (N,):
            raise ValueError(f"tokens must have shape ({N},), got {tuple(tokens.shape)}")
        logits, state, a_t = self._decode(tokens, state, memory)
        wide = torch.promote_types(logits.dtype, torch.float32)
        return CaptionStep(torch.log_softmax(logits, dim=-1, dtype=wide), state, a_t, logits)

    def _decode(
        self, tokens: Tensor, state: DecoderState, memory: CaptionMemory
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One step from tokens (N,): logits (N, V), the new state, a_t (N, Hg, Wg) or None."""
        x_t = self.embed(tokens)  # (N, E), x_t = E y_{t-1}
        hoisted = self._hoist(x_t, fuse=False)
        s_t, z_t, state, a_t = self._step(hoisted.gates, state, memory, hoisted)
        logits: Tensor = self.output(self._output(s_t, z_t, hoisted.out))  # (N, V)
        return logits, state, a_t

    def _hoist(self, x: Tensor, fuse: bool) -> _Hoisted:
        """The terms of one step (x (B, E)) or of all T steps (x (B, T, E)) known before the loop.

        With ``fuse`` (teacher forcing: many steps) an attending LSTM gets the concatenated weight
        ``[W_ih[:, E:] | W_hh]``, built once per call.
        """
        E = self.config.embedding_size
        w_ih, w_hh = self.cell.weight_ih, self.cell.weight_hh  # (G, E [+ D]), (G, H)
        b_ih: Tensor | None = self.cell.bias_ih  # (G,)
        b_hh: Tensor | None = self.cell.bias_hh  # (G,)
        lstm = self.config.cell == "lstm"
        if lstm and b_ih is not None and b_hh is not None:
            b_ih, b_hh = b_ih + b_hh, None  # the LSTM adds them: fold into the hoisted gates
        gates = F.linear(x, w_ih[:, :E], b_ih)  # (B, [T,] G)
        out = self.out_embed(x)  # (B, [T,] E), L_e x_t + b_o
        w_feed = w_ih[:, E:] if self.attention is not None else None  # (G, D)
        fused = fuse and lstm and w_feed is not None
        w_rec = torch.cat([cast(Tensor, w_feed), w_hh], dim=1) if fused else w_hh
        return _Hoisted(gates, out, w_feed, w_rec, b_hh, fused)

    def _step(
        self, gates: Tensor, state: DecoderState, memory: CaptionMemory, hoisted: _Hoisted
    ) -> tuple[Tensor, Tensor | None, DecoderState, Tensor | None]:
        """One step up to the output layer, the fast way.

        Args:
            gates: (B, G) this step's slice of ``hoisted.gates``.
            state: s_{t-1} (and m_{t-1}), (1, B, H).
            memory: the encoded images.
            hoisted: :meth:`_hoist`.

        Returns:
            s_t (B, H); z_t = beta_t c_t (B, D) or None; the new state; a_t (B, Hg, Wg) or None.
        """
        s_prev = state.hidden.squeeze(0)  # (B, H), s_{t-1}
        z_t = a_t = None
        if self.attention is not None:
            c_t, a_t = self.attention(
                s_prev, memory.features, projected_keys=memory.keys
            )  # (B, D), (B, Hg, Wg): the query is s_{t-1}
            z_t = c_t if self.gate is None else torch.sigmoid(self.gate(s_prev)) * c_t  # (B, D)
        if self.config.cell == "lstm":
            assert state.cell is not None
            m_prev = state.cell.squeeze(0)  # (B, H)
            h_in = s_prev
            if z_t is not None and hoisted.fused:
                h_in = torch.cat([z_t, s_prev], dim=1)  # (B, D + H), read by [W_ih[:, E:] | W_hh]
            elif z_t is not None:
                gates = torch.addmm(gates, z_t, cast(Tensor, hoisted.w_feed).t())  # (B, G)
            s_t, m_t = lstm_cell(gates, h_in, m_prev, hoisted.w_rec)  # (B, H) each
            return s_t, z_t, DecoderState(s_t[None], m_t[None], None), a_t
        if z_t is not None:
            gates = torch.addmm(gates, z_t, cast(Tensor, hoisted.w_feed).t())  # (B, G)
        s_t = gru_cell(gates, s_prev, hoisted.w_rec, hoisted.b_hh)  # (B, H)
        return s_t, z_t, DecoderState(s_t[None], None, None), a_t

    def _output(self, s: Tensor, z: Tensor | None, out: Tensor) -> Tensor:
        """``dropout(tanh(L_h s + L_z z + out))``, (B, [T,] E); ``out`` from :meth:`_hoist`."""
        pre = self.out_state(s) + out  # (B, [T,] E)
        if z is not None:
            assert self.out_context is not None
            pre = pre + self.out_context(z)  # (B, [T,] E)
        o: Tensor = self.dropout(torch.tanh(pre))
        return o

    # ---------------------------------------------------------------------------- teacher forcing

    def forward(
        self,
        grid: Tensor,
        tokens_in: Tensor,
        *,
        sampling_rate: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> CaptionerOutput:
        """Teacher forcing: decode ``tokens_in`` given the images, all steps in one call.

        With ``sampling_rate`` p > 0 (scheduled sampling, Bengio et al. 2015) the input at each
        step t > 1 is, independently per caption with probability p, a word drawn from the
        model's own distribution at step t - 1 instead of ``tokens_in[:, t]`` (never ``pad_id``
        or ``bos_id``; not differentiated through). Each step draws the words first
        (``torch.multinomial``), then the coins (``torch.rand``), from ``generator``.

        Args:
            grid: (B, Hg, Wg, D) the image features.
            tokens_in: (B, T) ``bos_id`` then the caption; padding after a caption's end does not
                change the logits before it.
            sampling_rate: p in [0, 1].
            generator: the random generator of the draws (on the grid's device).

        Returns:
            :class:`CaptionerOutput`: logits (B, T, V) and attention (B, T, Hg, Wg) or None.
        """
        memory = self.encode(grid)
        B = grid.shape[0]
        if tokens_in.dim() != 2 or tokens_in.shape[0] != B or tokens_in.shape[1] == 0:
            raise ValueError(
                f"tokens_in must be (B, T) with the grid's B={B} and T >= 1, got shape "
                f"{tuple(tokens_in.shape)}"
            )
        if not 0.0 <= sampling_rate <= 1.0:
            raise ValueError(f"sampling_rate must be in [0, 1], got {sampling_rate}")
        if sampling_rate > 0.0:
            return self._forward_sampled(memory, tokens_in, sampling_rate, generator)
        x = self.embed(tokens_in)  # (B, T, E), x_t = E y_{t-1} for every step
        hoisted = self._hoist(x, fuse=True)
        state = memory.init_state
        states: list[Tensor] = []
        contexts: list[Tensor] = []
        attention: list[Tensor] = []
        # unbind, not [:, t]: its backward stacks the T step gradients once
        for gates_t in hoisted.gates.unbind(1):
            s_t, z_t, state, a_t = self._step(gates_t, state, memory, hoisted)
            states.append(s_t)  # (B, H)
            if z_t is not None and a_t is not None:
                contexts.append(z_t)  # (B, D)
                attention.append(a_t)  # (B, Hg, Wg)
        z = torch.stack(contexts, dim=1) if contexts else None  # (B, T, D)
        o = self._output(torch.stack(states, dim=1), z, hoisted.out)  # (B, T, E), all steps
        return CaptionerOutput(
            self.output(o),  # (B, T, V)
            torch.stack(attention, dim=1) if attention else None,  # (B, T, Hg, Wg)
        )

    def _forward_sampled(
        self,
        memory: CaptionMemory,
        tokens_in: Tensor,
        rate: float,
        generator: torch.Generator | None,
    ) -> CaptionerOutput:
        """:meth:`forward` with scheduled sampling: step by step, mixing in the model's words."""
        state = memory.init_state
        device = tokens_in.device
        never = torch.tensor([self.pad_id, self.bos_id], device=device)  # never sampled
        tokens = tokens_in[:, 0]  # (B,)
        logits: list[Tensor] = []
        attention: list[Tensor] = []
        for t in range(tokens_in.shape[1]):
            if t > 0:
                with torch.no_grad():
                    scores = logits[-1].float().index_fill(1, never, float("-inf"))  # (B, V)
                    probs = torch.softmax(scores, dim=-1)  # (B, V)
                    sampled = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
                    coins = torch.rand(tokens.shape, generator=generator, device=device)  # (B,)
                tokens = torch.where(coins < rate, sampled, tokens_in[:, t])  # (B,)
            logits_t, state, a_t = self._decode(tokens, state, memory)
            logits.append(logits_t)  # (B, V)
            if a_t is not None:
                attention.append(a_t)  # (B, Hg, Wg)
        return CaptionerOutput(
            torch.stack(logits, dim=1),  # (B, T, V)
            torch.stack(attention, dim=1) if attention else None,  # (B, T, Hg, Wg)
        )
