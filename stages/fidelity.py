"""fidelity: every augmentation method's synthetic latents, measured against real data.

For each method in ``compare.methods`` (options from ``augment.<method>``), fitted on the real
*train* latents only, for ``augment.replicates`` seeds (:class:`pipeline.fidelity.study.FidelityStudy`):
each synthetic set and the real training set are class-matched and compared with the real test
set — Fréchet distance and k-NN precision/recall in a PCA space of real train latents, a copying
check (nearest-training-neighbour distance against that of held-out real images) and a k-NN
probe's label agreement, each beside its real baseline. Replicate 0 is also decoded for a
Fréchet distance in pixel space (beside real and VAE-reconstructed real images), a gallery with
each synthetic sample's nearest real training image, and PCA / t-SNE embeddings of real and
synthetic latents, also written as data for the interactive report (``points.parquet``: the
embedded latents with decoded thumbnails; ``tiles.parquet``: the gallery's synthetic samples, nearest
real images and their reconstructions). The real-data reference is built once for all methods. Writes
``reports/fidelity/<method>/`` per method (``--method`` measures one). Reads ``base``,
``augment``, ``fidelity``, ``compare``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.augment import METHODS
from pipeline.data.store import read_image_split
from pipeline.fidelity.study import FidelityStudy, RealData
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import read_latent_split
from pipeline.report.figures import embedding_panels, image_grid, save_png
from stages.cli import fail, parse_args, stage_main
from stages.common import require_same_ids, start
from stages.vae_open import open_vae

log = logging.getLogger("stages.fidelity")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--method", choices=METHODS, help="measure this method only (default: every compare.methods)"),
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--images", default="data/images"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--reports", default="reports/fidelity", help="one sub-directory per method"),
    ))
    params = start(args)
    aug, cfg, seed = params.augment, params.fidelity, params.base.seed
    methods = [args.method] if args.method else list(params.compare.methods)
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    images = {s: read_image_split(args.images, s) for s in ("train", "test")}
    for split, latents in (("train", train), ("test", test)):
        require_same_ids(images[split], latents, split, args.images, args.latents)
    real = RealData(train.latents, train.meta["label"].to_numpy(), test.latents, test.meta["label"].to_numpy(),
                    images["train"].images, images["test"].images, train.class_names)
    vae = open_vae(params, args.vae, images["train"].images.shape[1], (train.shape, args.latents))
    study = FidelityStudy(real, vae, components=cfg.components, k=cfg.k, seed=seed, gallery_size=cfg.gallery_size,
                          tsne_points=cfg.tsne_points, tsne_perplexity=cfg.tsne_perplexity)
    for method in methods:   # every method's class sizes, before any is measured
        try:
            study.check(method, aug.options(method), sampling_strategy=aug.sampling_strategy)
        except ValueError as exc:
            fail(f"augment.{method}: {exc}")

    for method in methods:
        result = study.measure(method, aug.options(method), replicates=aug.replicates,
                               sampling_strategy=aug.sampling_strategy, log=log)
        with atomic_dir(Path(args.reports) / method) as tmp:
            write_json(tmp / "metrics.json", result.metrics)
            if result.gallery is not None:
                save_png(image_grid(result.gallery), tmp / "gallery.png")
                embedding_panels(result.panels, real.class_names, tmp / "embedding.png",
                                 f"{method}: real and synthetic latents")
                result.points.to_parquet(tmp / "points.parquet", index=False)
                result.tiles.to_parquet(tmp / "tiles.parquet", index=False)
        m = result.metrics
        if m.get("no_samples_needed"):
            log.info("%s: no samples needed (augment.sampling_strategy %r asks for none on these class counts)", method,
                     aug.sampling_strategy)
        else:
            log.info("%s: Fréchet %.2f ± %.2f vs real %.2f; pixel Fréchet %.2f vs reconstructed real %.2f", method,
                     m["frechet"]["synthetic"]["mean"], m["frechet"]["synthetic"]["std"], m["frechet"]["real_train"]["mean"],
                     m["frechet_pixels"]["synthetic"], m["frechet_pixels"]["real_train_reconstructed"])


if __name__ == "__main__":
    main()
