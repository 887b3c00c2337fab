"""fidelity: one augmentation method's synthetic latents, measured against real data.

DVC runs it once per method in ``compare.methods`` (a ``matrix:`` stage, ``fidelity@<method>``).
The method (options from ``augment.<method>``) is fitted on the real *train* latents only, for
``augment.replicates`` seeds. For each replicate the synthetic set and the real training set
are class-matched and compared with the real test set (:class:`pipeline.metrics.fidelity.FidelityReference`):
Fréchet distance and k-NN precision/recall in a PCA space of real train latents, a copying
check (nearest-training-neighbour distance against that of held-out real images) and a k-NN
probe's label agreement, each beside its real baseline. Replicate 0 is also decoded for a
Fréchet distance in pixel space (beside real and VAE-reconstructed real images), a gallery
with each synthetic sample's nearest real training image, and PCA / t-SNE embeddings of real
and synthetic latents. Writes ``reports/fidelity/<method>/``. Reads ``base``, ``augment``
(its shared keys and its own subsection) and ``fidelity``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from pipeline.augment import METHODS, make_augmenter, samples_needed, synthesize
from pipeline.augment.smote import check_neighbours
from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir, write_json
from pipeline.latents.analysis import decode_to_images, nearest_real_images, stratified_subsample, tsne_embedding
from pipeline.latents.store import read_latent_split
from pipeline.metrics.fidelity import FidelityReference, PCAFrechet
from pipeline.metrics.stats import aggregate
from pipeline.report.figures import embedding_panels, image_grid, paired_rows, round_robin, save_png
from stages.cli import fail, parse_args
from stages.common import require_same_ids, start
from stages.vae_open import open_vae

log = logging.getLogger("stages.fidelity")


def _pixels(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--method", required=True, choices=METHODS),
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--images", default="data/images"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--reports", default=None, help="output directory (default: reports/fidelity/<method>)"),
    ))
    params = start(args)
    aug, cfg, seed, method = params.augment, params.fidelity, params.base.seed, args.method
    options = aug.options(method)
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    images = {s: read_image_split(args.images, s) for s in ("train", "test")}
    for split, latents in (("train", train), ("test", test)):
        require_same_ids(images[split], latents, split, args.images, args.latents)
    names = train.class_names
    X, y = train.flat(), train.meta["label"].to_numpy()
    X_test, y_test = test.flat(), test.meta["label"].to_numpy()

    out = Path(args.reports or f"reports/fidelity/{method}")
    if samples_needed(make_augmenter(method, options, random_state=seed, sampling_strategy=aug.sampling_strategy,
                                     n_channels=train.shape[0]), y) == 0:
        log.info("%s: no samples needed (augment.sampling_strategy %r asks for none on these class counts)", method,
                 aug.sampling_strategy)
        with atomic_dir(out) as tmp:
            write_json(tmp / "metrics.json", {"method": method, "options": options, "replicates": aug.replicates,
                                              "n_synthetic_per_replicate": 0, "no_samples_needed": True})
        return
    reference = FidelityReference((X, y), (X_test, y_test), components=cfg.components, k=cfg.k, seed=seed)
    runs, first = [], None
    for r in range(aug.replicates):
        sampler = make_augmenter(method, options, random_state=seed + r, sampling_strategy=aug.sampling_strategy,
                                 n_channels=train.shape[0])
        try:
            check_neighbours(sampler, y)
        except ValueError as exc:
            fail(f"augment.{method}: {exc}")
        Xs, ys = synthesize(sampler, X, y)
        m, idx_real, idx_syn = reference.evaluate((Xs, ys), seed=seed + r)
        if hasattr(sampler, "flip_rate_"):
            m["flip_rate"] = sampler.flip_rate_
            m["mean_shift"] = float(sampler.shift_.mean()) if len(sampler.shift_) else 0.0
            m["n_missing"] = int(sum(sampler.n_missing_.values()))
        runs.append(m)
        if r == 0:
            first = (Xs, ys, idx_real, idx_syn)
        log.info("%s replicate %d: %d synthetic, Fréchet %.2f (real %.2f), precision %.2f, recall %.2f", method, r,
                 len(ys), m["frechet"]["synthetic"], m["frechet"]["real_train"], m["precision"]["synthetic"],
                 m["recall"]["synthetic"])

    Xs, ys, idx_real, idx_syn = first
    counts_before = np.bincount(y, minlength=len(names))
    metrics = {
        "method": method,
        "options": options,
        "replicates": aug.replicates,
        "n_synthetic_per_replicate": int(len(ys)),
        "counts_before": dict(zip(names, counts_before.tolist())),
        "counts_after": dict(zip(names, (counts_before + np.bincount(ys, minlength=len(names))).tolist())),
        **aggregate(runs),
    }

    # Pixel space (replicate 0): decode the class-matched synthetic and real-train latents.
    vae = open_vae(params, args.vae, images["train"].images.shape[1])
    shape = train.shape
    decoded_syn = decode_to_images(vae, Xs[idx_syn].reshape(-1, *shape))
    decoded_real = decode_to_images(vae, X[idx_real].reshape(-1, *shape))
    pix = PCAFrechet(cfg.components, random_state=seed).fit(_pixels(images["train"].images))
    test_pix = _pixels(images["test"].images)
    metrics["frechet_pixels"] = {
        "synthetic": pix.distance(_pixels(decoded_syn), test_pix),
        "real_train_reconstructed": pix.distance(_pixels(decoded_real), test_pix),
        "real_train": pix.distance(_pixels(images["train"].images[idx_real]), test_pix),
    }

    rng = np.random.default_rng(seed)
    show = round_robin(ys, cfg.gallery_size)
    gallery = paired_rows(*nearest_real_images(vae, Xs[show], X, images["train"].images, shape))
    pca = PCA(n_components=2, random_state=seed).fit(X)
    sub_real = idx_real[stratified_subsample(y[idx_real], cfg.tsne_points, rng)]
    sub_syn = idx_syn[stratified_subsample(ys[idx_syn], cfg.tsne_points, rng)]
    emb = tsne_embedding(np.vstack([X[sub_real], Xs[sub_syn]]), perplexity=cfg.tsne_perplexity, seed=seed)
    panels = [
        {"title": "PCA of real train latents (dots) + synthetic (crosses)", "xy": pca.transform(X), "labels": y,
         "synthetic_xy": pca.transform(Xs[sub_syn]), "synthetic_labels": ys[sub_syn]},
        {"title": "t-SNE of class-matched real (dots) + synthetic (crosses)", "xy": emb[: len(sub_real)],
         "labels": y[sub_real], "synthetic_xy": emb[len(sub_real):], "synthetic_labels": ys[sub_syn]},
    ]

    with atomic_dir(out) as tmp:
        write_json(tmp / "metrics.json", metrics)
        save_png(image_grid(gallery), tmp / "gallery.png")
        embedding_panels(panels, names, tmp / "embedding.png", f"{method}: real and synthetic latents")
    log.info("%s: Fréchet %.2f ± %.2f vs real %.2f; pixel Fréchet %.2f vs reconstructed real %.2f", method,
             metrics["frechet"]["synthetic"]["mean"], metrics["frechet"]["synthetic"]["std"],
             metrics["frechet"]["real_train"]["mean"], metrics["frechet_pixels"]["synthetic"],
             metrics["frechet_pixels"]["real_train_reconstructed"])


if __name__ == "__main__":
    main()
