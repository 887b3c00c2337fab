"""Images as pixel feature rows, for the pixel-space baselines beside the latents' numbers (the
linear probe and silhouette of ``analyze``, the pixel Fréchet distance of ``fidelity``)."""

from __future__ import annotations

import numpy as np

from pipeline.latents.rgb import downsample_images

PIXEL_BASELINE_SIDE = 64


def pixel_features(images: np.ndarray, max_side: int = PIXEL_BASELINE_SIDE) -> np.ndarray:
    """(N, side²·3) float32 in [0, 1]. Images up to ``max_side`` px are used as they are (the default
    32 px); larger ones are block-averaged to the largest side ≤ ``max_side`` that divides theirs (256
    and 512 px → 64), so a pixel baseline stays a vector of comparable length to the latents (4×32×32:
    4 096; 64 px: 12 288) and its memory bounded (3 000 train images of 256 px as float32 are 2.4 GB,
    which a probe or a PCA then copies)."""
    side = images.shape[1]
    if side <= max_side:
        return images.reshape(len(images), -1).astype(np.float32) / 255.0
    target = next(side // f for f in range(2, side + 1) if side % f == 0 and side // f <= max_side)
    return ((downsample_images(images, target) + 1.0) / 2.0).astype(np.float32).reshape(len(images), -1)
