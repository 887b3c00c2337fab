"""A disk spool that hands rows back in key order whatever order they arrive in (a bucketed
external sort), so a stage can reorder more image bytes than fit in memory.

DiffusionDB images are decoded file by file (reading a parquet file once is far cheaper than
jumping between files) but belong in the seeded sample's order: each decoded image goes in with
its position in that order and comes out sorted. Memory holds at most ``max_bytes`` of rows
waiting to be spilled plus one bucket (``bucket_rows`` consecutive keys) while reading back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.runtime import release_memory


class OrderedSpool:
    """``add(key, value)`` rows (an int key, bytes), then iterate: ``(key, value)`` by ascending key.
    Keys must be unique and ≥ 0; spill files go to ``directory`` (the caller owns and removes it)."""

    def __init__(self, directory: str | Path, *, bucket_rows: int = 1024, max_bytes: int = 64 * 2**20):
        if bucket_rows < 1 or max_bytes < 1:
            raise ValueError(f"bucket_rows and max_bytes must be ≥ 1, got {bucket_rows}, {max_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.bucket_rows, self.max_bytes = bucket_rows, max_bytes
        self._buffers: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        self._held = 0
        self._spills = 0
        self._on_disk: set[int] = set()
        self.rows = 0

    def add(self, key: int, value: bytes) -> None:
        if key < 0:
            raise ValueError(f"spool keys must be ≥ 0, got {key}")
        self._buffers[key // self.bucket_rows].append((key, value))
        self._held += len(value)
        self.rows += 1
        if self._held > self.max_bytes:
            self._spill()

    def _spill(self) -> None:
        for bucket, rows in self._buffers.items():
            keys, values = zip(*rows)
            table = pa.table({"key": pa.array(keys, pa.int64()), "value": pa.array(values, pa.binary())})
            pq.write_table(table, self.directory / f"{bucket:09d}-{self._spills:06d}.parquet", compression="none")
            self._on_disk.add(bucket)
        self._spills += 1
        self._buffers.clear()
        self._held = 0
        release_memory()   # the spilled bytes' heap pages go back to the system, not to fragmentation

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        last = -1
        for bucket in sorted(self._on_disk | set(self._buffers)):
            rows = list(self._buffers.get(bucket, []))
            for path in sorted(self.directory.glob(f"{bucket:09d}-*.parquet")):
                table = pq.read_table(path)
                rows += zip(table.column("key").to_pylist(), table.column("value").to_pylist())
            rows.sort(key=lambda row: row[0])
            release_memory()   # the bucket's tables are gone: their pages go back before the next bucket
            for key, value in rows:
                if key == last:
                    raise ValueError(f"spool key {key} was added twice")
                last = key
                yield key, value
