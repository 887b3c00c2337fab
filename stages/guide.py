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

Then, for ``guide.seeds`` seeds, ``guide.samples_per_class`` samples per class (each asking for a
class, classes in turn) are drawn from the same noise by ``guide.sampler`` in ``guide.steps``
steps: unguided, each guidance at every scale of ``guide.scales`` and at its ``guide.operating``
scale, and all three together at the operating scales (``combined``). Classifier guidance
averages the classifier over ``guide.symmetry`` and, with ``guide.normalise``, scales each
sample's gradient to unit RMS (its scales are then the ε shift per step). Each set is graded by
models that never guide: an independent classifier (the ``bench.latent_cnn`` recipe, trained on
real train latents per seed) for the requested class, the sample metrics of the ``diffusion``
stage against real test latents (Fréchet, precision, recall, density, coverage, copy ratio) and
a nearest-neighbour out-of-distribution rate (``far_fraction``). Each kind at its operating
point is compared with unguided sampling, paired by seed, with 95 % intervals and a verdict.
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
from pipeline.generate.guided import GUIDES, KINDS, GuidingModels, guidance_study, sample, sweep_points
from pipeline.generate.ood import MahalanobisOOD, detector_metrics, roc_points
from pipeline.generate.sampling import starting_noise
from pipeline.generate.study import paired_verdict, summarise
from pipeline.io import atomic_dir, write_json
from pipeline.latents.analysis import decode_to_images
from pipeline.latents.store import read_latent_split
from pipeline.latents.vae import encode_images, images_to_tensor
from pipeline.report.figures import image_grid, save_png
from pipeline.report.guidance import guidance_curves, roc_chart
from pipeline.runtime import resolve_device
from stages.cli import fail, parse_args, stage_main
from stages.common import require_same_ids, start
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
    names = train.class_names
    n = cfg.samples_per_class * len(names)
    if n > min(len(train.latents), len(test.latents)):
        fail(f"guide.samples_per_class × {len(names)} classes = {n} samples exceed the {len(train.latents)} train or "
             f"{len(test.latents)} test latents they are compared with ({args.latents})")
    corrupted = read_latent_split(args.latents, "artifact_test")
    images = read_image_split(args.images, "test")
    require_same_ids(images, test, "test", args.images, args.latents)
    vae = open_vae(params, args.vae, images.images.shape[1], (train.shape, args.latents))
    model = open_diffusion(params, args.unet, train.shape, args.latents)
    X, y = train.latents, train.meta["label"].to_numpy()

    # guiding models: train split only
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

    # guided sampling, graded by models that never guide
    reference = SampleReference(X, test.latents, n=n, components=params.diffusion.components, k=params.diffusion.k,
                                seed=seed)
    points = sweep_points(cfg.scales.model_dump(), cfg.operating.model_dump())
    rows, first = [], None
    bar = tqdm(total=cfg.seeds * len(points), desc="guided sampling", unit="set")
    for s in [seed + i for i in range(cfg.seeds)]:
        judge, judge_acc = independent_judge(X, y, test.latents, test.meta["label"].to_numpy(), len(names),
                                             params.bench.latent_cnn, seed=s, device=device)
        seed_rows, finals = guidance_study(model, reference, models, judge, n_classes=len(names),
                                           sweep=cfg.scales.model_dump(), operating=cfg.operating.model_dump(),
                                           sampler=cfg.sampler, steps=cfg.steps, seed=s, progress=bar.update)
        rows.append(seed_rows.assign(judge_test_accuracy=judge_acc))
        first = first or finals
    bar.close()
    rows = pd.concat(rows, ignore_index=True)
    table = summarise(rows, ["kind", "scale"], (*STUDY_METRICS, "judge_test_accuracy", "seconds_per_sample"))
    metrics = _metrics(rows, table, reference, detector, cfg, len(names))

    with atomic_dir(args.out) as out, atomic_dir(args.reports) as rep:
        save_guide_model(out / "classifier", classifier, {"class_names": list(names),
                                                          "trained_on": f"train latents ({cfg.symmetry} views)",
                                                          "guidance": {"symmetry": cfg.symmetry, "normalise": cfg.normalise}})
        save_guide_model(out / "discriminator", discriminator,
                         {"real": "train latents", "generated": f"{cfg.generated} unguided {cfg.sampler} samples"})
        ood.save(out / "ood")
        rows.to_csv(rep / "runs.csv", index=False, float_format="%.6g")
        table.to_csv(rep / "table.csv", index=False, float_format="%.6g")
        rocs.to_csv(rep / "roc.csv", index=False, float_format="%.6g")
        pd.DataFrame({"step": range(1, len(clf_loss) + 1), "classifier": clf_loss,
                      "discriminator": np.interp(np.linspace(0, 1, len(clf_loss)), np.linspace(0, 1, len(disc_loss)),
                                                 disc_loss)}).to_csv(rep / "loss.csv", index=False, float_format="%.6g")
        log_curves(rep, {"guide/classifier_loss": clf_loss, "guide/discriminator_loss": disc_loss})
        write_json(rep / "metrics.json", metrics)
        guidance_curves(table, metrics["baselines"], rep / "curves.png", prior=1.0 / len(names),
                        title=f"Guidance-scale sweep ({cfg.sampler}, {cfg.steps} steps, {n} samples × {cfg.seeds} seeds)")
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

        images = load_colour_digits(size, rng)[0]
        return images[rng.choice(len(images), min(n, len(images)), replace=False)]
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


def _metrics(rows: pd.DataFrame, table: pd.DataFrame, reference: SampleReference, detector: dict, cfg,
             n_classes: int) -> dict:
    out = {"sampler": cfg.sampler, "steps": cfg.steps, "samples": cfg.samples_per_class * n_classes, "seeds": cfg.seeds,
           "class_prior": 1.0 / n_classes, "operating": cfg.operating.model_dump(),
           "classifier_guidance": {"symmetry": cfg.symmetry, "normalise": cfg.normalise}, "ood_detector": detector}
    operating = {"unguided": 0.0, "combined": 1.0, **cfg.operating.model_dump()}
    at = {k: table[(table["kind"] == k) & (table["scale"] == float(operating[k]))].iloc[0] for k in KINDS}
    out["kinds"] = {k: {m: {"mean": r[f"{m}_mean"], "std": r[f"{m}_std"]} for m in STUDY_METRICS} for k, r in at.items()}
    out["sweep"] = {g: {f"{r['scale']:g}": {m: r[f"{m}_mean"] for m in ("class_accuracy", "frechet", "recall")}
                        for _, r in table[table["kind"] == g].iterrows()} for g in GUIDES}
    out["judge_test_accuracy"] = {"mean": float(table["judge_test_accuracy_mean"].iloc[0]),
                                  "std": float(table["judge_test_accuracy_std"].iloc[0])}
    base = reference.baselines(0)
    out["baselines"] = {k: {m: base[k][m] for m in METRICS} for k in base}
    key = rows["kind"] + "@" + rows["scale"].map("{:g}".format)
    wide = rows.assign(point=key).pivot(index="seed", columns="point")
    free = "unguided@0"
    out["vs_unguided"] = {
        k: {m: paired_verdict(wide[m][f"{k}@{operating[k]:g}"].to_numpy(), wide[m][free].to_numpy(), better)
            for m, better in HIGHER_IS_BETTER.items()} for k in KINDS if k != "unguided"}
    return out


if __name__ == "__main__":
    main()
