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

import contextlib
import logging

import numpy as np
import pandas as pd
import torch

from pipeline.data.store import image_split_facts, iter_image_batches, read_image_meta
from pipeline.io import atomic_dir, write_json
from pipeline.latents.encode import META_COLUMNS, EncodedSplit, encode_split, mean_image
from pipeline.latents.store import LatentSplitWriter, iter_latent_split
from pipeline.latents.vae import downsampling_factor
from pipeline.metrics.reconstruction import summarise
from pipeline.report.figures import image_grid, save_png
from stages.cli import parse_args, stage_main
from stages.common import start
from stages.vae_open import open_vae

log = logging.getLogger("stages.encode")
SPLITS = ("train", "test", "artifact_train", "artifact_test")


@stage_main
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
    class_names, (side, width), _ = image_split_facts(args.images, "train")
    vae = open_vae(params, args.vae, side)
    sf = float(vae.config.scaling_factor)
    factor = downsampling_factor(vae)
    latent_shape = (int(vae.config.latent_channels), side // factor, width // factor)
    info = {"vae_class": type(vae).__name__, "sample": cfg.sample, "dtype": params.vae.dtype}
    # a CPU generator draws the same posterior noise on every device
    gen = torch.Generator().manual_seed(params.base.seed) if cfg.sample else None

    def local(split, out_dir, meta, **options) -> EncodedSplit:
        with LatentSplitWriter(out_dir, split, scaling_factor=sf, info=info) as writer:
            result = encode_split(vae, iter_image_batches(args.images, split, cfg.batch_size), writer, total=len(meta),
                                  sample=cfg.sample, generator=gen, desc=f"encode + decode {split}", **options)
        if writer.shape != latent_shape:
            raise RuntimeError(f"{args.vae}: latents of shape {writer.shape}, expected {latent_shape} for {side} px images")
        return result

    n = cfg.grid_size
    results, done, mean = {}, {}, None
    with contextlib.ExitStack() as stack, atomic_dir(args.out) as tmp:
        run = _ray_engine(stack, params, args, class_names, side, sf, info, latent_shape) if cfg.engine == "ray" else local
        for split, meta in metas.items():
            key = tuple(meta["id"])   # diffusiondb's artifact splits are its classification splits
            if key in done:           # the same images: the same latents, under this split's rows
                with LatentSplitWriter(tmp, split, scaling_factor=sf, info=info) as writer:
                    _copy_latents(tmp, done[key], writer, meta[META_COLUMNS])
                results[split] = results[done[key]]
            else:
                results[split] = run(split, tmp, meta, mean_image=mean if split == "test" else None,
                                     sum_pixels=split == "train", keep=2 * n if split == "test" else 0)
                done[key] = split
            if split == "train":
                mean = mean_image(results[split].pixel_sum, len(meta))
            log.info("%s: %d latents of shape %s, PSNR %.2f dB", split, len(meta), latent_shape,
                     results[split].metrics["psnr"].mean())
    tables = {s: r.metrics.assign(label_name=metas[s]["label_name"].values) for s, r in results.items()}
    test_shape = (image_split_facts(args.images, "test")[1]) + (3,)
    baseline = summarise(results["test"].baseline)
    metrics = {
        "latent_shape": list(latent_shape),
        "scaling_factor": sf,
        "compression": float(np.prod(test_shape) / np.prod(latent_shape)),
        "test": summarise(tables["test"]),
        "baseline_mean_image_test": baseline,
        "per_split": {s: summarise(t) for s, t in tables.items()},
        "per_class_test": summarise(tables["test"], by="label_name"),
    }
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)
        pd.concat(
            [t.assign(split=s, id=metas[s]["id"].values) for s, t in tables.items()], ignore_index=True
        ).to_csv(tmp / "per_image.csv", index=False, float_format="%.6g")
        test = results["test"]
        originals, recon = test.originals, test.recon
        save_png(image_grid([originals[:n], recon[:n], originals[n:2 * n], recon[n:2 * n]]), tmp / "recon_grid.png")
    log.info("test PSNR %.2f dB (mean-image baseline %.2f dB)", metrics["test"]["psnr"], baseline["psnr"])


def _ray_engine(stack: contextlib.ExitStack, params, args, class_names: list[str], side: int, sf: float, info: dict,
                latent_shape: tuple[int, int, int]):
    """Join or start the Ray cluster (for the rest of ``stack``) and return the Ray Data engine, called as
    the local one is; a clear exit if Ray is not installed or the cluster cannot be joined."""
    from pipeline.distributed.encode import encode_split_ray
    from stages.ray_join import join_ray

    plan = join_ray(stack, "encode", params.encode.ray, params.encode.batch_size)

    def run(split, out_dir, meta, **options) -> EncodedSplit:
        return encode_split_ray(
            args.images, split, out_dir, vae_dir=args.vae, device=params.base.device, dtype=params.vae.dtype,
            tiling=params.vae.tiling, image_side=side, class_names=class_names, ids=meta["id"].tolist(),
            latent_shape=latent_shape, scaling_factor=sf, info=info, plan=plan, **options)

    return run


def _copy_latents(directory, source: str, writer: LatentSplitWriter, meta: pd.DataFrame) -> None:
    """Write split ``source``'s latents (already in ``directory``) again under ``meta``'s rows, shard by shard."""
    row = 0
    for part in iter_latent_split(directory, source):
        writer.append(part.latents, meta.iloc[row:row + len(part.latents)])
        row += len(part.latents)


if __name__ == "__main__":
    main()
