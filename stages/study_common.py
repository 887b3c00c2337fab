"""What the study's fit stages share (``stages.study``, ``stages.study_baselines``): the data, each model's
recipe, the tasks of a list of methods, and writing a method's fits."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.io import atomic_dir
from pipeline.latents.store import read_latent_split
from pipeline.runtime import resolve_device, worker_plan
from pipeline.study.cells import minority_class, parse_cells
from pipeline.study.fits import StudyData, StudyTask, study_fits
from stages.cli import fail
from stages.common import extra_stages

log = logging.getLogger("stages.study")


def run_methods(params, latents: str, methods: list[str], augment: dict, *, cas: bool, out: str) -> None:
    """Every cell × seed of ``methods`` (``augment``: the method's options, empty for the baselines) on the
    latents of ``latents``; writes ``fits.csv``, ``predictions.parquet`` and ``fidelity.csv`` to ``out``."""
    cfg, seed0 = params.study, params.base.seed
    train, test = read_latent_split(latents, "train"), read_latent_split(latents, "test")
    side = train.shape[-1]
    options = {m: dict(cfg.recipes[m]) for m in cfg.models}
    if "latent_cnn" in options:
        options["latent_cnn"]["extra"] = extra_stages(params, side, pixels=False)   # striding stages for the side
    if "attention" in options:   # the same token grid at every side (pipeline.recipes)
        from pipeline.recipes import Geometry

        geo = Geometry.of(int(side), None, follow=params.base.recipes == "geometry")
        options["attention"]["patch"] = geo.patch(options["attention"]["patch"])
    y, names = train.meta["label"].to_numpy(), train.class_names
    if len(np.unique(y)) < 2:
        fail(f"{latents}: the train split has one class; the study compares classifiers")
    from pipeline.metrics.fidelity import PCAFrechet

    data = StudyData(train.latents, y, test.latents, test.meta["label"].to_numpy(), names, minority_class(y),
                     PCAFrechet(cfg.components, random_state=seed0).fit(train.latents.reshape(len(y), -1)))
    cells = parse_cells(cfg.shots, cfg.imbalance)
    device = str(resolve_device(params.base.device))
    tasks = [StudyTask(cell, m, seed0 + s, tuple(cfg.models), options, augment, cfg.fill, cfg.cas_model if cas else None,
                       device=device) for cell in cells for m in methods for s in range(cfg.seeds)]
    workers, _ = worker_plan(cfg.workers)
    log.info("%s: %d cells × %d seeds × %s on %d worker(s); minority class %s", "/".join(methods), len(cells), cfg.seeds,
             ", ".join(cfg.models), workers, names[data.minority])
    frame, predictions, fidelity = study_fits(data, tasks, workers)
    for (m, model), g in frame[frame["kind"] == "fit"].groupby(["method", "model"], sort=False):
        good = g[g["status"] == "ok"]
        log.info("%-22s %-10s balanced accuracy %.3f over %d fits (%d not applicable)", m, model,
                 good["balanced_accuracy"].mean() if len(good) else float("nan"), len(good), len(g) - len(good))
    with atomic_dir(Path(out)) as tmp:
        frame.to_csv(tmp / "fits.csv", index=False, float_format="%.6g")
        predictions.to_parquet(tmp / "predictions.parquet", index=False)
        fidelity.to_csv(tmp / "fidelity.csv", index=False, float_format="%.6g")
