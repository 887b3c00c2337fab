"""The latent-space study: what the real train / test latents look like (the analyze stage's numbers).

Each function takes arrays (and the VAE where it decodes) and returns JSON-ready metrics plus the
tables and images its figures need; :func:`analyze` runs them all in the order that keeps a
seeded run identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.decomposition import PCA

import pipeline.latents.analysis as la
from pipeline.latents.rgb import (
    SD15_PREVIEW,
    LatentRGB,
    compare_published,
    downsample_images,
    fit_latent_rgb,
    preview_error,
    published_rgb,
)
from pipeline.metrics.image_stats import contrast, edge_density
from pipeline.metrics.pixels import pixel_features
from pipeline.metrics.reconstruction import reconstruction_table


def sample_pairs(labels: np.ndarray, n: int, same: bool, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``n`` index pairs with equal (``same``) or different labels, drawn without repeats where possible."""
    out = []
    for _ in range(200 * n):
        a, b = rng.choice(len(labels), 2, replace=False)
        if (labels[a] == labels[b]) == same and (a, b) not in out:
            out.append((int(a), int(b)))
        if len(out) == n:
            break
    return out


@dataclass
class LatentSplits:
    """Real train / test latents (N, C, H, W), labels, images (uint8 NHWC) and test metadata."""

    latents: np.ndarray
    y: np.ndarray
    images: np.ndarray
    test_latents: np.ndarray
    y_test: np.ndarray
    test_images: np.ndarray
    test_meta: pd.DataFrame
    class_names: list[str]


@dataclass
class LatentAnalysis:
    metrics: dict = field(default_factory=dict)
    table: pd.DataFrame | None = None          # one row per test image: mse, psnr, ssim, edge density, contrast
    recon: np.ndarray | None = None            # decoded test latents (uint8)
    worst: np.ndarray | None = None            # indices of the worst reconstructions
    rho_edges: float = float("nan")
    channel_corr: np.ndarray | None = None
    pca_ratios: np.ndarray | None = None
    pca_xy: np.ndarray | None = None           # train latents on the first two components
    tsne_xy: np.ndarray | None = None
    tsne_idx: np.ndarray | None = None
    paths: pd.DataFrame | None = None          # one row per (kind, pairing, pair, step)
    strips: list = field(default_factory=list)  # decoded first path of each kind and pairing
    curve: pd.DataFrame | None = None          # perturbation PSNR per sigma
    perturbed: np.ndarray | None = None
    recon_psnr: float = float("nan")
    rgb: LatentRGB | None = None               # the latent→RGB preview in use


def reconstruction(vae, d: LatentSplits, a: LatentAnalysis, *, edge_threshold: float, worst_k: int,
                   chunk_bytes: int = 2**26) -> None:
    recon = la.decode_to_images(vae, d.test_latents)
    # per-image metrics, ``chunk_bytes`` of float64 images at a time: SSIM's temporaries are about ten
    # copies of its input (1 000 test images of 256 px at once reached 17 GB); one chunk at 32 px
    step = max(1, chunk_bytes // (d.test_images[0].size * 8))
    tables, edges, contrasts = [], [], []
    for i in range(0, max(len(recon), 1), step):
        images = d.test_images[i:i + step]
        tables.append(reconstruction_table(images, recon[i:i + step]))
        edges.append(edge_density(images, edge_threshold))
        contrasts.append(contrast(images))
    table = pd.concat(tables, ignore_index=True).assign(
        label_name=d.test_meta["label_name"].values, id=d.test_meta["id"].values,
        edge_density=np.concatenate(edges), contrast=np.concatenate(contrasts))
    per_class = table.groupby("label_name", sort=False)["psnr"].describe(percentiles=[0.1, 0.5, 0.9])
    rho_edges = spearmanr(table["edge_density"], table["psnr"]).statistic
    rho_contrast = spearmanr(table["contrast"], table["psnr"]).statistic
    worst = table.nsmallest(worst_k, "psnr").index.to_numpy()
    a.metrics["reconstruction"] = {
        "psnr_mean": float(table["psnr"].mean()), "ssim_mean": float(table["ssim"].mean()),
        "psnr_per_class": {k: {"median": float(r["50%"]), "p10": float(r["10%"]), "p90": float(r["90%"])}
                           for k, r in per_class.iterrows()},
        "worst": table.loc[worst, ["id", "label_name", "psnr", "ssim"]].to_dict("records"),
        "spearman_psnr_vs_edge_density": float(rho_edges),
        "spearman_psnr_vs_contrast": float(rho_contrast),
    }
    a.table, a.recon, a.worst, a.rho_edges = table, recon, worst, float(rho_edges)


def channels(d: LatentSplits, a: LatentAnalysis) -> None:
    stats = la.channel_stats(d.latents)
    a.channel_corr = la.channel_correlation(d.latents)
    a.metrics["channels"] = stats.set_index("channel").to_dict("index")
    a.metrics["channel_correlation_max_abs_offdiag"] = float(np.abs(a.channel_corr - np.eye(len(a.channel_corr))).max())


def embeddings_and_separability(d: LatentSplits, a: LatentAnalysis, rng: np.random.Generator, *, seed: int,
                                tsne_points: int, tsne_perplexity: float, probe_C: float, silhouette_points: int):
    """PCA / t-SNE of train latents, and linear probe / silhouette on latents versus pixels. Returns the probe."""
    X, X_test = d.latents.reshape(len(d.latents), -1), d.test_latents.reshape(len(d.test_latents), -1)
    P, P_test = pixel_features(d.images), pixel_features(d.test_images)
    pca = PCA(n_components=min(50, len(X) - 1, X.shape[1]), random_state=seed).fit(X)
    ratios = pca.explained_variance_ratio_
    sub = la.stratified_subsample(d.y, tsne_points, rng)
    a.tsne_xy, a.tsne_idx = la.tsne_embedding(X[sub], perplexity=tsne_perplexity, seed=seed), sub
    a.pca_ratios, a.pca_xy = ratios, pca.transform(X)[:, :2]
    a.metrics["pca"] = {"explained_variance_top10": ratios[:10].tolist(),
                        "components_for_50pct": int(np.searchsorted(np.cumsum(ratios), 0.5) + 1),
                        "components_for_90pct": int(np.searchsorted(np.cumsum(ratios), 0.9) + 1)
                        if np.cumsum(ratios)[-1] >= 0.9 else None}
    probe = la.fit_linear_probe(X, d.y, probe_C)
    a.metrics["separability"] = {
        "linear_probe_balanced_accuracy": {
            "latents": la.linear_probe((X, d.y), (X_test, d.y_test), probe_C, probe=probe),
            "pixels": la.linear_probe((P, d.y), (P_test, d.y_test), probe_C),
            "chance": 1.0 / len(d.class_names),
        },
        "silhouette": {
            "latents": la.silhouette(X, d.y, sample_size=silhouette_points, seed=seed),
            "pixels": la.silhouette(P, d.y, sample_size=silhouette_points, seed=seed),
        },
        "pixels_side": int(round((P.shape[1] / 3) ** 0.5)),   # the pixel baseline's image side (pixel_features)
        "pixels_pooled": bool(P.shape[1] != d.images[0].size),
    }
    return probe


def continuity(vae, d: LatentSplits, a: LatentAnalysis, probe, rng: np.random.Generator, *, pairs: int,
               path_steps: int) -> None:
    """lerp / slerp paths between same- and different-class test pairs: pixel change per step, the probe's
    probability of the end class, and the norm along the path."""
    rows, strips = [], []
    for pairing, same in (("same", True), ("different", False)):
        for p, (i, j) in enumerate(sample_pairs(d.y_test, pairs, same, rng)):
            for kind in ("lerp", "slerp"):
                path = la.interpolation_path(d.test_latents[i], d.test_latents[j], path_steps, kind)
                frames = la.decode_to_images(vae, path)
                change = np.concatenate([[np.nan], la.path_pixel_change(frames)])
                prob = probe.predict_proba(path.reshape(len(path), -1))[:, list(probe.classes_).index(d.y_test[j])]
                norms = np.linalg.norm(path.reshape(len(path), -1), axis=1)
                rows += [{"kind": kind, "pairing": pairing, "pair": p, "step": s, "lam": s / (path_steps - 1),
                          "pixel_change": change[s], "prob_end": prob[s], "norm_ratio": norms[s] / norms[[0, -1]].mean()}
                         for s in range(path_steps)]
                if p == 0:
                    strips.append(frames)
    paths = pd.DataFrame(rows)
    steps = paths.dropna(subset=["pixel_change"])
    summary = steps.groupby(["kind", "pairing"]).agg(mean_change=("pixel_change", "mean"), max_change=("pixel_change", "max"))
    summary["max_over_mean"] = summary["max_change"] / summary["mean_change"]
    mid = paths[paths["step"] == path_steps // 2].groupby("kind")["norm_ratio"].mean()
    a.metrics["continuity"] = {f"{k}_{p}": r for (k, p), r in summary.to_dict("index").items()}
    a.metrics["continuity"]["midpoint_norm_ratio"] = mid.to_dict()
    a.paths, a.strips = paths, strips


def perturbation(vae, d: LatentSplits, a: LatentAnalysis, *, images: int, sigmas, seed: int) -> None:
    n = min(images, len(d.test_latents))
    curve, perturbed = la.perturbation_curve(vae, d.test_latents[:n], sigmas, seed=seed)
    recon_psnr = float(a.table["psnr"].iloc[:n].mean())
    tolerated = curve.loc[curve["psnr_mean"] >= recon_psnr, "sigma"]
    a.metrics["perturbation"] = {"curve": curve.to_dict("records"), "vae_reconstruction_psnr": recon_psnr,
                                 "largest_sigma_within_reconstruction_error": float(tolerated.max()) if len(tolerated) else None}
    a.curve, a.perturbed, a.recon_psnr = curve, perturbed, recon_psnr


def latent_rgb(d: LatentSplits, a: LatentAnalysis, *, sd15: bool) -> None:
    """4×3 factors + bias fitted on train, measured on test beside a constant colour; with ``sd15`` the
    published SD 1.x factors are measured beside them and used. Raises ``ValueError`` when ``sd15`` but
    the latents do not have 4 channels."""
    fitted = fit_latent_rgb(d.latents, d.images)
    side = d.latents.shape[-1]
    train_mean = downsample_images(d.images, side).mean(axis=(0, 1, 2))
    const = np.sqrt(((downsample_images(d.test_images, side) - train_mean) ** 2).mean())
    a.metrics["latent_rgb"] = {"factors": fitted.factors, "bias": fitted.bias,
                               "test": preview_error(fitted, d.test_latents, d.test_images),
                               "train": preview_error(fitted, d.latents, d.images),
                               "baseline_constant_colour_test": {"rmse": float(const), "psnr": float(20 * np.log10(2 / const))}}
    rgb = fitted
    if sd15:
        if d.latents.shape[1] != 4:
            raise ValueError(f"vae.preview sd15: the published factors need 4 latent channels, the latents have "
                             f"{d.latents.shape[1]}")
        a.metrics["latent_rgb"]["published"] = compare_published(fitted, d.test_latents, d.test_images)
        rgb = published_rgb(SD15_PREVIEW)
    a.metrics["latent_rgb"]["used"] = rgb.source
    a.rgb = rgb


def analyze(vae, d: LatentSplits, *, seed: int, sd15: bool, edge_threshold: float, worst_k: int, tsne_points: int,
            tsne_perplexity: float, probe_C: float, silhouette_points: int, pairs: int, path_steps: int,
            perturb_images: int, sigmas) -> LatentAnalysis:
    """Every part of the study, in a fixed order (one seeded generator feeds the t-SNE sample, then the pairs)."""
    rng = np.random.default_rng(seed)
    a = LatentAnalysis()
    reconstruction(vae, d, a, edge_threshold=edge_threshold, worst_k=worst_k)
    channels(d, a)
    probe = embeddings_and_separability(d, a, rng, seed=seed, tsne_points=tsne_points, tsne_perplexity=tsne_perplexity,
                                        probe_C=probe_C, silhouette_points=silhouette_points)
    continuity(vae, d, a, probe, rng, pairs=pairs, path_steps=path_steps)
    perturbation(vae, d, a, images=perturb_images, sigmas=sigmas, seed=seed)
    latent_rgb(d, a, sd15=sd15)
    return a
