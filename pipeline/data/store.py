"""Labelled image sets as a few parquet shards per split (images stored as PNG bytes).

Layout: ``<dir>/<split>-<shard:05d>.parquet``. Columns: ``id``, ``image`` (PNG bytes),
``label``, ``label_name``, ``split``, ``artifact_kind``, ``severity``. The class names travel
in the file metadata so readers need no side file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image

from pipeline.shards import read_shards, write_shards

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
        ("severity", pa.float32()),
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
    table = pa.Table.from_pandas(frame[list(IMAGE_COLUMNS)], schema=SCHEMA, preserve_index=False)
    facts = {"class_names": list(class_names), "size": list(images.shape[1:3])}
    return write_shards(directory, split, table, _META_KEY, facts, rows_per_shard)


def read_image_split(directory: str | Path, split: str) -> ImageSet:
    """Read and decode every shard of ``split``; a clear error if there is none or a column is missing."""
    table, info, paths = read_shards(directory, split, _META_KEY, "image")
    missing = [c for c in IMAGE_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"{paths[0]}: missing columns {', '.join(missing)}")
    frame = table.to_pandas()
    images = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in frame["image"]])
    return ImageSet(images=images, meta=frame.drop(columns="image"), class_names=info["class_names"])
