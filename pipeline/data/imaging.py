"""Decoding and fitting real images to the pipeline's square size without squashing them."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


def resize_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """Scale the short side to ``size`` (aspect kept, Lanczos), crop the centre square, RGB uint8.

    DiffusionDB images are often 512×704 or 768×512; squashing them to a square would change
    every object's shape, which is itself an artifact."""
    image = to_rgb(image)
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), Image.Resampling.LANCZOS)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB image as it is meant to be seen, whatever the file held: the EXIF orientation
    applied (a phone photo stored sideways), 16-bit greyscale scaled down rather than clipped,
    transparency (RGBA, LA, a palette's transparent entry) composited over white instead of
    showing whatever colour hides under alpha 0, CMYK and palettes converted by Pillow."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):   # 16-bit greyscale PNGs (I: Pillow's 32-bit form of them)
        grey = np.clip(np.asarray(image, dtype=np.float64) / 257.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, size: int) -> np.ndarray | None:
    """Encoded image bytes → ``size``×``size`` RGB uint8 (:func:`to_rgb`), or None when Pillow cannot
    decode them or they are a decompression bomb: more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``
    (Pillow only warns up to twice that; here the warning refuses the image too)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                return resize_center_crop(image, size)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None
