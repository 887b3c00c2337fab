"""A Ray Data Datasink that writes rows into the latent store's exact layout.

Ray's own ``write_parquet`` names files by task and writes whatever columns arrive. The latent
store needs more: files named ``<split>-<shard:05d>.parquet`` in row order, the latent shape and
scaling factor in each file's metadata, and only the store's columns. So each write task writes
its rows with :class:`~pipeline.latents.store.LatentSplitWriter` (the local engine's writer, so
the schema and metadata are the same by construction) under a staging name, returns the
columns that are not stored (per-row measurements) to the driver, and the driver numbers the
files in row order when the write completes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
from ray.data import Datasink
from ray.data.block import BlockAccessor

from pipeline.latents.store import LatentSplitWriter


@dataclass
class _Part:
    """One write task's output: its staged shard paths and its rows' side columns (with ``id``)."""

    paths: list[str]
    side: pd.DataFrame


class LatentStoreSink(Datasink):
    """Write blocks holding a ``latent`` column (flattened float32 of ``shape``) beside metadata
    columns into ``directory`` as split ``split``; ``side_columns`` are not stored but come back
    to the driver in :attr:`side` (one row per stored row, in split order) after the write. ``ids``
    is the split's ``id`` column in order: files are numbered by where their rows start, and the
    rows written must be exactly these."""

    def __init__(self, directory: str | Path, split: str, *, shape: tuple[int, int, int], scaling_factor: float,
                 info: dict, ids: list[str], side_columns: list[str], rows_per_shard: int = 4096):
        self.directory, self.split, self.shape = str(directory), split, tuple(shape)
        self.scaling_factor, self.info, self.rows_per_shard = float(scaling_factor), dict(info), rows_per_shard
        self.side_columns = list(side_columns)
        self._ids = list(ids)
        self.paths: list[Path] = []
        self.side: pd.DataFrame | None = None

    @property
    def min_rows_per_write(self) -> int:
        return self.rows_per_shard   # Ray gathers about one shard's rows for each write task

    def write(self, blocks, ctx) -> _Part | None:
        tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return None
        table = pa.concat_tables(tables)
        n = table.num_rows
        latents = table.column("latent").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        meta = table.drop(["latent", *self.side_columns]).to_pandas()
        writer = LatentSplitWriter(self.directory, f".{self.split}.task{ctx.task_idx:06d}",
                                   scaling_factor=self.scaling_factor, info=self.info,
                                   rows_per_shard=self.rows_per_shard)
        writer.append(latents.reshape(n, *self.shape), meta)
        return _Part(paths=[str(p) for p in writer.close()],
                     side=table.select(["id", *self.side_columns]).to_pandas())

    def on_write_complete(self, write_result) -> None:
        parts = [p for p in write_result.write_returns if p is not None]
        position = {id_: i for i, id_ in enumerate(self._ids)}
        parts.sort(key=lambda p: position.get(p.side["id"].iloc[0], -1))
        side = pd.concat([p.side for p in parts], ignore_index=True) if parts else pd.DataFrame(columns=["id"])
        if side["id"].tolist() != self._ids:
            raise RuntimeError(f"split {self.split!r}: the rows written are not the split's {len(self._ids)} rows "
                               f"in order ({len(side)} came back)")
        staged = [Path(path) for part in parts for path in part.paths]
        for shard, path in enumerate(staged):
            final = Path(self.directory) / f"{self.split}-{shard:05d}.parquet"
            os.replace(path, final)
            self.paths.append(final)
        self.side = side.drop(columns="id")
