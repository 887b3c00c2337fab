"""bench_latent: the classifier benchmark on latents, one model per run (``--model``).

DVC runs it once per model in ``bench.latent_models`` (a ``matrix:`` stage,
``bench_latent@<model>``), so a sweep of one model's options re-runs that model alone. The model
is trained in every regime of its ``bench.<model>.regimes`` × ``bench.methods``, once per seed
(``base.seed`` … ``base.seed + bench.seeds − 1``: the seed draws the synthetic samples, the
low-data subsample and the model's initialisation), and tested on the real test latents.
Augmenters are fitted on the (regime's) training set only, with their ``augment.<method>``
options. The fits run on ``bench.workers`` processes. Writes ``reports/bench_latent/<model>/``:
``results.csv`` (one row per fit: balanced accuracy, macro-F1, per-class recall, training size
and seconds), ``predictions.parquet`` (every fit's test predictions, for the bootstrap intervals
of the ``bench`` stage) and, for the attention net, ``attention.png``: its class-token attention
over test images, per class and for misclassified ones. Reads ``base``, ``bench``, ``augment``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import read_latent_split
from pipeline.models.bench import predictions_frame
from pipeline.models.bench_tasks import latent_task
from pipeline.models.regimes import regimes, training_set
from pipeline.report.overlays import attention_gallery
from pipeline.runtime import resolve_device, worker_plan
from stages.cli import fail, parse_args
from stages.common import require_same_ids, start
from stages.config import LATENT_MODELS

log = logging.getLogger("stages.bench_latent")
SKLEARN_DETERMINISTIC = ("logreg", "rbf_svm", "knn")   # same fit for every seed on the same data


def gallery_indices(y: np.ndarray, pred: np.ndarray, per_class: int) -> tuple[list[int], list[int]]:
    """Up to ``per_class`` correctly classified test images per class, and as many misclassified ones."""
    right = [i for c in np.unique(y) for i in np.flatnonzero((y == c) & (pred == c))[:per_class]]
    wrong = np.flatnonzero(pred != y)[: per_class * len(np.unique(y))].tolist()
    return right, wrong


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--model", required=True, choices=LATENT_MODELS),
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--images", default="data/images"),
        p.add_argument("--reports", default=None, help="output directory (default: reports/bench_latent/<model>)"),
    ))
    params = start(args)
    cfg, seed0, model = params.bench, params.base.seed, args.model
    kinds = cfg.regimes(model)
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    images = read_image_split(args.images, "test")
    require_same_ids(images, test, "test", args.images, args.latents)
    names = train.class_names
    y = train.meta["label"].to_numpy()
    augment = {m: params.augment.options(m) for m in cfg.methods}
    flat = train.flat()
    planned, idle = [], []
    for regime in regimes(kinds, cfg.methods):
        try:   # cheap (one augmenter fit each) and before the pool starts
            _, y_fit = training_set(regime, flat, y, seed=seed0, cap=cfg.low_data_per_class, grow=cfg.low_data_grow,
                                    options=augment, n_channels=train.shape[0])
        except ValueError as exc:
            fail(f"bench regime {regime.name} (augment.{regime.method}, bench.low_data_per_class="
                 f"{cfg.low_data_per_class}): {exc}")
        if regime.method and regime.base == "real" and len(y_fit) == len(y):
            idle.append(regime.name)   # balanced classes: the over-sampler has nothing to add
        else:
            planned.append(regime)
    if idle:
        log.info("%s: no samples needed, skipped: %s", model, ", ".join(idle))
    if not planned:
        fail(f"bench.{model}.regimes {kinds}: every regime was skipped (no samples needed on balanced classes); "
             "add real or low_data")

    workers, threads = worker_plan(cfg.workers)
    common = {"X": train.latents, "y": y, "X_test": test.latents, "y_test": test.meta["label"].to_numpy(),
              "class_names": names, "device": str(resolve_device(params.base.device)),
              "cap": cfg.low_data_per_class, "grow": cfg.low_data_grow,
              "augment": augment}
    tasks, copies = [], {}
    for regime in planned:
        for s in range(cfg.seeds):
            if model in SKLEARN_DETERMINISTIC and regime.name == "real" and s > 0:
                copies.setdefault(regime.name, []).append(seed0 + s)
                continue
            tasks.append({**common, "model": model, "options": cfg.options(model), "regime": regime, "seed": seed0 + s,
                          "maps": model == "attention" and regime.name == "real" and s == 0, "threads": threads})
    log.info("%s: %d fits (regimes %s, methods %s, %d seeds) on %d worker(s)", model, len(tasks), kinds, cfg.methods,
             cfg.seeds, workers)
    outputs = Parallel(n_jobs=min(workers, len(tasks)), backend="loky", verbose=5)(delayed(latent_task)(t) for t in tasks)
    rows, preds = [o["row"] for o in outputs], [o["pred"] for o in outputs]
    for regime, seeds in copies.items():   # deterministic models: one fit stands for every seed
        i = next(k for k, r in enumerate(rows) if r["regime"] == regime)
        rows += [{**rows[i], "seed": s} for s in seeds]
        preds += [preds[i]] * len(seeds)
    order = pd.DataFrame(rows).sort_values(["model", "regime", "seed"], kind="stable").index
    results = pd.DataFrame(rows).loc[order]
    predictions = predictions_frame([rows[i] for i in order], [preds[i] for i in order])
    for (_, regime), g in results.groupby(["model", "regime"], sort=False):
        log.info("%-10s %-22s balanced accuracy %.3f ± %.3f", model, regime, g["balanced_accuracy"].mean(),
                 g["balanced_accuracy"].std(ddof=0))

    with atomic_dir(args.reports or f"reports/bench_latent/{model}") as tmp:
        results.to_csv(tmp / "results.csv", index=False, float_format="%.6g")
        predictions.to_parquet(tmp / "predictions.parquet", index=False)
        write_json(tmp / "skipped.json", {"no_samples_needed": idle})
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
