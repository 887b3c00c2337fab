"""Noto Color Emoji rendered into labelled colour images: the 9 Unicode emoji groups as classes.

Needs the Debian packages ``fonts-noto-color-emoji`` (the bitmap font) and ``unicode-data``
(``emoji-test.txt``, the list of emoji with their groups). Every fully-qualified emoji without a
skin-tone modifier is drawn once at the font's only size (109 px, a CBDT bitmap font), centred
on white and resized to the requested side: 1 870 images with Unicode 15.0, from 85
(Activities) to 363 (People & Body) per group. The "Component" group (bare skin tones and hair
styles) is not a picture class and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

FONT_PATH = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_TEST_PATH = Path("/usr/share/unicode/emoji/emoji-test.txt")
FONT_SIZE = 109           # the only size the Noto Color Emoji bitmap strike has
SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}
SKIPPED_GROUPS = ("Component",)
APT_HINT = "install the Debian packages: apt-get install fonts-noto-color-emoji unicode-data"


class EmojiUnavailable(FileNotFoundError):
    """The font or the emoji list is missing; the message names the packages to install."""


@dataclass(frozen=True)
class Emoji:
    text: str
    group: str
    name: str


def list_emoji(path: Path = EMOJI_TEST_PATH) -> list[Emoji]:
    """Fully-qualified emoji of ``emoji-test.txt`` in file order, skin-tone variants and Component left out."""
    if not path.is_file():
        raise EmojiUnavailable(f"{path} not found: {APT_HINT}")
    out, group = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
            continue
        if not line or line.startswith("#") or "; fully-qualified" not in line:
            continue
        codes, rest = line.split(";", 1)
        text = "".join(chr(int(c, 16)) for c in codes.split())
        if group in SKIPPED_GROUPS or SKIN_TONES & set(text):
            continue
        name = rest.split("#", 1)[1].strip().split(" ", 2)[-1] if "#" in rest else ""
        out.append(Emoji(text=text, group=group, name=name))
    return out


def render_emoji(font: ImageFont.FreeTypeFont, text: str, size: int) -> np.ndarray | None:
    """One emoji on white, padded to a square and resized to ``size``; None when the font has no
    single glyph for it (it would draw several side by side)."""
    left, top, right, bottom = font.getbbox(text)
    w, h = right - left, bottom - top
    if w <= 0 or h <= 0 or w > 1.6 * h:
        return None
    side = max(w, h)
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text(((side - w) // 2 - left, (side - h) // 2 - top), text, font=font, embedded_color=True)
    white = Image.new("RGBA", canvas.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, canvas).convert("RGB")
    return np.asarray(rgb.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def render_emoji_set(size: int, *, font_path: Path = FONT_PATH, emoji_test: Path = EMOJI_TEST_PATH):
    """All emoji images (N, size, size, 3 uint8), their group index, the group names (file order),
    the emoji's names, and how many had no single glyph (skipped)."""
    if not font_path.is_file():
        raise EmojiUnavailable(f"{font_path} not found: {APT_HINT}")
    emoji = list_emoji(emoji_test)
    font = ImageFont.truetype(str(font_path), FONT_SIZE)
    groups = list(dict.fromkeys(e.group for e in emoji))
    images, labels, names, skipped = [], [], [], 0
    for e in tqdm(emoji, desc="render emoji", unit="img", mininterval=2.0):
        img = render_emoji(font, e.text, size)
        if img is None:
            skipped += 1
            continue
        images.append(img)
        labels.append(groups.index(e.group))
        names.append(e.name)
    return np.stack(images), np.asarray(labels), groups, names, skipped
