"""Labelled image sets as a few parquet shards per split (images stored as PNG bytes).

Layout: ``<dir>/<split>-<shard:05d>.parquet``. Columns: ``id``, ``image`` (PNG bytes),
``label``, ``label_name``, ``split``, ``artifact_kind``, ``severity``. The class names travel
in the file metadata so readers need no side file.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

IMAGE_COLUMNS = ("id", "image", "label", "label_name", "split", "artifact_kind", "severity")
_META_KEY = b"latent_lab.images"

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("image", pa.binary()),
        ("label", pa.int16()),
        ("label_name", pa.string()),
        ("split", pa.string()),
        ("artifact_kind", pa.string()),
        ("severity", pa.int8()),
    ]
)


@dataclass
class ImageSet:
    """Decoded images (N, H, W, 3 uint8) with their per-row metadata (everything but the bytes)."""

    images: np.ndarray
    meta: pd.DataFrame
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.meta)


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def shard_paths(directory: str | Path, split: str) -> list[Path]:
    return sorted(Path(directory).glob(f"{split}-*.parquet"))


def write_image_split(
    directory: str | Path,
    split: str,
    images: np.ndarray,
    meta: pd.DataFrame,
    class_names: list[str],
    *,
    rows_per_shard: int = 2000,
) -> list[Path]:
    """Write ``images`` with ``meta`` (columns of ``IMAGE_COLUMNS`` but ``image``) as shards of ``split``."""
    missing = [c for c in IMAGE_COLUMNS if c != "image" and c not in meta.columns]
    if missing:
        raise ValueError(f"image metadata for split {split!r} lacks columns: {', '.join(missing)}")
    if len(images) != len(meta):
        raise ValueError(f"split {split!r}: {len(images)} images but {len(meta)} metadata rows")
    frame = meta.reset_index(drop=True).copy()
    frame["image"] = [png_bytes(img) for img in images]
    metadata = {_META_KEY: json.dumps({"class_names": list(class_names), "size": list(images.shape[1:3])}).encode()}
    paths = []
    for shard, start in enumerate(range(0, max(len(frame), 1), rows_per_shard)):
        part = frame.iloc[start : start + rows_per_shard]
        table = pa.Table.from_pandas(part[list(IMAGE_COLUMNS)], schema=SCHEMA, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
        path = Path(directory) / f"{split}-{shard:05d}.parquet"
        pq.write_table(table, path)
        paths.append(path)
    return paths


def read_image_split(directory: str | Path, split: str) -> ImageSet:
    """Read and decode every shard of ``split``; a clear error if there is none or a column is missing."""
    paths = shard_paths(directory, split)
    if not paths:
        raise FileNotFoundError(f"no parquet shards for split {split!r} in {directory} (expected {split}-00000.parquet)")
    tables = []
    for path in paths:
        table = pq.read_table(path)
        missing = [c for c in IMAGE_COLUMNS if c not in table.column_names]
        if missing:
            raise ValueError(f"{path}: missing columns {', '.join(missing)}")
        tables.append(table)
    table = pa.concat_tables(tables)
    info = json.loads(tables[0].schema.metadata[_META_KEY])
    frame = table.to_pandas()
    images = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in frame["image"]])
    return ImageSet(images=images, meta=frame.drop(columns="image"), class_names=info["class_names"])
