"""guide: metric-guided sampling — classifier, discriminator and out-of-distribution guidance.

Fits three guiding models on the *train* latents only and saves them to ``models/guide`` as
safetensors + json (``pipeline.generate.guidance``, ``pipeline.generate.ood``):

- ``classifier/``: a noise-aware latent classifier (the timestep-conditioned CNN, one logit per
  class, trained on train latents in random ``guide.symmetry`` views noised to uniform
  timesteps): classifier guidance;
- ``discriminator/``: a noise-aware real-vs-generated discriminator (train latents against
  ``guide.generated`` unguided samples of ``models/unet``): discriminator guidance (Kim et al.);
- ``ood/``: a Mahalanobis model (Ledoit–Wolf covariance of the train latents): first evaluated as a
  detector (AUROC, FPR at 95 % TPR) of held-out real *test* latents against fresh unguided samples,
  pixel-corrupted images (the artifact test set at severity ≥ 3) and another dataset's latents
  (``guide.ood_other``, encoded by the same VAE); then, through its noise-aware Gaussian score, a
  guidance term toward in-distribution latents.

The guiding models are fitted on the train latents less a validation split
(``guide.validation.fraction``, stratified). Each guidance's operating scale is chosen there: for
``guide.validation.seeds`` validation seeds (disjoint from the reported ones, each with its own
judge), every candidate of ``guide.scales`` is drawn and graded against the validation latents, and
the scale best on the guidance's aim (``pipeline.generate.guided.AIMS``) among those within the
realism budget (``guide.validation.max_frechet_ratio`` × unguided Fréchet) is taken. Then, for
``guide.seeds`` reported seeds, ``guide.samples_per_class`` samples per class (each asking for a
class, classes in turn) are drawn from the same noise by ``guide.sampler`` in ``guide.steps``
steps: unguided, each guidance at its chosen scale, and all three together (``combined``), graded
against the test latents; the test split chooses nothing. Classifier guidance
averages the classifier over ``guide.symmetry`` and, with ``guide.normalise``, scales each
sample's gradient to unit RMS (its scales are then the ε shift per step). Each set is graded by
models that never guide: an independent classifier (the ``bench.latent_cnn`` recipe, trained on
real train latents per seed) for the requested class, the sample metrics of the ``diffusion``
stage against real test latents (Fréchet, precision, recall, density, coverage, copy ratio) and
a nearest-neighbour out-of-distribution rate (``far_fraction``). Each kind at its operating
point is compared with unguided sampling, paired by seed, one Holm family (``pipeline.metrics.verdicts``).
Writes ``models/guide`` and ``reports/guide``. Reads ``base``, ``guide``, ``diffusion.components``,
``diffusion.k``, ``bench.latent_cnn``, ``vae.dtype``, ``vae.tiling``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.data.store import read_image_split
from pipeline.generate.evaluate import METRICS, SampleReference
from pipeline.generate.judge import independent_judge
from pipeline.generate.guidance import (
    noise_aware_classifier,
    noise_aware_discriminator,
    save_guide_model,
    train_noise_aware,
)
from pipeline.generate.guided import (
    AIMS,
    GUIDES,
    KINDS,
    GuidingModels,
    guidance_study,
    sample,
    select_scales,
    sweep_points,
)
from pipeline.generate.ood import MahalanobisOOD, detector_metrics, roc_points
from pipeline.generate.sampling import starting_noise
from pipeline.generate.study import paired_verdicts, summarise
from pipeline.io import atomic_dir, write_json
from pipeline.latents.analysis import decode_to_images
from pipeline.latents.store import read_latent_split
from pipeline.latents.vae import encode_images, images_to_tensor
from pipeline.report.figures import image_grid, save_png
from pipeline.report.guidance import guidance_curves, roc_chart
from pipeline.runtime import resolve_device
from pipeline.validation import chosen_by, validation_seeds, validation_split
from stages.cli import fail, parse_args, stage_main
from stages.common import extra_stages, follow_geometry, require_same_ids, start
from stages.live import log_curves
from stages.unet_open import open_diffusion
from stages.vae_open import open_vae

log = logging.getLogger("stages.guide")

STUDY_METRICS = ("class_accuracy", *METRICS, "far_fraction")   # timings: table.csv only
HIGHER_IS_BETTER = {"class_accuracy": True, "frechet": False, "precision": True, "recall": True, "density": True,
                    "coverage": True, "far_fraction": False}
SEVERE = 3.0   # artifact severity counted as a corrupted image


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--images", default="data/images"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--unet", default="models/unet"),
        p.add_argument("--out", default="models/guide"),
        p.add_argument("--reports", default="reports/guide"),
    ))
    params = start(args)
    cfg, seed = params.guide, params.base.seed
    device = resolve_device(params.base.device)
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    params = follow_geometry(params, train.shape)   # recipes scaled to the latent side (pipeline.recipes)
    cfg = params.guide
    names = train.class_names
    n = cfg.samples_per_class * len(names)
    if n > min(len(train.latents), len(test.latents)):
        fail(f"guide.samples_per_class × {len(names)} classes = {n} samples exceed the {len(train.latents)} train or "
             f"{len(test.latents)} test latents they are compared with ({args.latents})")
    if n < params.diffusion.k + 2:
        fail(f"guide.samples_per_class × {len(names)} classes = {n} samples: the k-NN metrics need at least "
             f"diffusion.k + 2 = {params.diffusion.k + 2}; raise guide.samples_per_class")
    corrupted = read_latent_split(args.latents, "artifact_test")
    images = read_image_split(args.images, "test")
    require_same_ids(images, test, "test", args.images, args.latents)
    vae = open_vae(params, args.vae, images.images.shape[1], (train.shape, args.latents))
    model = open_diffusion(params, args.unet, train.shape, args.latents)
    X_all, y_all = train.latents, train.meta["label"].to_numpy()
    fit_idx, val_idx = validation_split(y_all, cfg.validation.fraction, seed)
    if len(val_idx) < n:
        fail(f"guide.validation.fraction {cfg.validation.fraction:g} holds out {len(val_idx)} train latents, fewer than "
             f"the {n} samples per set it must be compared with: raise it or lower guide.samples_per_class")
    X, y = X_all[fit_idx], y_all[fit_idx]      # guiding models and validation judges never see the validation latents

    # guiding models: train split less the validation latents
    common = {"batch_size": cfg.batch_size, "lr": cfg.lr, "device": device}
    torch.manual_seed(seed)
    classifier = noise_aware_classifier(train.shape, len(names), cfg.channels, cfg.t_dim)
    clf_loss = train_noise_aware(classifier, X, y, steps=cfg.classifier_steps, seed=seed, augment=cfg.symmetry, **common)
    fake = sample(model, None, starting_noise(cfg.generated, train.shape, seed + 10_000), sampler=cfg.sampler,
                  steps=cfg.steps, seed=seed + 10_000)
    discriminator = noise_aware_discriminator(train.shape, cfg.channels, cfg.t_dim)
    disc_loss = train_noise_aware(discriminator, np.concatenate([X, fake]), np.r_[np.ones(len(X)), np.zeros(len(fake))],
                                  steps=cfg.discriminator_steps, seed=seed + 1, **common)
    ood = MahalanobisOOD().fit(X)
    models = GuidingModels(classifier.eval(), discriminator.eval(), ood, cfg.symmetry, cfg.normalise)

    # the OOD model as a detector: held-out real test latents against three other sets
    m = min(cfg.ood_images, len(test.latents))
    rng = np.random.default_rng(seed)
    other_images = _other_dataset(cfg.ood_other, m, images.images.shape[1], rng)
    sf = vae.config.scaling_factor
    out_sets = {
        "generated (unguided U-Net)": sample(model, None, starting_noise(m, train.shape, seed + 20_000),
                                             sampler=cfg.sampler, steps=cfg.steps, seed=seed + 20_000),
        f"corrupted (artifact severity ≥ {SEVERE:g})": _severe(corrupted, m, rng),
        f"another dataset ({cfg.ood_other})": encode_images(vae, images_to_tensor(other_images), scaling_factor=sf,
                                                           desc=f"encode {cfg.ood_other}").numpy(),
    }
    held_out = test.latents[rng.choice(len(test.latents), m, replace=False)]
    in_scores = ood.score(held_out)
    out_scores = {name: ood.score(z) for name, z in out_sets.items()}
    detector = {name: detector_metrics(in_scores, sc) for name, sc in out_scores.items()}
    rocs = pd.concat([roc_points(in_scores, sc).assign(against=name) for name, sc in out_scores.items()])

    # guided sampling, graded by models that never guide: first the candidate scales on the validation split
    # (validation latents as the real reference, validation seeds and judges), which choose each operating scale;
    # then only the chosen points on the test split, with the reported seeds and judges
    study = {"model": model, "models": models, "n_classes": len(names), "sampler": cfg.sampler, "steps": cfg.steps}
    val_seeds, test_seeds = validation_seeds(seed, cfg.validation.seeds), [seed + i for i in range(cfg.seeds)]
    val_reference = SampleReference(X, X_all[val_idx], n=n, components=params.diffusion.components,
                                    k=params.diffusion.k, seed=seed)
    sweep = cfg.scales.model_dump()
    bar = tqdm(total=len(val_seeds) * len(sweep_points(sweep, None)) + len(test_seeds) * len(KINDS),
               desc="guided sampling", unit="set")
    val_rows = _graded(val_seeds, val_reference, X, y, X_all[val_idx], y_all[val_idx], params, device, study,
                       sweep=sweep, operating=None, progress=bar.update)[0]
    operating = select_scales(val_rows, cfg.validation.max_frechet_ratio)
    reference = SampleReference(X_all, test.latents, n=n, components=params.diffusion.components, k=params.diffusion.k,
                                seed=seed)
    rows, first = _graded(test_seeds, reference, X_all, y_all, test.latents, test.meta["label"].to_numpy(), params,
                          device, study, sweep={}, operating=operating, progress=bar.update)
    bar.close()
    table = summarise(rows, ["kind", "scale"], (*STUDY_METRICS, "judge_test_accuracy", "seconds_per_sample"))
    val_table = summarise(val_rows, ["kind", "scale"], (*STUDY_METRICS, "judge_test_accuracy"))
    choice = chosen_by("each guidance's operating scale", "; ".join(
        f"{g}: {'highest' if up else 'lowest'} seed-mean {m} among {', '.join(f'{v:g}' for v in sweep[g])}"
        for g, (m, up) in AIMS.items()) + f", each among the scales whose Fréchet distance is at most "
        f"{cfg.validation.max_frechet_ratio:g} × unguided's", len(val_idx), val_seeds)
    metrics = _metrics(rows, table, val_table, reference, val_reference, detector, cfg, len(names), operating, choice)

    with atomic_dir(args.out) as out, atomic_dir(args.reports) as rep:
        save_guide_model(out / "classifier", classifier, {
            "class_names": list(names), "trained_on": f"train latents less the validation split ({cfg.symmetry} views)",
            "guidance": {"symmetry": cfg.symmetry, "normalise": cfg.normalise, "scale": operating["classifier"],
                         "chosen_by": choice}})
        save_guide_model(out / "discriminator", discriminator,
                         {"real": "train latents", "generated": f"{cfg.generated} unguided {cfg.sampler} samples"})
        ood.save(out / "ood")
        rows.to_csv(rep / "runs.csv", index=False, float_format="%.6g")
        table.to_csv(rep / "table.csv", index=False, float_format="%.6g")
        val_rows.to_csv(rep / "validation_runs.csv", index=False, float_format="%.6g")
        val_table.to_csv(rep / "validation_table.csv", index=False, float_format="%.6g")
        rocs.to_csv(rep / "roc.csv", index=False, float_format="%.6g")
        pd.DataFrame({"step": range(1, len(clf_loss) + 1), "classifier": clf_loss,
                      "discriminator": np.interp(np.linspace(0, 1, len(clf_loss)), np.linspace(0, 1, len(disc_loss)),
                                                 disc_loss)}).to_csv(rep / "loss.csv", index=False, float_format="%.6g")
        log_curves(rep, {"guide/classifier_loss": clf_loss, "guide/discriminator_loss": disc_loss})
        write_json(rep / "metrics.json", metrics)
        guidance_curves(val_table, metrics["validation"]["baselines"], rep / "curves.png", prior=1.0 / len(names),
                        title=f"Guidance-scale sweep on the validation split ({cfg.sampler}, {cfg.steps} steps, {n} samples "
                              f"× {cfg.validation.seeds} validation seeds): it chose {_scales(operating)}")
        roc_chart(rocs, rep / "ood_roc.png", title="Mahalanobis OOD detector: held-out real test latents vs …")
        save_png(image_grid(_gallery(first, vae, len(names), cfg.gallery_per_class)), rep / "gallery.png")
    for _, r in table.iterrows():
        log.info("%-13s scale %-5g class accuracy %.3f ± %.3f, Fréchet %.1f, recall %.2f, far %.2f", r["kind"], r["scale"],
                 r["class_accuracy_mean"], r["class_accuracy_std"], r["frechet_mean"], r["recall_mean"],
                 r["far_fraction_mean"])


def _other_dataset(source: str, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` images of another dataset at ``size`` px (digits: sklearn's, coloured; shapes: the procedural set)."""
    if source == "digits":
        from pipeline.data.digits import load_colour_digits

        # the same draws as rendering every digit and then choosing, but only the chosen are rendered
        return load_colour_digits(size, rng, pick=lambda total: rng.choice(total, min(n, total), replace=False))[0]
    from pipeline.data.shapes import generate_shapes

    return generate_shapes(n, [1.0] * 6, size, rng)[0]


def _severe(artifacts, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` artifact-set latents whose images carry severity ≥ SEVERE."""
    idx = np.flatnonzero(artifacts.meta["severity"].to_numpy(float) >= SEVERE)
    if not len(idx):
        fail(f"no artifact test image has severity ≥ {SEVERE:g}: nothing to test the OOD detector on")
    return artifacts.latents[np.sort(rng.choice(idx, min(n, len(idx)), replace=False))]


def _gallery(finals: dict, vae, n_classes: int, per_class: int) -> list[np.ndarray]:
    """One row per guidance kind at its operating point: ``per_class`` samples of each requested class."""
    want = finals["requested"]
    pick = np.concatenate([np.flatnonzero(want == c)[:per_class] for c in range(n_classes)])
    return [decode_to_images(vae, finals["samples"][k][pick]) for k in KINDS if k in finals["samples"]]


def _graded(seeds: list[int], reference: SampleReference, X: np.ndarray, y: np.ndarray, X_judged: np.ndarray,
            y_judged: np.ndarray, params, device, study: dict, *, sweep: dict, operating: dict | None, progress):
    """Guided sets for each of ``seeds``, graded against ``reference`` by a judge per seed (trained on
    ``X``, ``y`` with that seed; its accuracy measured on ``X_judged``): the rows and the first seed's samples."""
    rows, first = [], None
    for s in seeds:
        judge, judge_acc = independent_judge(X, y, X_judged, y_judged, study["n_classes"], params.bench.latent_cnn,
                                             seed=s, device=device, extra=extra_stages(params, X.shape[-1], pixels=False))
        seed_rows, finals = guidance_study(study["model"], reference, study["models"], judge, n_classes=study["n_classes"],
                                           sweep=sweep, operating=operating, sampler=study["sampler"],
                                           steps=study["steps"], seed=s, progress=progress)
        rows.append(seed_rows.assign(judge_test_accuracy=judge_acc))
        first = first or finals
    return pd.concat(rows, ignore_index=True), first


def _scales(scales: dict) -> str:
    return ", ".join(f"{g} {v:g}" for g, v in scales.items())


def _metrics(rows: pd.DataFrame, table: pd.DataFrame, val_table: pd.DataFrame, reference: SampleReference,
             val_reference: SampleReference, detector: dict, cfg, n_classes: int, operating: dict, choice: dict) -> dict:
    out = {"sampler": cfg.sampler, "steps": cfg.steps, "samples": cfg.samples_per_class * n_classes, "seeds": cfg.seeds,
           "class_prior": 1.0 / n_classes, "operating": operating, "chosen_by": choice,
           "classifier_guidance": {"symmetry": cfg.symmetry, "normalise": cfg.normalise}, "ood_detector": detector}
    scales = {"unguided": 0.0, "combined": 1.0, **operating}
    at = {k: table[(table["kind"] == k) & (table["scale"] == float(scales[k]))].iloc[0] for k in KINDS}
    out["kinds"] = {k: {m: {"mean": r[f"{m}_mean"], "std": r[f"{m}_std"]} for m in STUDY_METRICS} for k, r in at.items()}
    out["judge_test_accuracy"] = {"mean": float(table["judge_test_accuracy_mean"].iloc[0]),
                                  "std": float(table["judge_test_accuracy_std"].iloc[0])}
    out["baselines"] = _baselines(reference)
    shown = ("class_accuracy", "frechet", "recall", "far_fraction")
    out["validation"] = {
        "seeds": cfg.validation.seeds, "fraction": cfg.validation.fraction, "baselines": _baselines(val_reference),
        "sweep": {g: {f"{r['scale']:g}": {m: r[f"{m}_mean"] for m in shown}
                      for _, r in val_table[val_table["kind"] == g].iterrows()} for g in GUIDES},
        "unguided": {m: float(val_table.loc[val_table["kind"] == "unguided", f"{m}_mean"].iloc[0]) for m in shown}}
    key = rows["kind"] + "@" + rows["scale"].map("{:g}".format)
    wide = rows.assign(point=key).pivot(index="seed", columns="point")
    out["vs_unguided"] = paired_verdicts(wide, {k: (f"{k}@{scales[k]:g}", "unguided@0") for k in KINDS if k != "unguided"},
                                         HIGHER_IS_BETTER)
    return out


def _baselines(reference: SampleReference) -> dict:
    base = reference.baselines(0)
    return {k: {m: base[k][m] for m in METRICS} for k in base}


if __name__ == "__main__":
    main()
