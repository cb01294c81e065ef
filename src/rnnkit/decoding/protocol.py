"""What the search algorithms need of a model: the decoder protocol.

A model that ``rnnkit.decoding`` can decode has a way to encode its input into a *memory* (the
model's own business: ``Seq2Seq.encode(src, src_lengths)``, a captioner's CNN grid, a language
model's prompt) and one method for one step::

    memory = model.encode(...)                      # once per batch of B inputs
    out = model.step(tokens, state, memory)         # once per output position, N rows at once
    out.log_probs   (N, V)   log-probabilities of the next token
    out.state                the decoder state after the step
    out.attention   (N, S) over a sequence, (N, H, W) over an image grid, or None

Beam search keeps several hypotheses per input, so the memory and the state are reordered with
``index_select(rows)`` (rows into the current N). The memory tells the search each input's length
(``memory.lengths``, used for the length limit ``a * S + b`` and to cut sequence attention to the
real source positions) and the state to start from (``memory.init_state``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, Self

from torch import Tensor


class Reorderable(Protocol):
    """A per-row structure (state, memory) that can be reordered and repeated by row."""

    def index_select(self, rows: Tensor) -> Self:
        """The structure for rows ``rows`` (N',) of the current N."""
        ...


class Memory(Reorderable, Protocol):
    """What ``encode`` returns: per-row tensors the decoder attends to, and where to start.

    Attributes:
        lengths: (B,) each row's input length: real source tokens, grid cells, prompt tokens.
        init_state: the decoder state s_0 before the first step.
    """

    @property
    def lengths(self) -> Tensor: ...

    @property
    def init_state(self) -> Any: ...


class StepOutput(NamedTuple):
    """One decoder step for N rows (the shape the protocol's ``step`` returns)."""

    log_probs: Tensor
    state: Any
    attention: Tensor | None


class Decoder(Protocol):
    """A model the search algorithms can decode: special ids and one step.

    Attributes:
        pad_id, bos_id, eos_id: padding, start and end ids; pad and bos are never produced.
    """

    pad_id: int
    bos_id: int
    eos_id: int

    def step(self, tokens: Tensor, state: Any, memory: Any) -> Any:
        """(N,) previous tokens -> an object with ``log_probs`` (N, V), ``state``, ``attention``."""
        ...
