"""Plain sentences that say what the numbers show, computed from the metrics (never canned)."""

from __future__ import annotations

import numpy as np

from pipeline.metrics.verdicts import lower_bound

MIN_MAE_GAIN = 0.01   # an MAE gain smaller than this (score units 0-5) is not called a win, whatever the spread


def beats_constant(mae_mean: float, mae_std: float, constant_mae: float) -> bool:
    """A scorer beats the constant predictor when its MAE is lower by more than its seed spread and
    by at least ``MIN_MAE_GAIN`` (a spread of 0 must not turn a 0.001 difference into a finding)."""
    return constant_mae - mae_mean > max(mae_std, MIN_MAE_GAIN)


def reconstruction_sentence(m: dict) -> str:
    t, b = m["test"], m["baseline_mean_image_test"]
    shape = "×".join(map(str, m["latent_shape"]))
    return (
        f"The VAE maps each image to a {shape} latent ({m['compression']:.1f}× fewer numbers) and reconstructs "
        f"held-out test images at {t['psnr']:.2f} dB PSNR / SSIM {t['ssim']:.3f}, versus {b['psnr']:.2f} dB / "
        f"{b['ssim']:.3f} for predicting the mean training image."
    )


def analysis_sentence(m: dict) -> str:
    r, sep, pert, rgb = m["reconstruction"], m["separability"], m["perturbation"], m["latent_rgb"]
    probe = sep["linear_probe_balanced_accuracy"]
    edge = r["spearman_psnr_vs_edge_density"]
    sigma = pert["largest_sigma_within_reconstruction_error"]
    tol = (f"perturbations up to σ = {sigma:g} channel std cost less PSNR than the VAE's own reconstruction error "
           f"({pert['vae_reconstruction_psnr']:.1f} dB)" if sigma is not None else
           f"even the smallest perturbation costs more PSNR than the VAE's own reconstruction error "
           f"({pert['vae_reconstruction_psnr']:.1f} dB)")
    gap = probe["latents"] - probe["pixels"]
    better = "about as" if abs(gap) < 0.02 else ("more" if gap > 0 else "less")
    than = "as" if abs(gap) < 0.02 else "than"
    trend = "grows" if edge < -0.1 else ("shrinks" if edge > 0.1 else "hardly depends on")
    return (
        f"Reconstruction error {trend} with image detail (Spearman ρ between PSNR and edge density {edge:.2f}). "
        f"A linear probe separates classes {better} easily from latents ({probe['latents']:.3f} balanced accuracy) "
        f"{than} from pixels ({probe['pixels']:.3f}; chance {probe['chance']:.3f}); silhouette {sep['silhouette']['latents']:.3f} "
        f"vs {sep['silhouette']['pixels']:.3f}. {tol[0].upper() + tol[1:]}. The fitted latent→RGB map previews "
        f"images at {rgb['test']['rmse']:.3f} RMSE against {rgb['baseline_constant_colour_test']['rmse']:.3f} for a "
        f"constant colour.{_published_sentence(rgb)}"
    )


def _published_sentence(rgb: dict) -> str:
    """How far the published SD 1.x latent→RGB factors are from those fitted on this data."""
    pub = rgb.get("published")
    if not pub:
        return ""
    parts = [f"{name} {v['rmse']:.3f} RMSE (factors {v['relative_factor_distance']:.0%} away from the fitted ones)"
             for name, v in pub.items()]
    return f" The published SD 1.x factors preview at {'; '.join(parts)}; previews use {rgb['used']}."


def fidelity_sentence(rows: list[dict]) -> str:
    """Compare methods on Fréchet ratio and copying; say plainly when none matches real data."""
    closest = min(rows, key=lambda r: r["frechet_ratio"])
    copier = min(rows, key=lambda r: r["copy_ratio"])
    parts = [
        f"Closest to the real test distribution: {closest['method']} (Fréchet {closest['frechet']:.2f} vs "
        f"{closest['frechet_real']:.2f} for class-matched real training latents, {closest['frechet_ratio']:.2f}×)",
        f"{'it also' if copier is closest else copier['method']} stays nearest to its training samples (median "
        f"nearest-train distance {copier['copy_ratio']:.2f}× that of held-out real images)",
    ]
    inside = [r["method"] for r in rows if r["precision"] > r["precision_real"] and r["recall"] < r["recall_real"]]
    if inside:
        parts.append(f"{len(inside)} of {len(rows)} methods have higher k-NN precision and lower recall than real "
                     "data: they fill the inside of the real manifold and cover less of it")
    matching = [r["method"] for r in rows if r["frechet_ratio"] <= 1.0]
    if matching:
        verb = "comes" if len(matching) == 1 else "come"
        parts.append(f"{', '.join(matching)} {verb} at least as close to real test as the real training set, which "
                     "beside a low copy ratio means reproducing training samples rather than making new ones")
    else:
        parts.append("no method is as close to real test data as the real training set itself")
    mislabelled = [r["method"] for r in rows if r["label_agreement"] < r["label_agreement_real"]]
    if mislabelled:
        parts.append(f"a k-NN probe agrees with the intended class of {', '.join(mislabelled)} samples less often than "
                     "with real test labels: those samples do not look like their class")
    return "; ".join(parts) + "."


NOT_SCHEDULERS = ("baseline_constant", "clean", "fresh")   # score/metrics.json keys that are not a scheduler's block
EXIT_TARGET = 0.5   # severe fresh-noise runs caught at t/T ≥ exit_from with at most score.exit_max_false_stop false stops


def score_schedulers(m: dict) -> list[str]:
    """The scheduler blocks of score/metrics.json: the proxy's ``<name>`` and the inversion runs' ``<name>_run``."""
    return [k for k in m if k not in NOT_SCHEDULERS]


def fresh_headline(study: dict) -> tuple[str, dict] | None:
    """The fresh-noise study's headline scheduler (DDIM when present) and its block; None without a study."""
    names = [n for n, b in study.items() if isinstance(b, dict) and "early_exit" in b]
    if not names:
        return None
    name = "ddim" if "ddim" in names else names[0]
    return name, study[name]


def exit_words(block: dict) -> dict:
    """The best predictor's early exit in numbers and its verdict against :data:`EXIT_TARGET` (met only where
    the caught share's lower bound clears it and the false-stop rate's upper bound stays within the budget)."""
    rule, best = block["early_exit_rule"], block["best"]["predictor"]
    if best is None:
        zero = {"mean": 0.0, "std": 0.0, "lower": 0.0, "upper": 0.0}
        return {"predictor": "none", "exit": {"caught": zero, "false_stop": zero, "saved": zero}, "rule": rule, "met": False,
                "verdict": block.get("early_exit_note", "no early exit")}
    ex = block["early_exit"][best]
    # one seed: no interval (the bounds are null), so no target can be called met
    lo = -np.inf if ex["caught"]["lower"] is None else ex["caught"]["lower"]
    up = np.inf if ex["false_stop"]["upper"] is None else ex["false_stop"]["upper"]
    ex = {**ex, "caught": {**ex["caught"], "lower": lo}, "false_stop": {**ex["false_stop"], "upper": up}}
    met = lo >= EXIT_TARGET and up <= rule["max_false_stop"]
    bound = (lambda v, f: f"{v:{f}}" if np.isfinite(v) else "undefined with one seed")
    return {"predictor": best, "exit": ex, "rule": rule, "met": met,
            "verdict": (f"reaches the {EXIT_TARGET:.0%} target (lower bound {lo:.0%})" if met else
                        f"short of the {EXIT_TARGET:.0%} target (caught {ex['caught']['mean']:.0%}, lower bound "
                        f"{bound(lo, '.0%')}; false stops up to {bound(up, '.1%')})")}


def _num(v) -> str:
    """A metric to 2 places, or "undefined" where it is null."""
    return "undefined" if v is None else f"{v:.2f}"


def _label_noise(block: dict) -> str:
    """Why the judge's label is hard to predict, in numbers: at the latest check the judge on x̂₀ against the
    clean-latent CNN of the same recipe and data but another seed (empty without the diagnostic)."""
    if "judge_on_x0" not in block or "clean cnn (x̂₀)" not in block["predictors"]:
        return ""
    last = min(block["judge_on_x0"], key=float)
    j, c = block["judge_on_x0"][last]["spearman"], block["predictors"]["clean cnn (x̂₀)"][last]["spearman"]["mean"]
    return (f"; why: at t/T = {float(last):g} the judge itself on x̂₀ agrees with its final verdict to ρ {_num(j)}, while a "
            f"clean-latent CNN of the same recipe and data, another seed, agrees to {_num(c)} — much of the label is this "
            "one judge's reading of generated latents, which the predictors can learn only from the train runs")


def fresh_sentence(study: dict) -> str:
    """Plain verdicts of the fresh-noise study: the judge's own quality, how early each scheduler's finished score
    can be ranked, and early exit with its guarantee — against the constant predictor."""
    judge = (study.get("judge") or {}).get("test") or {}
    head = fresh_headline(study)
    if head is None:
        return ""
    parts = [f"Generations from fresh noise by the artifact U-Net, labelled by an independent judge (a clean-latent CNN fitted "
             f"on the real labelled training latents; on the real test latents it reaches Spearman ρ {judge.get('spearman', float('nan')):.2f} "
             f"and MAE {judge.get('mae', float('nan')):.2f}, so no predictor of its label can say more about people's ratings "
             "than that)"]
    for name, block in study.items():
        if not isinstance(block, dict) or "predictors" not in block:
            continue
        rule = block["early_exit_rule"]
        top = min((f for f in block["levels"]), key=lambda f: abs(float(f) - rule["exit_from"]))
        rhos = {p: v[top]["spearman"] for p, v in block["predictors"].items()}
        lead = max(rhos, key=lambda p: -np.inf if rhos[p]["mean"] is None else rhos[p]["mean"])
        w = exit_words(block)
        ex = w["exit"]
        if block["best"]["predictor"] is None:
            parts.append(f"{name}: {w['verdict']}")
            continue
        parts.append(f"{name} ({block['runs']['test']} test runs, {block['label']['severe_share_test']:.0%} rated severe): at "
                     f"t/T = {float(top):g} the best ranking predictor is {lead}, Spearman ρ {_num(rhos[lead]['mean'])} ± "
                     f"{_num(rhos[lead]['std'])} with the judge's score (constant predictor: 0"
                     + (f"; the judge itself on x̂₀ there, a diagnostic of how much of its verdict x̂₀ already shows, "
                        f"{_num(block['judge_on_x0'][top]['spearman'])}" if "judge_on_x0" in block else "")
                     + f"); early exit with {w['predictor']} "
                     f"(chosen on the calibration runs), checking at t/T ≥ {rule['exit_from']:g}, stops "
                     f"{ex['caught']['mean']:.0%} ± {ex['caught']['std']:.0%} of the severe test runs and "
                     f"{ex['false_stop']['mean']:.1%} of the others (its threshold set on {block['runs']['calibration']} "
                     f"calibration runs by Learn then Test so that the false-stop rate is ≤ {rule['max_false_stop']:.0%} with "
                     f"probability ≥ {1 - rule['delta']:.0%}), saving {ex['saved']['mean']:.0%} of all sampling steps: {w['verdict']}"
                     + _label_noise(block))
    return ". ".join(parts) + "."


def scorer_sentence(m: dict, summary, schedulers: list[str]) -> str:
    """Plain verdicts for the artifact-scorer benchmark: the clean upper bound, per scheduler the
    levels where some scorer beats the constant predictor beyond its seed spread (MAE) or ranks
    images at all (Spearman ρ above its spread), and whether early exit beats random stopping."""
    const = m["baseline_constant"]["train_mean"]["mae"]
    clean = summary[summary["representation"] == "clean"].sort_values("mae_mean").iloc[0]
    fresh = fresh_sentence(m.get("fresh") or {})
    lead = (fresh + " The rest is the seed method and a diagnostic. ") if fresh else ""
    parts = [lead + f"On clean latents (the upper bound) the best scorer, {clean['model']}, has MAE {clean['mae_mean']:.3f} "
             f"± {clean['mae_std']:.3f} and Spearman ρ {clean['spearman_mean']:.2f} against MAE {const:.3f} for the "
             "constant train-mean predictor"]
    for name in schedulers:
        part = summary[(summary["scheduler"] == name) & ~summary["heldout"]]
        if name.endswith("_run"):
            name_words = f"{name} (inversion runs: upper estimate, the inverted noise carries the image)"
        else:
            name_words = f"{name} (forward-noising proxy)"
        beats = sorted({f"{r.t_frac:g}" for r in part.itertuples() if beats_constant(r.mae_mean, r.mae_std, const)},
                       key=float)
        ranks = sorted({f"{r.t_frac:g}" for r in part.itertuples() if r.spearman_mean > max(r.spearman_std, 0.05)},
                       key=float)
        text = (f"{name_words}: a scorer beats the constant MAE beyond the seed spread at t_frac {', '.join(beats)}" if beats
                else f"{name_words}: no scorer beats the constant MAE beyond the seed spread at any level")
        text += (f"; some scorer ranks images (ρ > 0.05 and > its spread) at t_frac {', '.join(ranks)}" if ranks
                 else "; no scorer ranks images better than chance")
        ex = m[name]["early_exit"]
        if ex["threshold"] is None:
            text += f"; early exit finds no threshold with at most {ex['max_false_stop']:.0%} false stops"
        else:
            c, f, sv = ex["caught"]["mean"], ex["false_stop"]["mean"], ex["saved"]["mean"]
            better = c - f > ex["caught"]["std"] + ex["false_stop"]["std"]
            text += (f"; early exit ({ex['model']}, threshold {ex['threshold']['mean']:.2f}) catches {c:.0%} of severe runs, "
                     f"stops {f:.0%} of the others and saves {sv:.1%} of all compute: "
                     + ("better than random stopping" if better else "no better than random stopping, which catches as "
                        "many as it wrongly stops"))
        parts.append(text)
    return ". ".join(parts) + "."


def generation_sentence(m: dict) -> str:
    """Which sampler × steps comes closest to real data, against both baselines, and what did not help."""
    real, gauss = m["baselines"]["real_train"], m["baselines"]["gaussian"]
    cells = [(s, int(k), v) for s, steps in m["samplers"].items() for k, v in steps.items()]
    s, k, best = min(cells, key=lambda c: c[2]["frechet"]["mean"])
    worst = max(cells, key=lambda c: c[2]["frechet"]["mean"])
    gap = (gauss["frechet"]["mean"] - best["frechet"]["mean"]) / max(gauss["frechet"]["mean"] - real["frechet"]["mean"], 1e-12)
    text = (f"The U-Net's best sampler is {s} at {k} steps: Fréchet distance {best['frechet']['mean']:.1f} ± "
            f"{best['frechet']['std']:.1f} to real test latents, against {real['frechet']['mean']:.1f} for real training "
            f"latents and {gauss['frechet']['mean']:.1f} for a per-element Gaussian — {gap:.0%} of the way from the Gaussian "
            f"to real data; density {best['density']['mean']:.2f} and coverage {best['coverage']['mean']:.2f} (real "
            f"{real['density']['mean']:.2f} / {real['coverage']['mean']:.2f}). Its copy ratio {best['copy_ratio']['mean']:.2f} "
            "(1 = as far from the training latents as new real data) says it does not copy. "
            f"The worst cell is {worst[0]} at {worst[1]} steps (Fréchet {worst[2]['frechet']['mean']:.1f})")
    tied = sorted(p.replace("@", " at ") for p, v in m["vs_best"].items() if v["frechet"]["verdict"] == "no clear difference")
    if tied:
        text += f"; tied with the best (paired by seed, no clear difference in Fréchet): {', '.join(tied)}"
    for key, v in m["steps_vs_fewest"].items():
        point, fewest = key.split("_vs_")
        name, k = point.split("@")
        word = {"better": "better than", "worse": "worse than", "no clear difference": "tied with"}[v["frechet"]["verdict"]]
        text += f"; {name} at {k} steps is {word} {fewest} steps"
    if not m["vs_best"]:
        return text + " (one cell: nothing to compare)."
    first = next(iter(next(iter(m["vs_best"].values())).values()))
    return text + (f" (verdicts: t-intervals over {first['seeds']} seeds; Holm over the {first['comparisons']} cells against "
                   f"the best and, apart, the {len(m['steps_vs_fewest'])} step-count comparisons, each at family-wise 5 %).")


def _by_verdict(block: dict, names: dict[str, str]) -> dict[str, str]:
    """The labels of ``names`` grouped by their paired verdict in ``block``, joined ("nothing" if none)."""
    parts = {v: [] for v in ("better", "worse", "no clear difference")}
    for key, label in names.items():
        parts[block[key]["verdict"]].append(label)
    return {v: ", ".join(labels) or "nothing" for v, labels in parts.items()}


def interpolation_sentence(m: dict) -> str:
    """Plain verdicts for guided interpolation against naive slerp and unguided noise slerp."""
    methods, vs = m["methods"], m["guided_vs"]
    g = methods["guided"]
    chosen = ", chosen on the validation split" if m.get("chosen_by", {}).get("test_split_used") is False else ""
    text = (f"Between same-class training pairs, guided interpolation (strength {m['strength']:g}{chosen}, "
            f"{m['metric']} metric) "
            f"keeps the class for {g['class_kept']['mean']:.0%} ± {g['class_kept']['std']:.0%} of its points by an "
            f"independent judge (naive slerp {methods['slerp']['class_kept']['mean']:.0%}, unguided noise slerp "
            f"{methods['noise_slerp']['class_kept']['mean']:.0%}; the judge's own test accuracy "
            f"{m['judge_test_accuracy']['mean']:.0%}, class prior {m['class_prior']:.0%})")
    names = {"class_kept": "class kept", "frechet": "Fréchet distance", "density": "density", "copy_ratio": "novelty (copy ratio)",
             "jump_ratio": "smoothness (jump ratio)"}
    for other in ("slerp", "noise_slerp"):
        parts = _by_verdict(vs[other], names)
        text += (f". Against {other.replace('_', ' ')}: better on {parts['better']}; worse on {parts['worse']}; no clear "
                 f"difference (its interval spans 0) on {parts['no clear difference']}")
    if vs["slerp"]["class_kept"]["verdict"] != "better" and vs["slerp"]["frechet"]["verdict"] != "better":
        text += ". Guidance does not beat naive slerp on class kept or realism here"
    return text + f" ({holm_words(vs)})."


def holm_words(blocks: dict) -> str:
    """How a verdict table's verdicts were made, in words."""
    first = next(iter(next(iter(blocks.values())).values()))
    return (f"verdicts: t-intervals over {first['seeds']} seeds, Holm over the table's {first['comparisons']} "
            "comparisons at family-wise 5 %")


def runs_sentence(runs: dict) -> str:
    """How far the real sampler runs end from their labelled latents, in words."""
    ends = runs["end_error"]
    close = [s for s, v in ends.items() if v["median"] < 0.2]
    far = [s for s, v in ends.items() if v["median"] >= 0.2]
    text = f"The inversion runs ({runs['images']} test images) "
    if close:
        text += f"of {', '.join(close)} end within {max(ends[s]['median'] for s in close):.0%} of their labelled latents"
    if far:
        text += ("; those of " if close else "of ") + (f"{', '.join(far)} end {min(ends[s]['median'] for s in far):.0%} or more "
                                                      "away: another image, so the label no longer describes it and its "
                                                      "scores there say little")
    return text + "."


GUIDE_TARGET = 0.70   # the guidance target: independent-classifier accuracy of the requested class


def guidance_sentence(m: dict) -> str:
    """Plain verdicts for metric-guided sampling against unguided sampling."""
    k, vs, prior = m["kinds"], m["vs_unguided"], m["class_prior"]
    free, clf = k["unguided"], k["classifier"]
    op = m["operating"]
    text = (f"Classifier guidance (scale {op['classifier']:g}, chosen on the validation split) makes the independent judge "
            f"see the requested class in "
            f"{clf['class_accuracy']['mean']:.0%} ± {clf['class_accuracy']['std']:.0%} of samples, against "
            f"{free['class_accuracy']['mean']:.0%} unguided and a class prior of {prior:.0%} "
            f"(the judge's own test accuracy {m['judge_test_accuracy']['mean']:.0%}); all three guidances together "
            f"reach {k['combined']['class_accuracy']['mean']:.0%}")
    bound = {n: lower_bound(v["class_accuracy"]["mean"], v["class_accuracy"]["std"], m["seeds"]) for n, v in k.items()}
    reach = [n for n in k if n != "unguided" and bound[n] >= GUIDE_TARGET]
    if not reach:
        best = max((n for n in k if n != "unguided"), key=lambda n: bound[n])
        text += (f". No guidance is shown to reach the {GUIDE_TARGET:.0%} target: the best one-sided 95 % lower bound over "
                 f"seeds is {bound[best]:.0%} ({best})")
    else:
        text += (f"; {' and '.join(reach)} guidance reach{'es' if len(reach) == 1 else ''} the {GUIDE_TARGET:.0%} target "
                 f"(one-sided 95 % lower bound over seeds {min(bound[n] for n in reach):.0%} or more)")
    names = {"frechet": "Fréchet distance", "precision": "precision", "recall": "recall", "density": "density",
             "coverage": "coverage", "far_fraction": "out-of-distribution rate"}
    for kind in ("discriminator", "ood", "classifier", "combined"):
        parts = _by_verdict(vs[kind], names)
        text += (f". {'OOD' if kind == 'ood' else kind.capitalize()} guidance vs unguided: better on {parts['better']}; "
                 f"worse on {parts['worse']}")
    text += f" ({holm_words(vs)})"
    det = m["ood_detector"]
    text += (". As a detector the Mahalanobis model tells held-out real latents from "
             + ", ".join(f"{name} at AUROC {v['auroc']:.2f}" for name, v in det.items()))
    return text + "."
