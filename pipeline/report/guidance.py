"""Figures of metric-guided generation (the guide stage and its report section): the guidance-scale
curves, the OOD detector's ROC and the class-versus-realism trade-off. PNG files or PNG bytes."""

from __future__ import annotations

import io

import pandas as pd

from pipeline.report.figures import _finish, plt


GUIDE_PANELS = (("class_accuracy", "requested class, by an independent classifier"), ("frechet", "Fréchet (lower = more real)"),
                ("recall", "recall (diversity)"), ("far_fraction", "far from all training latents (OOD rate)"))


def guidance_curves(table: pd.DataFrame, baselines: dict, path, title: str, prior: float | None = None) -> None:
    """Each metric of :data:`GUIDE_PANELS` against the guidance scale, one line per guidance kind
    (mean ± std over seeds); unguided sampling, combined guidance and the baselines as horizontal lines."""
    fig, axes = plt.subplots(1, len(GUIDE_PANELS), figsize=(4 * len(GUIDE_PANELS), 3.6))
    kinds = [k for k in dict.fromkeys(table["kind"]) if k not in ("unguided", "combined")]
    for ax, (metric, label) in zip(axes, GUIDE_PANELS):
        for i, kind in enumerate(kinds):
            t = table[table["kind"] == kind].sort_values("scale")
            ax.errorbar(t["scale"], t[f"{metric}_mean"], yerr=t[f"{metric}_std"], marker="o", capsize=3, color=f"C{i}",
                        label=kind)
        for kind, style in (("unguided", "--"), ("combined", ":")):
            t = table[table["kind"] == kind]
            if len(t):
                ax.axhline(float(t[f"{metric}_mean"].iloc[0]), color="k", linestyle=style, lw=1, label=kind)
        if metric == "class_accuracy" and prior is not None:
            ax.axhline(prior, color="0.6", linestyle="-.", lw=1, label="class prior")
        if metric in baselines.get("real_train", {}):
            ax.axhline(baselines["real_train"][metric], color="C7", linestyle="-.", lw=1, label="real train (baseline)")
        ax.set_xscale("log")
        ax.set_xlabel("guidance scale")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    _finish(fig, path)


def roc_chart(rocs: pd.DataFrame, path, title: str) -> None:
    """One ROC curve per ``against`` set (chance = the diagonal)."""
    fig, ax = plt.subplots(figsize=(5, 4.2))
    for i, (name, r) in enumerate(rocs.groupby("against", sort=False)):
        ax.plot(r["fpr"], r["tpr"], color=f"C{i}", label=name)
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", lw=1, label="chance")
    ax.set_xlabel("held-out real latents flagged")
    ax.set_ylabel("other set flagged")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _finish(fig, path)


def guidance_tradeoff(table: pd.DataFrame, points: dict[str, tuple[float, float]], title: str,
                      prior: float | None = None) -> bytes:
    """Class accuracy against FD∞ (the Fréchet distance extrapolated to n → ∞, comparable across set
    sizes): one curve per guidance kind over its scales, and single points (``points``: name → (FD∞,
    class accuracy)) for unguided sampling, the baselines and other generators (of other n) on the same axes."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    kinds = [k for k in dict.fromkeys(table["kind"]) if k not in ("unguided", "combined")]
    for i, kind in enumerate(kinds):
        t = table[table["kind"] == kind].sort_values("scale")
        ax.plot(t["frechet_inf_mean"], t["class_accuracy_mean"], marker="o", color=f"C{i}", label=f"{kind} guidance")
        for _, r in t.iterrows():
            ax.annotate(f"{r['scale']:g}", (r["frechet_inf_mean"], r["class_accuracy_mean"]), fontsize=6,
                        textcoords="offset points", xytext=(3, 3))
    for j, (name, (x, y)) in enumerate(points.items()):
        ax.scatter([x], [y], marker="*^sDv"[j % 5], s=90, color=f"C{len(kinds) + j}", edgecolors="k", zorder=5,
                   label=name)
    if prior is not None:
        ax.axhline(prior, color="0.6", linestyle="-.", lw=1, label="class prior")
    ax.set_xlabel("FD∞ to real test latents (Fréchet extrapolated to n → ∞; lower = more real)")
    ax.set_ylabel("requested class kept (independent classifier)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    buffer = io.BytesIO()
    _finish(fig, buffer)
    return buffer.getvalue()
