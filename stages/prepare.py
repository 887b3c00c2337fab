"""prepare: generate the labelled image set and the artifact set as parquet shards.

Writes ``data/images/{train,test,artifact_train,artifact_test}-*.parquet`` and
``reports/prepare/metrics.json`` (counts per split and class). Reads params ``base``, ``data``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from pipeline.data.artifacts import MAX_SEVERITY, apply_artifact
from pipeline.data.shapes import CLASS_NAMES, class_counts, generate_shapes, render_shape
from pipeline.data.store import write_image_split
from pipeline.io import atomic_dir, write_json
from stages.cli import fail, parse_args
from stages.common import start

log = logging.getLogger("stages.prepare")


def _check_feasible(data) -> None:
    counts = class_counts(data.n_images, data.class_weights)
    n_test = np.floor(counts * data.test_fraction)
    if (counts < 2).any() or (n_test < 1).any() or (counts - n_test < 1).any():
        fail(
            f"data.n_images={data.n_images} with data.class_weights={data.class_weights} and "
            f"data.test_fraction={data.test_fraction} gives per-class counts {counts.tolist()}: every class "
            "needs at least one training and one test image; raise data.n_images"
        )
    if data.n_artifact * data.artifact_test_fraction < MAX_SEVERITY + 1:
        fail(f"data.n_artifact={data.n_artifact} is too small: the artifact test split needs every severity 0..{MAX_SEVERITY}")


def make_classification_set(data, rng) -> tuple[np.ndarray, pd.DataFrame]:
    kw = {"texture_prob": data.texture_prob, "distractor_prob": data.distractor_prob}
    images, labels = generate_shapes(data.n_images, data.class_weights, data.size, rng, **kw)
    meta = pd.DataFrame({
        "id": [f"shapes-{i:05d}" for i in range(len(labels))],
        "label": labels,
        "label_name": [CLASS_NAMES[k] for k in labels],
        "artifact_kind": "none",
        "severity": 0,
    })
    return images, meta


def make_artifact_set(data, rng) -> tuple[np.ndarray, pd.DataFrame]:
    """Severities spread evenly over 0..5; each degraded image has one artifact of a random kind."""
    n_classes = len(data.class_weights)
    severity = np.arange(data.n_artifact) % (MAX_SEVERITY + 1)
    rng.shuffle(severity)
    labels = rng.integers(0, n_classes, size=data.n_artifact)
    kinds = np.where(severity == 0, "none", rng.choice(data.artifact_kinds, size=data.n_artifact))
    images = []
    for k, kind, sev in tqdm(zip(labels, kinds, severity), total=data.n_artifact, desc="artifact set", mininterval=2.0):
        clean = render_shape(rng, CLASS_NAMES[k], data.size, texture_prob=data.texture_prob, distractor_prob=data.distractor_prob)
        images.append(clean if sev == 0 else apply_artifact(clean, str(kind), int(sev), rng))
    meta = pd.DataFrame({
        "id": [f"artifact-{i:05d}" for i in range(data.n_artifact)],
        "label": labels,
        "label_name": [CLASS_NAMES[k] for k in labels],
        "artifact_kind": kinds,
        "severity": severity,
    })
    return np.stack(images), meta


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--out", default="data/images", help="image shard directory (default: %(default)s)"),
        p.add_argument("--metrics", default="reports/prepare/metrics.json"),
    ))
    params = start(args, torch=False)
    data, seed = params.data, params.base.seed
    _check_feasible(data)
    rng = np.random.default_rng(seed)
    class_names = list(CLASS_NAMES[: len(data.class_weights)])

    log.info("rendering %d shape images at %d px", data.n_images, data.size)
    images, meta = make_classification_set(data, rng)
    train_idx, test_idx = train_test_split(
        np.arange(len(meta)), test_size=data.test_fraction, stratify=meta["label"], random_state=seed
    )
    log.info("rendering %d artifact images", data.n_artifact)
    art_images, art_meta = make_artifact_set(data, rng)
    art_train, art_test = train_test_split(
        np.arange(len(art_meta)), test_size=data.artifact_test_fraction, stratify=art_meta["severity"], random_state=seed
    )

    splits = {
        "train": (images, meta, np.sort(train_idx)),
        "test": (images, meta, np.sort(test_idx)),
        "artifact_train": (art_images, art_meta, np.sort(art_train)),
        "artifact_test": (art_images, art_meta, np.sort(art_test)),
    }
    metrics = {}
    with atomic_dir(args.out) as tmp:
        for split, (imgs, frame, idx) in splits.items():
            part = frame.iloc[idx].assign(split=split)
            write_image_split(tmp, split, imgs[idx], part, class_names, rows_per_shard=data.rows_per_shard)
            metrics[split] = {"n": int(len(idx)), **{n: int((part["label_name"] == n).sum()) for n in class_names}}
            if split.startswith("artifact"):
                metrics[split]["severity"] = {str(s): int((part["severity"] == s).sum()) for s in range(MAX_SEVERITY + 1)}
    write_json(args.metrics, metrics)
    log.info("wrote %s", ", ".join(f"{s}: {m['n']}" for s, m in metrics.items()))


if __name__ == "__main__":
    main()
