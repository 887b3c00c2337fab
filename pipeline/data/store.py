"""Labelled image sets as a few parquet shards per split (images stored as PNG bytes).

Layout: ``<dir>/<split>-<shard:05d>.parquet``. Columns: ``id``, ``image`` (PNG bytes),
``label``, ``label_name``, ``split``, ``artifact_kind``, ``severity``. The class names travel
in the file metadata so readers need no side file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.io import InputError, describe
from pipeline.shards import ShardWriter, concat_shards, iter_shards, iter_table_batches, shard_facts

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


class ImageSplitWriter:
    """Writes the shards of ``split`` as rows arrive, holding only the rows passed in: ``append`` PNG
    bytes (as :func:`png_bytes` makes them) with their metadata rows (``IMAGE_COLUMNS`` but
    ``image``), then ``close`` (a context manager closes on a clean exit). Each append becomes row
    groups of the open shard (:class:`~pipeline.shards.ShardWriter`); one append of every row
    writes exactly what :func:`write_image_split` writes."""

    def __init__(self, directory: str | Path, split: str, class_names: list[str], size: tuple[int, int], *,
                 rows_per_shard: int = 2000):
        if rows_per_shard < 1:
            raise ValueError(f"rows_per_shard must be ≥ 1, got {rows_per_shard}")
        self.directory, self.split, self.rows_per_shard = directory, split, rows_per_shard
        self.facts = {"class_names": list(class_names), "size": list(size)}
        self._shards: ShardWriter | None = None
        self.rows = 0

    @property
    def paths(self) -> list[Path]:
        return self._shards.paths if self._shards is not None else []

    def append(self, pngs: list[bytes], meta: pd.DataFrame) -> None:
        missing = [c for c in IMAGE_COLUMNS if c != "image" and c not in meta.columns]
        if missing:
            raise ValueError(f"image metadata for split {self.split!r} lacks columns: {', '.join(missing)}")
        if len(pngs) != len(meta):
            raise ValueError(f"split {self.split!r}: {len(pngs)} images but {len(meta)} metadata rows")
        frame = meta.reset_index(drop=True).copy()
        frame["image"] = list(pngs)
        table = pa.Table.from_pandas(frame[list(IMAGE_COLUMNS)], schema=SCHEMA, preserve_index=False)
        if self._shards is None:   # the first table's schema (with its pandas metadata) is every shard's
            self._shards = ShardWriter(self.directory, self.split, table.schema, _META_KEY, self.facts,
                                       self.rows_per_shard)
        self._shards.write(table)
        self.rows += len(frame)

    def close(self) -> list[Path]:
        """Close the open shard (an empty split still gets its shard 00000); the shards' paths."""
        if self._shards is None:
            self.append([], pd.DataFrame({c: pd.Series(dtype=object) for c in IMAGE_COLUMNS if c != "image"}))
        return self._shards.close()

    def __enter__(self) -> "ImageSplitWriter":
        return self

    def __exit__(self, kind, *_) -> None:
        if self._shards is None:
            return
        if kind is None:
            self.close()
        else:
            self._shards.abort()


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
    if len(images) != len(meta):
        raise ValueError(f"split {split!r}: {len(images)} images but {len(meta)} metadata rows")
    writer = ImageSplitWriter(directory, split, class_names, images.shape[1:3], rows_per_shard=rows_per_shard)
    writer.append([png_bytes(img) for img in images], meta)
    return writer.close()


def _image_facts(directory, split: str) -> tuple[dict, list[Path], int]:
    """:func:`shard_facts` of an image split, its ``class_names`` and ``size`` checked."""
    facts, paths, rows = shard_facts(directory, split, _META_KEY, "image")
    key = _META_KEY.decode()
    names, size = facts.get("class_names"), facts.get("size")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise InputError(f"{paths[0]}: file metadata key {key} has class_names {names!r}, not a list of names")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise InputError(f"{paths[0]}: file metadata key {key} has size {size!r}, not two positive integers (H, W)")
    return facts, paths, rows


class _Rows:
    """Names row ``k`` of a split (counted over its shards) as ``<shard>: row <r>``; the shards' row
    counts are read from their footers only when a row has to be named."""

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __call__(self, k: int) -> str:
        ends = np.cumsum([pq.read_metadata(p).num_rows for p in self.paths])
        shard = int(np.searchsorted(ends, k, side="right"))
        return f"{self.paths[shard]}: row {k - (int(ends[shard - 1]) if shard else 0)}"


def _check_rows(table: pa.Table, path: Path, n_classes: int) -> None:
    _require_columns(table, path)
    _check_labels(table, path, n_classes)


def _check_labels(table: pa.Table, path: Path, n_classes: int) -> None:
    labels = table.column("label").to_numpy(zero_copy_only=False)
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes)) if len(labels) else []
    if len(bad):
        raise InputError(f"{path}: row {bad[0]} (id {table.column('id')[int(bad[0])].as_py()}) has label "
                         f"{labels[bad[0]]}, not one of the {n_classes} classes in the file metadata")


def read_image_split(directory: str | Path, split: str) -> ImageSet:
    """Read and decode every shard of ``split``; an :class:`~pipeline.io.InputError` naming the shard and
    row if there is none, a column is missing or an image does not decode to the stored size."""
    facts, paths, _ = _image_facts(directory, split)
    names = facts["class_names"]
    table = concat_shards(paths, check=lambda t, p: _check_rows(t, p, len(names)))
    return decode_frame(table.to_pandas(), names, size=tuple(facts["size"]), rows=_Rows(paths))


def _require_columns(table: pa.Table, path: Path) -> None:
    missing = [c for c in IMAGE_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing columns {', '.join(missing)}")


def image_split_facts(directory: str | Path, split: str) -> tuple[list[str], tuple[int, int], int]:
    """(class names, image size (H, W), rows) of ``split`` from its shards' footers, no image read."""
    facts, _, rows = _image_facts(directory, split)
    return facts["class_names"], tuple(facts["size"]), rows


def read_image_meta(directory: str | Path, split: str) -> pd.DataFrame:
    """Every row's metadata of ``split`` (all columns but the image bytes), shard by shard."""
    facts, paths, _ = _image_facts(directory, split)
    columns = [c for c in IMAGE_COLUMNS if c != "image"]
    frames = []
    for path, table in zip(paths, iter_shards(paths, columns=columns)):
        _check_labels(table, path, len(facts["class_names"]))   # iter_shards checked the columns
        frames.append(table.to_pandas())
    return pd.concat(frames, ignore_index=True)


def iter_image_batches(directory: str | Path, split: str, batch_size: int) -> Iterator[ImageSet]:
    """The images of ``split`` in batches of ``batch_size`` rows (the last may be shorter), read one
    shard at a time and decoded one batch at a time: memory holds one shard's PNG bytes and one
    batch of pixels, whatever the split's size. Batches run across shard boundaries, so they are
    exactly the batches of :func:`read_image_split`'s arrays."""
    facts, paths, _ = _image_facts(directory, split)
    names, rows, start = facts["class_names"], _Rows(paths), 0
    for table in iter_table_batches(paths, batch_size, check=lambda t, p: _check_rows(t, p, len(names))):
        yield decode_frame(table.to_pandas(), names, size=tuple(facts["size"]), rows=rows, offset=start)
        start += table.num_rows


def decode_frame(frame: pd.DataFrame, class_names: list[str], size: tuple[int, int] | None = None, rows=None,
                 offset: int = 0) -> ImageSet:
    """Rows of an image shard (``IMAGE_COLUMNS``, PNG bytes in ``image``) decoded to an :class:`ImageSet`;
    with ``size`` (H, W) every image must have it. A row that does not decode stops with an
    :class:`~pipeline.io.InputError` naming it (``rows(k)`` names row ``offset + k``, else its id)."""
    images = []
    for k, blob in enumerate(frame["image"]):
        try:
            image = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
        except Exception as exc:   # noqa: BLE001 - PIL raises OSError, ValueError, SyntaxError … on bad bytes
            raise InputError(f"{_row(frame, k, rows, offset)}: image bytes do not decode ({describe(exc)})") from exc
        if size is not None and image.shape[:2] != tuple(size):
            raise InputError(f"{_row(frame, k, rows, offset)}: image of {image.shape[0]}×{image.shape[1]} px, the file "
                             f"metadata says {size[0]}×{size[1]}")
        images.append(image)
    images = np.stack(images) if images else np.zeros((0, *(size or (0, 0)), 3), np.uint8)
    return ImageSet(images=images, meta=frame.drop(columns="image").reset_index(drop=True), class_names=class_names)


def _row(frame: pd.DataFrame, k: int, rows, offset: int) -> str:
    where = rows(offset + k) if rows is not None else f"row {k}"
    return f"{where} (id {frame['id'].iloc[k]})"


def image_shard_paths(directory: str | Path, split: str) -> list[Path]:
    """The checked shard paths of ``split`` (same facts in every footer), for an engine that reads them itself."""
    return _image_facts(directory, split)[1]
