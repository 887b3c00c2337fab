"""Attention maps laid over the images they were computed on (the attention classifier's gallery)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.report.figures import plt


def upsample_map(attention: np.ndarray, side: int) -> np.ndarray:
    """(gh, gw) attention → (side, side) in [0, 1] (bilinear, min-max scaled per map)."""
    a = np.asarray(attention, dtype=np.float32)
    a = (a - a.min()) / max(float(a.max() - a.min()), 1e-12)
    return np.asarray(Image.fromarray(a, mode="F").resize((side, side), Image.Resampling.BILINEAR)).clip(0, 1)


def attention_gallery(images: np.ndarray, maps: np.ndarray, titles: list[str], path: str | Path, *,
                      columns: int = 8, title: str = "") -> None:
    """Each image (N, H, W, 3 uint8) with its attention map (N, gh, gw) as a translucent heat map."""
    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, att, text in zip(axes.ravel(), images, maps, titles):
        ax.imshow(img)
        ax.imshow(upsample_map(att, img.shape[0]), cmap="inferno", alpha=0.5, vmin=0, vmax=1)
        ax.set_title(text, fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
