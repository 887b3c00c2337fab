"""bench_pixels: CNNs on pixels, trained on the original images and on their VAE reconstructions.

Each family in ``bench.pixel_models`` (vgg, resnet, mobilenet) is trained for every input in
``bench.pixel_inputs`` (``pixels``: the original training images; ``reconstructed``: the same
images decoded from their train latents by the VAE in ``models/vae``), once per seed (on ``bench.workers``
processes), and tested on the *original* test images: does training on what the VAE keeps cost accuracy? Writes
``reports/bench_pixels/results.csv`` and ``predictions.parquet`` (every fit's test predictions). Reads ``base``, ``bench``, ``vae.dtype``, ``vae.tiling``.
"""

from __future__ import annotations

import logging

import pandas as pd
from joblib import Parallel, delayed

from pipeline.classify.results import predictions_frame
from pipeline.classify.tasks import LabelledSplits, PixelFit, run_pixel_fit
from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir
from pipeline.latents.store import read_latent_split
from pipeline.runtime import resolve_device, task_threads, worker_plan
from stages.cli import parse_args, stage_main
from stages.common import extra_stages, require_same_ids, start
from stages.live import log_curves

log = logging.getLogger("stages.bench_pixels")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--images", default="data/images"),
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--reports", default="reports/bench_pixels"),
    ))
    params = start(args)
    cfg, seed0 = params.bench, params.base.seed
    train, test = read_image_split(args.images, "train"), read_image_split(args.images, "test")
    latents = read_latent_split(args.latents, "train")
    require_same_ids(train, latents, "train", args.images, args.latents)
    inputs = {"pixels": train.images}
    if "reconstructed" in cfg.pixel_inputs:   # diffusers (seconds to import) only when a VAE is needed
        import torch

        from pipeline.latents.vae import decode_to_uint8
        from stages.vae_open import open_vae

        vae = open_vae(params, args.vae, train.images.shape[1], (latents.shape, args.latents))
        z = torch.as_tensor(latents.latents, dtype=torch.float32)
        inputs["reconstructed"] = decode_to_uint8(vae, z, desc="decode train")   # uint8 batch by batch
    workers, _ = worker_plan(cfg.workers)
    device = str(resolve_device(params.base.device))
    y, y_test = train.meta["label"].to_numpy(), test.meta["label"].to_numpy()
    grid = [(model, input_, seed0 + s) for model in cfg.pixel_models for input_ in cfg.pixel_inputs for s in range(cfg.seeds)]
    extra = extra_stages(params, train.images.shape[1], pixels=True)   # stages for images larger than 32 px
    tasks = [PixelFit(model, {**cfg.options(model), "extra": extra}, input_, seed,
                      LabelledSplits(inputs[input_], y, test.images, y_test, train.class_names), threads, device)
             for (model, input_, seed), threads in zip(grid, task_threads(len(grid), workers))]
    log.info("%d CNN fits on %d worker(s)", len(tasks), workers)
    outputs = Parallel(n_jobs=workers, backend="loky", verbose=5)(delayed(run_pixel_fit)(t) for t in tasks)
    rows = [o.row for o in outputs]
    for (model, input_), g in pd.DataFrame(rows).groupby(["model", "input"], sort=False):
        log.info("%-10s %-13s balanced accuracy %.3f ± %.3f (%.1f s per fit)", model, input_,
                 g["balanced_accuracy"].mean(), g["balanced_accuracy"].std(ddof=0), g["train_seconds"].mean())
    with atomic_dir(args.reports) as tmp:
        pd.DataFrame(rows).to_csv(tmp / "results.csv", index=False, float_format="%.6g")
        predictions_frame(rows, [o.pred for o in outputs]).to_parquet(tmp / "predictions.parquet", index=False)
        log_curves(tmp, {f"{r['model']}/{r['input']}/seed{r['seed']}": o.losses for r, o in zip(rows, outputs)})


if __name__ == "__main__":
    main()
