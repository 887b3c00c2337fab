"""scikit-learn's bundled handwritten digits (1 797 images, 8×8 grey, 10 classes), upscaled to colour.

The data ships inside the scikit-learn wheel, so this source needs no network. Each image gets a
seeded random background colour and a foreground colour at least ``MIN_CONTRAST`` away in
luminance, so colour carries no label information and the VAE must model colour as well as
shape. Upscaling is bicubic from 8×8 to the requested side.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

CLASS_NAMES = [str(d) for d in range(10)]
MIN_CONTRAST = 96.0       # luminance difference (0..255) between foreground and background


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def _colour_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    bg = rng.uniform(0, 255, size=(n, 3))
    fg = rng.uniform(0, 255, size=(n, 3))
    low = np.abs(_luminance(fg) - _luminance(bg)) < MIN_CONTRAST
    while low.any():  # redraw the foregrounds that are too close to their background
        fg[low] = rng.uniform(0, 255, size=(int(low.sum()), 3))
        low = np.abs(_luminance(fg) - _luminance(bg)) < MIN_CONTRAST
    return bg, fg


def load_colour_digits(size: int, rng: np.random.Generator, pick=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, size, size, 3) uint8 images, their digit labels, and the class names '0'..'9'.

    Every digit's colours are drawn from ``rng`` first; ``pick(n)`` (optional, drawing from the same
    ``rng``) then chooses which of the ``n`` digits to render, so a caller that needs a few digits at
    256 px does not render all 1 797 (2.8 GB in float at 256 px). Images are rendered a chunk at a
    time: memory holds the uint8 result and one chunk in float."""
    digits = load_digits()
    grey = digits.images / 16.0                                   # (N, 8, 8) in [0, 1]
    bg, fg = _colour_pairs(len(grey), rng)
    idx = np.arange(len(grey)) if pick is None else np.asarray(pick(len(grey)))
    out = np.empty((len(idx), size, size, 3), np.uint8)
    chunk = max(1, (64 << 20) // (size * size * 3 * 8))          # ~64 MB of float64 per chunk
    for start in range(0, len(idx), chunk):
        part = idx[start:start + chunk]
        up = np.stack([np.asarray(Image.fromarray(grey[i].astype(np.float32), mode="F").resize(
            (size, size), Image.Resampling.BICUBIC)) for i in part]).clip(0.0, 1.0)[..., None]   # (n, size, size, 1)
        out[start:start + len(part)] = np.round(bg[part, None, None, :] * (1.0 - up) + fg[part, None, None, :] * up)
    return out, digits.target[idx].astype(int), list(CLASS_NAMES)
