"""Simple per-image statistics to relate reconstruction error to image content."""

from __future__ import annotations

import numpy as np
from skimage.filters import sobel


def edge_density(images: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Fraction of pixels whose Sobel gradient magnitude (grey levels in [0, 1]) exceeds ``threshold``."""
    grey = images.astype(np.float64).mean(axis=-1) / 255.0
    return np.array([(sobel(g) > threshold).mean() for g in grey])


def contrast(images: np.ndarray) -> np.ndarray:
    """RMS contrast: std of grey levels in [0, 1]."""
    return (images.astype(np.float64).mean(axis=-1) / 255.0).std(axis=(1, 2))
