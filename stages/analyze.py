"""analyze: what the latent space looks like, measured on the real train/test latents.

- Reconstruction per test image (MSE, PSNR, SSIM): distributions per class, the ``worst_k``
  worst reconstructions, and PSNR against edge density (Spearman ρ).
- Latent statistics per channel (mean, std, skew, kurtosis), histograms and the channel
  correlation matrix.
- Embeddings: PCA (explained variance) and t-SNE of train latents coloured by class.
- Separability: linear-probe balanced accuracy and silhouette score on latents versus raw
  pixels of the same images (chance level beside them).
- Continuity: lerp and slerp paths between ``pairs`` same-class and different-class test
  pairs, decoded at ``path_steps`` points: pixel change per step and the probe's class
  probability along the path.
- Perturbation tolerance: decoded PSNR of ``z + σ·std_c·ε`` against the clean decode, per σ,
  beside the VAE's own reconstruction PSNR.
- Latent → RGB: 4×3 factors + bias fitted by least squares on train, error on test beside a
  constant-colour baseline, preview images. With an SD 1.x VAE (``vae.preview``) the published
  factors are measured beside the fitted ones and used for previews. The factors in use go to
  ``models/latent_rgb.json``.

Writes ``reports/analyze/`` and ``models/latent_rgb.json``. Reads ``base``, ``analyze``,
``vae.dtype``, ``vae.tiling``, ``vae.preview``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import pipeline.latents.analysis as la
import pipeline.report.figures as fig
from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir, atomic_file, write_json
from pipeline.latents.rgb import (
    SD15_PREVIEW,
    compare_published,
    downsample_images,
    fit_latent_rgb,
    preview_error,
    published_rgb,
    to_uint8,
)
from pipeline.latents.store import read_latent_split
from pipeline.latents.vae import is_sd15_vae
from pipeline.metrics.image_stats import contrast, edge_density
from pipeline.metrics.reconstruction import reconstruction_table
from stages.cli import fail, parse_args
from stages.common import require_same_ids, start
from stages.vae_open import open_vae

log = logging.getLogger("stages.analyze")


def _pairs(labels: np.ndarray, n: int, same: bool, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``n`` index pairs with equal (``same``) or different labels, drawn without repeats where possible."""
    out = []
    for _ in range(200 * n):
        a, b = rng.choice(len(labels), 2, replace=False)
        if (labels[a] == labels[b]) == same and (a, b) not in out:
            out.append((int(a), int(b)))
        if len(out) == n:
            break
    return out


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--images", default="data/images"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--reports", default="reports/analyze"),
        p.add_argument("--latent-rgb", default="models/latent_rgb.json"),
    ))
    params = start(args)
    cfg, seed = params.analyze, params.base.seed
    rng = np.random.default_rng(seed)
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    img_train, img_test = read_image_split(args.images, "train"), read_image_split(args.images, "test")
    for split, lat, img in (("train", train, img_train), ("test", test, img_test)):
        require_same_ids(img, lat, split, args.images, args.latents)
    names = train.class_names
    y, y_test = train.meta["label"].to_numpy(), test.meta["label"].to_numpy()
    vae = open_vae(params, args.vae, img_test.images.shape[1])
    metrics = {}

    # Reconstruction, per test image.
    recon = la.decode_to_images(vae, test.latents)
    table = reconstruction_table(img_test.images, recon).assign(
        label_name=test.meta["label_name"].values, id=test.meta["id"].values,
        edge_density=edge_density(img_test.images, cfg.edge_threshold), contrast=contrast(img_test.images))
    per_class = table.groupby("label_name", sort=False)["psnr"].describe(percentiles=[0.1, 0.5, 0.9])
    rho_edges = spearmanr(table["edge_density"], table["psnr"]).statistic
    rho_contrast = spearmanr(table["contrast"], table["psnr"]).statistic
    worst = table.nsmallest(cfg.worst_k, "psnr").index.to_numpy()
    metrics["reconstruction"] = {
        "psnr_mean": float(table["psnr"].mean()), "ssim_mean": float(table["ssim"].mean()),
        "psnr_per_class": {k: {"median": float(r["50%"]), "p10": float(r["10%"]), "p90": float(r["90%"])}
                           for k, r in per_class.iterrows()},
        "worst": table.loc[worst, ["id", "label_name", "psnr", "ssim"]].to_dict("records"),
        "spearman_psnr_vs_edge_density": float(rho_edges),
        "spearman_psnr_vs_contrast": float(rho_contrast),
    }
    log.info("reconstruction: PSNR %.2f dB; Spearman ρ(PSNR, edge density) %.2f", table["psnr"].mean(), rho_edges)

    # Latent statistics (train).
    stats = la.channel_stats(train.latents)
    corr = la.channel_correlation(train.latents)
    metrics["channels"] = stats.set_index("channel").to_dict("index")
    metrics["channel_correlation_max_abs_offdiag"] = float(np.abs(corr - np.eye(len(corr))).max())

    # Embeddings and separability: latents versus pixels of the same images.
    X, X_test = train.flat(), test.flat()
    P, P_test = (img.images.reshape(len(img.images), -1).astype(np.float32) / 255.0 for img in (img_train, img_test))
    pca = PCA(n_components=min(50, len(X) - 1, X.shape[1]), random_state=seed).fit(X)
    ratios = pca.explained_variance_ratio_
    sub = la.stratified_subsample(y, cfg.tsne_points, rng)
    tsne = la.tsne_embedding(X[sub], perplexity=cfg.tsne_perplexity, seed=seed)
    metrics["pca"] = {"explained_variance_top10": ratios[:10].tolist(),
                      "components_for_50pct": int(np.searchsorted(np.cumsum(ratios), 0.5) + 1),
                      "components_for_90pct": int(np.searchsorted(np.cumsum(ratios), 0.9) + 1)
                      if np.cumsum(ratios)[-1] >= 0.9 else None}
    metrics["separability"] = {
        "linear_probe_balanced_accuracy": {
            "latents": la.linear_probe((X, y), (X_test, y_test), cfg.probe_C),
            "pixels": la.linear_probe((P, y), (P_test, y_test), cfg.probe_C),
            "chance": 1.0 / len(names),
        },
        "silhouette": {
            "latents": la.silhouette(X, y, sample_size=cfg.silhouette_points, seed=seed),
            "pixels": la.silhouette(P, y, sample_size=cfg.silhouette_points, seed=seed),
        },
    }
    log.info("linear probe: latents %.3f, pixels %.3f (chance %.3f)",
             *metrics["separability"]["linear_probe_balanced_accuracy"].values())

    # Continuity along lerp / slerp paths between test latents.
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=cfg.probe_C, max_iter=2000)).fit(X, y)
    rows, strips = [], []
    for pairing, same in (("same", True), ("different", False)):
        for p, (a, b) in enumerate(_pairs(y_test, cfg.pairs, same, rng)):
            for kind in ("lerp", "slerp"):
                path = la.interpolation_path(test.latents[a], test.latents[b], cfg.path_steps, kind)
                frames = la.decode_to_images(vae, path)
                change = np.concatenate([[np.nan], la.path_pixel_change(frames)])
                prob = probe.predict_proba(path.reshape(len(path), -1))[:, list(probe.classes_).index(y_test[b])]
                norms = np.linalg.norm(path.reshape(len(path), -1), axis=1)
                rows += [{"kind": kind, "pairing": pairing, "pair": p, "step": i, "lam": i / (cfg.path_steps - 1),
                          "pixel_change": change[i], "prob_end": prob[i], "norm_ratio": norms[i] / norms[[0, -1]].mean()}
                         for i in range(cfg.path_steps)]
                if p == 0:
                    strips.append(frames)
    paths = pd.DataFrame(rows)
    steps = paths.dropna(subset=["pixel_change"])
    summary = steps.groupby(["kind", "pairing"]).agg(mean_change=("pixel_change", "mean"), max_change=("pixel_change", "max"))
    summary["max_over_mean"] = summary["max_change"] / summary["mean_change"]
    mid = paths[paths["step"] == cfg.path_steps // 2].groupby("kind")["norm_ratio"].mean()
    metrics["continuity"] = {f"{k}_{p}": r for (k, p), r in summary.to_dict("index").items()}
    metrics["continuity"]["midpoint_norm_ratio"] = mid.to_dict()

    # Perturbation tolerance.
    n = min(cfg.perturb_images, len(test.latents))
    curve, perturbed = la.perturbation_curve(vae, test.latents[:n], cfg.sigmas, seed=seed)
    recon_psnr = float(table["psnr"].iloc[:n].mean())
    tolerated = curve.loc[curve["psnr_mean"] >= recon_psnr, "sigma"]
    metrics["perturbation"] = {"curve": curve.to_dict("records"), "vae_reconstruction_psnr": recon_psnr,
                               "largest_sigma_within_reconstruction_error": float(tolerated.max()) if len(tolerated) else None}

    # Latent → RGB linear approximation, fitted on train only; the published SD 1.x factors beside it.
    fitted = fit_latent_rgb(train.latents, img_train.images)
    side = train.shape[-1]
    train_mean = downsample_images(img_train.images, side).mean(axis=(0, 1, 2))
    const = np.sqrt(((downsample_images(img_test.images, side) - train_mean) ** 2).mean())
    metrics["latent_rgb"] = {"factors": fitted.factors, "bias": fitted.bias,
                             "test": preview_error(fitted, test.latents, img_test.images),
                             "train": preview_error(fitted, train.latents, img_train.images),
                             "baseline_constant_colour_test": {"rmse": float(const), "psnr": float(20 * np.log10(2 / const))}}
    sd15 = params.vae.preview == "sd15" or (params.vae.preview == "auto" and is_sd15_vae(vae))
    rgb = fitted
    if sd15:
        if train.shape[0] != 4:
            fail(f"vae.preview sd15: the published factors need 4 latent channels, the latents have {train.shape[0]}")
        metrics["latent_rgb"]["published"] = compare_published(fitted, test.latents, img_test.images)
        rgb = published_rgb(SD15_PREVIEW)
    metrics["latent_rgb"]["used"] = rgb.source
    log.info("latent→RGB test RMSE %.3f (constant colour %.3f); previews use %s factors",
             metrics["latent_rgb"]["test"]["rmse"], const, rgb.source)

    k = cfg.preview_images
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)
        table.to_csv(tmp / "reconstruction.csv", index=False, float_format="%.6g")
        curve.to_csv(tmp / "perturbation.csv", index=False, float_format="%.6g")
        paths.to_csv(tmp / "paths.csv", index=False, float_format="%.6g")
        fig.box_by_group(table, x="label_name", y="psnr", path=tmp / "recon_by_class.png",
                         title="Test reconstruction PSNR (dB) per class")
        fig.save_png(fig.image_grid([img_test.images[worst], recon[worst]]), tmp / "worst.png")
        fig.scatter_trend(table["edge_density"].to_numpy(), table["psnr"].to_numpy(), xlabel="edge density",
                          ylabel="PSNR (dB)", path=tmp / "recon_vs_edges.png",
                          title=f"Reconstruction vs edge density (Spearman ρ = {rho_edges:.2f})")
        fig.channel_histograms(train.latents, tmp / "channel_hist.png", "Scaled train latents per channel")
        fig.matrix_heatmap(corr, [f"c{i}" for i in range(len(corr))], tmp / "channel_corr.png", "Channel correlation")
        fig.explained_variance(ratios, tmp / "pca_variance.png", "PCA of train latents")
        fig.embedding_panels([{"title": "PCA (train latents)", "xy": pca.transform(X)[:, :2], "labels": y},
                              {"title": f"t-SNE ({len(sub)} train latents)", "xy": tsne, "labels": y[sub]}],
                             names, tmp / "embedding.png", "Real latents coloured by class")
        fig.continuity_chart(paths, tmp / "continuity.png")
        fig.save_png(fig.image_grid(strips), tmp / "paths.png")
        fig.line_chart(curve.assign(curve="perturbed"), x="sigma", y="psnr_mean", hue="curve", path=tmp / "perturbation.png",
                       title="Decoded PSNR vs clean decode", ylabel="PSNR (dB)",
                       baselines={"VAE reconstruction PSNR": recon_psnr})
        fig.save_png(fig.image_grid([perturbed]), tmp / "perturbation_strip.png")
        up = img_test.images.shape[1] // side
        preview = np.repeat(np.repeat(to_uint8(rgb(test.latents[:k])), up, 1), up, 2)
        target = np.repeat(np.repeat(to_uint8(downsample_images(img_test.images[:k], side)), up, 1), up, 2)
        fig.save_png(fig.image_grid([img_test.images[:k], target, preview]), tmp / "latent_rgb.png")
    with atomic_file(args.latent_rgb) as fh:
        fh.write(rgb.to_json())


if __name__ == "__main__":
    main()
