"""Per-image reconstruction quality: MSE, PSNR and SSIM on uint8 RGB images.

SSIM is scikit-image's ``structural_similarity`` with its defaults (Wang et al. 2004: a uniform
``win``×``win`` window, sample covariances, K1 = 0.01, K2 = 0.03, the border cropped, channels
averaged), computed for the whole batch at once with one ``scipy.ndimage.uniform_filter`` per
moment: scikit-image loops over images and channels in Python, which made SSIM most of the
encode stage's own time (the test checks the two agree to 1e-10).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter


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
    return pd.DataFrame({"mse": mse, "psnr": psnr(originals, reconstructions), "ssim": ssim(a, b, win)})


def ssim(a: np.ndarray, b: np.ndarray, win: int = 7, data_range: float = 1.0) -> np.ndarray:
    """Per-image mean SSIM of float batches (N, H, W, C), as ``skimage.metrics.structural_similarity(x, y,
    channel_axis=-1, data_range=data_range, win_size=win)`` gives for each pair."""
    size, n_px = (1, win, win, 1), win * win

    def mean(x):
        return uniform_filter(x, size=size)

    ua, ub = mean(a), mean(b)
    cov_norm = n_px / (n_px - 1)   # sample covariance, as scikit-image's default
    va = cov_norm * (mean(a * a) - ua * ua)
    vb = cov_norm * (mean(b * b) - ub * ub)
    vab = cov_norm * (mean(a * b) - ua * ub)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua ** 2 + ub ** 2 + c1) * (va + vb + c2))
    pad = (win - 1) // 2
    return s[:, pad:s.shape[1] - pad, pad:s.shape[2] - pad, :].mean(axis=(1, 2, 3))


def summarise(table: pd.DataFrame, by: str | None = None) -> dict:
    """Means of mse/psnr/ssim, overall or per value of column ``by``."""
    cols = ["mse", "psnr", "ssim"]
    if by is None:
        return {c: float(table[c].mean()) for c in cols}
    return {str(k): {c: float(g[c].mean()) for c in cols} for k, g in table.groupby(by, sort=True)}
