"""augment: synthetic training latents from the *train* split with an imbalanced-learn sampler.

``augment.method`` (none | gaussian | smote) is fitted on the flattened train latents only and
run ``augment.replicates`` times with seeds ``seed, seed+1, …`` so downstream results carry a
spread. Writes ``data/augmented/synthetic-*.parquet`` (column ``replicate``), and
``reports/augment/``: per-class counts before/after, Fréchet distance (in a PCA space fitted
on real train latents) of synthetic vs real test latents beside the real-train-vs-test
baseline, and a gallery of decoded synthetic samples. Reads ``base``, ``augment``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from pipeline.augment import make_augmenter, synthesize
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import read_latent_split, write_latent_split
from pipeline.latents.vae import decode_latents, load_saved_vae, tensor_to_images
from pipeline.metrics.fidelity import PCAFrechet
from pipeline.report.figures import image_grid, save_png
from pipeline.runtime import resolve_device
from stages.cli import parse_args
from stages.common import start

log = logging.getLogger("stages.augment")


def gallery_indices(labels: np.ndarray, size: int) -> np.ndarray:
    """Up to ``size`` indices, taken round-robin over classes so every class shows."""
    per_class = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    picks = [idx[i] for i in range(size) for idx in per_class if i < len(idx)]
    return np.array(picks[:size], dtype=int)


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--out", default="data/augmented"),
        p.add_argument("--reports", default="reports/augment"),
    ))
    params = start(args)
    cfg, seed = params.augment, params.base.seed
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    names = train.class_names
    X, y = train.flat(), train.meta["label"].to_numpy()
    n_channels = train.shape[0]

    synth_X, synth_meta = [], []
    for r in range(cfg.replicates):
        sampler = make_augmenter(
            cfg.method, random_state=seed + r, sampling_strategy=cfg.sampling_strategy,
            sigma=cfg.gaussian_sigma, k_neighbors=cfg.smote_k_neighbors, n_channels=n_channels,
        )
        Xs, ys = synthesize(sampler, X, y)
        synth_X.append(Xs)
        synth_meta.append(pd.DataFrame({
            "id": [f"synthetic-{r}-{i:05d}" for i in range(len(ys))],
            "label": ys.astype(np.int16), "label_name": [names[k] for k in ys],
            "replicate": r, "method": cfg.method,
        }))
    Xs_all = np.concatenate(synth_X)
    meta_all = pd.concat(synth_meta, ignore_index=True)
    log.info("%s: %d synthetic latents per replicate", cfg.method, len(synth_X[0]))

    fd = PCAFrechet(cfg.fid_components, random_state=seed).fit(X)
    counts_before = np.bincount(y, minlength=len(names))
    counts_after = counts_before + np.bincount(synth_meta[0]["label"], minlength=len(names))
    metrics = {
        "method": cfg.method,
        "n_synthetic_per_replicate": int(len(synth_X[0])),
        "fd_real_train_vs_test": fd.distance(X, test.flat()),
        "counts_before": dict(zip(names, counts_before.tolist())),
        "counts_after": dict(zip(names, counts_after.tolist())),
    }
    if len(synth_X[0]) > 1:
        fds = [fd.distance(s, test.flat()) for s in synth_X]
        metrics["fd_synthetic_vs_test"] = {"mean": float(np.mean(fds)), "std": float(np.std(fds)), "per_replicate": fds}

    with atomic_dir(args.out) as tmp:
        write_latent_split(tmp, "synthetic", Xs_all.reshape(-1, *train.shape), meta_all,
                           scaling_factor=train.scaling_factor, info={"method": cfg.method})
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)
        if len(synth_X[0]):
            idx = gallery_indices(synth_meta[0]["label"].to_numpy(), cfg.gallery_size)
            vae = load_saved_vae(args.vae, resolve_device(params.base.device))
            z = torch.from_numpy(synth_X[0][idx].reshape(-1, *train.shape))
            images = tensor_to_images(decode_latents(vae, z))
            save_png(image_grid([images[i : i + 8] for i in range(0, len(images), 8)]), tmp / "gallery.png")
    log.info("Fréchet distance to real test: synthetic %s, real train %.3f",
             f"{metrics['fd_synthetic_vs_test']['mean']:.3f}" if "fd_synthetic_vs_test" in metrics else "n/a",
             metrics["fd_real_train_vs_test"])


if __name__ == "__main__":
    main()
