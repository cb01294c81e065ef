r"""Captioning metrics: BLEU-1..4, CIDEr-D, ROUGE-L and METEOR (pycocoevalcap), attention in boxes.

:func:`caption_scores` scores N decoded captions, each against its image's references (one or
more), with the scorers of the MS COCO caption evaluation (package ``pycocoevalcap``, the
``captioning`` extra), on their 0..1 scale (CIDEr-D on its own, 10 for a perfect match):

- **Tokenisation.** Every caption arrives already tokenised, its tokens joined by single spaces
  (the output of :func:`rnnkit.data.captions.caption_tokens`: lower-case runs of letters and
  digits, punctuation dropped). The scorers split on whitespace; the COCO PTB tokeniser (Java) is
  not used.
- **BLEU-n** (Papineni et al., 2002): corpus BLEU with the clipped n-gram precisions
  :math:`p_1..p_n` pooled over all images, the reference length of each image the one closest to
  its hypothesis, ``BLEU-n = BP * (p_1 ... p_n)^(1/n)``, ``BP = min(1, exp(1 - r / c))``.
  pycocoevalcap adds 1e-15 to every match count and 1e-9 to every total, so a perfect match scores
  1 to within 1e-9 and a zero precision gives a tiny positive number rather than 0.
- **CIDEr-D** (Vedantam et al., 2015). pycocoevalcap's ``Cider`` *is* the CIDEr-D variant (the
  COCO evaluation server reports it under the name "CIDEr"): its ``cider_scorer.py`` is the
  ``ciderD_scorer.py`` of the metric's authors (``vrama91/cider``, idf mode "corpus"), not their
  plain CIDEr. For n = 1..4 each caption is a vector of tf-idf weights over its n-grams, raw
  counts times :math:`\log(N / \max(1, df))` with N the number of images scored and df the number
  of those images whose references hold the n-gram (so an n-gram in no reference weighs
  :math:`\log N` in the hypothesis' norm); the hypothesis' weights are **clipped** to the
  reference's (``min(g_hyp, g_ref) * g_ref`` in the dot product) before dividing by the two
  norms; a **Gaussian length penalty** :math:`\exp(-(l_{hyp} - l_{ref})^2 / (2 \sigma^2))` with
  :math:`\sigma = 6` multiplies each order's similarity; the four orders are averaged, then the
  references, and the result is **multiplied by 10**; nothing is stemmed. Lengths are counted in
  bigrams (words - 1), which gives the word-count difference whenever both captions have a word
  (an empty hypothesis scores 0 anyway). As the idf comes from the scored set, CIDEr-D depends on
  the whole set (on a single image every n-gram has idf 0 and the score is 0): compare it only
  across runs scored on the same images.
- **ROUGE-L** (Lin, 2004): per image the LCS-based F-measure with beta = 1.2 against the
  reference giving the highest precision and recall, averaged over the images.
- **METEOR** 1.5 (Denkowski and Lavie, 2014; English, ``-norm``): runs the jar shipped with
  pycocoevalcap, so it needs a Java runtime (``java`` on ``PATH``). Without one it is left out
  and :attr:`CaptionScores.notice` says so (:data:`METEOR_NOTICE`). The score is the jar's corpus
  METEOR (from statistics pooled over the images, not the mean of the per-image scores); starting
  the JVM takes a few seconds.

pycocoevalcap's prints (BLEU's ratio lines) are silenced.

:func:`attention_box_scores` measures where the decoder looked while writing the words that name
objects on the image (the ``emoji-scenes`` data keeps each object's box). The encoder's H x W grid
covers the whole image (images are resized without cropping), so cell (i, j) covers rows
i/H..(i+1)/H and columns j/W..(j+1)/W of the image, in fractions of its height and width. For each
decoded token equal (case-insensitively) to the word of one of the image's boxes, the first box
with that word not yet matched in that caption is used:

- hit: the centre of the attention's argmax cell lies in the box (borders included);
- mass: :math:`\sum_{i,j} a_{ij} |cell_{ij} \cap box| / |cell_{ij}|`, the attention on the box.

``attention_hit_rate`` = hits / object words and ``attention_mass_in_box`` = mean mass, over all
object words of all images.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch

METEOR_NOTICE = "METEOR skipped: Java was not found (install a Java runtime to compute it)"
"""The notice of :func:`caption_scores` when METEOR is left out for want of ``java``."""

MISSING_PACKAGE = "caption metrics need the pycocoevalcap package: pip install 'rnnkit[captioning]'"


class BoxLike(Protocol):
    """An object's box on an image: its word and corners as fractions of width (x) and height (y).

    :class:`rnnkit.data.captions.Box` is one; any object with these attributes will do.
    """

    @property
    def word(self) -> str: ...
    @property
    def x0(self) -> float: ...
    @property
    def y0(self) -> float: ...
    @property
    def x1(self) -> float: ...
    @property
    def y1(self) -> float: ...


@dataclass(frozen=True)
class CaptionScores:
    """Scores of N decoded captions against their references (see the module docstring).

    Attributes:
        bleu_1, bleu_2, bleu_3, bleu_4: corpus BLEU-n, 0..1.
        cider_d: CIDEr-D, 0..10 (typically below 3).
        rouge_l: mean ROUGE-L, 0..1.
        meteor: corpus METEOR 1.5, 0..1, or None when it was not computed.
        notice: why METEOR is missing (one line), or None.
        count: N, the number of images scored.
    """

    bleu_1: float
    bleu_2: float
    bleu_3: float
    bleu_4: float
    cider_d: float
    rouge_l: float
    meteor: float | None
    notice: str | None
    count: int

    def to_dict(self) -> dict[str, Any]:
        """The scores as a JSON-serialisable dict, keys the attribute names."""
        return asdict(self)


@dataclass(frozen=True)
class BoxScores:
    """Where attention fell while the object words were written (see the module docstring).

    Attributes:
        attention_hit_rate: share of object words whose attention argmax cell lies in the box,
            or None when no decoded token named an object.
        attention_mass_in_box: mean attention mass on the object's box at its word, or None.
        object_words: the number of decoded tokens matched to a box.
    """

    attention_hit_rate: float | None
    attention_mass_in_box: float | None
    object_words: int

    def to_dict(self) -> dict[str, Any]:
        """The scores as a JSON-serialisable dict, keys the attribute names."""
        return asdict(self)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _check_captions(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]]
) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    if isinstance(hypotheses, str):
        raise ValueError("hypotheses must be a sequence of strings, not one string")
    if isinstance(references, str):
        raise ValueError("references must be a sequence of reference lists, not one string")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses has {len(hypotheses)} captions but references has "
            f"{len(references)} lists: one list of references per hypothesis"
        )
    if not hypotheses:
        raise ValueError("no captions to score: hypotheses is empty")
    res: dict[int, list[str]] = {}
    gts: dict[int, list[str]] = {}
    for k, (hypothesis, refs) in enumerate(zip(hypotheses, references, strict=True)):
        if not isinstance(hypothesis, str):
            raise ValueError(f"hypotheses[{k}] must be a string, got {type(hypothesis).__name__}")
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise ValueError(
                f"references[{k}] must be a list of strings, got {type(refs).__name__}"
            )
        if not refs:
            raise ValueError(f"references[{k}] is empty: each image needs at least one reference")
        cleaned = []
        for j, ref in enumerate(refs):
            if not isinstance(ref, str):
                raise ValueError(f"references[{k}][{j}] must be a string, got {type(ref).__name__}")
            if not ref.strip():
                raise ValueError(f"references[{k}][{j}] is an empty caption")
            cleaned.append(_clean(ref))
        res[k] = [_clean(hypothesis)]
        gts[k] = cleaned
    return res, gts


def _meteor(gts: dict[int, list[str]], res: dict[int, list[str]]) -> float:
    """Corpus METEOR from the jar; raises RuntimeError with the reason when the jar fails."""
    from pycocoevalcap.meteor.meteor import Meteor  # type: ignore[import-untyped]

    try:
        scorer = Meteor()  # starts the JVM
    except OSError as error:
        raise RuntimeError(f"METEOR failed: could not start java ({error})") from error
    process = scorer.meteor_p
    try:
        score, _ = scorer.compute_score(gts, res)
        return float(score)
    except (OSError, ValueError) as error:  # the JVM died, or its answer was not a number
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        lines = process.stderr.read().decode(errors="replace").strip().splitlines()
        detail = lines[-1] if lines else str(error) or type(error).__name__
        raise RuntimeError(f"METEOR failed: {detail}") from error
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()
        if process.poll() is None:
            process.kill()
        process.wait()
        if scorer.lock.locked():  # left held by a failed compute_score; its __del__ takes it
            scorer.lock.release()


def caption_scores(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    meteor: bool | None = None,
) -> CaptionScores:
    """BLEU-1..4, CIDEr-D, ROUGE-L and (with Java) METEOR of N captions against their references.

    Args:
        hypotheses: N decoded captions, tokens joined by spaces (may be empty strings).
        references: N lists of reference captions (at least one non-empty each), tokenised alike.
        meteor: None: compute METEOR when ``java`` is on ``PATH``, else leave it out with
            :data:`METEOR_NOTICE`; True: METEOR is required (ValueError without Java or when the
            jar fails); False: leave it out (no notice).

    Returns:
        A :class:`CaptionScores` with ``count`` N. Scales and definitions: the module docstring.

    Raises:
        ValueError: mismatched lengths, no captions, a non-string caption, an image with no
            reference or an empty reference, pycocoevalcap not installed, or ``meteor=True``
            without a working Java.
    """
    res, gts = _check_captions(hypotheses, references)
    try:
        from pycocoevalcap.bleu.bleu import Bleu  # type: ignore[import-untyped]
        from pycocoevalcap.cider.cider import Cider  # type: ignore[import-untyped]
        from pycocoevalcap.rouge.rouge import Rouge  # type: ignore[import-untyped]
    except ImportError as error:
        raise ValueError(MISSING_PACKAGE) from error

    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        cider, _ = Cider().compute_score(gts, res)
        rouge, _ = Rouge().compute_score(gts, res)

    meteor_score: float | None = None
    notice: str | None = None
    if meteor is not False:
        if shutil.which("java") is None:
            if meteor:
                raise ValueError(
                    "METEOR needs a Java runtime and `java` was not found on PATH: install one, "
                    "or do not require METEOR"
                )
            notice = METEOR_NOTICE
        else:
            try:
                meteor_score = _meteor(gts, res)
            except RuntimeError as error:
                if meteor:
                    raise ValueError(str(error)) from error
                notice = f"METEOR skipped: {error}"
    return CaptionScores(
        bleu_1=float(bleu[0]),
        bleu_2=float(bleu[1]),
        bleu_3=float(bleu[2]),
        bleu_4=float(bleu[3]),
        cider_d=float(cider),
        rouge_l=float(rouge),
        meteor=meteor_score,
        notice=notice,
        count=len(res),
    )


def _check_box(where: str, box: BoxLike) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(box.x0), float(box.y0), float(box.x1), float(box.y1))
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ValueError(
            f"{where} ({box.word!r}) must have 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 "
            f"(fractions of the image), got ({x0:g}, {y0:g}, {x1:g}, {y1:g})"
        )
    return x0, y0, x1, y1


def _overlap(starts: np.ndarray, size: float, low: float, high: float) -> np.ndarray:
    """Fraction of each interval [start, start + size) that lies inside [low, high]."""
    inside: np.ndarray = np.clip(
        np.minimum(starts + size, high) - np.maximum(starts, low), 0.0, None
    )
    return inside / size


def attention_box_scores(
    tokens: Sequence[Sequence[str]],
    attention: Sequence[torch.Tensor | np.ndarray],
    boxes: Sequence[Sequence[BoxLike]],
) -> BoxScores:
    """Attention hit rate and mass on the boxes of the objects each caption names.

    Args:
        tokens: N decoded captions, each its T'_n tokens (no bos/eos).
        attention: N attention maps, each (T, H, W) with T >= T'_n: row t is the attention while
            token t was produced; rows after the first T'_n (e.g. the eos step) are ignored.
        boxes: N lists of the objects' boxes on each image (:class:`BoxLike`, fractions of the
            image's width and height); may be empty.

    Returns:
        A :class:`BoxScores`; rates None when no token named an object.

    Raises:
        ValueError: mismatched lengths, an attention map that is not 3-D or has fewer rows than
            tokens, non-finite weights, or a box outside the image or with no area.
    """
    if not len(tokens) == len(attention) == len(boxes):
        raise ValueError(
            f"tokens, attention and boxes must have one entry per image, got {len(tokens)}, "
            f"{len(attention)} and {len(boxes)}"
        )
    hits = 0
    masses: list[float] = []
    for n, (words, weights, image_boxes) in enumerate(zip(tokens, attention, boxes, strict=True)):
        if isinstance(words, str):
            raise ValueError(f"tokens[{n}] must be a sequence of tokens, not one string")
        if isinstance(weights, torch.Tensor):
            weights = weights.detach().to("cpu", torch.float64).numpy()
        grid = np.asarray(weights, dtype=np.float64)  # (T, H, W)
        if grid.ndim != 3 or grid.shape[1] == 0 or grid.shape[2] == 0:
            raise ValueError(f"attention[{n}] must be (T, H, W), got shape {tuple(grid.shape)}")
        if grid.shape[0] < len(words):
            raise ValueError(
                f"attention[{n}] has {grid.shape[0]} steps but tokens[{n}] has {len(words)} tokens"
            )
        if not np.all(np.isfinite(grid[: len(words)])):
            raise ValueError(f"attention[{n}] has non-finite values")
        rows, cols = grid.shape[1], grid.shape[2]
        corners = [_check_box(f"boxes[{n}][{b}]", box) for b, box in enumerate(image_boxes)]
        unused: list[str | None] = [str(box.word).lower() for box in image_boxes]
        for t, word in enumerate(words):
            if str(word).lower() not in unused:
                continue
            b = unused.index(str(word).lower())
            unused[b] = None  # used: a second "dog" goes to the next dog's box
            x0, y0, x1, y1 = corners[b]
            a = grid[t]  # (H, W)
            i, j = np.unravel_index(int(np.argmax(a)), a.shape)
            centre_y, centre_x = (i + 0.5) / rows, (j + 0.5) / cols
            hits += int(x0 <= centre_x <= x1 and y0 <= centre_y <= y1)
            inside_rows = _overlap(np.arange(rows) / rows, 1.0 / rows, y0, y1)  # (H,)
            inside_cols = _overlap(np.arange(cols) / cols, 1.0 / cols, x0, x1)  # (W,)
            masses.append(float(np.sum(a * np.outer(inside_rows, inside_cols))))
    if not masses:
        return BoxScores(attention_hit_rate=None, attention_mass_in_box=None, object_words=0)
    return BoxScores(
        attention_hit_rate=hits / len(masses),
        attention_mass_in_box=float(np.mean(masses)),
        object_words=len(masses),
    )
