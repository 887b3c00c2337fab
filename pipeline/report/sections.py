"""The report's sections, each built from what one part of the pipeline wrote under ``reports/``.

Every builder takes the reports directory and returns a :class:`~pipeline.report.html.Section`
whose tables keep each number beside its baseline and whose sentence is computed from the
numbers (:mod:`pipeline.report.summaries`). :func:`report_sections` gives them in page order.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.io import read_json
from pipeline.report.charts import bench_chart, embedding_chart, gallery_chart, scorer_chart
from pipeline.report.guidance import guidance_tradeoff
from pipeline.report.headline import (classification_headline, generation_headline, guidance_headline, scorer_headline,
                                      study_headline)
from pipeline.report.html import Section
from pipeline.report.summaries import (
    analysis_sentence,
    fidelity_sentence,
    generation_sentence,
    guidance_sentence,
    holm_words,
    interpolation_sentence,
    runs_sentence,
    reconstruction_sentence,
    scorer_sentence,
    score_schedulers,
)


def data_section(r: Path) -> Section:
    m = read_json(r / "prepare/metrics.json")
    classes, splits, q = m["classes"], m["splits"], m["quality"]
    counts = pd.DataFrame([{"split": s, "n": v["n"], **{c: v[c] for c in classes}} for s, v in splits.items()])
    sev = pd.DataFrame([{"split": s, **v["severity"]} for s, v in splits.items() if "severity" in v])
    train = splits["train"]
    ratio = max(train[c] for c in classes) / max(min(train[c] for c in classes), 1)
    if m["source"] == "diffusiondb":
        art = (f"The artifact score is the median of at least {q.get('min_ratings', 3)} human AI-Horde ratings "
               "(severity columns: images per whole-number bin). "
               f"Of {q['rows']} DiffusionDB rows, {q['blurred']} were blurred (image_nsfw 2) and {q['unrated']} lacked "
               f"enough ratings; {q['decode_failed']} of {q['decode_attempted']} sampled images could not be decoded "
               f"({q['bad_fraction']:.1%}).")
        if "anonymous_ratings" in q:   # kudos -50: anonymous raters, not spam
            nulls = q.get("null_artifacts", 0)
            art += (f" Of their {q['rating_rows']} rating rows, {nulls} had no artifact score (not counted), "
                     f"{q['duplicate_ratings']} repeated a user's earlier rating "
                     f"and {q['anonymous_ratings']} came from anonymous raters (kudos −50), "
                     f"{'dropped' if q['anonymous_dropped'] else 'kept'} (data.drop_anonymous).")
        if q.get("dropped_classes"):
            art += f" Classes too small to split were dropped: {', '.join(q['dropped_classes'])}."
    elif m["source"] == "shapes":
        art = "The artifact set spreads severities 0–5 evenly over freshly rendered shapes."
    else:
        art = ("The artifact splits are degraded copies of the same split's images (train → artifact_train, "
               "test → artifact_test), severities 0–5 spread evenly.")
    label = "" if m["label"] == "class" else f" (label: {m['label']})"
    return Section(
        "Data",
        f"Source: {m['source']}{label}. {train['n']} training and {splits['test']['n']} test images over "
        f"{len(classes)} classes, imbalanced {ratio:.1f}:1 (largest to smallest class). {art}",
        tables=[("Images per split and class", counts), ("Artifact set: images per severity", sev)],
    )


def vae_section(r: Path) -> Section:
    m, v = read_json(r / "encode/metrics.json"), read_json(r / "vae/metrics.json")
    overall = pd.DataFrame([
        {"images": "VAE reconstruction (test)", **m["test"]},
        {"images": "baseline: mean training image (test)", **m["baseline_mean_image_test"]},
        *({"images": f"VAE reconstruction ({s})", **x} for s, x in m["per_split"].items() if s != "test"),
    ])
    per_class = pd.DataFrame([{"class": k, **x} for k, x in m["per_class_test"].items()])
    facts = pd.DataFrame([{"source": v["source"], "scaling factor": v["scaling_factor"],
                           "encoder params": v["encoder_params"], "decoder params": v["decoder_params"],
                           "latent shape": "×".join(map(str, m["latent_shape"])), "training steps": v.get("steps", "–")}])
    figures = [("Test originals (rows 1, 3) above their reconstructions (rows 2, 4)", r / "encode/recon_grid.png")]
    if (r / "vae/loss.png").exists():
        figures.append(("VAE training loss", r / "vae/loss.png"))
    return Section("VAE reconstruction", reconstruction_sentence(m),
                   tables=[("Model", facts), ("Reconstruction quality", overall), ("Per class (test)", per_class)],
                   figures=figures)


def analysis_section(r: Path) -> Section:
    m = read_json(r / "analyze/metrics.json")
    rec = pd.DataFrame([{"class": k, **v} for k, v in m["reconstruction"]["psnr_per_class"].items()])
    worst = pd.DataFrame(m["reconstruction"]["worst"])
    channels = pd.DataFrame([{"channel": k, **v} for k, v in m["channels"].items()])
    sep = m["separability"]
    separ = pd.DataFrame([
        {"features": "latents", "linear probe balanced accuracy": sep["linear_probe_balanced_accuracy"]["latents"],
         "silhouette": sep["silhouette"]["latents"]},
        {"features": f"pixels block-averaged to {sep['pixels_side']} px" if sep.get("pixels_pooled") else "raw pixels",
         "linear probe balanced accuracy": sep["linear_probe_balanced_accuracy"]["pixels"],
         "silhouette": sep["silhouette"]["pixels"]},
        {"features": "chance (baseline)", "linear probe balanced accuracy": sep["linear_probe_balanced_accuracy"]["chance"],
         "silhouette": 0.0},
    ])
    cont = pd.DataFrame([{"path": k, **v} for k, v in m["continuity"].items() if k != "midpoint_norm_ratio"])
    pert = pd.DataFrame(m["perturbation"]["curve"]).assign(
        vae_reconstruction_psnr=m["perturbation"]["vae_reconstruction_psnr"])
    rgb = m["latent_rgb"]
    rgb_t = pd.DataFrame([{"preview": "fitted 4×3 + bias (test)", **rgb["test"]},
                          {"preview": "fitted 4×3 + bias (train)", **rgb["train"]},
                          {"preview": "constant train-mean colour (baseline, test)", **rgb["baseline_constant_colour_test"]},
                          *({"preview": f"published {name} (test)", **v} for name, v in rgb.get("published", {}).items())])
    pca = m["pca"]
    a = r / "analyze"
    return Section(
        "Latent-space analysis", analysis_sentence(m),
        tables=[("Test PSNR (dB) per class", rec), (f"The {len(worst)} worst test reconstructions", worst),
                ("Scaled train latents per channel", channels),
                (f"Separability (PCA: {pca['components_for_50pct']} components hold 50% of the variance)", separ),
                ("Continuity: RMS pixel change per path step (max/mean near 1 = even steps); midpoint norm / endpoint "
                 f"norm: lerp {m['continuity']['midpoint_norm_ratio'].get('lerp', float('nan')):.3f}, slerp "
                 f"{m['continuity']['midpoint_norm_ratio'].get('slerp', float('nan')):.3f}", cont),
                ("Perturbation tolerance: decoded PSNR against the clean decode", pert),
                ("Latent → RGB preview error ([-1, 1] pixels on the latent grid)", rgb_t)],
        figures=[("Reconstruction PSNR per class", a / "recon_by_class.png"),
                 ("Worst reconstructions: originals above reconstructions", a / "worst.png"),
                 ("Reconstruction PSNR against edge density", a / "recon_vs_edges.png"),
                 ("Channel histograms", a / "channel_hist.png"), ("Channel correlation", a / "channel_corr.png"),
                 ("PCA explained variance", a / "pca_variance.png"), ("PCA and t-SNE of real latents", a / "embedding.png"),
                 ("Continuity along lerp/slerp paths", a / "continuity.png"),
                 ("Decoded paths: same-class lerp, slerp; different-class lerp, slerp", a / "paths.png"),
                 ("Perturbation tolerance", a / "perturbation.png"),
                 ("One test latent perturbed at each σ (left to right)", a / "perturbation_strip.png"),
                 ("Test images, their 8×-block average, and the latent→RGB preview", a / "latent_rgb.png")],
    )


def fidelity_section(r: Path) -> Section:
    table = pd.read_csv(r / "compare/table.csv")
    idle = [k for k, v in read_json(r / "compare/metrics.json").items() if v.get("no_samples_needed")]
    note = (f" No samples needed (balanced classes, nothing to generate), so not in the table: {', '.join(idle)}."
            if idle else "")
    if table.empty:
        return Section("Synthetic latents: every method compared", "No method made samples." + note)
    rows = table.to_dict("records")
    shown = table[["method", "n_synthetic", "frechet", "frechet_std", "frechet_real", "frechet_pixels",
                   "frechet_pixels_real_reconstructed", "precision", "precision_real", "recall", "recall_real",
                   "copy_ratio", "near_copy_fraction", "near_copy_fraction_real", "label_agreement",
                   "label_agreement_real", "flip_rate"]]
    figures = [("Every method beside its class-matched real baseline", r / "compare/fidelity.png")]
    points, tiles = _per_method(r, table["method"], "points.parquet"), _per_method(r, table["method"], "tiles.parquet")
    charts = []
    if points is not None:
        charts.append(("The latent manifold: real and synthetic train latents per method (t-SNE of a class-stratified "
                       "sample, or the PCA of real train latents); legend clicks filter classes", embedding_chart(points)))
    if tiles is not None:
        charts.append(("Gallery: each method's synthetic samples, toggled against their nearest real training image and "
                       "that image's VAE reconstruction", gallery_chart(tiles)))
    return Section("Synthetic latents: every method compared", fidelity_sentence(rows) + note,
                   tables=[("Fidelity by method (means over replicates; *_real = class-matched real baseline; "
                            "copy_ratio = median nearest-train distance / that of real test; pixels: decoded, "
                            "baseline = VAE reconstructions of real train)", shown)],
                   figures=figures, charts=charts)


def _per_method(r: Path, methods, name: str) -> pd.DataFrame | None:
    """Each method's ``reports/fidelity/<method>/<name>`` with a ``method`` column, stacked."""
    parts = [pd.read_parquet(p).assign(method=m) for m in methods if (p := r / "fidelity" / m / name).exists()]
    return pd.concat(parts, ignore_index=True) if parts else None


def bench_section(r: Path) -> Section:
    m, words = read_json(r / "bench/metrics.json"), read_json(r / "bench/summary.json")
    table = pd.read_csv(r / "bench/table.csv")
    base = m["baseline_majority"]
    rows = [{"model": "majority class (baseline)", "input": "–", "regime": "–",
             "balanced accuracy": f"{base['balanced_accuracy']:.3f}", "macro-F1": f"{base['macro_f1']:.3f}",
             "minority recall": "0.000", "vs": "–", "gain (interval at Holm level)": "–", "verdict": "–", "train s": "–"}]
    for t in table.to_dict("records"):
        has_gain = isinstance(t.get("verdict"), str)
        rows.append({
            "model": t["model"], "input": t["input"], "regime": t["regime"],
            "balanced accuracy": f"{t['balanced_accuracy_mean']:.3f} ± {t['balanced_accuracy_std']:.3f}",
            "macro-F1": f"{t['macro_f1_mean']:.3f} ± {t['macro_f1_std']:.3f}",
            "minority recall": "–" if pd.isna(t["minority_recall_mean"]) else f"{t['minority_recall_mean']:.3f}",
            "vs": t["reference"] if has_gain else "–",
            "gain (interval at Holm level)": (f"{t['gain_mean']:+.3f} ({t['gain_lo']:+.3f} … {t['gain_hi']:+.3f}, "
                                              f"{t['gain_level']:.1%})" if has_gain else "–"),
            "verdict": t["verdict"] if has_gain else "–",
            "train s": f"{t['train_seconds_mean']:.2f}",
        })
    minority = ", ".join(words["minority_classes"]) or "none"
    figures = [("Pixel CNNs: original images versus VAE reconstructions", r / "bench/pixels.png"),
               ("Attention net: class-token attention over test images (per class, then misclassified)",
                r / "bench_latent/attention/attention.png")]
    return Section(
        "Classifier benchmark", words["summary"],
        tables=[("Real test split, mean ± std over seeds; gains are paired by seed against the reference, their interval "
                 "carries the seed variance (t) and the test set's (bootstrap), at the level Holm's procedure tests each "
                 f"at ({m['verdicts']['comparisons']} comparisons, family-wise 5 %). The nets' recipes were set on earlier "
                 "test-split runs and are sized for the time budget; benchmarks/recipe_check.py re-checks them on a "
                 "validation split carved from train", pd.DataFrame(rows)),
                (f"Per-class recall (mean over seeds; minority classes: {minority})", pd.read_csv(r / "bench/recall.csv"))],
        figures=[(t, p) for t, p in figures if p.exists()],
        charts=[("Every model × regime × input, mean ± std over seeds (hover for the paired gain and verdict; the "
                 "input dropdown and legend clicks filter)", bench_chart(table, base["balanced_accuracy"]))],
    )


def score_section(r: Path) -> Section:
    m = read_json(r / "score/metrics.json")
    summary = pd.read_csv(r / "score/summary.csv")
    schedulers = score_schedulers(m)
    cols = ["mae", "spearman", "auroc_severe", "mae_0_2", "mae_2_4", "mae_4_5"]
    rows = [{"scheduler": f"constant {k} (baseline)", "series": "–", "t_frac": "–", **{c: v[c] for c in cols}}
            for k, v in m["baseline_constant"].items()]
    for _, x in summary.iterrows():
        rows.append({"scheduler": x["scheduler"], "series": x["series"] + (" (held-out level)" if x["heldout"] else ""),
                     "t_frac": x["t_frac"], **{c: f"{x[c + '_mean']:.3f} ± {x[c + '_std']:.3f}" for c in cols}})
    levels = read_json(r / "score/levels.json")
    level_rows = [{"scheduler": s, "t_frac": f, "timestep": t, "step": st, "run_frac": rf, "alpha_bar": ab}
                  for s, v in levels.items()
                  for f, t, st, rf, ab in zip(v["t_fracs"], v["timesteps"], v["steps"], v["run_fracs"], v["alpha_bars"])]
    exits = pd.DataFrame([{"scheduler": s, **{k: (f"{v['mean']:.3f} ± {v['std']:.3f}" if isinstance(v, dict) else v)
                                               for k, v in m[s]["early_exit"].items()}} for s in schedulers])
    study = m.get("fresh") or {}
    fresh_rows_, exit_rows = [], []
    for name, block in study.items():
        if not isinstance(block, dict) or "predictors" not in block:
            continue
        fresh_rows_.append({"scheduler": name, "predictor": "constant (train-run mean)", "t/T": "every",
                            "Spearman ρ": "0", "AUROC severe": "0.500", "MAE": f"{block['constant']['mae']:.3f}"})
        for pred, levels in block["predictors"].items():
            for level, cell in levels.items():
                fresh_rows_.append({"scheduler": name, "predictor": pred, "t/T": level,
                                    "Spearman ρ": _ms(cell["spearman"]), "AUROC severe": _ms(cell["auroc_severe"]),
                                    "MAE": _ms(cell["mae"])})
        for pred, e in block["early_exit"].items():
            exit_rows.append({"scheduler": name, "predictor": pred + (" (best on calibration)" if pred == block["best"]["predictor"] else ""),
                              "severe caught": f"{e['caught']['mean']:.3f} ± {e['caught']['std']:.3f} (≥ {_bound(e['caught']['lower'])})",
                              "false stops": f"{e['false_stop']['mean']:.3f} ± {e['false_stop']['std']:.3f} (≤ {_bound(e['false_stop']['upper'])})",
                              "sampling saved": f"{e['saved']['mean']:.3f} ± {e['saved']['std']:.3f}",
                              "calibration caught": f"{e['calibration_caught']['mean']:.3f}",
                              "test runs (severe / not)": f"{e['test_severe']} / {e['test_non_severe']}"})
    fresh_intro = ""
    if study:
        rule = next(b["early_exit_rule"] for b in study.values() if isinstance(b, dict) and "early_exit_rule" in b)
        fresh_intro = ("Fresh-noise runs (the headline): the artifact U-Net, trained on the artifact train latents of every "
                       "severity, generates from fresh Gaussian noise with every scheduler; an independent judge (a clean-latent "
                       "CNN fitted on the real labelled training latents, with a seed no predictor uses) scores each finished "
                       "run. Predictors read the U-Net input x_t or the sampler's own predicted clean latent x̂₀ at each check; "
                       "those marked 'runs' are fitted on the train runs with the judge's labels, the others on real labelled "
                       "latents only. Early exit stops a run at its first check (t/T ≥ "
                       f"{rule['exit_from']:g}) whose predicted score reaches a threshold chosen on the calibration runs: "
                       f"{rule['guarantee']}; the test runs measure it. Intervals: t over seeds plus the test runs' binomial "
                       "variance (one-sided 95 % bounds in brackets). ")
    intro = ("Proxy runs: each scheduler's runs are followed through the latents its loop would hold at each level of a run "
             "that ends at the labelled image under an exact denoiser (forward noising: DDIM, Euler and DPM-Solver then pass "
             "through the same points up to their timestep grids, DDPM adds fresh noise each step). Scorers are trained on "
             "that marginal with fresh noise every minibatch. Inversion runs (<scheduler>_run; a diagnostic — upper estimate: the "
             "inverted noise carries the image): the same scorers on what each scheduler holds when the artifact U-Net runs it "
             "from the DDIM inversion of the labelled test image, so a deterministic run ends at the very image whose label is "
             "predicted; ddpm_run, whose runs end at other images, is the leak check beside them. "
             "Mean ± std over seeds; every row sits beside the constant predictors. ")
    runs = read_json(r / "runs/metrics.json")
    inversion = runs["inversion"]
    ends = pd.DataFrame([{"scheduler": s, "runs": inversion["images"], "end distance (relative)": _cell(v), "median": f"{v['median']:.3g}"}
                         for s, v in inversion["end_error"].items()])
    fresh_tables = ([("Fresh-noise runs: every predictor at every check, on the test runs (agreement with the judge's score; "
                      "mean ± std over seeds)", pd.DataFrame(fresh_rows_)),
                     ("Fresh-noise runs: early exit on the test runs (threshold chosen on the calibration runs)", pd.DataFrame(exit_rows))]
                    if study else [])
    fresh_figures = ([("Fresh-noise runs: Spearman ρ with the judge's score per check", r / "score/fresh.png"),
                      ("Fresh-noise runs: early exit per predictor", r / "score/fresh_exit.png")] if study else [])
    return Section("Artifact scorer across noise levels",
                   fresh_intro + intro + scorer_sentence(m, summary, schedulers) + " " + runs_sentence(inversion),
                   tables=[*fresh_tables,
                           ("Proxy and inversion runs: test-set metrics (artifact score 0-5; severe = AUROC target)", pd.DataFrame(rows)),
                           ("Inversion runs: how far each run ends from its labelled latent (‖end − labelled‖ / ‖labelled‖)", ends),
                           ("Early exit: operating point chosen on half of the test runs, measured on the other half", exits),
                           ("Noise levels per scheduler", pd.DataFrame(level_rows))],
                   charts=[("Each scorer's test metric against the noise level, per scheduler (fresh noise: the headline, "
                            "against the judge's label; proxy runs; <scheduler>_run: the inversion runs, an upper estimate); "
                            "dashed: the constant predictor",
                            scorer_chart(summary, m["baseline_constant"]["train_mean"], study))],
                   figures=[*fresh_figures,
                            ("Proxy versus inversion runs (upper estimate): MAE of the exit model per level", r / "score/runs.png"),
                            ("Predicted versus true score at the middle level", r / "score/scatter.png"),
                            ("Early-exit trade-off", r / "score/early_exit.png")])


def _ms(v: dict) -> str:
    """mean ± std to 3 places; "–" where the metric is undefined (null: e.g. ρ of a constant prediction)."""
    return "–" if v["mean"] is None else f"{v['mean']:.3f} ± {(v['std'] or 0.0):.3f}"


def _bound(v) -> str:
    """A one-sided bound, or why there is none (one seed: null in the metrics)."""
    return "–, one seed" if v is None else f"{v:.3f}"


def _cell(v: dict) -> str:
    return f"{v['mean']:.3g} ± {v['std']:.2g}"


GEN_METRICS = ("frechet", "frechet_inf", "kid", "precision", "recall", "density", "coverage", "copy_ratio",
               "near_copy_fraction")


def generation_section(r: Path) -> Section:
    m = read_json(r / "diffusion/metrics.json")
    rows = [{"sampler": f"{k} (baseline)", "steps": "–", **{c: _cell(v[c]) for c in GEN_METRICS}, "s / sample": "–"}
            for k, v in m["baselines"].items()]
    seconds = pd.read_csv(r / "diffusion/samplers.csv").set_index(["sampler", "steps"])["seconds_per_sample_mean"]
    rows += [{"sampler": s, "steps": k, **{c: _cell(v[c]) for c in GEN_METRICS}, "s / sample": f"{seconds[(s, int(k))]:.2g}"}
             for s, steps in m["samplers"].items() for k, v in steps.items()]
    intro = (f"A {m['unet_params'] / 1e6:.2f} M-parameter diffusers UNet2DModel, ε-prediction on centred training latents "
             f"(final loss {m['final_loss']:.3f}), sampled {m['samples']} latents per cell from the same seeded noise, "
             f"{m['seeds']} seeds, each set against as many real test latents: Fréchet distance in a PCA space of real "
             "train latents, precision / recall / density / coverage (prdc, k = 5) on the full latents. ")
    d = r / "diffusion"
    return Section("Generation: the latent U-Net and its samplers", intro + generation_sentence(m),
                   tables=[("Per sampler × steps, mean ± std over seeds (real_train: a training subset, the best case; "
                            "gaussian: per-element Gaussian, a model of the marginals only; copy ratio of a training "
                            "subset is 0 by definition)", pd.DataFrame(rows))],
                   figures=[("Decoded samples, one row per sampler at its most steps; last row: real test images", d / "gallery.png"),
                            ("Predicted x̂₀ along one run per sampler (rows: sample × sampler, noise → image)", d / "trajectories.png"),
                            ("The runs in the first two PCs of real latents", d / "paths.png"),
                            ("U-Net training loss", d / "loss.png")])


def _baseline_rows(m: dict, label: str, cols, class_col: str) -> list[dict]:
    """The real-train and Gaussian baselines of a generation metrics file, and the class prior, as table rows."""
    rows = [{label: f"{k} (baseline)", **{c: (f"{v[c]:.3g}" if c in v else "–") for c in cols}}
            for k, v in m["baselines"].items()]
    return rows + [{label: "class prior (baseline)", **{c: "–" for c in cols}, class_col: f"{m['class_prior']:.3f}"}]


def _verdicts(blocks: dict, label: str, difference: str) -> pd.DataFrame:
    """Paired verdicts (one block of metrics per compared pair, one Holm family) as a table: the
    interval at Holm's level for the comparison, which decides the verdict, and the plain 95 % one."""
    def span(ci) -> str:   # one seed: no interval
        return "– (one seed)" if ci is None or ci[0] is None else f"{ci[0]:+.3g} … {ci[1]:+.3g}"

    return pd.DataFrame([{label: name, "metric": k, difference: f"{v['difference']:+.3g}",
                          "interval (Holm level)": f"{span(v.get('ci'))} ({v['level']:.1%})",
                          "95 % CI": span(v.get("ci95")), "verdict": v["verdict"]}
                         for name, block in blocks.items() for k, v in block.items()])


def interpolation_section(r: Path) -> Section:
    m = read_json(r / "interpolate/metrics.json")
    cols = ("class_kept", "frechet", "frechet_inf", "kid", "precision", "density", "coverage", "copy_ratio", "end_error",
            "jump_ratio", "length_ratio")
    seconds = pd.read_csv(r / "interpolate/table.csv").set_index("method")["seconds_per_sample_mean"]
    rows = [{"method": k, **{c: _cell(v[c]) for c in cols}, "s / sample": f"{seconds[k]:.2g}"} for k, v in m["methods"].items()]
    rows += _baseline_rows(m, "method", cols, "class_kept")
    verdicts = _verdicts(m["guided_vs"], "guided vs", "difference")
    return Section("Sample-guided generation: interpolation between same-class pairs", interpolation_sentence(m),
                   tables=[(f"{m['pairs']} pairs × {m['points']} interior points per seed, mean ± std over {m['seeds']} seeds "
                            "(class_kept by an independent latent CNN; end_error: how far λ = 0, 1 land from the real ends; "
                            "jump / length ratio of the decoded path: 1 = even and straight)", pd.DataFrame(rows)),
                           (f"Guided, paired by seed against each reference ({holm_words(m['guided_vs'])})", verdicts)],
                   figures=[("Decoded paths, per pair one row per method: lerp, slerp, noise slerp, guided",
                             r / "interpolate/strips.png")])


GUIDE_COLUMNS = ("class_accuracy", "frechet", "frechet_inf", "kid", "precision", "recall", "density", "coverage",
                 "far_fraction")


def guidance_section(r: Path) -> Section:
    m, interp = read_json(r / "guide/metrics.json"), read_json(r / "interpolate/metrics.json")
    table = pd.read_csv(r / "guide/table.csv")
    rows = [{"guidance": k, "scale": f"{sc:g}" if k != "combined" else "operating",
             **{c: f"{g[f'{c}_mean']:.3g} ± {g[f'{c}_std']:.2g}" for c in GUIDE_COLUMNS}, "s / sample": f"{g['seconds_per_sample_mean']:.2g}"}
            for (k, sc), g in table.set_index(["kind", "scale"]).iterrows()]
    g = interp["methods"]["guided"]
    n_interp = interp["pairs"] * interp["points"]
    # Another stage's set is of another n: its Fréchet is not comparable here (biased by n), FD∞ and KID are
    rows.append({"guidance": f"sample-guided interpolation (interpolate stage, n = {n_interp})",
                 "scale": f"strength {interp['strength']:g}", "class_accuracy": _cell(g["class_kept"]),
                 "frechet": f"n/a at n = {n_interp} (its real floor {interp['baselines']['real_train']['frechet']:.3g})",
                 **{c: _cell(g[c]) for c in ("frechet_inf", "kid", "precision", "recall", "density", "coverage")},
                 "far_fraction": "–"})
    rows += _baseline_rows(m, "guidance", GUIDE_COLUMNS, "class_accuracy")
    verdicts = _verdicts(m["vs_unguided"], "guidance", "difference vs unguided")
    detector = pd.DataFrame([{"held-out real test latents vs": k, "AUROC": f"{v['auroc']:.3f}",
                              "FPR at 95 % TPR": f"{v['fpr_at_95_tpr']:.3f}"} for k, v in m["ood_detector"].items()])
    free = table[table["kind"] == "unguided"].iloc[0]
    points = {"unguided": (free["frechet_inf_mean"], free["class_accuracy_mean"]),
              "combined (operating point)": tuple(table[table["kind"] == "combined"][["frechet_inf_mean",
                                                                                      "class_accuracy_mean"]].iloc[0]),
              f"sample-guided interpolation (strength {interp['strength']:g}; class kept)": (g["frechet_inf"]["mean"],
                                                                                             g["class_kept"]["mean"]),
              "naive slerp (class kept)": (interp["methods"]["slerp"]["frechet_inf"]["mean"],
                                           interp["methods"]["slerp"]["class_kept"]["mean"])}
    tradeoff = guidance_tradeoff(table, points, "Class against realism: each guidance over its scales (labels), other generators as points",
                                 prior=m["class_prior"])
    d = r / "guide"
    how = m.get("classifier_guidance", {})
    clf_note = (f"; classifier guidance averages the classifier over its {how['symmetry']} views"
                if how.get("symmetry", "none") != "none" else "")
    clf_note += "; classifier scales are the ε shift per step (gradients normalised)" if how.get("normalise") else ""
    return Section("Metric-guided generation: classifier, discriminator and OOD guidance", guidance_sentence(m),
                   tables=[(f"{m['samples']} samples per set ({m['sampler']}, {m['steps']} steps), each asking for a class in turn, "
                            f"mean ± std over {m['seeds']} seeds; graded by models that never guide (class: an independent "
                            "latent CNN; far_fraction: share farther from every training latent than 95 % of real test latents; "
                            f"interpolation's class column is its class kept{clf_note})", pd.DataFrame(rows)),
                           ("Each guidance at its operating scale, paired by seed against unguided sampling "
                            f"({holm_words(m['vs_unguided'])})", verdicts),
                           ("The Mahalanobis OOD model (fitted on train latents) as a detector", detector)],
                   figures=[("Class against realism", tradeoff),
                            ("Every metric against the guidance scale (dashed: unguided; dotted: combined)", d / "curves.png"),
                            ("Samples per requested class, one row per guidance at its operating point: unguided, classifier, "
                             "discriminator, OOD, combined", d / "gallery.png"),
                            ("ROC of the OOD detector", d / "ood_roc.png")])


def study_section(r: Path) -> Section | None:
    """This source's small cross-dataset study (``reports/study``; the full study across sources is
    ``python -m stages.study_all``'s page); None where the study did not run."""
    if not (r / "study/table.csv").is_file():
        return None
    from pipeline.study.aggregate import gain_chart, study_columns

    words = read_json(r / "study/summary.json")
    table = pd.read_csv(r / "study/table.csv", keep_default_na=False, na_values=[""]).assign(source=words["source"])
    return Section(
        "Cross-dataset study: augmentation and generation against re-balancing", words["summary"] + (
            " This is the small grid on this run's source; python -m stages.study_all runs the full grid on every "
            "source (docs/study.md)."),
        tables=[("Every cell (training images per class / imbalance), model and method: balanced accuracy and minority "
                 "recall on the real test split (mean over seeds), gains paired by seed with their interval at its Holm "
                 "level, CAS and Fréchet at equal n beside the real-vs-real floor", study_columns(table))],
        charts=[("Gain over no augmentation against training images per class, per imbalance; random over-sampling "
                 "dashed (pick the model)", gain_chart(table))])


def headline_section(r: Path) -> Section:
    rows = classification_headline(read_json(r / "encode/metrics.json"), read_json(r / "bench/metrics.json"),
                                   pd.read_csv(r / "bench/table.csv"))
    if (r / "study/metrics.json").is_file():
        rows += study_headline(read_json(r / "study/metrics.json"))
    rows += generation_headline(read_json(r / "diffusion/metrics.json"), read_json(r / "interpolate/metrics.json"))
    rows += guidance_headline(read_json(r / "guide/metrics.json"))
    rows += scorer_headline(read_json(r / "score/metrics.json"), pd.read_csv(r / "score/summary.csv"))
    return Section("At a glance", "The two research questions, each headline number beside its baseline; the sections "
                   "below hold every number, its spread and the figures.", tables=[("Headline results", pd.DataFrame(rows))])


def report_sections(r: Path) -> list[Section]:
    """Every section, in page order: the headline first, then data, VAE, analysis, fidelity, classifiers,
    the study (where it ran), generation, interpolation, scorers."""
    sections = [headline_section(r), data_section(r), vae_section(r), analysis_section(r), fidelity_section(r),
                bench_section(r), study_section(r), generation_section(r), interpolation_section(r), guidance_section(r),
                score_section(r)]
    return [s for s in sections if s is not None]
