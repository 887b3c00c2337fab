"""DiffusionDB images with AI-Horde human ratings: aggregation, joining, seeded sampling, labels.

Sources (facts in the project's domain reference):

* images: ``poloclub/diffusiondb``, the Hub's auto-converted parquet (revision
  ``refs/convert/parquet``, ``<config>/train/*.parquet``). ``datasets>=4`` no longer runs the
  dataset's loading script, so the parquet files are read directly with pyarrow. The image
  column is the ``datasets`` Image struct ``{bytes, path}``; ``path`` is the image file name,
  whose stem is the image id. A local copy in the same schema works the same way.
* ratings: ``Haidra-Org/AI-Horde-Ratings``, ``diffusiondb_export.parquet``: one row per rating,
  ``id`` = DiffusionDB image id.

Aggregation (the aesthetics-scorer recipe, without the public anchors' bug of grouping the
*unfiltered* frame): drop repeated (user, image) ratings and (by default) the anonymous raters'
``kudos == -50`` rows, *then* group by image; keep images with at least ``min_ratings`` artifact
ratings. ``kudos == -50`` marks an *anonymous* rater, not spam (the dataset card: kudos is the
rater's kudos when rating, a way to find bad actors); dropping those rows is a trust choice, kept
as the public recipe's default and counted in the data-quality figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from pipeline.data.imaging import decode_image

DIFFUSIONDB_REPO = "poloclub/diffusiondb"
RATINGS_REPO = "Haidra-Org/AI-Horde-Ratings"
RATINGS_FILE = "diffusiondb_export.parquet"

RATING_COLUMNS = ("id", "user_id", "kudos", "rating", "artifacts")
IMAGE_COLUMNS = ("image", "image_nsfw", "sampler")
ANONYMOUS_KUDOS = -50     # the kudos of an anonymous rater (the dataset card): not spam, but not an account either
BLURRED_NSFW = 2.0        # image_nsfw == 2.0: DiffusionDB already blurred the image

# DiffusionDB's integer sampler codes (metadata parquet); the image parquet may hold names instead.
SAMPLERS = {1: "ddim", 2: "plms", 3: "k_euler", 4: "k_euler_ancestral", 5: "k_heun", 6: "k_dpm_2",
            7: "k_dpm_2_ancestral", 8: "k_lms", 9: "others"}
# Half-open buckets [lo, hi) (the last closed), the same ranges the scorer reports errors on.
BUCKETS = {
    "artifact_bucket": ("artifacts_median", [("artifacts_0-2", 0.0), ("artifacts_2-4", 2.0), ("artifacts_4-5", 4.0)]),
    "rating_bucket": ("rating_median", [("rating_1-4", -np.inf), ("rating_4-7", 4.0), ("rating_7-10", 7.0)]),
}
LABELS = ("artifact_bucket", "rating_bucket", "sampler")


class DataError(ValueError):
    """An input file lacks a column, or holds too few usable rows; the message names the file."""


def require_columns(columns, needed, where: str) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, columns))})")


def read_ratings(path: str | Path, ids: list[str] | None = None, batch_rows: int = 65_536) -> pd.DataFrame:
    """The rating rows needed for aggregation, optionally only those of ``ids``. The export has
    millions of rows: it is read ``batch_rows`` at a time, each batch filtered to ``ids`` at once,
    and ``id`` and ``user_id`` come back as categoricals (int32 codes into one copy of each
    distinct string), so memory holds a few numbers per kept row rather than two Python strings."""
    schema = pq.read_schema(path)
    require_columns(schema.names, RATING_COLUMNS, str(path))
    columns = list(RATING_COLUMNS) + (["created_at"] if "created_at" in schema.names else [])
    keep = None if ids is None else pa.array(sorted(set(ids)), type=pa.string())
    id_codes, user_codes = _Codes(keep), _Codes()
    parts: list[pd.DataFrame] = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
        if keep is not None:
            batch = batch.filter(pc.is_in(batch.column("id").cast(pa.string()), value_set=keep))
        if not batch.num_rows:
            continue
        frame = batch.drop_columns(["id", "user_id"]).to_pandas()
        frame.insert(0, "id", id_codes(batch.column("id")))
        frame.insert(1, "user_id", user_codes(batch.column("user_id")))
        parts.append(frame)
    if parts:
        out = pd.concat(parts, ignore_index=True)
    else:
        out = pq.read_schema(path).empty_table().select(columns).to_pandas()
        out["id"], out["user_id"] = np.zeros(0, np.int32), np.zeros(0, np.int32)
    out["id"] = pd.Categorical.from_codes(out["id"].to_numpy(np.int32), categories=id_codes.categories())
    out["user_id"] = pd.Categorical.from_codes(out["user_id"].to_numpy(np.int32), categories=user_codes.categories())
    return out[columns]


class _Codes:
    """Integer codes for strings seen batch by batch: into a fixed sorted ``vocabulary`` when given,
    else in order of first appearance."""

    def __init__(self, vocabulary: pa.Array | None = None):
        self.vocabulary = vocabulary
        self.seen: dict[str, int] = {}

    def __call__(self, column: pa.Array) -> np.ndarray:
        column = column.cast(pa.string())
        if self.vocabulary is not None:   # a missing (or null) string: -1, pandas' code for a missing value
            return pc.index_in(column, value_set=self.vocabulary).fill_null(-1).to_numpy().astype(np.int32)
        encoded = pc.dictionary_encode(column)
        local = np.array([self.seen.setdefault(v, len(self.seen)) for v in encoded.dictionary.to_pylist()] + [-1], np.int32)
        return local[encoded.indices.fill_null(-1).to_numpy()]   # index -1: the appended missing code

    def categories(self) -> list[str]:
        return self.vocabulary.to_pylist() if self.vocabulary is not None else list(self.seen)


def filter_ratings(ratings: pd.DataFrame, *, drop_anonymous: bool = True,
                   where: str = "ratings") -> tuple[pd.DataFrame, dict]:
    """The rating rows that count, and how many were dropped: rows without an artifact score
    (``artifacts`` null: the export's early-2023 rows, before the question was asked) go first, so
    they are neither counted nor kept as the earliest of a repeated pair in place of a real rating;
    a repeated (user, image) rating then keeps only its earliest row (``created_at`` when present,
    else file order), and with ``drop_anonymous`` the anonymous raters' rows (``kudos == -50``) go.
    Counts: ``rating_rows``, ``null_artifacts``, ``duplicate_ratings``, ``anonymous_ratings`` (after
    de-duplication, dropped or not)."""
    require_columns(ratings.columns, RATING_COLUMNS, where)
    scored = ratings["artifacts"].notna().to_numpy()
    frame = ratings[scored]
    if "created_at" in frame.columns:
        frame = frame.sort_values("created_at", kind="stable")
    frame = frame.drop_duplicates(subset=["user_id", "id"], keep="first")
    anonymous = (frame["kudos"] == ANONYMOUS_KUDOS).to_numpy()
    counts = {"rating_rows": int(len(ratings)), "null_artifacts": int((~scored).sum()),
              "duplicate_ratings": int(scored.sum() - len(frame)),
              "anonymous_ratings": int(anonymous.sum())}
    return (frame[~anonymous] if drop_anonymous else frame), counts


def aggregate_ratings(ratings: pd.DataFrame, min_ratings: int, where: str = "ratings", *,
                      drop_anonymous: bool = True) -> pd.DataFrame:
    """One row per image id: median, mean and count of ``artifacts`` and of ``rating``.

    Filters come first, on the rating rows (:func:`filter_ratings`). Only then are rows grouped by
    image, and images with fewer than ``min_ratings`` non-null artifact ratings are dropped (every
    image needs a trustworthy artifact score).
    """
    frame, _ = filter_ratings(ratings, drop_anonymous=drop_anonymous, where=where)
    return group_ratings(frame, min_ratings)


def group_ratings(frame: pd.DataFrame, min_ratings: int) -> pd.DataFrame:
    """:func:`aggregate_ratings` on rows already filtered."""
    grouped = frame.groupby("id", sort=True, observed=True)
    out = pd.DataFrame({
        "artifacts_median": grouped["artifacts"].median(),
        "artifacts_mean": grouped["artifacts"].mean(),
        "artifacts_count": grouped["artifacts"].count(),
        "rating_median": grouped["rating"].median(),
        "rating_mean": grouped["rating"].mean(),
        "rating_count": grouped["rating"].count(),
    })
    out = out[out["artifacts_count"] >= min_ratings].reset_index()
    if isinstance(out["id"].dtype, pd.CategoricalDtype):   # read_ratings' codes: back to the ids, in id order
        out["id"] = out["id"].astype(out["id"].cat.categories.dtype)
        out = out.sort_values("id", kind="stable", ignore_index=True)
    return out.astype({"artifacts_count": "int64", "rating_count": "int64"})


def parquet_files(path: str | Path) -> list[Path]:
    """A parquet file, or every ``*.parquet`` below a directory (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.rglob("*.parquet"))
        if files:
            return files
        raise DataError(f"{path}: no .parquet files in this directory")
    raise DataError(f"{path}: no such file or directory")


def _image_ids(path: Path, schema: pa.Schema) -> pa.Array:
    """Image ids of one file: an ``image_name`` column if there is one, else the stem of the image
    struct's ``path`` (read alone: the image bytes stay on disk)."""
    if "image_name" in schema.names:
        names = pq.read_table(path, columns=["image_name"]).column(0)
    else:
        image = schema.field("image").type
        if not pa.types.is_struct(image) or image.get_field_index("path") < 0:
            raise DataError(f"{path}: column image has no file name (expected the datasets Image struct "
                            "{bytes, path}, or an image_name column beside it)")
        names = pq.read_table(path, columns=["image.path"]).column(0)
    return pc.replace_substring_regex(names.combine_chunks(), r"^.*/|\.[A-Za-z0-9]+$", "")


@dataclass
class Candidates:
    """Rated, unblurred images of the DiffusionDB files, one row per image, in file order."""

    frame: pd.DataFrame      # id, file, row, sampler, + the aggregated rating columns
    counts: dict             # rows, blurred, unrated, rated; the ratings' rows, duplicates, anonymous


def find_candidates(files: list[Path], ratings_path: str | Path, min_ratings: int, *,
                    drop_anonymous: bool = True) -> Candidates:
    """Join the images' ids with their aggregated ratings; drop blurred and too-rarely rated images
    (the ratings filtered by :func:`filter_ratings`, whose counts join the others).

    Reads only the small columns here (a 1 000-image file is ~550 MB of PNG bytes); image bytes are
    read later, for the sampled rows only."""
    parts = []
    for i, path in enumerate(files):
        schema = pq.read_schema(path)
        require_columns(schema.names, IMAGE_COLUMNS, str(path))
        table = pq.read_table(path, columns=["image_nsfw", "sampler"])
        parts.append(pd.DataFrame({
            "id": _image_ids(path, schema).to_pylist(),
            "file": i,
            "row": np.arange(table.num_rows),
            "image_nsfw": table.column("image_nsfw").to_numpy(zero_copy_only=False),
            "sampler": table.column("sampler").to_pylist(),
        }))
    images = pd.concat(parts, ignore_index=True)
    counts = {"rows": int(len(images))}
    blurred = images["image_nsfw"] == BLURRED_NSFW
    counts["blurred"] = int(blurred.sum())
    images = images[~blurred].drop_duplicates("id")
    kept, rating_counts = filter_ratings(read_ratings(ratings_path, images["id"].tolist()),
                                         drop_anonymous=drop_anonymous, where=str(ratings_path))
    ratings = group_ratings(kept, min_ratings)
    del kept
    joined = images.merge(ratings, on="id", how="inner", validate="one_to_one")
    counts["unrated"] = int(len(images) - len(joined))
    counts["rated"] = int(len(joined))
    counts.update(rating_counts, anonymous_dropped=drop_anonymous)
    joined["sampler"] = [SAMPLERS.get(s, str(s)) if isinstance(s, (int, np.integer)) else str(s) for s in joined["sampler"]]
    return Candidates(frame=joined.drop(columns="image_nsfw").reset_index(drop=True), counts=counts)


def label_names(frame: pd.DataFrame, label: str) -> pd.Series:
    """The classification label of each image: an artifact or rating bucket, or the sampler."""
    if label == "sampler":
        return frame["sampler"].astype(str)
    if label not in BUCKETS:
        raise ValueError(f"label must be one of {LABELS}, got {label!r}")
    column, buckets = BUCKETS[label]
    edges = [lo for _, lo in buckets[1:]]
    index = np.searchsorted(edges, frame[column].to_numpy(float), side="right")
    return pd.Series([buckets[k][0] for k in index], index=frame.index)


def bucket_order(label: str) -> list[str] | None:
    return [name for name, _ in BUCKETS[label][1]] if label in BUCKETS else None


def decode_sample(files: list[Path], candidates: pd.DataFrame, n: int, size: int, rng: np.random.Generator,
                  keep: Callable[[int, np.ndarray], None]) -> tuple[pd.DataFrame, int]:
    """Decode up to ``n`` candidates in a seeded random order, skipping undecodable images, and hand
    each decoded image to ``keep(position, image)`` at once: ``position`` is its place in the seeded
    order, and images arrive file by file, not in that order (each file is read once per pass,
    one row group at a time, so memory holds one row group's bytes and one image).

    Returns the kept candidate rows in the seeded order (sorted by position) and how many images
    failed to decode on the way (a data-quality figure)."""
    order = rng.permutation(len(candidates))
    file_of, row_of = candidates["file"].to_numpy(), candidates["row"].to_numpy()   # no copy of the frame per chunk
    kept, failed = [], 0
    progress = tqdm(total=min(n, len(order)), desc="decode diffusiondb", unit="img", mininterval=2.0)
    # Read in chunks of the permutation so a few failures cost one more small read, not a second pass.
    start = 0
    while len(kept) < n and start < len(order):
        m = min(n - len(kept), len(order) - start)
        positions, picked = np.arange(start, start + m), order[start : start + m]
        start += m
        by_file = np.argsort(file_of[picked], kind="stable")   # file by file, each file's rows in sample order
        for group in np.split(by_file, np.flatnonzero(np.diff(file_of[picked][by_file])) + 1):
            for i, blob in _iter_bytes(files[file_of[picked[group[0]]]], row_of[picked[group]]):
                img = decode_image(blob, size) if blob else None
                if img is None:
                    failed += 1
                    continue
                keep(int(positions[group[i]]), img)
                kept.append(int(positions[group[i]]))
                progress.update(1)
    progress.close()
    kept = np.sort(np.asarray(kept, dtype=np.int64))
    return candidates.iloc[order[kept]].reset_index(drop=True), failed


def sample_images(
    files: list[Path], candidates: pd.DataFrame, n: int, size: int, rng: np.random.Generator,
) -> tuple[np.ndarray, pd.DataFrame, int]:
    """:func:`decode_sample` held in memory: the images (N, size, size, 3 uint8) in the seeded
    order, their candidate rows, and how many images failed to decode."""
    images: dict[int, np.ndarray] = {}
    frame, failed = decode_sample(files, candidates, n, size, rng, images.__setitem__)
    stack = np.stack([images[k] for k in sorted(images)]) if images else np.zeros((0, size, size, 3), np.uint8)
    return stack, frame, failed


def _iter_bytes(path: Path, rows: np.ndarray) -> Iterator[tuple[int, bytes | None]]:
    """``(i, bytes of row rows[i])`` of the image column, read one row group at a time (only the
    row groups holding a requested row)."""
    parquet = pq.ParquetFile(path)
    starts = np.cumsum([0] + [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)])
    groups = np.searchsorted(starts, rows, side="right") - 1
    for g in np.unique(groups):
        index = np.nonzero(groups == g)[0]
        image = parquet.read_row_group(int(g), columns=["image"]).column("image").take(
            pa.array(rows[index] - starts[g])).combine_chunks()
        values = image.field("bytes") if pa.types.is_struct(image.type) else image
        yield from zip(index.tolist(), values.to_pylist())
