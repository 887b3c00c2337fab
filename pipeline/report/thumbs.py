"""Small decoded images as data URIs, for the interactive report's tooltips and galleries.

WebP (Pillow's libwebp, quality 80) because a 32-px tile is ~0.3 KB there against ~1.2 KB as PNG:
the report embeds a few thousand of them and stays under its 10 MB budget. Every browser the
report targets decodes WebP.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

MEDIA_TYPE = "image/webp"


def thumbnail_uri(image: np.ndarray, *, side: int | None = None, quality: int = 80) -> str:
    """One uint8 HWC (RGB) image → ``data:image/webp;base64,…``; resized to ``side`` px when given."""
    im = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if side is not None and max(im.size) != side:
        im = im.resize((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "WEBP", quality=quality, method=4)
    return f"data:{MEDIA_TYPE};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_uris(images: np.ndarray, **kw) -> list[str]:
    """:func:`thumbnail_uri` for each image of an (N, H, W, 3) uint8 array."""
    return [thumbnail_uri(im, **kw) for im in images]
