"""The four splits every source provides: ``train`` / ``test`` (classification) and
``artifact_train`` / ``artifact_test`` (artifact score 0–5, for the scorer).

* shapes: procedural images; the artifact set is freshly rendered shapes with a known artifact.
* emoji, digits: real offline images; the artifact splits are degraded copies of the *same
  split's* images (artifact_train from train, artifact_test from test), so no test image leaks
  into training through the artifact set.
* diffusiondb: real generations with human ratings; the artifact splits are the classification
  splits themselves, with the median human artifact rating as score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from pipeline.data.artifacts import MAX_SEVERITY, apply_artifact
from pipeline.data.shapes import CLASS_NAMES as SHAPE_NAMES
from pipeline.data.shapes import class_counts, render_shape
from pipeline.data.store import ImageSplitWriter, png_bytes
from pipeline.runtime import release_memory

SPLITS = ("train", "test", "artifact_train", "artifact_test")
META_COLUMNS = ["id", "label", "label_name", "artifact_kind", "severity"]


@dataclass
class Split:
    images: np.ndarray | None   # (N, H, W, 3) uint8, or None when the split is held as ``pngs``
    meta: pd.DataFrame          # META_COLUMNS
    pngs: list[bytes] | None = None   # the images as PNG bytes (pipeline.data.store.png_bytes) instead


def _take_pngs(pngs: list[bytes], meta: pd.DataFrame, idx: np.ndarray) -> Split:
    return Split(None, meta.iloc[idx].reset_index(drop=True), [pngs[i] for i in idx])


@dataclass
class SourceSets:
    splits: dict[str, Split]
    class_names: list[str]
    facts: dict = field(default_factory=dict)   # source-specific counts for the data-quality metrics


def _meta(ids, labels, class_names, kinds="none", severity=0.0) -> pd.DataFrame:
    labels = np.asarray(labels, dtype=int)
    return pd.DataFrame({
        "id": list(ids),
        "label": labels,
        "label_name": [class_names[k] for k in labels],
        "artifact_kind": kinds,
        "severity": np.asarray(severity, dtype=np.float32) if np.ndim(severity) else np.float32(severity),
    })


def take(images: np.ndarray, meta: pd.DataFrame, idx: np.ndarray) -> Split:
    """The rows ``idx`` of an image set as a :class:`Split`."""
    return Split(images[idx], meta.iloc[idx].reset_index(drop=True))


def even_severities(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` integer severities spread evenly over 0..MAX_SEVERITY, shuffled."""
    severity = np.arange(n) % (MAX_SEVERITY + 1)
    rng.shuffle(severity)
    return severity


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    train, test = train_test_split(np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(test)


def shapes_sets(data, seed: int, rng: np.random.Generator) -> SourceSets:
    """The procedural default (``data.n_images`` shapes, classes weighted by ``data.class_weights``).
    Each image is kept as PNG bytes as soon as it is rendered: the 7 000 default images at 256 px are
    115 MB of PNG against 1.4 GB of pixels (the stage's peak 495 MiB; benchmarks/memory_at_scale.py)."""
    names = list(SHAPE_NAMES[: len(data.class_weights)])
    kw = {"texture_prob": data.texture_prob, "distractor_prob": data.distractor_prob,
          "scale_range": tuple(data.scale_range), "position_jitter": data.position_jitter,
          "min_contrast": data.min_contrast}
    labels = np.repeat(np.arange(len(names)), class_counts(data.n_images, data.class_weights))   # generate_shapes' draws
    rng.shuffle(labels)
    pngs = [png_bytes(render_shape(rng, names[k], data.size, **kw))
            for k in tqdm(labels, desc="shapes", mininterval=2.0)]
    meta = _meta([f"shapes-{i:05d}" for i in range(len(labels))], labels, names)
    train, test = stratified_split(labels, data.test_fraction, seed)

    severity = even_severities(data.n_artifact, rng)
    art_labels = rng.integers(0, len(names), size=data.n_artifact)
    kinds = np.where(severity == 0, "none", rng.choice(data.artifact_kinds, size=data.n_artifact))
    art_pngs = []
    for k, kind, sev in tqdm(zip(art_labels, kinds, severity), total=data.n_artifact, desc="artifact set", mininterval=2.0):
        clean = render_shape(rng, names[k], data.size, **kw)
        art_pngs.append(png_bytes(clean if sev == 0 else apply_artifact(clean, str(kind), int(sev), rng)))
    art_meta = _meta([f"artifact-{i:05d}" for i in range(data.n_artifact)], art_labels, names, kinds, severity)
    art_train, art_test = stratified_split(severity, data.artifact_test_fraction, seed)
    return SourceSets(
        splits={
            "train": _take_pngs(pngs, meta, train),
            "test": _take_pngs(pngs, meta, test),
            "artifact_train": _take_pngs(art_pngs, art_meta, art_train),
            "artifact_test": _take_pngs(art_pngs, art_meta, art_test),
        },
        class_names=names,
    )


def degraded_copies(split: Split, n: int, kinds: list[str], rng: np.random.Generator, prefix: str) -> Split:
    """``n`` copies of random images of ``split``, each with one artifact of a random kind at an
    evenly spread severity (0 = the clean image)."""
    pick = rng.integers(0, len(split.images), size=n)
    severity = even_severities(n, rng)
    kind = np.where(severity == 0, "none", rng.choice(kinds, size=n))
    images = np.stack([
        split.images[i] if s == 0 else apply_artifact(split.images[i], str(k), int(s), rng)
        for i, k, s in tqdm(zip(pick, kind, severity), total=n, desc=f"degrade {prefix}", mininterval=2.0)
    ])
    meta = split.meta.iloc[pick].reset_index(drop=True)
    meta = meta.assign(id=[f"{prefix}-{j:05d}-{src}" for j, src in enumerate(meta["id"])],
                       artifact_kind=kind, severity=severity.astype(np.float32))
    return Split(images, meta[META_COLUMNS])


def stratified_subsample(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a stratified subsample of ``n`` items (all of them, sorted, when ``n`` ≥ the total)."""
    if n >= len(labels):
        return np.arange(len(labels))
    keep, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed)
    return np.sort(keep)


def pool_sets(images: np.ndarray, labels: np.ndarray, class_names: list[str], ids: list[str],
              data, seed: int, rng: np.random.Generator) -> SourceSets:
    """Splits of a fixed labelled pool (emoji, digits): at most ``data.n_images`` images (stratified),
    train/test stratified, and the artifact splits degraded from them."""
    keep = stratified_subsample(labels, data.n_images, seed)
    pool = len(labels)
    images, labels, ids = images[keep], labels[keep], [ids[i] for i in keep]
    meta = _meta(ids, labels, class_names)
    train, test = stratified_split(labels, data.test_fraction, seed)
    splits = {"train": take(images, meta, train), "test": take(images, meta, test)}
    n_test = int(round(data.n_artifact * data.artifact_test_fraction))
    for split, n in (("train", data.n_artifact - n_test), ("test", n_test)):
        splits[f"artifact_{split}"] = degraded_copies(splits[split], n, data.artifact_kinds, rng, f"artifact_{split}")
    return SourceSets(splits=splits, class_names=list(class_names),
                      facts={"pool": pool, "used": int(len(keep))})


def drop_rare_classes(names: pd.Series, minimum: int, order: list[str] | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """Keep classes with at least ``minimum`` members: (keep mask, kept class names, dropped names).

    A stratified split needs every class in both splits; a class of one image cannot be."""
    counts = names.value_counts()
    kept = [c for c in (order or sorted(counts.index)) if counts.get(c, 0) >= minimum]
    dropped = sorted(set(counts.index) - set(kept))
    return names.isin(kept).to_numpy(), kept, dropped


@dataclass
class SplitPlan:
    """Which sample rows go to which split, decided from metadata alone (no image is held): split →
    (``rows``, positions in the sample, ascending; ``meta``, their :data:`META_COLUMNS` rows)."""

    splits: dict[str, tuple[np.ndarray, pd.DataFrame]]
    class_names: list[str]
    facts: dict = field(default_factory=dict)


def rated_plan(frame: pd.DataFrame, label_names: pd.Series, class_order: list[str] | None, data, seed: int) -> SplitPlan:
    """Splits of a sample of rated DiffusionDB images (``frame``, in the sample's order): the
    classification label from ``label_names``, the artifact score from the median human rating;
    artifact splits = classification splits."""
    min_count = max(2, int(np.ceil(1.0 / min(data.test_fraction, 1 - data.test_fraction))))
    keep, names, dropped = drop_rare_classes(label_names, min_count, class_order)
    rows = np.flatnonzero(keep)
    frame, label_names = frame[keep].reset_index(drop=True), label_names[keep].reset_index(drop=True)
    labels = np.array([names.index(n) for n in label_names], dtype=int)
    severity = frame["artifacts_median"].to_numpy(np.float32)
    meta = _meta(frame["id"], labels, names, "human", severity)
    train, test = stratified_split(labels, data.test_fraction, seed)
    parts = {"train": (rows[train], meta.iloc[train].reset_index(drop=True)),
             "test": (rows[test], meta.iloc[test].reset_index(drop=True))}
    parts["artifact_train"], parts["artifact_test"] = parts["train"], parts["test"]
    return SplitPlan(splits=parts, class_names=names,
                     facts={"dropped_classes": dropped, "dropped_images": int((~keep).sum())})


def write_planned_splits(directory, plan: SplitPlan, pngs: Iterable[bytes], size: int, *, rows_per_shard: int,
                         batch_rows: int = 256) -> None:
    """Write the four splits of ``plan`` to the image store at ``directory``, streaming: ``pngs`` gives
    the sample's images as PNG bytes in the sample's order (e.g. an
    :class:`~pipeline.data.spool.OrderedSpool`), each goes to the splits that hold its row, and
    memory holds ``batch_rows`` rows per split."""
    total = 1 + max((int(rows.max()) for rows, _ in plan.splits.values() if len(rows)), default=-1)
    where = {}   # split → its row index for each sample row (-1: not in the split): 8 bytes per row and split
    for split, (rows, _) in plan.splits.items():
        where[split] = np.full(total, -1, dtype=np.int64)
        where[split][rows] = np.arange(len(rows))
    writers = {split: ImageSplitWriter(directory, split, plan.class_names, (size, size), rows_per_shard=rows_per_shard)
               for split in SPLITS}
    pending: dict[str, list[tuple[int, bytes]]] = {split: [] for split in SPLITS}

    def flush(split: str) -> None:
        if pending[split]:
            index, blobs = zip(*pending[split])
            writers[split].append(list(blobs), plan.splits[split][1].iloc[list(index)].assign(split=split))
            pending[split] = []

    for row, blob in enumerate(pngs):
        for split, index in where.items():
            i = int(index[row]) if row < total else -1
            if i < 0:
                continue
            pending[split].append((i, blob))
            if len(pending[split]) >= batch_rows:
                flush(split)
        if row % batch_rows == 0:
            release_memory()   # resident memory stays flat however many rows pass
    for split in SPLITS:
        flush(split)
        if writers[split].rows != len(plan.splits[split][0]):
            raise ValueError(f"split {split!r}: {writers[split].rows} images came for {len(plan.splits[split][0])} rows")
        writers[split].close()
