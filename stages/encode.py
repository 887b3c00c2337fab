"""encode: every split to scaled latents in parquet shards, plus reconstruction metrics.

Encodes ``data/images`` with the VAE in ``models/vae`` (``latent_dist.mode()``, or a seeded
``.sample()`` with ``encode.sample``), multiplies by the config's scaling factor and writes
``data/latents/<split>-*.parquet`` (latent shape and scaling factor in the file metadata).
Decodes them again for MSE / PSNR / SSIM per split and per class, beside the mean-image
baseline, and a grid of test originals above their reconstructions. Streams: images are read
one shard and decoded one ``encode.batch_size`` batch at a time, latents written a shard at a
time, so memory does not grow with the number of images (``benchmarks/encode_memory.py``).
Reads ``base``, ``encode``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from tqdm import tqdm

from pipeline.data.store import image_split_facts, iter_image_batches, read_image_meta
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import LatentSplitWriter, iter_latent_split
from pipeline.latents.vae import encode_batches
from pipeline.metrics.reconstruction import reconstruction_table, summarise
from pipeline.report.figures import image_grid, save_png
from pipeline.runtime import release_memory
from stages.cli import parse_args
from stages.common import start
from stages.vae_open import open_vae

log = logging.getLogger("stages.encode")
SPLITS = ("train", "test", "artifact_train", "artifact_test")
META_COLUMNS = ["id", "label", "label_name", "split", "artifact_kind", "severity"]
RELEASE_EVERY = 16   # batches between handing freed heap pages back (pipeline.runtime.release_memory)


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--images", default="data/images"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--out", default="data/latents"),
        p.add_argument("--reports", default="reports/encode"),
    ))
    params = start(args)
    cfg = params.encode
    metas = {split: read_image_meta(args.images, split) for split in SPLITS}   # bad stores fail before the VAE loads
    vae = open_vae(params, args.vae, image_split_facts(args.images, "train")[1][0])
    sf = float(vae.config.scaling_factor)
    # a CPU generator draws the same posterior noise on every device
    gen = torch.Generator().manual_seed(params.base.seed) if cfg.sample else None
    info = {"vae_class": type(vae).__name__, "sample": cfg.sample, "dtype": params.vae.dtype}

    n = cfg.grid_size
    per_split, tables, done = {}, {}, {}
    train_sum, mean_image, grid, baseline_rows = None, None, {"images": [], "recon": []}, []
    with atomic_dir(args.out) as tmp:
        for split, meta in metas.items():
            key = tuple(meta["id"])   # diffusiondb's artifact splits are its classification splits
            writer = LatentSplitWriter(tmp, split, scaling_factor=sf, info=info)
            if key in done:           # the same images: the same latents, under this split's rows
                _copy_latents(tmp, done[key], writer, meta[META_COLUMNS])
                tables[split] = tables[done[key]].assign(label_name=meta["label_name"].values)
            else:
                rows = []
                with tqdm(total=len(meta), desc=f"encode + decode {split}", unit="image", mininterval=2.0) as bar:
                    for i, (batch, z, recon) in enumerate(encode_batches(
                            vae, iter_image_batches(args.images, split, cfg.batch_size), sample=cfg.sample, generator=gen)):
                        if i % RELEASE_EVERY == 0:
                            release_memory()   # resident memory stays flat however many batches pass
                        writer.append(z, batch.meta[META_COLUMNS])
                        rows.append(reconstruction_table(batch.images, recon))
                        if split == "train":
                            total = batch.images.sum(axis=0, dtype=np.float64)
                            train_sum = total if train_sum is None else train_sum + total
                        elif split == "test":
                            # the mean training image as every test image's reconstruction: the baseline
                            if mean_image is None:
                                mean_image = (train_sum / len(metas["train"])).round().astype(np.uint8)
                            baseline_rows.append(reconstruction_table(
                                batch.images, np.broadcast_to(mean_image, batch.images.shape).copy()))
                            _keep(grid, batch.images, recon, 2 * n)
                        bar.update(len(z))
                tables[split] = pd.concat(rows, ignore_index=True).assign(label_name=meta["label_name"].values)
                done[key] = split
            writer.close()
            per_split[split] = summarise(tables[split])
            latent_shape = list(writer.shape)
            log.info("%s: %d latents of shape %s, PSNR %.2f dB", split, writer.rows, writer.shape, per_split[split]["psnr"])

    test_shape = (image_split_facts(args.images, "test")[1]) + (3,)
    baseline = summarise(pd.concat(baseline_rows, ignore_index=True))
    metrics = {
        "latent_shape": latent_shape,
        "scaling_factor": sf,
        "compression": float(np.prod(test_shape) / np.prod(latent_shape)),
        "test": per_split["test"],
        "baseline_mean_image_test": baseline,
        "per_split": per_split,
        "per_class_test": summarise(tables["test"], by="label_name"),
    }
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)
        pd.concat(
            [t.assign(split=s, id=metas[s]["id"].values) for s, t in tables.items()], ignore_index=True
        ).to_csv(tmp / "per_image.csv", index=False, float_format="%.6g")
        originals, recon = np.concatenate(grid["images"]), np.concatenate(grid["recon"])
        save_png(image_grid([originals[:n], recon[:n], originals[n:2 * n], recon[n:2 * n]]), tmp / "recon_grid.png")
    log.info("test PSNR %.2f dB (mean-image baseline %.2f dB)", metrics["test"]["psnr"], baseline["psnr"])


def _copy_latents(directory, source: str, writer: LatentSplitWriter, meta: pd.DataFrame) -> None:
    """Write split ``source``'s latents (already in ``directory``) again under ``meta``'s rows, shard by shard."""
    row = 0
    for part in iter_latent_split(directory, source):
        writer.append(part.latents, meta.iloc[row:row + len(part.latents)])
        row += len(part.latents)


def _keep(grid: dict, images: np.ndarray, recon: np.ndarray, limit: int) -> None:
    """Keep the first ``limit`` originals and reconstructions for the grid."""
    room = limit - sum(len(a) for a in grid["images"])
    if room > 0:
        grid["images"].append(images[:room])
        grid["recon"].append(recon[:room])


if __name__ == "__main__":
    main()
