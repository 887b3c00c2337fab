"""A Ray Data Datasink that writes rows into the latent store's exact layout.

Ray's own ``write_parquet`` names files by task and writes whatever columns arrive. The latent
store needs more: files named ``<split>-<shard:05d>.parquet`` in row order, the latent shape and
scaling factor in each file's metadata, and only the store's columns. So each write task writes
its rows with :class:`~pipeline.latents.store.LatentSplitWriter` (the local engine's writer, so
the schema and metadata are the same by construction) under a staging name, returns the
columns that are not stored (per-row measurements) to the driver, and the driver numbers the
files in row order when the write completes. One sink can fill several splits at once (the runs
stage writes one per scheduler): a ``split_column`` then says which split each row belongs to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ray.data import Datasink
from ray.data.block import BlockAccessor

from pipeline.latents.store import LatentSplitWriter, table_latents


@dataclass(frozen=True)
class SinkSplit:
    """A split the sink fills: its ``name``, its ``id`` column in order (an id may repeat, e.g. once
    per noise level) and the ``info`` its file metadata records."""

    name: str
    ids: list[str]
    info: dict = field(default_factory=dict)


@dataclass
class _Part:
    """One write task's output per split: its staged shard paths and its rows' side columns (with ``id``)."""

    paths: dict[str, list[str]]
    side: dict[str, pd.DataFrame]


class LatentStoreSink(Datasink):
    """Write blocks holding a ``latent`` column (flattened float32 of ``shape``) beside metadata
    columns into ``directory`` as the ``splits``; with more than one split, ``split_column`` names
    each row's split (it is not stored). ``side_columns`` are not stored either but come back to the
    driver in :attr:`side` (per split, one row per stored row, in split order) after the write.
    Files are numbered by where their rows start, and each split's rows must be exactly its ids."""

    def __init__(self, directory: str | Path, splits: list[SinkSplit], *, shape: tuple[int, int, int],
                 scaling_factor: float, side_columns: list[str], split_column: str | None = None,
                 rows_per_shard: int = 4096):
        if not splits or (len(splits) > 1 and split_column is None):
            raise ValueError("a sink fills one split, or several with a split_column naming each row's")
        self.directory, self.splits, self.shape = str(directory), {s.name: s for s in splits}, tuple(shape)
        self.scaling_factor, self.rows_per_shard = float(scaling_factor), rows_per_shard
        self.side_columns, self.split_column = list(side_columns), split_column
        self.paths: dict[str, list[Path]] = {}
        self.side: dict[str, pd.DataFrame] = {}

    @property
    def min_rows_per_write(self) -> int:
        return self.rows_per_shard * len(self.splits)   # Ray gathers about one shard per split for each write task

    def _by_split(self, table: pa.Table) -> dict[str, pa.Table]:
        if self.split_column is None:
            return {next(iter(self.splits)): table}
        names = set(table.column(self.split_column).unique().to_pylist())
        unknown = names - set(self.splits)
        if unknown:
            raise ValueError(f"rows for split(s) {sorted(unknown)} the sink was not given")
        return {n: table.filter(pc.equal(table.column(self.split_column), n)).drop([self.split_column]) for n in names}

    def write(self, blocks, ctx) -> _Part | None:
        tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return None
        part = _Part(paths={}, side={})
        for name, table in self._by_split(pa.concat_tables(tables)).items():
            meta = table.drop(["latent", *self.side_columns]).to_pandas()
            writer = LatentSplitWriter(self.directory, f".{name}.task{ctx.task_idx:06d}",
                                       scaling_factor=self.scaling_factor, info=self.splits[name].info,
                                       rows_per_shard=self.rows_per_shard)
            writer.append(table_latents(table, self.shape), meta)
            part.paths[name] = [str(p) for p in writer.close()]
            part.side[name] = table.select(["id", *self.side_columns]).to_pandas()
        return part

    def on_write_complete(self, write_result) -> None:
        parts = [p for p in write_result.write_returns if p is not None]
        for name, split in self.splits.items():
            mine = [p for p in parts if name in p.paths]
            position: dict[str, int] = {}
            for i, id_ in enumerate(split.ids):
                position.setdefault(id_, i)
            mine.sort(key=lambda p: position.get(p.side[name]["id"].iloc[0], -1))
            side = pd.concat([p.side[name] for p in mine], ignore_index=True) if mine else pd.DataFrame(columns=["id"])
            if side["id"].tolist() != split.ids:
                raise RuntimeError(f"split {name!r}: the rows written are not the split's {len(split.ids)} rows "
                                   f"in order ({len(side)} came back)")
            staged = [Path(path) for p in mine for path in p.paths[name]]
            self.paths[name] = []
            for shard, path in enumerate(staged):
                final = Path(self.directory) / f"{name}-{shard:05d}.parquet"
                os.replace(path, final)
                self.paths[name].append(final)
            self.side[name] = side.drop(columns="id")
