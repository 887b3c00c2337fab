"""Figures as PNG files: image grids (Pillow) and charts (matplotlib/seaborn, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from PIL import Image  # noqa: E402


def image_grid(rows: list[np.ndarray], *, scale: int = 3, pad: int = 1) -> Image.Image:
    """Tile each entry of ``rows`` ((n, H, W, 3) uint8) as one row, upscaled by ``scale``."""
    h, w = rows[0].shape[1:3]
    ncols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y : y + h, x : x + w] = img
    image = Image.fromarray(grid)
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def save_png(image: Image.Image, path: str | Path) -> None:
    image.save(path, format="PNG")


def _finish(fig, path: str | Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def line_chart(
    frame: pd.DataFrame, *, x: str, y: str, hue: str, path: str | Path, title: str,
    baselines: dict[str, float] | None = None, ylabel: str | None = None,
) -> None:
    """One line per ``hue`` value, with dashed horizontal baselines."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, group in frame.groupby(hue, sort=False):
        ax.plot(group[x], group[y], marker="o", label=str(name))
    for i, (name, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, linestyle="--", color=f"C{7 + i}", label=name)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or y)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _finish(fig, path)


def loss_curve(steps: list[int], losses: list[float], path: str | Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("reconstruction MSE ([-1, 1] pixels)")
    ax.set_title("VAE training loss")
    ax.grid(alpha=0.3)
    _finish(fig, path)


def confusion_heatmap(matrix: np.ndarray, class_names: list[str], path: str | Path, title: str) -> None:
    """Row-normalised confusion matrix (rows: true class), counts annotated."""
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sns.heatmap(norm, annot=matrix, fmt="d", cmap="Blues", vmin=0, vmax=1, cbar=False,
                xticklabels=class_names, yticklabels=class_names, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    _finish(fig, path)


def bar_chart(frame: pd.DataFrame, *, x: str, y: str, err: str, hue: str, path: str | Path, title: str,
              baseline: float | None = None, baseline_label: str = "baseline") -> None:
    """Grouped bars of ``y`` ± ``err``; an optional dashed baseline."""
    fig, ax = plt.subplots(figsize=(6, 4))
    groups = list(dict.fromkeys(frame[x]))
    hues = list(dict.fromkeys(frame[hue]))
    width = 0.8 / len(hues)
    for i, h in enumerate(hues):
        sub = frame[frame[hue] == h].set_index(x).reindex(groups)
        pos = np.arange(len(groups)) + (i - (len(hues) - 1) / 2) * width
        ax.bar(pos, sub[y], width, yerr=sub[err], capsize=3, label=str(h))
    if baseline is not None:
        ax.axhline(baseline, linestyle="--", color="grey", label=baseline_label)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    _finish(fig, path)
