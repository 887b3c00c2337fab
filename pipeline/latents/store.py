"""Latent store: scaled latents in a few parquet shards per split.

Layout: ``<dir>/<split>-<shard:05d>.parquet``. Each row holds one flattened float32 latent
(``latent``, a fixed-size list) beside its metadata columns (``id``, ``label``, ``severity`` …).
The file metadata records the latent shape (C, H, W), the VAE's scaling factor and any extra
facts (scheduler, timestep) so a reader can reshape and decode without a side file. Any parquet
engine (pandas, Ray Data, DuckDB) can read the shards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.shards import read_shards, write_shards

_META_KEY = b"latent_lab.latents"


@dataclass
class LatentSet:
    """Latents (N, C, H, W float32), their row metadata, and the store's file metadata."""

    latents: np.ndarray
    meta: pd.DataFrame
    scaling_factor: float
    info: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.latents.shape[1:])

    def flat(self) -> np.ndarray:
        return self.latents.reshape(len(self.latents), -1)

    @property
    def class_names(self) -> list[str]:
        """Names of the labels present, indexed by label (needs ``label`` and ``label_name`` columns)."""
        pairs = self.meta[["label", "label_name"]].drop_duplicates().sort_values("label")
        if pairs["label"].tolist() != list(range(len(pairs))):
            raise ValueError(f"labels {pairs['label'].tolist()} are not 0..{len(pairs) - 1}")
        return pairs["label_name"].tolist()


def write_latent_split(
    directory: str | Path,
    split: str,
    latents: np.ndarray,
    meta: pd.DataFrame,
    *,
    scaling_factor: float,
    info: dict | None = None,
    rows_per_shard: int = 4096,
) -> list[Path]:
    """Write ``latents`` (N, C, H, W) and ``meta`` (N rows) as the shards of ``split``."""
    if latents.ndim != 4:
        raise ValueError(f"latents must be (N, C, H, W), got shape {latents.shape}")
    if len(latents) != len(meta):
        raise ValueError(f"split {split!r}: {len(latents)} latents but {len(meta)} metadata rows")
    n, c, h, w = latents.shape
    flat = np.ascontiguousarray(latents, dtype=np.float32).reshape(n, c * h * w)
    facts = {"shape": [c, h, w], "scaling_factor": float(scaling_factor), **(info or {})}
    column = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel(), type=pa.float32()), c * h * w)
    table = pa.Table.from_pandas(meta.reset_index(drop=True), preserve_index=False).append_column("latent", column)
    return write_shards(directory, split, table, _META_KEY, facts, rows_per_shard)


def read_latent_split(directory: str | Path, split: str) -> LatentSet:
    """Read every shard of ``split`` back into (N, C, H, W) latents and a metadata frame."""
    table, info, _ = read_shards(directory, split, _META_KEY, "latent")
    c, h, w = info["shape"]
    column = table.column("latent").combine_chunks()
    latents = column.flatten().to_numpy(zero_copy_only=False).reshape(len(table), c, h, w)
    meta = table.drop(["latent"]).to_pandas()
    extra = {k: v for k, v in info.items() if k not in ("shape", "scaling_factor")}
    return LatentSet(latents=latents, meta=meta, scaling_factor=info["scaling_factor"], info=extra)
