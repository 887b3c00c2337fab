"""Per-image reconstruction quality: MSE, PSNR and SSIM on uint8 RGB images.

SSIM comes from scikit-image (the reference implementation of Wang et al. 2004, with the
gaussian-window option) rather than a hand-written copy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.metrics import structural_similarity


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR (dB, peak 1) between uint8 image batches (N, H, W, 3)."""
    mse = (((a.astype(np.float64) - b.astype(np.float64)) / 255.0) ** 2).mean(axis=(1, 2, 3))
    return 10.0 * np.log10(1.0 / np.maximum(mse, 1e-10))


def reconstruction_table(originals: np.ndarray, reconstructions: np.ndarray) -> pd.DataFrame:
    """One row per image: ``mse`` (on [0, 1] pixels), ``psnr`` (dB, peak 1) and ``ssim``."""
    if originals.shape != reconstructions.shape:
        raise ValueError(f"shape mismatch: {originals.shape} vs {reconstructions.shape}")
    a = originals.astype(np.float64) / 255.0
    b = reconstructions.astype(np.float64) / 255.0
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    win = min(7, originals.shape[1] - (1 - originals.shape[1] % 2))
    ssim = np.array(
        [structural_similarity(x, y, channel_axis=-1, data_range=1.0, win_size=win) for x, y in zip(a, b)]
    )
    return pd.DataFrame({"mse": mse, "psnr": psnr(originals, reconstructions), "ssim": ssim})


def summarise(table: pd.DataFrame, by: str | None = None) -> dict:
    """Means of mse/psnr/ssim, overall or per value of column ``by``."""
    cols = ["mse", "psnr", "ssim"]
    if by is None:
        return {c: float(table[c].mean()) for c in cols}
    return {str(k): {c: float(g[c].mean()) for c in cols} for k, g in table.groupby(by, sort=True)}
