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


def load_colour_digits(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, size, size, 3) uint8 images, their digit labels, and the class names '0'..'9'."""
    digits = load_digits()
    grey = digits.images / 16.0                                   # (N, 8, 8) in [0, 1]
    up = np.stack([np.asarray(Image.fromarray(g.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BICUBIC))
                   for g in grey]).clip(0.0, 1.0)[..., None]      # (N, size, size, 1)
    bg, fg = _colour_pairs(len(grey), rng)
    images = bg[:, None, None, :] * (1.0 - up) + fg[:, None, None, :] * up
    return np.round(images).astype(np.uint8), digits.target.astype(int), list(CLASS_NAMES)
