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


def embedding_panels(panels: list[dict], class_names: list[str], path: str | Path, title: str) -> None:
    """Side-by-side 2-D embeddings coloured by class.

    Each panel: ``title``, ``xy`` (n, 2), ``labels`` (n,), and optionally ``synthetic_xy`` /
    ``synthetic_labels`` drawn as crosses over the real points (dots).
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    colours = sns.color_palette("tab10", len(class_names))
    for ax, panel in zip(axes[0], panels):
        for k, name in enumerate(class_names):
            m = panel["labels"] == k
            ax.scatter(*panel["xy"][m].T, s=7, color=colours[k], alpha=0.55, label=name, linewidths=0)
            if panel.get("synthetic_xy") is not None:
                ms = panel["synthetic_labels"] == k
                ax.scatter(*panel["synthetic_xy"][ms].T, s=10, marker="x", color=colours[k], alpha=0.7, linewidths=0.7)
        ax.set_title(panel["title"], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(fontsize=7, markerscale=2, loc="best")
    fig.suptitle(title, fontsize=10)
    _finish(fig, path)


def grouped_bars(frame: pd.DataFrame, *, panels: list[tuple[str, str, str | float | None]], x: str, path: str | Path,
                 title: str) -> None:
    """One small bar panel per metric: ``(title, value column, baseline)``.

    Bars show ``value`` (with ``value_std`` as error bar when present). A baseline column is
    drawn as a grey tick per bar, so each method sits beside its own real-data reference; a
    number as one dashed line; ``None`` draws none.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.6), squeeze=False)
    pos = np.arange(len(frame))
    for ax, (name, col, base) in zip(axes[0], panels):
        err = frame[f"{col}_std"] if f"{col}_std" in frame else None
        ax.bar(pos, frame[col], yerr=err, capsize=2, color="C0")
        if isinstance(base, str):
            ax.scatter(pos, frame[base], marker="_", s=300, color="grey", zorder=3, label="real baseline")
            ax.legend(fontsize=7)
        elif base is not None:
            ax.axhline(base, linestyle="--", color="grey", label="real baseline")
            ax.legend(fontsize=7)
        ax.set_xticks(pos, frame[x], rotation=45, ha="right", fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    _finish(fig, path)


def round_robin(labels: np.ndarray, size: int) -> np.ndarray:
    """Up to ``size`` indices, taken round-robin over classes so every class shows."""
    per_class = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    picks = [idx[i] for i in range(size) for idx in per_class if i < len(idx)]
    return np.array(picks[:size], dtype=int)


def paired_rows(top: np.ndarray, bottom: np.ndarray, per_row: int = 8) -> list[np.ndarray]:
    """Rows for :func:`image_grid`: ``per_row`` of ``top``, then the matching ``bottom`` images, …"""
    rows = []
    for i in range(0, len(top), per_row):
        rows += [top[i : i + per_row], bottom[i : i + per_row]]
    return rows


def box_by_group(frame: pd.DataFrame, *, x: str, y: str, path: str | Path, title: str) -> None:
    """Distribution of ``y`` per value of ``x`` (box plot with the points' spread)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    sns.boxplot(data=frame, x=x, y=y, ax=ax, color="#9db4d6", fliersize=2)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    _finish(fig, path)


def scatter_trend(x: np.ndarray, y: np.ndarray, *, xlabel: str, ylabel: str, path: str | Path, title: str) -> None:
    """Scatter with a least-squares line."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.scatter(x, y, s=6, alpha=0.5)
    if np.ptp(x) > 0:
        slope, icpt = np.polyfit(x, y, 1)
        xs = np.linspace(x.min(), x.max(), 10)
        ax.plot(xs, slope * xs + icpt, color="C3", label=f"least squares (slope {slope:.3g})")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _finish(fig, path)


def channel_histograms(latents: np.ndarray, path: str | Path, title: str, bins: int = 60) -> None:
    """One histogram per latent channel (values over samples and positions), standard normal overlaid."""
    c = latents.shape[1]
    fig, axes = plt.subplots(1, c, figsize=(2.8 * c, 2.8), squeeze=False)
    grid = np.linspace(-4, 4, 200)
    for i, ax in enumerate(axes[0]):
        v = latents[:, i].ravel()
        ax.hist(v, bins=bins, density=True, color=f"C{i}", alpha=0.75)
        ax.plot(grid, np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), color="k", lw=0.8, label="N(0, 1)")
        ax.set_title(f"channel {i}", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    _finish(fig, path)


def matrix_heatmap(matrix: np.ndarray, labels: list[str], path: str | Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(4, 3.4))
    sns.heatmap(matrix, annot=True, fmt=".2f", cmap="vlag", vmin=-1, vmax=1, xticklabels=labels, yticklabels=labels,
                ax=ax)
    ax.set_title(title)
    _finish(fig, path)


def explained_variance(ratios: np.ndarray, path: str | Path, title: str) -> None:
    """Per-component (bars) and cumulative (line) explained variance of a PCA."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    k = np.arange(1, len(ratios) + 1)
    ax.bar(k, ratios, color="C0", alpha=0.6, label="per component")
    ax2 = ax.twinx()
    ax2.plot(k, np.cumsum(ratios), color="C3", label="cumulative")
    ax2.set_ylim(0, 1)
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    ax2.set_ylabel("cumulative")
    ax.set_title(title)
    fig.legend(fontsize=8, loc="center right")
    _finish(fig, path)


def continuity_chart(frame: pd.DataFrame, path: str | Path) -> None:
    """Two panels from rows (kind, pairing, step, pixel_change, prob_end): pixel change per step and
    the probe's probability of the end point's class along the path, one line per kind × pairing."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for (kind, pairing), g in frame.groupby(["kind", "pairing"], sort=False):
        mean = g.groupby("step", sort=True).mean(numeric_only=True)
        style = "-" if kind == "lerp" else "--"
        label = f"{kind}, {pairing} class"
        axes[0].plot(mean.index[1:], mean["pixel_change"].iloc[1:], style, marker="o", label=label)
        axes[1].plot(mean["lam"], mean["prob_end"], style, marker="o", label=label)
    axes[0].set_xlabel("step along the path")
    axes[0].set_ylabel("RMS pixel change from previous step")
    axes[0].set_title("Decoded change per step (flat = smooth path)")
    axes[1].set_xlabel("λ")
    axes[1].set_ylabel("probe P(end point's class)")
    axes[1].set_title("Linear probe along the path")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _finish(fig, path)


def level_panels(summary: pd.DataFrame, *, metric: str, path: str | Path, title: str,
                 baselines: dict[str, float] | None = None, ylabel: str | None = None) -> None:
    """One panel per ``scheduler``: ``<metric>_mean`` against ``t_frac`` per ``series`` with a ±std
    band (``<metric>_std``), dashed horizontal baselines, and hollow markers for held-out levels."""
    schedulers = list(dict.fromkeys(summary["scheduler"]))
    fig, axes = plt.subplots(1, len(schedulers), figsize=(3.6 * len(schedulers), 3.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], schedulers):
        part = summary[summary["scheduler"] == name]
        for i, (series, g) in enumerate(part.groupby("series", sort=False)):
            g = g.sort_values("t_frac")
            trained = g[~g["heldout"]]
            mean, std = trained[f"{metric}_mean"], trained[f"{metric}_std"]
            ax.plot(trained["t_frac"], mean, marker="o", ms=3, color=f"C{i}", label=series)
            ax.fill_between(trained["t_frac"], mean - std, mean + std, color=f"C{i}", alpha=0.15)
            held = g[g["heldout"]]
            if len(held):
                ax.scatter(held["t_frac"], held[f"{metric}_mean"], facecolors="none", edgecolors=f"C{i}", s=30)
        for j, (label, value) in enumerate((baselines or {}).items()):
            ax.axhline(value, linestyle="--", color=("0.3", "0.6", "C9")[j % 3], lw=1, label=label)
        ax.set_title(name)
        ax.set_xlabel("t_frac (0 clean, 1 noise)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel or metric)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title + " (hollow: held-out levels)", fontsize=10)
    _finish(fig, path)


def prediction_scatter(panels: list[tuple[str, np.ndarray, np.ndarray]], path: str | Path, title: str,
                       max_score: float = 5.0) -> None:
    """Predicted against true score, one panel per (name, y_true, y_pred), with the identity line."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.4), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (name, y, p) in zip(axes[0], panels):
        jitter = rng.uniform(-0.15, 0.15, len(y)) if np.allclose(y, np.round(y)) else 0.0
        ax.scatter(y + jitter, p, s=5, alpha=0.4)
        ax.plot([0, max_score], [0, max_score], color="0.4", lw=1, linestyle="--")
        ax.set_xlim(-0.5, max_score + 0.5)
        ax.set_ylim(-0.2, max_score + 0.2)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("true score")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("predicted score")
    fig.suptitle(title, fontsize=10)
    _finish(fig, path)


def tradeoff_chart(curves: pd.DataFrame, points: dict[str, dict], path: str | Path, title: str) -> None:
    """Severe caught against others stopped per ``scheduler`` (chance = the diagonal), coloured by
    run saved; each scheduler's chosen operating point is starred."""
    schedulers = list(dict.fromkeys(curves["scheduler"]))
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4))
    for i, name in enumerate(schedulers):
        c = curves[curves["scheduler"] == name].sort_values("false_stop")
        axes[0].plot(c["false_stop"], c["caught"], color=f"C{i}", label=name)
        axes[1].plot(c["caught"], c["saved"], color=f"C{i}", label=name)
        pt = {k: (v["mean"] if isinstance(v, dict) else v) for k, v in (points.get(name) or {}).items()}
        if pt.get("threshold") is not None:
            axes[0].scatter([pt["false_stop"]], [pt["caught"]], marker="*", s=120, color=f"C{i}", edgecolors="k", zorder=5)
    axes[0].plot([0, 1], [0, 1], color="0.5", linestyle="--", lw=1, label="chance (random stopping)")
    axes[0].set_xlabel("non-severe runs stopped (false stops)")
    axes[0].set_ylabel("severe runs stopped (caught)")
    axes[1].set_xlabel("severe runs stopped (caught)")
    axes[1].set_ylabel("mean share of the run saved")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title + " (star: operating point chosen on the calibration half, measured on the other)", fontsize=9)
    _finish(fig, path)


def trajectory_paths(paths: dict[str, tuple[np.ndarray, np.ndarray]], real: np.ndarray, path: str | Path,
                     title: str) -> None:
    """One panel per sampler: each run's noisy latent (solid, circle at the noise end) and its x̂₀
    prediction (dashed, square at the end) as (steps, runs, 2) coordinates, over the real points (grey)."""
    fig, axes = plt.subplots(1, len(paths), figsize=(3.4 * len(paths), 3.6), sharex=True, sharey=True, squeeze=False)
    for ax, (name, (x_t, x0)) in zip(axes[0], paths.items()):
        ax.scatter(real[:, 0], real[:, 1], s=4, color="0.8", label="real test")
        for j in range(x_t.shape[1]):
            color = f"C{j % 10}"
            ax.plot(x_t[:, j, 0], x_t[:, j, 1], "-", color=color, lw=1, alpha=0.8)
            ax.plot(x_t[0, j, 0], x_t[0, j, 1], "o", color=color, ms=4)
            ax.plot(x0[:, j, 0], x0[:, j, 1], "--", color=color, lw=1)
            ax.plot(x0[-1, j, 0], x0[-1, j, 1], "s", color=color, ms=4)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("PC 1")
    axes[0][0].set_ylabel("PC 2")
    axes[0][0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title + "\nsolid: x_t (○ noise); dashed: predicted x̂₀ (□ final)", fontsize=9)
    _finish(fig, path)


def fresh_level_frame(study: dict, metric: str) -> pd.DataFrame:
    """The fresh-noise study's per-level ``metric`` (mean / std over seeds) of every predictor and scheduler,
    in :func:`level_panels`' layout (``scheduler``, ``series``, ``t_frac``, ``heldout``, ``<metric>_mean/_std``)."""
    rows = []
    for name, block in study.items():
        if not isinstance(block, dict) or "predictors" not in block:
            continue
        for series, levels in block["predictors"].items():
            for level, cell in levels.items():
                rows.append({"scheduler": f"{name} (fresh noise)", "series": series, "t_frac": float(level), "heldout": False,
                             f"{metric}_mean": cell[metric]["mean"], f"{metric}_std": cell[metric]["std"]})
    return pd.DataFrame(rows)


def exit_bars(study: dict, path: str | Path, title: str) -> None:
    """Per scheduler, each predictor's early exit on the test runs: severe runs caught (bar: mean over seeds; whisker
    down to the one-sided 95 % lower bound), with its false-stop rate and the share of sampling saved written beside."""
    names = [n for n, b in study.items() if isinstance(b, dict) and b.get("early_exit")]
    if not names:   # no scheduler had both kinds of runs: say so in the picture
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no early exit: the judge rated every run one way", ha="center", va="center")
        _finish(fig, path)
        return
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 3.4), sharex=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        block = study[name]
        preds = list(block["early_exit"])
        caught = [block["early_exit"][p]["caught"]["mean"] for p in preds]
        lower = [max(0.0, block["early_exit"][p]["caught"]["lower"]) for p in preds]
        best = block.get("best", {}).get("predictor")
        colors = ["C2" if p == best else "C0" for p in preds]
        y = np.arange(len(preds))
        ax.barh(y, caught, color=colors, alpha=0.8)
        ax.errorbar(caught, y, xerr=[np.subtract(caught, lower), np.zeros(len(preds))], fmt="none", color="0.2", lw=1)
        for yi, p in zip(y, preds):
            e = block["early_exit"][p]
            ax.text(0.99, yi, f"stops {e['false_stop']['mean']:.0%} others · saves {e['saved']['mean']:.0%}",
                    va="center", ha="right", fontsize=7, transform=ax.get_yaxis_transform())
        ax.set_yticks(y, preds, fontsize=7)
        ax.set_xlim(0, 1)
        ax.axvline(0.5, color="0.5", lw=1, linestyle=":")
        ax.set_title(f"{name} (fresh noise)", fontsize=9)
        ax.set_xlabel("severe test runs caught")
    fig.suptitle(title, fontsize=9)
    _finish(fig, path)
