"""The whole captioner a run trains and saves: an image encoder and a caption decoder.

:class:`CaptioningModel` holds the CNN (:mod:`rnnkit.models.image_encoders`) and the RNN decoder
(:class:`rnnkit.models.captioner.Captioner`) as one module, so a run's weights file carries both
and ``predict`` needs nothing but the run folder. The decoder protocol of
:mod:`rnnkit.decoding` is the decoder's own (``model.decoder.encode(grid)``, ``model.decoder.step``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.models.captioner import Captioner, CaptionerOutput
from rnnkit.models.image_encoders import ImageEncoder


class CaptioningModel(nn.Module):
    """The image encoder and the caption decoder: what a captioning run trains and saves.

    ``forward`` reads what the task's batches hold: grid features when the encoder is frozen
    and its features are cached (``cache_dtype`` set: the precision they are stored in), pixels
    otherwise. :meth:`image_grid` turns pixels into the grid the decoder reads, rounded to
    ``cache_dtype`` when set, so a fresh image and a cached one give the same caption.
    """

    def __init__(
        self, encoder: ImageEncoder, decoder: Captioner, *, cache_dtype: torch.dtype | None
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.cache_dtype = cache_dtype

    @property
    def cached(self) -> bool:
        """True when batches hold cached grid features rather than pixels."""
        return self.cache_dtype is not None

    def image_grid(self, pixels: Tensor) -> Tensor:
        """(B, 3, H, W) normalised pixels -> (B, Hg, Wg, D) grid features."""
        grid: Tensor = self.encoder(pixels)
        return grid if self.cache_dtype is None else grid.to(self.cache_dtype).float()

    def grid(self, inputs: Tensor) -> Tensor:
        """A batch's inputs (features or pixels, see the class docstring) -> (B, Hg, Wg, D)."""
        return inputs.float() if self.cached else self.image_grid(inputs)

    def forward(
        self, inputs: Tensor, tokens_in: Tensor, *, sampling_rate: float = 0.0
    ) -> CaptionerOutput:
        """Teacher-forced logits (B, T, V) and attention (B, T, Hg, Wg) of a batch."""
        out: CaptionerOutput = self.decoder(
            self.grid(inputs), tokens_in, sampling_rate=sampling_rate
        )
        return out
