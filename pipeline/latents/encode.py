"""One split of the image store into the latent store, with its reconstruction metrics.

:func:`encode_split` is the local engine: one process streams the split a batch at a time
(memory does not grow with the split). :func:`pipeline.distributed.encode.encode_split_ray`
runs the same per-batch work (:func:`batch_metrics`) in Ray Data actors and returns the same
:class:`EncodedSplit`, so the encode stage treats both engines alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from pipeline.latents.store import LatentSplitWriter
from pipeline.latents.vae import encode_batches
from pipeline.metrics.reconstruction import reconstruction_table
from pipeline.runtime import release_memory

# the image store's row metadata that the latent store keeps beside each latent
META_COLUMNS = ["id", "label", "label_name", "split", "artifact_kind", "severity"]
RELEASE_EVERY = 16   # batches between handing freed heap pages back (pipeline.runtime.release_memory)


@dataclass
class EncodedSplit:
    """What encoding a split measured (its latents are in the store): per-image ``metrics``
    (mse, psnr, ssim) in split order; with a mean image, the same for the mean image as every
    image's reconstruction (``baseline``); with ``sum_pixels``, the float64 (H, W, 3) sum of the
    images; and the first ``keep`` ``originals`` with their reconstructions."""

    metrics: pd.DataFrame
    baseline: pd.DataFrame | None
    pixel_sum: np.ndarray | None
    originals: np.ndarray
    recon: np.ndarray


def batch_metrics(images: np.ndarray, recon: np.ndarray,
                  mean_image: np.ndarray | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Per-image reconstruction metrics of a batch, and the mean-image baseline's (None without one)."""
    baseline = None
    if mean_image is not None:
        baseline = reconstruction_table(images, np.broadcast_to(mean_image, images.shape).copy())
    return reconstruction_table(images, recon), baseline


def encode_split(vae, batches: Iterable, writer: LatentSplitWriter, *, total: int, sample: bool = False,
                 generator: torch.Generator | None = None, mean_image: np.ndarray | None = None,
                 sum_pixels: bool = False, keep: int = 0, desc: str = "encode") -> EncodedSplit:
    """Encode and decode ``batches`` (image-store batches, e.g.
    :func:`~pipeline.data.store.iter_image_batches`) with ``vae``, append the scaled latents and
    :data:`META_COLUMNS` to ``writer`` (the caller closes it) and measure as :class:`EncodedSplit`
    says. Memory holds one batch; freed heap pages go back to the system every few batches."""
    rows, baseline_rows, kept, pixel_sum = [], [], {"images": [], "recon": []}, None
    with tqdm(total=total, desc=desc, unit="image", mininterval=2.0) as bar:
        for i, (batch, z, recon) in enumerate(encode_batches(vae, batches, sample=sample, generator=generator)):
            if i % RELEASE_EVERY == 0:
                release_memory()   # resident memory stays flat however many batches pass
            writer.append(z, batch.meta[META_COLUMNS])
            metrics, baseline = batch_metrics(batch.images, recon, mean_image)
            rows.append(metrics)
            if baseline is not None:
                baseline_rows.append(baseline)
            if sum_pixels:
                total_px = batch.images.sum(axis=0, dtype=np.float64)
                pixel_sum = total_px if pixel_sum is None else pixel_sum + total_px
            room = keep - sum(len(a) for a in kept["images"])
            if room > 0:
                kept["images"].append(batch.images[:room])
                kept["recon"].append(recon[:room])
            bar.update(len(z))
    if not rows:
        raise ValueError(f"split {writer.split!r} has no images to encode")
    return EncodedSplit(
        metrics=pd.concat(rows, ignore_index=True),
        baseline=pd.concat(baseline_rows, ignore_index=True) if baseline_rows else None,
        pixel_sum=pixel_sum,
        originals=_stack(kept["images"]),
        recon=_stack(kept["recon"]),
    )


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros((0, 0, 0, 3), np.uint8)


def mean_image(pixel_sum: np.ndarray, n: int) -> np.ndarray:
    """The mean image (uint8) from a float64 pixel sum over ``n`` images."""
    return (pixel_sum / n).round().astype(np.uint8)
