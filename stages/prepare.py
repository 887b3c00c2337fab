"""prepare: the labelled image set and the artifact set of ``data.source``, as parquet shards.

Sources: ``shapes`` (procedural, the offline default), ``emoji`` (Noto Color Emoji, 9 Unicode
groups), ``digits`` (scikit-learn's digits in colour) and ``diffusiondb`` (DiffusionDB images
with aggregated AI-Horde artifact ratings, from the Hugging Face Hub or ``data.path``).
Writes ``data/images/{train,test,artifact_train,artifact_test}-*.parquet`` and
``reports/prepare/metrics.json`` (counts per split and class, data quality), plus
``reports/prepare/labels.csv`` (per-image ratings) for diffusiondb. Reads params ``base``, ``data``.

DiffusionDB streams: images are decoded one parquet row group at a time, wait as PNG bytes in an
on-disk spool (``pipeline.data.spool``) beside the outputs while the splits are planned from the
ratings alone, and are written split by split in the seeded sample's order, so memory does not grow
with ``data.n_images`` (``benchmarks/encode_memory.py --stages prepare``). The built-in sources
render or load their sets in memory; shapes keeps each image as PNG bytes as soon as it is rendered.
"""

from __future__ import annotations

import os

# Arrow on the C heap, which pipeline.runtime.release_memory trims: prepare moves every image's bytes
# through Arrow, and its bundled mimalloc kept a larger working set (benchmarks/encode_memory.py:
# 420 MiB at 40 000 DiffusionDB images, against 315 MiB). Set before pyarrow loads; the environment wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import logging  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import pipeline.data.diffusiondb as ddb  # noqa: E402
from pipeline.data.artifacts import MAX_SEVERITY  # noqa: E402
from pipeline.data.hub import HubFileError, RetryPolicy, hub_file, hub_files, snapshot_commit  # noqa: E402
from pipeline.data.shapes import class_counts  # noqa: E402
from pipeline.data.sources import SPLITS, SourceSets, SplitPlan, pool_sets, rated_plan, shapes_sets, write_planned_splits  # noqa: E402
from pipeline.data.spool import OrderedSpool  # noqa: E402
from pipeline.data.store import ImageSplitWriter, png_bytes, write_image_split  # noqa: E402
from pipeline.io import atomic_dir, atomic_file, write_json  # noqa: E402
from pipeline.runtime import release_memory  # noqa: E402
from stages.cli import fail, parse_args, stage_main  # noqa: E402
from stages.common import start  # noqa: E402

log = logging.getLogger("stages.prepare")
SPOOL_BUCKET_BYTES = 16 * 2**20   # decoded pixels per spool bucket: memory while the sample is put in order
SPOOL_HELD_BYTES = 16 * 2**20     # PNG bytes the spool holds before it spills them to disk


def _check_feasible(data) -> None:
    if data.source == "shapes":
        counts = class_counts(data.n_images, data.class_weights)
        n_test = np.floor(counts * data.test_fraction)
        if (counts < 2).any() or (n_test < 1).any() or (counts - n_test < 1).any():
            fail(
                f"data.n_images={data.n_images} with data.class_weights={data.class_weights} and "
                f"data.test_fraction={data.test_fraction} gives per-class counts {counts.tolist()}: every class "
                "needs at least one training and one test image; raise data.n_images"
            )
    smaller = min(data.artifact_test_fraction, 1 - data.artifact_test_fraction)
    if data.source != "diffusiondb" and data.n_artifact * smaller < MAX_SEVERITY + 1:
        fail(f"data.n_artifact={data.n_artifact} is too small: both artifact splits need every severity 0..{MAX_SEVERITY}")


def diffusiondb_files(data) -> tuple[list, object]:
    """The DiffusionDB parquet files and the ratings file: local copies if given, else the Hub (or its cache)
    at ``data.revision`` / ``data.ratings_revision``."""
    retry = RetryPolicy.from_env(os.environ)   # LATENT_LAB_HUB_ATTEMPTS, LATENT_LAB_HUB_BACKOFF
    if data.path:
        files = ddb.parquet_files(data.path)
    else:
        hint = ("Download it where you have internet (or copy the Hugging Face cache), or set data.path to a local "
                "parquet file or directory in the same schema.")
        files = hub_files(ddb.DIFFUSIONDB_REPO, f"{data.hub_config}/train/*.parquet", revision=data.revision, hint=hint,
                          retry=retry)
    if data.ratings_path:
        ratings = ddb.parquet_files(data.ratings_path)[0]
    else:
        hint = "Download it where you have internet, or set data.ratings_path to a local copy of the file."
        ratings = hub_file(ddb.RATINGS_REPO, ddb.RATINGS_FILE, revision=data.ratings_revision, hint=hint, retry=retry)
    return files, ratings


def diffusiondb_plan(data, seed: int, rng, spool: OrderedSpool) -> tuple[SplitPlan, pd.DataFrame]:
    """Sample and decode DiffusionDB images into ``spool`` (PNG bytes keyed by their place in the
    seeded sample) and plan the splits from the sample's ratings: no image is held in memory."""
    files, ratings = diffusiondb_files(data)
    log.info("DiffusionDB: %d parquet file(s); ratings %s", len(files), ratings)
    cand = ddb.find_candidates(files, ratings, data.min_ratings, drop_anonymous=data.drop_anonymous)
    release_memory()   # the ratings export was read whole: its pages go back before the images come
    log.info("%d rows, %d blurred, %d without >= %d artifact ratings, %d candidates",
             cand.counts["rows"], cand.counts["blurred"], cand.counts["unrated"], data.min_ratings, cand.counts["rated"])
    if cand.counts["rated"] == 0:
        fail(f"no image of {files[0]}{' …' if len(files) > 1 else ''} has >= data.min_ratings={data.min_ratings} "
             f"artifact ratings in {ratings} after dropping duplicates"
             f"{' and anonymous raters (kudos == -50; data.drop_anonymous)' if data.drop_anonymous else ''}")
    frame, failed = ddb.decode_sample(files, cand.frame, data.n_images, data.size, rng,
                                      lambda position, image: spool.add(position, png_bytes(image)))
    attempted = len(frame) + failed
    bad = failed / max(attempted, 1)
    if bad > data.max_bad_fraction:
        fail(f"{failed} of {attempted} sampled DiffusionDB images could not be decoded ({bad:.1%} > "
             f"data.max_bad_fraction={data.max_bad_fraction}); check the files in {files[0].parent}")
    if len(frame) < data.n_images:
        log.warning("only %d usable rated images (data.n_images=%d)", len(frame), data.n_images)
    plan = rated_plan(frame, ddb.label_names(frame, data.label), ddb.bucket_order(data.label), data, seed)
    if len(plan.class_names) < 2:
        fail(f"data.label={data.label}: fewer than two classes with enough images among {len(frame)} (dropped "
             f"{plan.facts['dropped_classes']}); raise data.n_images or pick another label")
    plan.facts.update(cand.counts, min_ratings=data.min_ratings, decode_failed=failed, decode_attempted=attempted,
                      bad_fraction=bad, used=len(frame))
    # what was read, so a run can be pinned to it: the requested revision and the commit the Hub served
    # (None for a local copy, data.path / data.ratings_path)
    plan.facts["revisions"] = {
        "diffusiondb": {"requested": "" if data.path else data.revision, "commit": snapshot_commit(files[0]),
                        "local": str(data.path) if data.path else None},
        "ratings": {"requested": "" if data.ratings_path else data.ratings_revision, "commit": snapshot_commit(ratings),
                    "local": str(data.ratings_path) if data.ratings_path else None}}
    return plan, frame


def load_sets(data, seed: int) -> SourceSets:
    """The in-memory sources (rendered or small): every image of every split."""
    rng = np.random.default_rng(seed)
    if data.source == "shapes":
        log.info("rendering %d shape images and %d artifact images at %d px", data.n_images, data.n_artifact, data.size)
        return shapes_sets(data, seed, rng)
    if data.source == "emoji":
        from pipeline.data.emoji import EmojiUnavailable, render_emoji_set

        try:
            images, labels, groups, names, skipped = render_emoji_set(data.size)
        except EmojiUnavailable as exc:
            fail(f"data.source emoji: {exc}")
        ids = [f"emoji-{i:04d}-{n.replace(' ', '_')}" for i, n in enumerate(names)]
        sets = pool_sets(images, labels, groups, ids, data, seed, rng)
        sets.facts["no_glyph"] = skipped
        return sets
    if data.source == "digits":
        from pipeline.data.digits import load_colour_digits

        images, labels, names = load_colour_digits(data.size, rng)
        return pool_sets(images, labels, names, [f"digits-{i:04d}" for i in range(len(labels))], data, seed, rng)


def split_metrics(split: str, meta: pd.DataFrame, class_names: list[str]) -> dict:
    out = {"n": int(len(meta)), **{n: int((meta["label_name"] == n).sum()) for n in class_names}}
    if split.startswith("artifact"):
        bins = np.clip(np.floor(meta["severity"].to_numpy(float)), 0, MAX_SEVERITY).astype(int)
        out["severity"] = {str(s): int((bins == s).sum()) for s in range(MAX_SEVERITY + 1)}
    return out


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--out", default="data/images", help="image shard directory (default: %(default)s)"),
        p.add_argument("--reports", default="reports/prepare"),
    ))
    params = start(args, torch=False)
    data, seed = params.data, params.base.seed
    _check_feasible(data)
    labels = None
    Path(args.out).resolve().parent.mkdir(parents=True, exist_ok=True)
    # DiffusionDB streams: decoded images wait on disk, beside the outputs, until the splits are planned
    with tempfile.TemporaryDirectory(prefix=f".prepare-spool.{os.getpid()}-", suffix=".tmp",   # swept if killed
                                     dir=Path(args.out).resolve().parent) as spool_dir, \
            atomic_dir(args.out) as tmp:
        try:
            if data.source == "diffusiondb":
                spool = OrderedSpool(spool_dir, bucket_rows=max(16, SPOOL_BUCKET_BYTES // (3 * data.size ** 2)),
                                     max_bytes=SPOOL_HELD_BYTES)
                plan, labels = diffusiondb_plan(data, seed, np.random.default_rng(seed), spool)
            else:
                sets = load_sets(data, seed)
        except (ddb.DataError, HubFileError) as exc:  # missing file or column, Hub unreachable: named in the message
            fail(f"data.source {data.source}: {exc}")
        if data.source == "diffusiondb":
            write_planned_splits(tmp, plan, (blob for _, blob in spool), data.size, rows_per_shard=data.rows_per_shard)
            class_names, facts, metas = plan.class_names, plan.facts, {s: m for s, (_, m) in plan.splits.items()}
        else:
            for split in SPLITS:
                part = sets.splits[split]
                if part.pngs is not None:   # shapes: kept as PNG bytes as rendered; one append = write_image_split's files
                    with ImageSplitWriter(tmp, split, sets.class_names, (data.size, data.size),
                                          rows_per_shard=data.rows_per_shard) as writer:
                        writer.append(part.pngs, part.meta.assign(split=split))
                else:
                    write_image_split(tmp, split, part.images, part.meta.assign(split=split), sets.class_names,
                                      rows_per_shard=data.rows_per_shard)
            class_names, facts, metas = sets.class_names, sets.facts, {s: p.meta for s, p in sets.splits.items()}
    metrics = {"source": data.source, "label": data.label, "classes": class_names, "quality": facts,
               "splits": {split: split_metrics(split, metas[split], class_names) for split in SPLITS}}
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)
        if labels is not None:
            with atomic_file(tmp / "labels.csv") as fh:
                labels.drop(columns=["file", "row"]).to_csv(fh, index=False, float_format="%.6g")
    log.info("wrote %s", ", ".join(f"{s}: {m['n']}" for s, m in metrics["splits"].items()))


if __name__ == "__main__":
    main()
