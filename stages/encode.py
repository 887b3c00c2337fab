"""encode: every split to scaled latents in parquet shards, plus reconstruction metrics.

Encodes ``data/images`` with the VAE in ``models/vae`` (``latent_dist.mode()``, or a seeded
``.sample()`` with ``encode.sample``), multiplies by the config's scaling factor and writes
``data/latents/<split>-*.parquet`` (latent shape and scaling factor in the file metadata).
Decodes them again for MSE / PSNR / SSIM per split and per class, beside the mean-image
baseline, and a grid of test originals above their reconstructions. Reads ``base``, ``encode``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import write_latent_split
from pipeline.latents.vae import decode_latents, encode_images, images_to_tensor, tensor_to_images
from pipeline.metrics.reconstruction import reconstruction_table, summarise
from pipeline.report.figures import image_grid, save_png
from stages.cli import parse_args
from stages.common import start
from stages.vae_open import open_vae

log = logging.getLogger("stages.encode")
SPLITS = ("train", "test", "artifact_train", "artifact_test")
META_COLUMNS = ["id", "label", "label_name", "split", "artifact_kind", "severity"]


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--images", default="data/images"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--out", default="data/latents"),
        p.add_argument("--reports", default="reports/encode"),
    ))
    params = start(args)
    cfg = params.encode
    sets = {split: read_image_split(args.images, split) for split in SPLITS}
    vae = open_vae(params, args.vae, sets["train"].images.shape[1])
    sf = float(vae.config.scaling_factor)
    # a CPU generator draws the same posterior noise on every device
    gen = torch.Generator().manual_seed(params.base.seed) if cfg.sample else None
    info = {"vae_class": type(vae).__name__, "sample": cfg.sample, "dtype": params.vae.dtype}

    per_split, tables, recon, done = {}, {}, {}, {}
    with atomic_dir(args.out) as tmp:
        for split, data in sets.items():
            key = tuple(data.meta["id"])  # diffusiondb's artifact splits are its classification splits
            if key not in done:
                z = encode_images(vae, images_to_tensor(data.images), batch_size=cfg.batch_size,
                                  sample=cfg.sample, generator=gen, desc=f"encode {split}")
                done[key] = (z, tensor_to_images(decode_latents(vae, z, batch_size=cfg.batch_size, desc=f"decode {split}")))
            z, recon[split] = done[key]
            write_latent_split(tmp, split, z.numpy(), data.meta[META_COLUMNS], scaling_factor=sf, info=info)
            tables[split] = reconstruction_table(data.images, recon[split]).assign(label_name=data.meta["label_name"].values)
            per_split[split] = summarise(tables[split])
            latent_shape = list(z.shape[1:])
            log.info("%s: %d latents of shape %s, PSNR %.2f dB", split, len(z), tuple(z.shape[1:]), per_split[split]["psnr"])

    # Baseline: predict the mean training image for every test image.
    mean_image = sets["train"].images.mean(axis=0).round().astype(np.uint8)
    test = sets["test"]
    baseline = summarise(reconstruction_table(test.images, np.broadcast_to(mean_image, test.images.shape).copy()))
    metrics = {
        "latent_shape": latent_shape,
        "scaling_factor": sf,
        "compression": float(np.prod(test.images.shape[1:]) / np.prod(latent_shape)),
        "test": per_split["test"],
        "baseline_mean_image_test": baseline,
        "per_split": per_split,
        "per_class_test": summarise(tables["test"], by="label_name"),
    }
    n = cfg.grid_size
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)
        pd.concat(
            [t.assign(split=s, id=sets[s].meta["id"].values) for s, t in tables.items()], ignore_index=True
        ).to_csv(tmp / "per_image.csv", index=False, float_format="%.6g")
        rows = [test.images[:n], recon["test"][:n], test.images[n : 2 * n], recon["test"][n : 2 * n]]
        save_png(image_grid(rows), tmp / "recon_grid.png")
    log.info("test PSNR %.2f dB (mean-image baseline %.2f dB)", metrics["test"]["psnr"], baseline["psnr"])


if __name__ == "__main__":
    main()
