"""Parquet shards of one split: ``<dir>/<split>-<shard:05d>.parquet``, JSON facts in the file metadata."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.io import InputError, reading


def shard_paths(directory: str | Path, split: str) -> list[Path]:
    return sorted(Path(directory).glob(f"{split}-*.parquet"))


def list_splits(directory: str | Path) -> list[str]:
    """The splits stored in ``directory`` (every split has a shard 00000)."""
    return sorted(p.name[: -len("-00000.parquet")] for p in Path(directory).glob("*-00000.parquet"))


class ShardWriter:
    """Writes the shards of ``split`` one table at a time, so memory holds only the table passed in:
    each :meth:`write` adds row groups to the open shard, which closes at ``rows_per_shard`` rows.
    ``schema`` (the tables' schema) gets ``facts`` under ``key`` in every file's metadata. A
    :meth:`write` of whole shards gives one row group per shard."""

    def __init__(self, directory: str | Path, split: str, schema: pa.Schema, key: bytes, facts: dict,
                 rows_per_shard: int):
        if rows_per_shard < 1:
            raise ValueError(f"rows_per_shard must be ≥ 1, got {rows_per_shard}")
        self.directory, self.split, self.rows_per_shard = Path(directory), split, rows_per_shard
        self.schema = schema.with_metadata({**(schema.metadata or {}), key: json.dumps(facts).encode()})
        self.paths: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_shard = 0

    def write(self, table: pa.Table) -> None:
        table = table.replace_schema_metadata(self.schema.metadata)
        start = 0
        while start < table.num_rows:
            if self._writer is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self.paths.append(self.directory / f"{self.split}-{len(self.paths):05d}.parquet")
                self._writer, self._rows_in_shard = pq.ParquetWriter(self.paths[-1], self.schema), 0
            part = table.slice(start, self.rows_per_shard - self._rows_in_shard)
            self._writer.write_table(part)
            self._rows_in_shard += part.num_rows
            start += part.num_rows
            if self._rows_in_shard == self.rows_per_shard:
                self._writer.close()
                self._writer = None

    def close(self) -> list[Path]:
        """Close the open shard (an empty split still gets its shard 00000); the shards' paths."""
        if not self.paths:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.paths.append(self.directory / f"{self.split}-00000.parquet")
            pq.write_table(self.schema.empty_table(), self.paths[-1])
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.paths

    def abort(self) -> None:
        """Close the open file after a failure (the caller's atomic directory discards it)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def shard_facts(directory: str | Path, split: str, key: bytes, what: str) -> tuple[dict, list[Path], int]:
    """The facts, shard paths and row count of ``split`` from the shards' footers alone (no data read);
    clear errors for a missing split, a foreign shard or differing facts."""
    paths = shard_paths(directory, split)
    if not paths:
        raise InputError(f"{directory}: no {what} shards for split {split!r} (expected {split}-00000.parquet)")
    names = [p.name for p in paths]
    if names != [f"{split}-{k:05d}.parquet" for k in range(len(paths))]:
        raise InputError(f"{directory}: the {split} shards are not numbered 00000…{len(paths) - 1:05d} ({', '.join(names)})")
    facts, rows = [], 0
    for path in paths:
        with reading(path, f"{what} shard (parquet footer)"):
            meta = pq.read_metadata(path)
        if key not in (meta.metadata or {}):
            raise InputError(f"{path}: not a {what} shard (file metadata lacks key {key.decode()})")
        with reading(path, f"{what} shard (file metadata key {key.decode()})"):
            fact = json.loads(meta.metadata[key])
        if not isinstance(fact, dict):
            raise InputError(f"{path}: file metadata key {key.decode()} holds {type(fact).__name__}, not an object")
        facts.append(fact)
        rows += meta.num_rows
    for path, other in zip(paths[1:], facts[1:]):
        if other != facts[0]:
            raise InputError(f"{path}: file metadata differs from {paths[0]}")
    return facts[0], paths, rows


def iter_shards(paths: list[Path], columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The shards at ``paths`` (as :func:`shard_facts` returns them, checked) one table at a time, only
    ``columns`` if given: memory holds one shard."""
    for path in paths:
        with reading(path, "shard"):
            if columns is not None:
                missing = [c for c in columns if c not in pq.read_schema(path).names]
                if missing:
                    raise InputError(f"{path}: missing columns {', '.join(missing)}")
            table = pq.read_table(path, columns=columns)
        yield table


def iter_table_batches(paths: list[Path], batch_size: int, limit: int = 0,
                       check=None) -> Iterator[pa.Table]:
    """The rows of the shards at ``paths`` re-cut into tables of ``batch_size`` rows (the last may be
    smaller), the first ``limit`` rows only if ``limit`` > 0: read one shard at a time, so memory
    holds one shard and one batch, and batches run across shard boundaries exactly as slices of the
    whole split would. ``check(table, path)`` (optional) vets each shard as it is read."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    held, left = None, limit or -1   # left < 0: no limit
    for path, table in zip(paths, iter_shards(paths)):
        if check is not None:
            check(table, path)
        if left >= 0:
            table = table.slice(0, left)
            left -= table.num_rows
        try:
            held = table if held is None else pa.concat_tables([held, table])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(f"{path}: its schema differs from the shard before it ({exc})") from exc
        while held.num_rows >= batch_size:
            yield held.slice(0, batch_size)
            held = held.slice(batch_size)
        if left == 0:
            break
    if held is not None and held.num_rows:
        yield held


def concat_shards(paths: list[Path], check=None) -> pa.Table:
    """The shards at ``paths`` (as :func:`shard_facts` returns them, checked) as one table;
    ``check(table, path)`` (optional) vets each shard as it is read."""
    tables = []
    for path, table in zip(paths, iter_shards(paths)):
        if check is not None:
            check(table, path)
        tables.append(table)
    try:
        return pa.concat_tables(tables)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{paths[0].parent}: the {paths[0].name.rsplit('-', 1)[0]} shards do not share one schema "
                         f"({exc})") from exc
