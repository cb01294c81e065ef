"""The ``language_model`` task's predictor: next tokens after a prompt (``rnnkit predict``) and
generated text (:meth:`LanguageModelPredictor.generate`), with the decoder that lets the shared
search of :mod:`rnnkit.decoding` sample from a language model.

Shapes: N rows (prompts or samples), P prompt tokens, V vocabulary, t tokens of context.
:class:`~rnnkit.runtime.language_model.Candidate` and
:class:`~rnnkit.runtime.language_model.NextTokens` are the ONNX runtime's, so that both engines
answer with the same objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, WORD_MARK
from rnnkit.decoding import SamplingConfig, sample
from rnnkit.models.language_model import TransformerLM
from rnnkit.runtime.language_model import Candidate, NextTokens
from rnnkit.tasks.base import JSONModel, Predictor, TaskError, to_json
from rnnkit.training.device import flush_denormals

if TYPE_CHECKING:
    from rnnkit.tasks.language_model import LanguageModelTask

__all__ = [
    "DEFAULT_TOP_K",
    "Candidate",
    "GenState",
    "LMDecoder",
    "LanguageModelPredictor",
    "NextTokens",
    "NextTokensJSON",
    "PromptMemory",
]

DEFAULT_TOP_K = 5
"""Next tokens ``rnnkit predict`` shows when ``--top-k`` is not given."""


class GenState(NamedTuple):
    """The decoder state of generation: the recurrent state, or the Transformer's context.

    Attributes:
        rnn: the recurrent model's state (each part (1, N, H_l)), or None.
        history: (N, t) the tokens the Transformer reads, or None.
    """

    rnn: Any
    history: Tensor | None

    def index_select(self, rows: Tensor) -> GenState:
        """The state of rows ``rows`` (N',)."""
        rnn = None
        if self.rnn is not None:
            rnn = tuple(tuple(t.index_select(1, rows) for t in layer) for layer in self.rnn)
        history = None if self.history is None else self.history.index_select(0, rows)
        return GenState(rnn, history)


@dataclass(frozen=True)
class PromptMemory:
    """The memory of generation (decoder protocol): the state after the prompt.

    Attributes:
        lengths: (N,) zeros, so the length limit ``floor(0 * S + max_tokens)`` is ``max_tokens``.
        init_state: the state after all prompt tokens but the last.
        last: (N,) the prompt's last token, fed at the first step.
    """

    lengths: Tensor
    init_state: GenState
    last: Tensor

    def index_select(self, rows: Tensor) -> PromptMemory:
        """The memory of rows ``rows`` (N',)."""
        return PromptMemory(
            self.lengths.index_select(0, rows),
            self.init_state.index_select(rows),
            self.last.index_select(0, rows),
        )


class _Step(NamedTuple):
    log_probs: Tensor
    state: GenState
    attention: Tensor | None


class LMDecoder:
    """A language model seen through the decoder protocol of :mod:`rnnkit.decoding`.

    The search feeds ``bos`` at its first step: it is replaced by the prompt's last token. The
    end-of-line token is an ordinary token here (a new line of text), and ``eos_id`` is the pad
    id, which is never produced, so generation runs to its length limit. The Transformer
    re-reads its last ``context`` tokens at every step.
    """

    pad_id = PAD_ID
    bos_id = BOS_ID
    eos_id = PAD_ID

    def __init__(self, model: nn.Module, context: int) -> None:
        self.model = model
        self.context = context

    def encode(self, prompt: Sequence[int], copies: int = 1) -> PromptMemory:
        """The memory of ``copies`` rows that all start from ``prompt`` (its ids, >= 1 of them)."""
        device = next(self.model.parameters()).device
        ids = torch.tensor(list(prompt), dtype=torch.long, device=device)[None]  # (1, P)
        ids = ids.expand(copies, -1)  # (N, P)
        head, last = ids[:, :-1], ids[:, -1]
        if isinstance(self.model, TransformerLM):
            state = GenState(None, head[:, -self.context :])
        else:
            rnn = self.model(head, None).state if head.shape[1] else None
            state = GenState(rnn, None)
        return PromptMemory(torch.zeros(copies, dtype=torch.long, device=device), state, last)

    def step(self, tokens: Tensor, state: GenState, memory: PromptMemory) -> _Step:
        """(N,) previous tokens -> log-probs (N, V) of the next, the new state."""
        tokens = torch.where(tokens == BOS_ID, memory.last, tokens)  # (N,)
        if state.history is not None:
            history = torch.cat([state.history, tokens[:, None]], dim=1)[:, -self.context :]
            logits = self.model(history, None).logits[:, -1]  # (N, V)
            new = GenState(None, history)
        else:
            out = self.model(tokens[:, None], state.rnn)
            logits, new = out.logits[:, -1], GenState(out.state, None)  # (N, V)
        return _Step(F.log_softmax(logits.float(), dim=-1), new, None)


class CandidateJSON(JSONModel):
    """One next token (see :class:`Candidate`)."""

    token: str
    text: str
    probability: float


class NextTokensJSON(JSONModel):
    """A prompt's most likely next tokens, most likely first."""

    input: str
    prompt_tokens: list[str]
    candidates: list[CandidateJSON]


class LanguageModelPredictor(Predictor[str, NextTokens]):
    """Prompts in; their most likely next tokens out (``rnnkit predict``); :meth:`generate`."""

    task: LanguageModelTask

    def _prompt_ids(self, prompt: str) -> list[int]:
        """``</s>`` (a line start, as in training), then the prompt's ids."""
        return [EOS_ID, *self.task.tokenizer.encode(prompt)]

    def _display(self, token: int) -> tuple[str, str]:
        piece = self.task.tokenizer.id_to_piece(token)
        if token == EOS_ID or piece.strip() == "":
            return piece, WORD_MARK if piece == " " else piece
        text = piece[1:] if piece.startswith(WORD_MARK) and len(piece) > 1 else piece
        return piece, text

    def next_token_probs(self, prompt: str) -> Tensor:
        """(V,) the model's softmax over the token after ``prompt`` (read from a line start)."""
        model = self.model
        model.eval()
        ids = torch.tensor(
            [self._prompt_ids(prompt)], device=next(model.parameters()).device
        )  # (1, P)
        if isinstance(model, TransformerLM):
            ids = ids[:, -self.task.config.train.bptt :]
        with torch.no_grad(), flush_denormals():
            logits = model(ids, None).logits[0, -1]  # (V,)
        return F.softmax(logits.float(), dim=-1).cpu()

    def predict(self, inputs: Sequence[str], options: Mapping[str, Any]) -> list[NextTokens]:
        k = options.get("top_k")
        k = DEFAULT_TOP_K if k is None else int(k)
        if k < 1:
            raise TaskError(f"--top-k must be at least 1, got {k}")
        tok = self.task.tokenizer
        results = []
        for prompt in inputs:
            probs = self.next_token_probs(prompt)  # (V,)
            top = probs.topk(min(k, probs.numel()))
            candidates = [
                Candidate(*self._display(int(i)), float(p))
                for p, i in zip(top.values, top.indices, strict=True)
            ]
            pieces = [tok.id_to_piece(i) for i in tok.encode(prompt)]
            results.append(NextTokens(pieces, candidates))
        return results

    def export_onnx(self, folder: Path) -> dict[str, Any]:
        """The logits graph and the tokeniser (:mod:`rnnkit.tasks.language_model_export`)."""
        from rnnkit.tasks.language_model_export import export_language_model

        return export_language_model(self.task, self.model, folder, DEFAULT_TOP_K)

    def format(self, output: NextTokens) -> str:
        """One ``token<TAB>probability`` line per candidate, most likely first."""
        return "\n".join(f"{c.text}\t{c.probability:.4f}" for c in output.candidates)

    json_output = NextTokensJSON

    def input_tokens(self, inp: str) -> int:
        """The prompt's tokens under the run's tokeniser."""
        return len(self.task.tokenizer.encode(inp))

    def to_json(self, inp: str, output: NextTokens) -> Any:
        return {"input": inp, **to_json(output)}

    def generate(
        self, prompt: str, max_tokens: int, sampling: SamplingConfig, seed: int | None = None
    ) -> str:
        """The prompt followed by ``max_tokens`` sampled tokens (an end of line is a new line).

        Sampling is :func:`rnnkit.decoding.sample` (temperature, then top-k, then top-p) with a
        generator seeded with ``seed`` (``sampling.seed`` when None), so the same arguments give
        the same text. The Transformer reads at most ``train.bptt`` tokens of context.

        Raises:
            TaskError: ``max_tokens`` below 1.
        """
        return prompt + self.continuation(self.generate_ids(prompt, max_tokens, sampling, seed))

    def generate_ids(
        self, prompt: str, max_tokens: int, sampling: SamplingConfig, seed: int | None = None
    ) -> list[int]:
        """The ``max_tokens`` ids :meth:`generate` samples after ``prompt``."""
        if max_tokens < 1:
            raise TaskError(f"--max-tokens must be at least 1, got {max_tokens}")
        model = self.model
        model.eval()
        device = next(model.parameters()).device
        generator = torch.Generator(device=device)
        generator.manual_seed(sampling.seed if seed is None else seed)
        decoder = LMDecoder(model, self.task.config.train.bptt)
        with torch.no_grad(), flush_denormals():
            memory = decoder.encode(self._prompt_ids(prompt))
            found = sample(
                decoder,
                memory,
                temperature=sampling.temperature,
                top_k=sampling.top_k,
                top_p=sampling.top_p,
                generator=generator,
                max_len_a=0.0,
                max_len_b=max_tokens,
            )
        return list(found[0][0].tokens)

    def continuation(self, ids: Sequence[int]) -> str:
        """Text of generated ``ids`` that follow a prompt: each end of line a newline, a leading
        word mark a space."""
        tok = self.task.tokenizer
        lines: list[list[int]] = [[]]
        for i in ids:
            if i == EOS_ID:
                lines.append([])
            else:
                lines[-1].append(int(i))
        text = "\n".join(tok.decode(line) for line in lines)
        first = int(ids[0]) if ids else EOS_ID
        if first != EOS_ID and tok.kind != "char" and tok.id_to_piece(first).startswith(WORD_MARK):
            text = " " + text
        return text
