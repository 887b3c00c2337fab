"""Decoding and fitting real images to the pipeline's square size without squashing them."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError


def resize_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """Scale the short side to ``size`` (aspect kept, Lanczos), crop the centre square, RGB uint8.

    DiffusionDB images are often 512×704 or 768×512; squashing them to a square would change
    every object's shape, which is itself an artifact."""
    image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), Image.Resampling.LANCZOS)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def decode_image(data: bytes, size: int) -> np.ndarray | None:
    """Encoded image bytes → ``size``×``size`` RGB uint8, or None when Pillow cannot decode them."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return resize_center_crop(image, size)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
