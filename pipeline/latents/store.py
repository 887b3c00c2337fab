"""Latent store: scaled latents in a few parquet shards per split.

Layout: ``<dir>/<split>-<shard:05d>.parquet``. Each row holds one flattened float32 latent
(``latent``, a fixed-size list) beside its metadata columns (``id``, ``label``, ``severity`` …).
The file metadata records the latent shape (C, H, W), the VAE's scaling factor and any extra
facts (scheduler, timestep) so a reader can reshape and decode without a side file. Any parquet
engine (pandas, Ray Data, DuckDB) can read the shards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.io import InputError
from pipeline.shards import ShardWriter, concat_shards, iter_shards, iter_table_batches, shard_facts

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


def latent_table(latents: np.ndarray, meta: pd.DataFrame) -> pa.Table:
    """Latents (N, C, H, W) beside their metadata rows as one Arrow table in the store's schema."""
    n, c, h, w = latents.shape
    flat = np.ascontiguousarray(latents, dtype=np.float32).reshape(n, c * h * w)
    column = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel(), type=pa.float32()), c * h * w)
    return pa.Table.from_pandas(meta.reset_index(drop=True), preserve_index=False).append_column("latent", column)


class LatentSplitWriter:
    """Writes the shards of ``split`` as rows arrive, holding at most one shard's rows: ``append``
    latents (N, C, H, W) with their ``meta`` rows, then ``close`` (a context manager closes on a
    clean exit). The files equal what :func:`write_latent_split` writes for all rows at once."""

    def __init__(self, directory: str | Path, split: str, *, scaling_factor: float, info: dict | None = None,
                 rows_per_shard: int = 4096):
        if rows_per_shard < 1:
            raise ValueError(f"rows_per_shard must be ≥ 1, got {rows_per_shard}")
        self.directory, self.split, self.rows_per_shard = directory, split, rows_per_shard
        self.scaling_factor, self.info = float(scaling_factor), dict(info or {})
        self.shape: tuple[int, ...] | None = None
        self._latents: list[np.ndarray] = []
        self._meta: list[pd.DataFrame] = []
        self._pending = 0
        self._shards: ShardWriter | None = None
        self.rows = 0

    @property
    def paths(self) -> list[Path]:
        return self._shards.paths if self._shards is not None else []

    def append(self, latents: np.ndarray, meta: pd.DataFrame) -> None:
        if latents.ndim != 4:
            raise ValueError(f"latents must be (N, C, H, W), got shape {latents.shape}")
        if len(latents) != len(meta):
            raise ValueError(f"split {self.split!r}: {len(latents)} latents but {len(meta)} metadata rows")
        if self.shape is None:
            self.shape = tuple(latents.shape[1:])
        elif tuple(latents.shape[1:]) != self.shape:
            raise ValueError(f"split {self.split!r}: latents of shape {tuple(latents.shape[1:])} after {self.shape}")
        self._latents.append(np.asarray(latents, dtype=np.float32))
        self._meta.append(meta)
        self._pending += len(latents)
        self.rows += len(latents)
        while self._pending >= self.rows_per_shard:
            self._flush(self.rows_per_shard)

    def _flush(self, n: int) -> None:
        latents, meta = np.concatenate(self._latents), pd.concat(self._meta, ignore_index=True)
        self._latents, self._meta = [latents[n:]], [meta.iloc[n:]]
        self._pending = len(latents) - n
        self._write(latents[:n], meta.iloc[:n])

    def _write(self, latents: np.ndarray, meta: pd.DataFrame) -> None:
        table = latent_table(latents, meta)
        if self._shards is None:   # the first table's schema (with its pandas metadata) is every shard's
            c, h, w = self.shape
            facts = {"shape": [c, h, w], "scaling_factor": self.scaling_factor, **self.info}
            self._shards = ShardWriter(self.directory, self.split, table.schema, _META_KEY, facts, self.rows_per_shard)
        self._shards.write(table)   # whole shards only (and the rest at close), so one row group per shard

    def close(self) -> list[Path]:
        """Write the rows still held (an empty split still gets its shard 00000); the shards' paths."""
        if self.shape is None:
            raise ValueError(f"split {self.split!r}: nothing was appended, so the latent shape is unknown")
        if self._pending or self._shards is None:
            self._flush(self._pending)
        return self._shards.close()

    def __enter__(self) -> "LatentSplitWriter":
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is None:
            self.close()


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
    writer = LatentSplitWriter(directory, split, scaling_factor=scaling_factor, info=info, rows_per_shard=rows_per_shard)
    writer.append(latents, meta)
    return writer.close()


def _latent_facts(directory, split: str) -> tuple[dict, list[Path], int]:
    """:func:`shard_facts` of a latent split, its ``shape`` and ``scaling_factor`` checked."""
    info, paths, rows = shard_facts(directory, split, _META_KEY, "latent")
    key = _META_KEY.decode()
    shape, sf = info.get("shape"), info.get("scaling_factor")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise InputError(f"{paths[0]}: file metadata key {key} has shape {shape!r}, not three positive integers (C, H, W)")
    if isinstance(sf, bool) or not isinstance(sf, (int, float)) or not np.isfinite(sf) or sf <= 0:
        raise InputError(f"{paths[0]}: file metadata key {key} has scaling_factor {sf!r}, not a positive number")
    return info, paths, rows


def check_latent_shard(table: pa.Table, path: Path, shape) -> None:
    """Stop with the file (and row) named unless a shard holds a ``latent`` column of ``shape``-sized,
    finite float32 rows beside an ``id`` column."""
    for column in ("id", "latent"):
        if column not in table.column_names:
            raise InputError(f"{path}: missing column {column!r}")
    size = int(np.prod(shape))
    kind = table.schema.field("latent").type
    if not (pa.types.is_fixed_size_list(kind) and kind.list_size == size and pa.types.is_float32(kind.value_type)):
        raise InputError(f"{path}: column 'latent' is {kind}, expected fixed_size_list<float>[{size}] for latents of "
                         f"shape {tuple(shape)} (file metadata)")
    column = table.column("latent")
    if column.null_count:
        row = next(i for i, v in enumerate(column.is_null().to_pylist()) if v)
        raise InputError(f"{path}: row {row} (id {table.column('id')[row].as_py()}) has no latent")
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(table.num_rows, size)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(f"{path}: row {row} (id {table.column('id')[row].as_py()}) holds a non-finite latent "
                         f"({int(bad.sum())} such rows)")


def iter_latent_split(directory: str | Path, split: str) -> Iterator[LatentSet]:
    """The shards of ``split`` one at a time, each as a :class:`LatentSet` (memory holds one shard)."""
    info, paths, _ = _latent_facts(directory, split)
    for path, table in zip(paths, iter_shards(paths)):
        check_latent_shard(table, path, info["shape"])
        yield _latent_set(table, info)


@dataclass(frozen=True)
class LatentFacts:
    """What the footers of a split's shards say, without reading rows: latent ``shape``, the VAE's
    ``scaling_factor``, the extra ``info`` and the number of ``rows``."""

    shape: tuple[int, int, int]
    scaling_factor: float
    info: dict
    rows: int


def latent_split_facts(directory: str | Path, split: str) -> LatentFacts:
    """:class:`LatentFacts` of ``split`` (clear errors as :func:`read_latent_split`'s)."""
    info, _, rows = _latent_facts(directory, split)
    extra = {k: v for k, v in info.items() if k not in ("shape", "scaling_factor")}
    return LatentFacts(shape=tuple(info["shape"]), scaling_factor=info["scaling_factor"], info=extra, rows=rows)


def iter_latent_batches(directory: str | Path, split: str, batch_size: int, limit: int = 0) -> Iterator[LatentSet]:
    """The first ``limit`` rows of ``split`` (0: all) in batches of ``batch_size`` rows (the last may
    be smaller), read shard by shard: memory holds one shard and one batch."""
    info, paths, _ = _latent_facts(directory, split)
    check = lambda table, path: check_latent_shard(table, path, info["shape"])   # noqa: E731
    for table in iter_table_batches(paths, batch_size, limit, check=check):
        yield _latent_set(table, info)


def read_latent_split(directory: str | Path, split: str) -> LatentSet:
    """Read every shard of ``split`` back into (N, C, H, W) latents and a metadata frame."""
    info, paths, _ = _latent_facts(directory, split)
    table = concat_shards(paths, check=lambda table, path: check_latent_shard(table, path, info["shape"]))
    return _latent_set(table, info)


def table_latents(table: pa.Table, shape) -> np.ndarray:
    """The ``latent`` column of a store table as (N, C, H, W) float32 (the inverse of :func:`latent_table`)."""
    flat = table.column("latent").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(table.num_rows, *shape)


def _latent_set(table: pa.Table, info: dict) -> LatentSet:
    latents = table_latents(table, info["shape"])
    meta = table.drop(["latent"]).to_pandas()
    extra = {k: v for k, v in info.items() if k not in ("shape", "scaling_factor")}
    return LatentSet(latents=latents, meta=meta, scaling_factor=info["scaling_factor"], info=extra)
