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

The numbers come from :func:`pipeline.latents.study.analyze`. Writes ``reports/analyze/`` and
``models/latent_rgb.json``. Reads ``base``, ``analyze``,
``vae.dtype``, ``vae.tiling``, ``vae.preview``.
"""

from __future__ import annotations

import logging

import numpy as np

import pipeline.report.figures as fig
from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir, atomic_file, write_json
from pipeline.latents.rgb import downsample_images, to_uint8
from pipeline.latents.store import read_latent_split
from pipeline.latents.study import LatentSplits, analyze
from pipeline.latents.vae import is_sd15_vae
from stages.cli import fail, parse_args, stage_main
from stages.common import require_same_ids, start
from stages.vae_open import open_vae

log = logging.getLogger("stages.analyze")


@stage_main
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
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    img_train, img_test = read_image_split(args.images, "train"), read_image_split(args.images, "test")
    for split, lat, img in (("train", train, img_train), ("test", test, img_test)):
        require_same_ids(img, lat, split, args.images, args.latents)
    names = train.class_names
    vae = open_vae(params, args.vae, img_test.images.shape[1], (train.shape, args.latents))
    sd15 = params.vae.preview == "sd15" or (params.vae.preview == "auto" and is_sd15_vae(vae))
    if sd15 and train.shape[0] != 4:
        fail(f"vae.preview sd15: the published factors need 4 latent channels, the latents have {train.shape[0]}")
    d = LatentSplits(train.latents, train.meta["label"].to_numpy(), img_train.images, test.latents,
                     test.meta["label"].to_numpy(), img_test.images, test.meta, names)
    a = analyze(vae, d, seed=seed, sd15=sd15, edge_threshold=cfg.edge_threshold, worst_k=cfg.worst_k,
                tsne_points=cfg.tsne_points, tsne_perplexity=cfg.tsne_perplexity, probe_C=cfg.probe_C,
                silhouette_points=cfg.silhouette_points, pairs=cfg.pairs, path_steps=cfg.path_steps,
                perturb_images=cfg.perturb_images, sigmas=cfg.sigmas)
    m = a.metrics
    log.info("reconstruction: PSNR %.2f dB; Spearman ρ(PSNR, edge density) %.2f", m["reconstruction"]["psnr_mean"],
             a.rho_edges)
    log.info("linear probe: latents %.3f, pixels %.3f (chance %.3f)", *m["separability"]["linear_probe_balanced_accuracy"].values())
    log.info("latent→RGB test RMSE %.3f (constant colour %.3f); previews use %s factors", m["latent_rgb"]["test"]["rmse"],
             m["latent_rgb"]["baseline_constant_colour_test"]["rmse"], a.rgb.source)

    k, side = cfg.preview_images, train.shape[-1]
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", m)
        a.table.to_csv(tmp / "reconstruction.csv", index=False, float_format="%.6g")
        a.curve.to_csv(tmp / "perturbation.csv", index=False, float_format="%.6g")
        a.paths.to_csv(tmp / "paths.csv", index=False, float_format="%.6g")
        fig.box_by_group(a.table, x="label_name", y="psnr", path=tmp / "recon_by_class.png",
                         title="Test reconstruction PSNR (dB) per class")
        fig.save_png(fig.image_grid([img_test.images[a.worst], a.recon[a.worst]]), tmp / "worst.png")
        fig.scatter_trend(a.table["edge_density"].to_numpy(), a.table["psnr"].to_numpy(), xlabel="edge density",
                          ylabel="PSNR (dB)", path=tmp / "recon_vs_edges.png",
                          title=f"Reconstruction vs edge density (Spearman ρ = {a.rho_edges:.2f})")
        fig.channel_histograms(train.latents, tmp / "channel_hist.png", "Scaled train latents per channel")
        fig.matrix_heatmap(a.channel_corr, [f"c{i}" for i in range(len(a.channel_corr))], tmp / "channel_corr.png",
                           "Channel correlation")
        fig.explained_variance(a.pca_ratios, tmp / "pca_variance.png", "PCA of train latents")
        fig.embedding_panels([{"title": "PCA (train latents)", "xy": a.pca_xy, "labels": d.y},
                              {"title": f"t-SNE ({len(a.tsne_idx)} train latents)", "xy": a.tsne_xy, "labels": d.y[a.tsne_idx]}],
                             names, tmp / "embedding.png", "Real latents coloured by class")
        fig.continuity_chart(a.paths, tmp / "continuity.png")
        fig.save_png(fig.image_grid(a.strips), tmp / "paths.png")
        fig.line_chart(a.curve.assign(curve="perturbed"), x="sigma", y="psnr_mean", hue="curve", path=tmp / "perturbation.png",
                       title="Decoded PSNR vs clean decode", ylabel="PSNR (dB)",
                       baselines={"VAE reconstruction PSNR": a.recon_psnr})
        fig.save_png(fig.image_grid([a.perturbed]), tmp / "perturbation_strip.png")
        up = img_test.images.shape[1] // side
        preview = np.repeat(np.repeat(to_uint8(a.rgb(test.latents[:k])), up, 1), up, 2)
        target = np.repeat(np.repeat(to_uint8(downsample_images(img_test.images[:k], side)), up, 1), up, 2)
        fig.save_png(fig.image_grid([img_test.images[:k], target, preview]), tmp / "latent_rgb.png")
    with atomic_file(args.latent_rgb) as fh:
        fh.write(a.rgb.to_json())


if __name__ == "__main__":
    main()
