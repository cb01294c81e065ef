"""The translation task's inference side: :class:`Translation`, :func:`translate` (beam search or
sampling, n-best, attention weights) and :class:`TranslationPredictor` (``rnnkit predict``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field
from torch import Tensor, nn

from rnnkit.data.parallel import pad_pairs
from rnnkit.data.tokenizers import EOS_ID, Tokenizer
from rnnkit.decoding import Hypothesis, SamplingConfig, SearchConfig, beam_search, sample
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.tasks.base import JSONModel, Predictor, TaskError, attention_plot_folder, to_json
from rnnkit.tasks.decoding_options import sampling_options
from rnnkit.training.device import flush_denormals
from rnnkit.viz.attention import plot_attention

if TYPE_CHECKING:
    from rnnkit.tasks.translation import TranslationTask


@dataclass(frozen=True)
class Translation:
    """One translation of one source sentence.

    Attributes:
        text: the detokenised translation.
        score: the hypothesis score (length-penalised log-probability for beam search).
        source_pieces: the source's S tokens as strings.
        output_pieces: the T' output tokens as strings (``</s>`` last when the hypothesis ended).
        attention: (T', S) weights of each output token over the source tokens, or None.
        ended: False when the translation was cut at the length limit before its eos.
    """

    text: str
    score: float
    source_pieces: list[str]
    output_pieces: list[str]
    attention: Tensor | None
    ended: bool = True

    def to_dict(self, with_attention: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (``attention`` as nested lists, rounded to 4 decimals)."""
        out: dict[str, Any] = {
            "translation": self.text,
            "score": self.score,
            "source_tokens": self.source_pieces,
            "output_tokens": self.output_pieces,
            "truncated": not self.ended,
        }
        if with_attention and self.attention is not None:
            out["attention"] = [[round(float(v), 4) for v in row] for row in self.attention]
        return out


def translate(
    task: TranslationTask,
    model: nn.Module,
    sentences: Sequence[str],
    search: SearchConfig | None = None,
    *,
    batch_size: int = 64,
    sampling: SamplingConfig | None = None,
    max_source_tokens: tuple[int, str] | None = None,
    names: Sequence[str] | None = None,
) -> list[list[Translation]]:
    """Translate ``sentences`` with batched beam search (beam 1 is greedy search) or sampling.

    Args:
        task: the run's task (its tokenisers).
        model: the run's model.
        sentences: source sentences, raw text.
        search: beam size, n-best, maximum length and length penalty (default: beam 5 under
            the task's :attr:`~TranslationTask.length_limit`).
        batch_size: sentences decoded together.
        sampling: when given, draw ``search.n_best`` samples per sentence instead.
        max_source_tokens: (N, where N comes from): refuse a sentence of more than N tokens
            before decoding anything. None: no bound.
        names: what to call each sentence in errors (``test.tsv:7``); default ``input i``.

    Returns:
        For each sentence, ``search.n_best`` translations, best first (samples: drawing order).

    Raises:
        TaskError: an input with no tokens, or one over ``max_source_tokens`` (naming it).
    """
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"translate needs a Seq2Seq model, got {type(model).__name__}")
    search = search or task.search({})
    src_tok, tgt_tok = task.tokenizers
    ids = [src_tok.encode(s) for s in sentences]
    for i, s in enumerate(ids):
        if not s:
            if names is not None:
                raise TaskError(f"{names[i]}: the source has no tokens: nothing to translate")
            raise TaskError(f"input {i + 1} is empty: nothing to translate")
        if max_source_tokens is not None and len(s) > max_source_tokens[0]:
            bound, origin = max_source_tokens
            name = names[i] if names is not None else f"input {i + 1}"
            raise TaskError(
                f"{name}: the source has {len(s)} tokens, more than the {bound} an input may "
                f"have ({origin}); shorten it, or pass --max-input-tokens N"
            )
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths together
    results: list[list[Translation]] = [[] for _ in ids]
    generator = None
    if sampling is not None:
        generator = torch.Generator(device=next(model.parameters()).device)
        generator.manual_seed(sampling.seed)
    model.eval()
    with torch.no_grad(), flush_denormals():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            src, lengths, _, _ = pad_pairs([ids[i] for i in chunk], [[] for _ in chunk])
            memory = model.encode(src, lengths)
            if sampling is None:
                found = beam_search(model, memory, search)
            else:
                found = sample(
                    model,
                    memory,
                    temperature=sampling.temperature,
                    top_k=sampling.top_k,
                    top_p=sampling.top_p,
                    generator=generator,
                    num_samples=search.n_best,
                    max_len_a=search.max_len_a,
                    max_len_b=search.max_len_b,
                )
            for i, hyps in zip(chunk, found, strict=True):
                results[i] = [_translation(h, ids[i], src_tok, tgt_tok) for h in hyps]
    return results


def _translation(
    hyp: Hypothesis, source: list[int], src_tok: Tokenizer, tgt_tok: Tokenizer
) -> Translation:
    pieces = [tgt_tok.id_to_piece(t) for t in hyp.tokens]
    if hyp.ended:
        pieces.append(tgt_tok.id_to_piece(EOS_ID))
    return Translation(
        text=tgt_tok.decode(hyp.tokens),
        score=float(hyp.score),
        source_pieces=[src_tok.id_to_piece(t) for t in source],
        output_pieces=pieces,
        attention=None if hyp.attention is None else hyp.attention.detach().cpu(),
        ended=hyp.ended,
    )


class TranslationJSON(JSONModel):
    """One hypothesis in ``rnnkit predict --json`` (see :meth:`Translation.to_dict`)."""

    translation: str
    score: float
    source_tokens: list[str]
    output_tokens: list[str]
    truncated: bool
    attention: list[list[float]] | None = Field(None, description="(T', S) weights")


class TranslationsJSON(JSONModel):
    """One input's n-best translations, best first."""

    input: str
    translations: list[TranslationJSON]


class TranslationPredictor(Predictor[str, list[Translation]]):
    """Sentences in; for each, its n-best translations with scores, tokens and attention."""

    task: TranslationTask

    def predict(self, inputs: Sequence[str], options: Mapping[str, Any]) -> list[list[Translation]]:
        attention_plot_folder(
            options,
            None
            if self.task.model_config.attention != "none"
            else f"{self.task.run_dir}: --attention-plot needs a model with attention; "
            "this run has model.attention: none",
        )
        search, sampling = self.task.search(options), sampling_options(options)
        bound = self.task.max_input_tokens(options)
        return translate(
            self.task, self.model, inputs, search, sampling=sampling, max_source_tokens=bound
        )

    def export_onnx(self, folder: Path) -> dict[str, Any]:
        """The encoder and decoder-step graphs and the tokenisers (:mod:`.translation_export`)."""
        from rnnkit.tasks.translation_export import export_translation

        return export_translation(self.task, self.model, folder)

    def format(self, output: list[Translation]) -> str:
        """The translation; for n-best lists one ``rank<TAB>score<TAB>text`` line each (the CLI
        puts a blank line between inputs); one cut at the length limit ends in ``[truncated]``."""

        def text(t: Translation) -> str:
            return t.text if t.ended else f"{t.text} [truncated]"

        if len(output) == 1:
            return text(output[0])
        return "\n".join(f"{k}\t{t.score:.4f}\t{text(t)}" for k, t in enumerate(output, 1))

    json_output = TranslationsJSON

    def input_tokens(self, inp: str) -> int:
        """The source sentence's tokens under the run's source tokeniser."""
        return len(self.task.tokenizers[0].encode(inp))

    def to_json(self, inp: str, output: list[Translation]) -> Any:
        return {"input": inp, "translations": [to_json(t.to_dict()) for t in output]}

    def write_files(
        self,
        inputs: Sequence[str],
        outputs: Sequence[list[Translation]],
        options: Mapping[str, Any],
    ) -> list[Path]:
        """``--attention-plot DIR``: one heatmap per input, of its best translation (DIR/001.png)."""
        folder = options.get("attention_plot")
        if folder is None:
            return []
        folder = Path(folder)
        width = max(3, len(str(len(inputs))))
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for k, (sentence, found) in enumerate(zip(inputs, outputs, strict=True), 1):
            best = found[0]
            if best.attention is None:
                raise TaskError(f"input {k}: the translation has no attention weights")
            path = folder / f"{k:0{width}d}.png"
            plot_attention(
                best.attention, best.source_pieces, best.output_pieces, path, title=sentence
            )
            paths.append(path)
        return paths
