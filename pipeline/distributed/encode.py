"""The encode stage's work on Ray Data: image shards in, latent-store shards out.

``ray.data.read_parquet`` reads the image shards; ``map_batches`` runs :class:`VaeEncoder`, a
callable class that loads the saved VAE once per actor (``concurrency`` actors, ``num_gpus``
each) and does per batch exactly what the local engine does (decode the PNGs, encode, decode,
measure); :class:`~pipeline.distributed.latent_sink.LatentStoreSink` writes the latents in the
store's layout from the workers, and only the per-image measurements travel back to the driver.
The train split's pixel sum (for the mean-image baseline) is a second, VAE-free pass of tasks.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image

from pipeline.data.store import decode_frame, image_shard_paths, iter_image_batches, png_bytes
from pipeline.distributed.cluster import RayPlan, import_ray
from pipeline.distributed.latent_sink import LatentStoreSink, SinkSplit
from pipeline.latents.encode import META_COLUMNS, EncodedSplit, batch_metrics
from pipeline.latents.store import latent_table
from pipeline.latents.vae import configure_tiling, encode_batches, load_saved_vae
from pipeline.runtime import resolve_device

METRICS = ["mse", "psnr", "ssim"]


class VaeEncoder:
    """A Ray Data actor: holds the saved VAE and turns batches of image-store rows (Arrow) into
    latent-store rows (``latent`` plus :data:`META_COLUMNS`) with the per-image measurements
    (``mse``…, ``base_mse``… against ``mean_image``, and PNG reconstructions in ``recon`` for the
    rows whose id is in ``keep_ids``) as extra columns."""

    def __init__(self, vae_dir: str, *, device: str, dtype: str, tiling: str, image_side: int, class_names: list[str],
                 mean_image: np.ndarray | None = None, keep_ids: tuple[str, ...] = (), threads: int = 1,
                 source: str = "image store"):
        import torch

        torch.set_num_threads(max(1, threads))
        self.vae = load_saved_vae(vae_dir, resolve_device(device), dtype)
        configure_tiling(self.vae, tiling, image_side)
        self.class_names, self.mean_image, self.keep_ids = class_names, mean_image, set(keep_ids)
        self.source = source   # names a row that does not decode: "<images dir> split <split> (id …)"

    def __call__(self, rows: pa.Table) -> pa.Table:
        # as the local engine converts, so dtypes match
        batch = decode_frame(rows.to_pandas(), self.class_names, rows=lambda _: self.source)
        ((_, z, recon),) = encode_batches(self.vae, [batch])
        metrics, baseline = batch_metrics(batch.images, recon, self.mean_image)
        meta = batch.meta[META_COLUMNS].reset_index(drop=True)
        table = latent_table(z, meta)
        for name in METRICS:
            table = table.append_column(name, pa.array(metrics[name].to_numpy()))
            if baseline is not None:
                table = table.append_column(f"base_{name}", pa.array(baseline[name].to_numpy()))
        kept = [png_bytes(r) if i in self.keep_ids else None for i, r in zip(meta["id"], recon)]
        return table.append_column("recon", pa.array(kept, type=pa.binary()))


def _pixel_sums(rows: pd.DataFrame, source: str = "image store") -> pd.DataFrame:
    """One row per batch: its image count and float64 pixel sum (as bytes), for the mean image."""
    total = decode_frame(rows, [], rows=lambda _: source).images.sum(axis=0, dtype=np.float64)
    return pd.DataFrame({"n": [len(rows)], "sum": [np.ascontiguousarray(total).tobytes()], "shape": [list(total.shape)]})


def pixel_sum_ray(images_dir: str | Path, split: str, plan: RayPlan) -> np.ndarray:
    """The float64 (H, W, 3) sum of the split's images, summed by Ray tasks batch by batch."""
    ray = import_ray()
    paths = [str(p) for p in image_shard_paths(images_dir, split)]
    ds = ray.data.read_parquet(paths).select_columns(["id", "image"]).map_batches(
        _pixel_sums, fn_kwargs={"source": f"{images_dir} split {split}"}, batch_size=plan.batch_size,
        batch_format="pandas", num_cpus=plan.num_cpus)
    total = None
    for row in ds.iter_rows():
        part = np.frombuffer(row["sum"], dtype=np.float64).reshape(row["shape"])
        total = part if total is None else total + part
    if total is None:
        raise ValueError(f"split {split!r} in {images_dir} has no images")
    return total


def encode_split_ray(images_dir: str | Path, split: str, out_dir: str | Path, *, vae_dir: str | Path, device: str,
                     dtype: str, tiling: str, image_side: int, class_names: list[str], ids: list[str],
                     latent_shape: tuple[int, int, int], scaling_factor: float, info: dict, plan: RayPlan,
                     mean_image: np.ndarray | None = None, sum_pixels: bool = False, keep: int = 0,
                     rows_per_shard: int = 4096) -> EncodedSplit:
    """Encode split ``split`` of the image store at ``images_dir`` into ``out_dir`` (the latent-store
    layout) on the connected Ray cluster; the same :class:`EncodedSplit` as the local
    :func:`~pipeline.latents.encode.encode_split`. ``ids`` is the split's id column in order."""
    ray = import_ray()
    if not ids:
        raise ValueError(f"split {split!r} has no images to encode")
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    paths = [str(p) for p in image_shard_paths(images_dir, split)]
    keep_ids = tuple(ids[:keep])
    side = [*METRICS, *(f"base_{m}" for m in METRICS if mean_image is not None), "recon"]
    sink = LatentStoreSink(out_dir, [SinkSplit(split, list(ids), info)], shape=latent_shape, scaling_factor=scaling_factor,
                           side_columns=side, rows_per_shard=rows_per_shard)
    ray.data.read_parquet(paths).map_batches(
        VaeEncoder,
        fn_constructor_kwargs=dict(vae_dir=str(vae_dir), device=device, dtype=dtype, tiling=tiling,
                                   image_side=image_side, class_names=class_names, mean_image=mean_image,
                                   keep_ids=keep_ids, threads=max(1, int(plan.num_cpus)),
                                   source=f"{images_dir} split {split}"),
        batch_size=plan.batch_size, batch_format="pyarrow", concurrency=plan.concurrency,
        num_gpus=plan.num_gpus, num_cpus=plan.num_cpus,
    ).write_datasink(sink)
    rows = sink.side[split]
    recon = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in rows["recon"].iloc[:keep]]
    originals = next(iter_image_batches(images_dir, split, keep)).images if keep else np.zeros((0, 0, 0, 3), np.uint8)
    return EncodedSplit(
        metrics=rows[METRICS].reset_index(drop=True),
        baseline=rows[[f"base_{m}" for m in METRICS]].set_axis(METRICS, axis=1) if mean_image is not None else None,
        pixel_sum=pixel_sum_ray(images_dir, split, plan) if sum_pixels else None,
        originals=originals,
        recon=np.stack(recon) if recon else np.zeros((0, 0, 0, 3), np.uint8),
    )

