"""Odd images from real sources decode to what they show, or are skipped (issue 17, item 2)."""

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.data.imaging import decode_image


def encode(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_greyscale_and_palette_images_keep_their_values():
    grey = decode_image(encode(Image.new("L", (16, 16), 100)), 8)
    assert grey.shape == (8, 8, 3) and (grey == 100).all()
    palette = Image.new("P", (16, 16))
    palette.putpalette([200, 10, 20] + [0] * 765)
    assert (decode_image(encode(palette), 8) == [200, 10, 20]).all()


def test_transparency_is_composited_over_white_not_the_hidden_colour():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :8] = [255, 0, 0, 255]           # left: opaque red
    rgba[:, 8:] = [0, 0, 0, 0]               # right: transparent (black underneath)
    out = decode_image(encode(Image.fromarray(rgba, "RGBA")), 16)
    assert (out[:, :6] == [255, 0, 0]).all() and (out[:, 10:] == 255).all()
    la = Image.fromarray(np.dstack([np.full((16, 16), 50, np.uint8), np.zeros((16, 16), np.uint8)]), "LA")
    assert (decode_image(encode(la), 8) == 255).all()
    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    assert (decode_image(encode(palette, transparency=1), 8) == 255).all()


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    for value, expect in ((0, 0), (32896, 128), (65535, 255), (1000, 4)):
        data = encode(Image.fromarray(np.full((16, 16), value, np.uint16)))   # uint16: a 16-bit greyscale PNG
        assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")
        assert (decode_image(data, 8) == expect).all(), value               # clipping would give 255 from 256 on


def test_cmyk_jpeg_converts_to_rgb():
    data = encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)   # pure red in CMYK
    r, g, b = decode_image(data, 8).reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied():
    stored = np.zeros((20, 40, 3), np.uint8)   # stored landscape: left half red, right half blue
    stored[:, :20] = [255, 0, 0]
    stored[:, 20:] = [0, 0, 255]
    exif = Image.Exif()
    exif[0x0112] = 6                           # "rotate 90° clockwise to view"
    data = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    out = decode_image(data, 20)               # viewed: portrait 20 × 40, red on top, blue below → centre crop
    upright = decode_image(encode(Image.fromarray(np.rot90(stored, -1).copy()), "JPEG", quality=95), 20)
    assert np.abs(out.astype(int) - upright.astype(int)).mean() < 4


@pytest.mark.parametrize("shape", [(8, 8), (10, 100), (100, 10)])
def test_tiny_and_extreme_aspect_images_fit_the_square(shape):
    h, w = shape
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = 255
    out = decode_image(encode(Image.fromarray(image)), 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_decompression_bombs_are_refused_with_or_without_pillows_error(monkeypatch):
    data = encode(Image.new("RGB", (100, 100), (1, 2, 3)))
    assert decode_image(data, 8) is not None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)   # 10 000 px: Pillow only warns below 2× the limit
    assert decode_image(data, 8) is None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)   # above 2×: Pillow's own error
    assert decode_image(data, 8) is None


def test_garbage_and_truncated_files_are_skipped():
    data = encode(Image.new("RGB", (64, 64), (9, 9, 9)))
    assert decode_image(b"not an image", 8) is None
    assert decode_image(data[: len(data) // 2], 8) is None
