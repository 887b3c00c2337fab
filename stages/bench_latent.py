"""bench_latent: the classifier benchmark on latents, one model per run (``--model``).

DVC runs it once per model in ``bench.latent_models`` (a ``matrix:`` stage,
``bench_latent@<model>``), so a sweep of one model's options re-runs that model alone. The model
is trained in every regime of its ``bench.<model>.regimes`` × ``bench.methods``, once per seed
(``base.seed`` … ``base.seed + bench.seeds − 1``: the seed draws the synthetic samples, the
low-data subsample and the model's initialisation), and tested on the real test latents
(:mod:`pipeline.classify.latent_bench`). Augmenters are fitted on the (regime's) training set
only, with their ``augment.<method>`` options. The generated methods (``class_guided``,
``guided_interpolation``: latents the diffusion U-Net of ``models/unet`` makes, with the classifier
of ``models/guide``) join only the regime kinds of ``bench.generated_regimes``. The fits run on ``bench.workers`` processes.
Writes ``reports/bench_latent/<model>/``: ``results.csv`` (one row per fit: balanced accuracy,
macro-F1, per-class recall, training size and seconds), ``predictions.parquet`` (every fit's test
predictions, for the bootstrap intervals of the ``bench`` stage), ``skipped.json`` and, for the
attention net, ``attention.png``: its class-token attention over test images, per class and for
misclassified ones. Reads ``base``, ``bench``, ``augment``.
"""

from __future__ import annotations

import logging

from pipeline.classify.latent_bench import RegimeError, gallery_indices, plan_regimes, run_model
from pipeline.classify.tasks import LabelledSplits
from pipeline.data.store import read_image_split
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import read_latent_split
from pipeline.report.overlays import attention_gallery
from pipeline.runtime import resolve_device, worker_plan
from stages.cli import fail, parse_args, stage_main
from stages.common import extra_stages, follow_geometry, require_same_ids, start
from stages.live import log_curves
from stages.config import LATENT_MODELS

log = logging.getLogger("stages.bench_latent")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--model", required=True, choices=LATENT_MODELS),
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--images", default="data/images"),
        p.add_argument("--unet", default="models/unet", help="the diffusion model of the generated methods"),
        p.add_argument("--guide", default="models/guide", help="the guiding models (class_guided: its classifier)"),
        p.add_argument("--reports", default=None, help="output directory (default: reports/bench_latent/<model>)"),
    ))
    params = start(args)
    cfg, seed0, model = params.bench, params.base.seed, args.model
    kinds = cfg.regimes(model)
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    params = follow_geometry(params, train.shape)   # recipes scaled to the latent side (pipeline.recipes)
    cfg = params.bench
    images = read_image_split(args.images, "test")
    require_same_ids(images, test, "test", args.images, args.latents)
    names = train.class_names
    data = LabelledSplits(train.latents, train.meta["label"].to_numpy(), test.latents, test.meta["label"].to_numpy(), names)
    augment = {m: params.augment.options(m) for m in cfg.methods}
    generated = {"class_guided": {"unet": args.unet, "classifier": f"{args.guide}/classifier"},
                 "guided_interpolation": {"unet": args.unet}}
    for m in set(generated) & set(augment):
        augment[m] = {**augment[m], **generated[m]}
    try:
        planned, idle = plan_regimes(kinds, cfg.methods, data.y, seed=seed0, cap=cfg.low_data_per_class,
                                     grow=cfg.low_data_grow, augment=augment, n_channels=train.shape[0],
                                     generated_kinds=cfg.generated_regimes)
    except (FileNotFoundError, OSError) as exc:   # a generated method without its saved models
        fail(str(exc))
    except RegimeError as exc:
        fail(f"bench regime {exc.regime.name} (augment.{exc.regime.method}, bench.low_data_per_class="
             f"{cfg.low_data_per_class}): {exc}")
    if idle:
        log.info("%s: no samples needed, skipped: %s", model, ", ".join(idle))
    if not planned:
        fail(f"bench.{model}.regimes {kinds}: every regime was skipped (no samples needed on balanced classes); "
             "add real or low_data")

    workers, _ = worker_plan(cfg.workers)
    options = {**cfg.options(model), **({"extra": extra_stages(params, train.shape[-1], pixels=False)}
                                        if model == "latent_cnn" else {})}
    out = run_model(model, options, planned, data, seeds=[seed0 + s for s in range(cfg.seeds)],
                    cap=cfg.low_data_per_class, grow=cfg.low_data_grow, augment=augment, workers=workers,
                    device=str(resolve_device(params.base.device)))
    for (_, regime), g in out.results.groupby(["model", "regime"], sort=False):
        log.info("%-10s %-22s balanced accuracy %.3f ± %.3f", model, regime, g["balanced_accuracy"].mean(),
                 g["balanced_accuracy"].std(ddof=0))

    with atomic_dir(args.reports or f"reports/bench_latent/{model}") as tmp:
        out.results.to_csv(tmp / "results.csv", index=False, float_format="%.6g")
        out.predictions.to_parquet(tmp / "predictions.parquet", index=False)
        write_json(tmp / "skipped.json", {"no_samples_needed": idle})
        if out.losses:   # the nets' learning curves (scikit-learn models have none)
            log_curves(tmp, {f"{model}/{k}": v for k, v in out.losses.items()})
        if out.maps is not None:
            right, wrong = gallery_indices(data.y_test, out.map_pred, cfg.gallery_per_class)
            idx = right + wrong
            titles = [f"{names[data.y_test[i]]}" + ("" if i in right else f" → {names[out.map_pred[i]]}") for i in idx]
            attention_gallery(images.images[idx], out.maps[idx], titles, tmp / "attention.png", columns=8,
                              title="Attention net (real latents, seed 0): class-token attention; "
                                    "'a → b' = true a, predicted b")


if __name__ == "__main__":
    main()
