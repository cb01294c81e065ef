"""Captioning speed on the CPU: feature extraction, training on cached features against pixels,
and batched beam search against one image at a time.

Usage: ``python benchmarks/captioning.py [--quick] [--threads N] [--run RUN]``

Data: ``emoji-scenes`` pictures (224 x 224, generated into a temporary folder) and their captions.
Three measurements, each against the baseline a user would otherwise run, in the same run:

1. **Feature extraction**: images/s of EfficientNet-Lite0's 7 x 7 x 1280 grid in batches of 32
   under ``torch.inference_mode`` (decoding and resizing the PNGs included), as the task's
   feature cache computes it once per image.
2. **Training captions/s** of the soft-attention captioner (LSTM, E 128, H 256, Ha 256, the
   task's defaults) on cached features against the same steps on pixels (the frozen CNN run on
   every batch, as a tool without a cache does): forward, loss with the doubly stochastic
   penalty, backward, Adam step; B = 64.
3. **Beam search** (K = 5) of 64 images: one batched search against 64 searches of one image
   (what sgrvinod's tutorial does); images/s of each and the ratio (aim: at least 5x). With
   ``--run RUN`` (a trained ``caption-scenes-soft`` run) the search uses its decoder, so the
   captions have their real lengths; without, untrained weights run every caption to the limit.

Variants alternate in rounds and the median is reported, so a busy machine slows them alike;
the 1-minute load average is printed before and after. About 2 minutes on 2 cores (``--quick``:
about 30 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from rnnkit.data.captions import read_caption_table
from rnnkit.data.emoji_images import write_emoji_scenes
from rnnkit.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, WordTokenizer
from rnnkit.decoding import SearchConfig, beam_search
from rnnkit.models.captioner import Captioner, CaptionerConfig, doubly_stochastic_penalty
from rnnkit.models.image_encoders import build_encoder, default_efficientnet_weights
from rnnkit.tasks.captioning import pad_captions
from rnnkit.tasks.captioning_features import pixels_of, round_features
from rnnkit.training.losses import token_cross_entropy

B = 64


def median_rate(fn: Callable[[], int], rounds: int) -> float:
    """Median items/s of ``rounds`` calls of ``fn`` (which returns the items it processed)."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--run", type=Path, default=None, help="a trained captioning run")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = 2 if args.quick else 5
    count = 64 if args.quick else 128
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    torch.manual_seed(0)
    encoder = build_encoder("efficientnet_lite0", default_efficientnet_weights()).eval()
    with tempfile.TemporaryDirectory() as tmp:
        table = write_emoji_scenes(Path(tmp), count, seed=0)
        examples = read_caption_table(table).examples
        paths = [ex.image for ex in examples]

        # 1. feature extraction, PNG decoding included
        def extract() -> int:
            with torch.inference_mode():
                for start in range(0, len(paths), 32):
                    batch = torch.stack([pixels_of(p, encoder) for p in paths[start : start + 32]])
                    encoder(batch)
            return len(paths)

        rate = median_rate(extract, max(2, rounds // 2))
        print(
            f"\nfeature extraction (EfficientNet-Lite0, 7x7x1280, batches of 32): {rate:.1f} images/s"
        )

        pixels = torch.stack([pixels_of(p, encoder) for p in paths])  # (N, 3, 224, 224)
        with torch.no_grad():  # not inference_mode: the training steps below read these
            features = torch.cat(
                [round_features(encoder(pixels[i : i + 32])) for i in range(0, len(paths), 32)]
            )
        texts = [" ".join(ex.captions[0].lower().split()) for ex in examples]
        tok = WordTokenizer.train(texts)
        ids = [tok.encode(t) for t in texts]
        tokens_in, tokens_out = pad_captions(ids)
        config = CaptionerConfig(
            feature_size=1280,
            vocab_size=tok.vocab_size,
            embedding_size=128,
            hidden_size=256,
            attention="soft",
            attention_size=256,
            dropout=0.3,
            pad_id=PAD_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
        )
        model = Captioner(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        mask = tokens_out[:B] != PAD_ID

        def train_on(get_grid: Callable[[], torch.Tensor]) -> Callable[[], int]:
            def step() -> int:
                model.train()
                for _ in range(3):
                    grid = get_grid()
                    out = model(grid, tokens_in[:B])
                    loss = token_cross_entropy(out.logits, tokens_out[:B], PAD_ID)
                    assert out.attention is not None
                    loss = loss + doubly_stochastic_penalty(out.attention, mask).sum() / mask.sum()
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                return 3 * B

            return step

        def from_pixels() -> torch.Tensor:
            with torch.no_grad():
                return round_features(encoder(pixels[:B]))

        cached_fn = train_on(lambda: features[:B].float())
        pixel_fn = train_on(from_pixels)
        cached, on_pixels = [], []
        for _ in range(rounds):
            cached.append(median_rate(cached_fn, 1))
            on_pixels.append(median_rate(pixel_fn, 1))
        c, p = statistics.median(cached), statistics.median(on_pixels)
        print(f"\ntraining captions/s (B={B}, soft attention, LSTM 256):")
        print(f"  on cached features  {c:8.1f}")
        print(f"  on pixels           {p:8.1f}")
        print(f"  cached / pixels     {c / p:8.1f}x")

        # 3. beam search, K = 5: 64 images at once against one at a time
        what = "untrained weights: captions run to the limit of 20"
        if args.run is not None:
            from rnnkit import api

            loaded = api.load_run(args.run)
            decoder = loaded.model.decoder
            assert isinstance(decoder, Captioner)
            model = decoder
            what = f"the decoder of {args.run}"
        model.eval()
        search = SearchConfig(beam_size=5, max_len_a=0.0, max_len_b=20)
        grid = features[:B].float()

        def batched() -> int:
            with torch.no_grad():
                beam_search(model, model.encode(grid), search)
            return B

        def one_by_one() -> int:
            with torch.no_grad():
                for i in range(B):
                    beam_search(model, model.encode(grid[i : i + 1]), search)
            return B

        together, alone = [], []
        for _ in range(max(2, rounds // 2)):
            together.append(median_rate(batched, 1))
            alone.append(median_rate(one_by_one, 1))
        t, a = statistics.median(together), statistics.median(alone)
        print(f"\nbeam search K=5, {B} images ({what}):")
        print(f"  batched, {B} at a time  {t:8.1f} images/s")
        print(f"  one image at a time     {a:8.1f} images/s")
        print(f"  batched / one at a time {t / a:8.1f}x")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
