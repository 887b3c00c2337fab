"""augment: the synthetic training latents the classifiers use, from ``augment.methods``.

The listed methods (each configured by its ``augment.<method>`` subsection) form one
:class:`~pipeline.augment.compose.Composed` sampler: every method is fitted on the flattened
real *train* latents only and contributes an even share of each class's deficit. It runs
``augment.replicates`` times with seeds ``seed, seed+1, …`` so downstream results carry a
spread. Writes ``data/augmented/synthetic-*.parquet`` (columns ``replicate`` and ``method``:
which augmenter made the row) and ``reports/augment/``: per-class counts before/after, the
latent fidelity numbers of :class:`pipeline.metrics.fidelity.FidelityReference` (mean ± std over
replicates, real baselines beside them) and a gallery of decoded synthetic samples, each above
its nearest real training image. ``methods: []`` writes an empty synthetic set.
Reads ``base``, ``augment``, ``fidelity``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline.augment import make_composed, synthesize
from pipeline.augment.smote import check_neighbours
from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir, write_json
from pipeline.latents.analysis import nearest_real_images
from pipeline.latents.store import read_latent_split, write_latent_split
from pipeline.metrics.fidelity import FidelityReference
from pipeline.metrics.stats import aggregate
from pipeline.report.figures import image_grid, paired_rows, round_robin, save_png
from stages.cli import fail, parse_args
from stages.common import start
from stages.vae_open import open_vae

log = logging.getLogger("stages.augment")


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--images", default="data/images"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--out", default="data/augmented"),
        p.add_argument("--reports", default="reports/augment"),
    ))
    params = start(args)
    cfg, fid, seed = params.augment, params.fidelity, params.base.seed
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    names = train.class_names
    X, y = train.flat(), train.meta["label"].to_numpy()
    options = {m: cfg.options(m) for m in cfg.methods}
    label = "+".join(cfg.methods) or "none"

    reference = FidelityReference((X, y), (test.flat(), test.meta["label"].to_numpy()),
                                  components=fid.components, k=fid.k, seed=seed)
    synth_X, synth_meta, runs = [], [], []
    for r in range(cfg.replicates):
        sampler = make_composed(cfg.methods, options, random_state=seed + r, sampling_strategy=cfg.sampling_strategy,
                                n_channels=train.shape[0])
        for method, part in sampler.samplers:
            try:
                check_neighbours(part, y)
            except ValueError as exc:
                fail(f"augment.{method}: {exc}")
        Xs, ys = synthesize(sampler, X, y)
        synth_X.append(Xs)
        synth_meta.append(pd.DataFrame({
            "id": [f"synthetic-{r}-{i:05d}" for i in range(len(ys))],
            "label": ys.astype(np.int16), "label_name": [names[k] for k in ys],
            "replicate": r, "method": sampler.sources_ if cfg.methods else np.array([], dtype=object),
        }))
        if len(ys) >= 3:
            runs.append(reference.evaluate((Xs, ys), seed=seed + r)[0])
    log.info("%s: %d synthetic latents per replicate", label, len(synth_X[0]))

    counts_before = np.bincount(y, minlength=len(names))
    metrics = {
        "methods": list(cfg.methods),
        "n_synthetic_per_replicate": int(len(synth_X[0])),
        "counts_before": dict(zip(names, counts_before.tolist())),
        "counts_after": dict(zip(names, (counts_before + np.bincount(synth_meta[0]["label"], minlength=len(names))).tolist())),
    }
    if runs:
        metrics.update(aggregate(runs))

    with atomic_dir(args.out) as tmp:
        write_latent_split(tmp, "synthetic", np.concatenate(synth_X).reshape(-1, *train.shape),
                           pd.concat(synth_meta, ignore_index=True), scaling_factor=train.scaling_factor,
                           info={"methods": list(cfg.methods)})
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)
        if len(synth_X[0]):
            show = round_robin(synth_meta[0]["label"].to_numpy(), fid.gallery_size)
            real = read_image_split(args.images, "train").images
            vae = open_vae(params, args.vae, real.shape[1])
            pairs = nearest_real_images(vae, synth_X[0][show], X, real, train.shape)
            save_png(image_grid(paired_rows(*pairs)), tmp / "gallery.png")
    if runs:
        log.info("Fréchet distance to real test: synthetic %.3f, class-matched real train %.3f",
                 metrics["frechet"]["synthetic"]["mean"], metrics["frechet"]["real_train"]["mean"])


if __name__ == "__main__":
    main()
