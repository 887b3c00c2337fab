"""bench_latent: the classifier benchmark on latents (scikit-learn models and the attention net).

Every model in ``bench.latent_models`` is trained in every regime of ``bench.regimes`` ×
``bench.methods`` (the attention net in ``bench.torch_regimes``), once per seed (``base.seed`` …
``base.seed + bench.seeds − 1``: the seed draws the synthetic samples, the low-data subsample and
the model's initialisation), and tested on the real test latents. Augmenters are fitted on the
(regime's) training set only, with their ``augment.<method>`` options. The fits run on
``bench.workers`` processes. Writes ``reports/bench_latent/results.csv`` (one row per fit:
balanced accuracy, macro-F1, per-class recall, training size and seconds) and ``attention.png``:
the attention net's class-token attention over test images, per class and for misclassified
ones. Reads ``base``, ``bench``, ``augment``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir
from pipeline.latents.store import read_latent_split
from pipeline.models.bench_tasks import latent_task
from pipeline.models.regimes import regimes, training_set
from pipeline.report.overlays import attention_gallery
from pipeline.runtime import resolve_device, worker_plan
from stages.cli import fail, parse_args
from stages.common import require_same_ids, start

log = logging.getLogger("stages.bench_latent")
SKLEARN_DETERMINISTIC = ("logreg", "rbf_svm", "knn")   # same fit for every seed on the same data


def gallery_indices(y: np.ndarray, pred: np.ndarray, per_class: int) -> tuple[list[int], list[int]]:
    """Up to ``per_class`` correctly classified test images per class, and as many misclassified ones."""
    right = [i for c in np.unique(y) for i in np.flatnonzero((y == c) & (pred == c))[:per_class]]
    wrong = np.flatnonzero(pred != y)[: per_class * len(np.unique(y))].tolist()
    return right, wrong


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--images", default="data/images"),
        p.add_argument("--reports", default="reports/bench_latent"),
    ))
    params = start(args)
    cfg, seed0 = params.bench, params.base.seed
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    images = read_image_split(args.images, "test")
    require_same_ids(images, test, "test", args.images, args.latents)
    names = train.class_names
    y = train.meta["label"].to_numpy()
    augment = {m: params.augment.options(m) for m in cfg.methods}
    flat = train.flat()
    for regime in regimes(list(dict.fromkeys(cfg.regimes + cfg.torch_regimes)), cfg.methods):
        try:   # cheap (one augmenter fit each) and before the pool starts
            training_set(regime, flat, y, seed=seed0, cap=cfg.low_data_per_class, grow=cfg.low_data_grow,
                         options=augment, n_channels=train.shape[0])
        except ValueError as exc:
            fail(f"bench regime {regime.name} (augment.{regime.method}, bench.low_data_per_class="
                 f"{cfg.low_data_per_class}): {exc}")

    workers, threads = worker_plan(cfg.workers)
    common = {"X": train.latents, "y": y, "X_test": test.latents, "y_test": test.meta["label"].to_numpy(),
              "class_names": names, "device": str(resolve_device(params.base.device)),
              "cap": cfg.low_data_per_class, "grow": cfg.low_data_grow,
              "augment": augment}
    tasks, copies = [], {}
    for model in cfg.latent_models:
        kinds = cfg.torch_regimes if model == "attention" else cfg.regimes
        for regime in regimes(kinds, cfg.methods):
            for s in range(cfg.seeds):
                if model in SKLEARN_DETERMINISTIC and regime.name == "real" and s > 0:
                    copies.setdefault((model, regime.name), []).append(seed0 + s)
                    continue
                tasks.append({**common, "model": model, "options": cfg.options(model), "regime": regime, "seed": seed0 + s,
                              "maps": model == "attention" and regime.name == "real" and s == 0,
                              "threads": threads})
    log.info("%d fits (%d models, regimes %s, methods %s, %d seeds) on %d worker(s)", len(tasks),
             len(cfg.latent_models), cfg.regimes, cfg.methods, cfg.seeds, workers)
    outputs = Parallel(n_jobs=workers, backend="loky", verbose=5)(delayed(latent_task)(t) for t in tasks)
    rows = [o["row"] for o in outputs]
    for (model, regime), seeds in copies.items():   # deterministic models: one fit stands for every seed
        first = next(r for r in rows if r["model"] == model and r["regime"] == regime)
        rows += [{**first, "seed": s} for s in seeds]
    results = pd.DataFrame(rows).sort_values(["model", "regime", "seed"], kind="stable")
    for (model, regime), g in results.groupby(["model", "regime"], sort=False):
        log.info("%-10s %-22s balanced accuracy %.3f ± %.3f", model, regime, g["balanced_accuracy"].mean(),
                 g["balanced_accuracy"].std(ddof=0))

    with atomic_dir(args.reports) as tmp:
        results.to_csv(tmp / "results.csv", index=False, float_format="%.6g")
        mapped = next((o for o in outputs if "maps" in o), None)
        if mapped is not None:
            right, wrong = gallery_indices(common["y_test"], mapped["pred"], cfg.gallery_per_class)
            idx = right + wrong
            titles = [f"{names[common['y_test'][i]]}" + ("" if i in right else f" → {names[mapped['pred'][i]]}") for i in idx]
            attention_gallery(images.images[idx], mapped["maps"][idx], titles, tmp / "attention.png",
                              columns=8,
                              title="Attention net (real latents, seed 0): class-token attention; "
                                    "'a → b' = true a, predicted b")


if __name__ == "__main__":
    main()
