"""interpolate: sample-guided generation between same-class training latents, against naive interpolation.

For ``interpolate.pairs`` same-class pairs of *train* latents per seed (classes in turn), every
method of ``pipeline.generate.interpolate`` builds the path at ``interpolate.points`` interior λ
values: naive ``lerp`` and ``slerp``; ``noise_slerp`` (DDIM inversion of both ends with the
``models/unet`` U-Net, slerp of the noises, deterministic DDIM denoising, ``interpolate.steps``
steps); ``guided`` (the same with x̂₀ guidance toward the λ-target, ``interpolate.metric``, at the
strength of ``interpolate.strengths`` that keeps the class best on a validation split carved from
train, with validation pairs, seeds and judges: ``interpolate.validation``). The interior points are judged by an *independent* classifier — the
benchmark's latent CNN (``bench.latent_cnn`` recipe) trained on the real train latents other than
the seed's pairs' ends (a judge never sees what a method starts from), one per seed, never used to
guide — for class kept; measured against real test latents for realism and novelty
(``pipeline.generate.evaluate``); their decoded paths for smoothness. Guided vs slerp and vs
noise_slerp get paired differences over seeds, one Holm family (``pipeline.metrics.verdicts``). Writes
``reports/interpolate``. Reads ``base``, ``interpolate``, ``diffusion.components``,
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
from pipeline.generate.interpolate import METHODS, same_class_pairs
from pipeline.generate.study import interpolation_study, paired_verdicts, summarise
from pipeline.io import atomic_dir, write_json
from pipeline.latents.analysis import decode_to_images
from pipeline.latents.store import read_latent_split
from pipeline.report.figures import image_grid, save_png
from pipeline.runtime import resolve_device
from pipeline.validation import chosen_by, validation_seeds, validation_split
from stages.cli import fail, parse_args, stage_main
from stages.common import extra_stages, follow_geometry, require_same_ids, start
from stages.unet_open import open_diffusion
from stages.vae_open import open_vae

log = logging.getLogger("stages.interpolate")

PATH_METRICS = ("class_kept", *METRICS, "end_error", "jump_ratio", "length_ratio")   # timings: table.csv only
HIGHER_IS_BETTER = {"class_kept": True, "frechet": False, "precision": True, "density": True, "recall": True,
                    "coverage": True, "copy_ratio": True, "jump_ratio": False}


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--images", default="data/images"),
        p.add_argument("--vae", default="models/vae"),
        p.add_argument("--unet", default="models/unet"),
        p.add_argument("--reports", default="reports/interpolate"),
    ))
    params = start(args)
    cfg, judge_cfg, seed = params.interpolate, params.bench.latent_cnn, params.base.seed
    device = resolve_device(params.base.device)
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    params = follow_geometry(params, train.shape)   # recipes scaled to the latent side (pipeline.recipes)
    judge_extra = extra_stages(params, train.shape[-1], pixels=False)
    n_inner = cfg.pairs * cfg.points
    if n_inner > len(test.latents):
        fail(f"interpolate.pairs × interpolate.points = {n_inner} interior samples exceed the {len(test.latents)} "
             f"test latents they are compared with ({args.latents})")
    images = read_image_split(args.images, "test")
    require_same_ids(images, test, "test", args.images, args.latents)
    vae = open_vae(params, args.vae, images.images.shape[1], (train.shape, args.latents))
    model = open_diffusion(params, args.unet, train.shape, args.latents)

    X, y, names = train.latents, train.meta["label"].to_numpy(), train.class_names
    if not any((y == k).sum() >= 2 for k in np.unique(y)):
        fail(f"{args.latents}: no class has two training latents to interpolate between")
    reference = SampleReference(X, test.latents, n=n_inner, components=params.diffusion.components,
                                k=params.diffusion.k, seed=seed)
    sf = vae.config.scaling_factor

    def decode(z: torch.Tensor) -> torch.Tensor:   # differentiable: the pixels metric's gradient
        return vae.decode(z.to(vae.device, vae.dtype) / sf).sample.float()

    # the strength is chosen on the validation split (pairs from the rest of train, validation latents as the
    # real reference, validation seeds and judges); the test split and the reported seeds only report
    fit_idx, val_idx = validation_split(y, cfg.validation.fraction, seed)
    n_val = cfg.validation.pairs * cfg.points
    if n_val > len(val_idx):
        fail(f"interpolate.validation.pairs × interpolate.points = {n_val} exceed the {len(val_idx)} validation latents "
             f"(interpolate.validation.fraction {cfg.validation.fraction:g})")
    val_reference = SampleReference(X[fit_idx], X[val_idx], n=n_val, components=params.diffusion.components,
                                    k=params.diffusion.k, seed=seed)
    val_seeds = validation_seeds(seed, cfg.validation.seeds)
    common = {"decode_images": lambda z: decode_to_images(vae, z), "points": cfg.points, "steps": cfg.steps,
              "metric": cfg.metric, "decode": decode, "judge_extra": judge_extra}
    val_rows = pd.DataFrame([r for s in tqdm(val_seeds, desc="validate strengths", unit="seed") for r in _study_seed(
        model, val_reference, X[fit_idx], y[fit_idx], X[val_idx], y[val_idx], cfg.validation.pairs, judge_cfg, len(names),
        s, device, strengths=cfg.strengths, methods=("guided",), **common)[0]])
    kept = val_rows.groupby("strength", sort=True)["class_kept"].mean()
    strength = float(kept.idxmax())                        # ties: the smaller strength
    candidates = ", ".join(f"{v:g}" for v in cfg.strengths)
    choice = chosen_by("the guided strength", f"highest seed-mean class kept among {candidates}", len(val_idx), val_seeds)
    log.info("validation chose strength %g (class kept %s)", strength, ", ".join(f"{k:g}: {v:.3f}" for k, v in kept.items()))

    rows, first = [], None
    for s in tqdm([seed + i for i in range(cfg.seeds)], desc="interpolate", unit="seed"):
        seed_rows, paths = _study_seed(model, reference, X, y, test.latents, test.meta["label"].to_numpy(), cfg.pairs,
                                       judge_cfg, len(names), s, device, strengths=[strength],
                                       keep_pixels=0 if first else cfg.strips, **common)   # the strips: decoded once
        rows += seed_rows
        first = first or paths
    rows = pd.DataFrame(rows)
    rows = rows.drop(columns="strength")
    table = summarise(rows, ["method"], (*PATH_METRICS, "judge_test_accuracy", "seconds_per_sample"))

    with atomic_dir(args.reports) as tmp:
        rows.to_csv(tmp / "runs.csv", index=False, float_format="%.6g")
        table.to_csv(tmp / "table.csv", index=False, float_format="%.6g")
        val_rows.to_csv(tmp / "validation_runs.csv", index=False, float_format="%.6g")
        write_json(tmp / "metrics.json", {**_metrics(rows, table, reference, cfg, len(names), strength), "chosen_by": choice,
                                          "validation": {"class_kept": {f"{k:g}": v for k, v in kept.items()},
                                                         "seeds": cfg.validation.seeds, "pairs": cfg.validation.pairs}})
        strips = [first["pixels"][m][i] for i in range(min(cfg.strips, len(first["pairs"]))) for m in METHODS]
        save_png(image_grid(strips), tmp / "strips.png")
    by = table.set_index("method")
    for m in METHODS:
        log.info("%-11s class kept %.3f ± %.3f, Fréchet %.2f, density %.2f, copy ratio %.2f, jump ratio %.2f", m,
                 by.loc[m, "class_kept_mean"], by.loc[m, "class_kept_std"], by.loc[m, "frechet_mean"],
                 by.loc[m, "density_mean"], by.loc[m, "copy_ratio_mean"], by.loc[m, "jump_ratio_mean"])


def _study_seed(model, reference: SampleReference, X: np.ndarray, y: np.ndarray, X_judged: np.ndarray,
                y_judged: np.ndarray, n_pairs: int, judge_cfg, n_classes: int, seed: int, device, *,
                strengths: list[float], judge_extra: int = 0, **study):
    """One seed of the interpolation study at each of ``strengths``: ``n_pairs`` same-class pairs of ``X`` drawn
    with ``seed``, judged by a latent CNN trained with ``seed`` on ``X`` less the pairs' ends (its accuracy
    measured on ``X_judged``). Returns the rows (with their strength) and the first strength's paths."""
    pairs = same_class_pairs(y, n_pairs, np.random.default_rng(seed))
    unseen = np.ones(len(X), dtype=bool)
    unseen[pairs.ravel()] = False           # the judge never sees what a method starts from: the pairs' ends
    judge, judge_acc = independent_judge(X[unseen], y[unseen], X_judged, y_judged, n_classes, judge_cfg, seed=seed,
                                         device=device, extra=judge_extra)
    rows, first = [], None
    for strength in strengths:
        got, paths = interpolation_study(model, reference, X, y, judge=judge, pairs=pairs, seed=seed, strength=strength,
                                         **study)
        rows += [{**r, "strength": strength, "judge_test_accuracy": judge_acc} for r in got]
        first = first or paths
    return rows, first


def _metrics(rows: pd.DataFrame, table: pd.DataFrame, reference: SampleReference, cfg, n_classes: int,
             strength: float) -> dict:
    out = {"strength": strength, "metric": cfg.metric, "pairs": cfg.pairs, "points": cfg.points, "steps": cfg.steps,
           "seeds": cfg.seeds, "class_prior": 1.0 / n_classes, "methods": {}}
    for _, r in table.iterrows():
        out["methods"][r["method"]] = {m: {"mean": r[f"{m}_mean"], "std": r[f"{m}_std"]} for m in PATH_METRICS}
    out["judge_test_accuracy"] = {"mean": float(table["judge_test_accuracy_mean"].iloc[0]),
                                  "std": float(table["judge_test_accuracy_std"].iloc[0])}
    base = reference.baselines(0)
    out["baselines"] = {k: {m: base[k][m] for m in METRICS} for k in base}
    wide = rows.pivot(index="seed", columns="method")
    out["guided_vs"] = paired_verdicts(wide, {other: ("guided", other) for other in ("slerp", "noise_slerp")},
                                       HIGHER_IS_BETTER)
    return out


if __name__ == "__main__":
    main()
