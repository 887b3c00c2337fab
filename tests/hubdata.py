"""Small DiffusionDB and AI-Horde ratings files in the exact schema of the Hub's files, made by tests."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

# The columns of DiffusionDB's parquet conversion (image = the datasets Image struct).
DIFFUSIONDB_SCHEMA = pa.schema([
    ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
    ("prompt", pa.string()), ("seed", pa.uint32()), ("step", pa.uint16()), ("cfg", pa.float32()),
    ("sampler", pa.string()), ("width", pa.uint16()), ("height", pa.uint16()), ("user_name", pa.string()),
    ("timestamp", pa.timestamp("us", tz="UTC")), ("image_nsfw", pa.float32()), ("prompt_nsfw", pa.float32()),
])
# diffusiondb_export.parquet of Haidra-Org/AI-Horde-Ratings: one row per rating.
RATINGS_SCHEMA = pa.schema([
    ("id", pa.string()), ("ratings_count", pa.int64()), ("rating", pa.int64()), ("kudos", pa.int64()),
    ("account_age", pa.int64()), ("usage_requests", pa.int64()), ("created_at", pa.timestamp("us")),
    ("client_agent", pa.string()), ("artifacts", pa.float64()), ("user_id", pa.string()), ("trusted", pa.bool_()),
    ("validated", pa.bool_()), ("captchas_failed", pa.int64()), ("country", pa.string()),
])
SAMPLER_NAMES = ["k_lms", "k_euler", "k_euler_ancestral", "ddim", "plms"]


def _png(rng: np.random.Generator, w: int, h: int) -> bytes:
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 255, size=3)
    img = (base + 60 * np.sin(xx[..., None] / rng.uniform(3, 9)) + 40 * np.cos(yy[..., None] / rng.uniform(3, 9)))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def image_id(i: int) -> str:
    return f"{i:08x}-0000-4000-8000-{i:012x}"


def diffusiondb_table(n: int, rng: np.random.Generator, *, blurred=(), corrupt=(), start: int = 0) -> pa.Table:
    """``n`` generations of non-square sizes; rows in ``blurred`` have image_nsfw 2.0, rows in
    ``corrupt`` carry bytes no decoder accepts."""
    sizes = [(48, 64), (64, 48), (56, 56), (40, 72)]
    rows = {name: [] for name in DIFFUSIONDB_SCHEMA.names}
    for k in range(n):
        i = start + k
        w, h = sizes[i % len(sizes)]
        data = b"\x89PNG\r\n\x1a\nnot really a png" if k in corrupt else _png(rng, w, h)
        rows["image"].append({"bytes": data, "path": f"{image_id(i)}.png"})
        rows["prompt"].append(f"a test prompt {i}")
        rows["seed"].append(int(rng.integers(0, 2**32 - 1)))
        rows["step"].append(50)
        rows["cfg"].append(7.0)
        rows["sampler"].append(SAMPLER_NAMES[i % len(SAMPLER_NAMES)])
        rows["width"].append(w * 8)
        rows["height"].append(h * 8)
        rows["user_name"].append(f"user{i % 7}")
        rows["timestamp"].append(datetime(2022, 8, 10, 12, tzinfo=timezone.utc) + timedelta(seconds=i))
        rows["image_nsfw"].append(2.0 if k in blurred else float(rng.uniform(0, 0.5)))
        rows["prompt_nsfw"].append(float(rng.uniform(0, 0.5)))
    return pa.Table.from_pydict(rows, schema=DIFFUSIONDB_SCHEMA)


def ratings_table(records: list[dict]) -> pa.Table:
    """Rating rows from ``records`` (keys id, user_id, artifacts, rating, kudos; others filled in)."""
    cols = {name: [] for name in RATINGS_SCHEMA.names}
    for j, r in enumerate(records):
        full = {"ratings_count": 10, "kudos": 5, "account_age": 1000, "usage_requests": 50,
                "created_at": datetime(2023, 1, 1) + timedelta(minutes=j),
                "client_agent": "test:1", "trusted": True, "validated": True, "captchas_failed": 0,
                "country": "NL", "rating": 5, **r}
        for name in cols:
            cols[name].append(full[name])
    return pa.Table.from_pydict(cols, schema=RATINGS_SCHEMA)


def rated_records(ids: list[str], rng: np.random.Generator, per_image: int = 4) -> list[dict]:
    """``per_image`` clean ratings per image with artifacts spread over 0..5. Every fifth image also has,
    first, a row whose ``artifacts`` is null from its first rater (as the real export's early-2023 rows):
    it must count neither as a rating nor as that user's earliest rating of the image."""
    out = []
    for k, i in enumerate(ids):
        centre = k % 6
        if k % 5 == 4:
            out.append({"id": i, "user_id": "u0", "artifacts": None, "rating": int(rng.integers(1, 11))})
        for u in range(per_image):
            out.append({"id": i, "user_id": f"u{u}", "artifacts": float(np.clip(centre + rng.integers(-1, 2), 0, 5)),
                        "rating": int(rng.integers(1, 11))})
    return out


def write_diffusiondb_repo(root: Path, tables: list[pa.Table], ratings: pa.Table, config: str = "2m_random_1k") -> None:
    """Both datasets in the Hub's layout under ``root`` (``tests/hubserver.LocalHub``'s root)."""
    images = root / "datasets" / "poloclub" / "diffusiondb" / config / "train"
    images.mkdir(parents=True, exist_ok=True)
    for k, table in enumerate(tables):
        pq.write_table(table, images / f"{k:04d}.parquet")
    ratings_dir = root / "datasets" / "Haidra-Org" / "AI-Horde-Ratings"
    ratings_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(ratings, ratings_dir / "diffusiondb_export.parquet")
