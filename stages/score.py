"""score: how early in a generation can the finished image's artifact score be predicted?

For every scheduler in ``noise.schedulers`` the artifact set's clean test latents are taken
through the latents that scheduler's sampling loop holds at each ``noise.t_fracs`` level of a run
that ends at them under an exact denoiser (``pipeline.latents.noising.oracle_trajectory``: the
forward-noising *proxy*), so every noisy latent keeps its image's known score. Scorers are trained
on the same marginal with fresh noise every minibatch (``pipeline.models.benchmark``): at each
level ridge / MLP / CNN (and ``score.rgb_models`` on the latent→RGB preview,
``models/latent_rgb.json``); one timestep-conditioned CNN (``cnn_t``) and a mixture of the
per-level experts (``mixture``) cover every level and are also scored at ``noise.heldout_fracs``. Clean latents give the upper bound;
train-mean and train-median predictors the baseline. Everything is fitted on ``artifact_train``
and scored on ``artifact_test``, over ``score.seeds`` seeds (trajectory noise, init, batches).

An early-exit rule (``pipeline.models.early_exit``) runs ``score.exit_model`` over each test run
from noise to image and stops when the running mean of its predicted score passes a threshold;
the threshold is chosen on half of the test runs and measured on the other half.

Writes ``models/scorers/<scheduler>/{cnn_t,mixture}/`` (safetensors + config.json, first seed; the
``cnn_t`` is one model for every scheduler, saved beside each scheduler's mixture for convenience;
load with ``pipeline.models.neural.load_scorer(dir).score(latents, timestep)``) and
``reports/score/``. Reads ``base``, ``noise``, ``score``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from pipeline.io import atomic_dir, write_json
from pipeline.latents.rgb import LatentRGB
from pipeline.latents.store import read_latent_split
from pipeline.metrics.regression import constant_baselines
from pipeline.metrics.stats import mean_std
from pipeline.models.benchmark import ScorerSpec, run_task
from pipeline.models.early_exit import calibrate_and_evaluate
from pipeline.models.neural import build_scorer, save_scorer
from pipeline.report.figures import level_panels, prediction_scatter, tradeoff_chart
from pipeline.runtime import worker_plan
from stages.cli import fail, parse_args
from stages.common import start

log = logging.getLogger("stages.score")
METRICS = ("mae", "rmse", "spearman", "auroc_severe", "pred_std", "mae_0_2", "mae_2_4", "mae_4_5")
MAX_SCORE = 5.0


def check_labels(y: np.ndarray, split: str, severe_at: float, directory: str) -> None:
    """Stop before any training if the labels cannot support the benchmark."""
    bad = np.flatnonzero(~np.isfinite(y) | (y < 0) | (y > MAX_SCORE))
    if len(bad):
        fail(f"{directory}/{split}: row {bad[0]} has artifact score {float(y[bad[0]])!r}; scores must lie in 0..{MAX_SCORE:g}")
    severe = y >= severe_at
    if severe.all() or not severe.any():
        fail(f"{directory}/{split}: all {len(y)} scores are on one side of score.severe_at={severe_at:g}; "
             "AUROC and early exit need both severe and non-severe images")


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every metric per (scheduler, representation, model, level)."""
    keys = ["scheduler", "representation", "model", "t_frac", "heldout"]
    stats = rows.groupby(keys, sort=False)[list(METRICS)].agg(["mean", "std"])
    stats.columns = [f"{m}_{s}" for m, s in stats.columns]
    first = rows.groupby(keys, sort=False)[["timestep", "run_frac"]].first()
    out = first.join(stats).reset_index()
    out["series"] = np.where(out["representation"] == "latent", out["model"], out["representation"] + " " + out["model"])
    return out.fillna({f"{m}_std": 0.0 for m in METRICS})


def nested(summary: pd.DataFrame, baselines: dict, clean: pd.DataFrame, exits: dict) -> dict:
    """metrics.json: per scheduler → series → level → metric mean/std, plus baselines, clean, exit."""
    out = {"baseline_constant": baselines,
           "clean": {r.model: {m: {"mean": r[f"{m}_mean"], "std": r[f"{m}_std"]} for m in METRICS}
                     for _, r in clean.iterrows()}}
    for name, part in summary.groupby("scheduler", sort=False):
        block = {}
        for _, r in part.iterrows():
            level = f"{r.t_frac:g}" + (" heldout" if r.heldout else "")
            block.setdefault(r.series, {})[level] = {"timestep": r.timestep, "run_frac": r.run_frac,
                                                     **{m: {"mean": r[f"{m}_mean"], "std": r[f"{m}_std"]} for m in METRICS}}
        block["early_exit"] = exits[name]
        out[name] = block
    return out


def early_exit(results: list[dict], y_test: np.ndarray, cfg) -> tuple[dict, pd.DataFrame]:
    """Per scheduler: the operating point of each seed (chosen on one half of the test runs,
    measured on the other) as mean ± std, and the seed-mean calibration curves."""
    severe = y_test >= cfg.severe_at
    thresholds = np.round(np.linspace(0.0, MAX_SCORE, 101), 3)
    points, curves = {}, []
    for name in dict.fromkeys(r["scheduler"] for r in results):
        runs = [r for r in results if r["scheduler"] == name]
        chosen, seed_curves = [], []
        for r in runs:
            order = np.argsort(r["levels"]["run_fracs"])    # checks from pure noise towards the image
            evidence = r["test_pred"][cfg.exit_model][order].T
            run_fracs = np.asarray(r["levels"]["run_fracs"])[order]
            res = calibrate_and_evaluate(evidence, run_fracs, severe, thresholds, max_false_stop=cfg.exit_max_false_stop,
                                         min_checks=cfg.exit_min_checks, seed=r["seed"])
            chosen.append(res)
            seed_curves.append(res["curve"])
        curve = pd.concat(seed_curves).groupby("threshold", as_index=False).mean().assign(scheduler=name)
        curves.append(curve)
        ok = [c for c in chosen if c["threshold"] is not None]
        points[name] = {"model": cfg.exit_model, "max_false_stop": cfg.exit_max_false_stop, "seeds_with_a_point": len(ok),
                        **({k: mean_std(c[k] for c in ok) for k in ("threshold", "caught", "false_stop", "saved")} if ok else
                           {k: None for k in ("threshold", "caught", "false_stop", "saved")})}
    return points, pd.concat(curves, ignore_index=True)


def save_models(directory: Path, results: list[dict], first_seed: int, context: dict) -> None:
    for r in results:
        if r["seed"] != first_seed or "models" not in r:
            continue
        for kind, (config, state) in r["models"].items():
            model = build_scorer(config)
            model.load_state_dict(state, strict=True)
            save_scorer(directory / r["scheduler"] / kind, model, {
                **context, "scheduler": r["scheduler"], "model_name": kind, "seed": first_seed,
                "trained_timesteps": r["levels"]["timesteps"], "trained_t_fracs": r["levels"]["t_fracs"],
            })


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--rgb", default="models/latent_rgb.json"),
        p.add_argument("--models", default="models/scorers"),
        p.add_argument("--reports", default="reports/score"),
    ))
    params = start(args)
    noise, cfg, base_seed = params.noise, params.score, params.base.seed
    if not Path(args.rgb).is_file():
        fail(f"{args.rgb} is missing: run the analyze stage first (it fits the latent→RGB preview)")
    rgb = LatentRGB.load(args.rgb)
    train = read_latent_split(args.latents, "artifact_train")
    test = read_latent_split(args.latents, "artifact_test")
    y_train, y_test = (s.meta["severity"].to_numpy(float) for s in (train, test))
    check_labels(y_train, "artifact_train", cfg.severe_at, args.latents)
    check_labels(y_test, "artifact_test", cfg.severe_at, args.latents)

    spec = ScorerSpec(ridge_alpha=cfg.ridge_alpha, mlp_hidden=list(cfg.mlp_hidden), cnn_channels=list(cfg.cnn_channels),
                      t_dim=cfg.t_dim, level_steps=cfg.level_steps, cond_steps=cfg.cond_steps, batch_size=cfg.batch_size,
                      lr=cfg.lr, level_models=list(cfg.level_models), expert_model=cfg.expert_model,
                      rgb_models=list(cfg.rgb_models), max_score=MAX_SCORE, severe_at=cfg.severe_at)
    workers, threads = worker_plan(cfg.workers)
    seeds = [base_seed + i for i in range(cfg.seeds)]
    common = {"clean_train": train.latents, "y_train": y_train, "clean_test": test.latents, "y_test": y_test,
              "spec": spec, "threads": threads}
    tasks = [{**common, "kind": "clean", "seed": s} for s in seeds]
    tasks += [{**common, "kind": "noisy", "schedulers": list(noise.schedulers), "seed": s, "t_fracs": list(noise.t_fracs),
               "heldout_fracs": list(noise.heldout_fracs), "num_inference_steps": noise.num_inference_steps, "rgb": rgb,
               "keep_models": s == base_seed} for s in seeds]
    log.info("%d tasks (clean and noisy × %d seeds; schedulers %s) on %d worker(s); %d train / %d test images",
             len(tasks), len(seeds), noise.schedulers, workers, len(y_train), len(y_test))
    outputs = Parallel(n_jobs=workers, backend="loky", verbose=5)(delayed(run_task)(t) for t in tasks)
    results = [{**r, "scheduler": name, "seed": t["seed"]} for t, o in zip(tasks, outputs) for name, r in o.items()]

    rows = pd.DataFrame([row for r in results for row in r["rows"]])
    summary = summarise(rows)
    clean = summary[summary["representation"] == "clean"]
    noisy = summary[summary["representation"] != "clean"].copy()
    baselines = constant_baselines(y_train, y_test, severe_at=cfg.severe_at)
    sched_results = [r for r in results if r["scheduler"] != "clean"]
    exits, curves = early_exit(sched_results, y_test, cfg)

    best_clean = clean.sort_values("mae_mean").iloc[0]
    levels = {r["scheduler"]: r["levels"] for r in sched_results if r["seed"] == base_seed}
    wide = noisy[(noisy["series"] == "cnn_t") & ~noisy["heldout"]].pivot(index="t_frac", columns="scheduler", values="mae_mean")
    wide = wide.reset_index().assign(constant=baselines["train_mean"]["mae"], clean=float(best_clean["mae_mean"]))
    middle = sorted(noise.t_fracs)[len(noise.t_fracs) // 2]
    context = {"target": "artifact score 0-5", "max_score": MAX_SCORE, "input": "model_input",
               "input_note": "the latent as the U-Net receives it, after scheduler.scale_model_input",
               "latent_shape": list(train.shape), "scaling_factor": train.scaling_factor,
               "num_inference_steps": noise.num_inference_steps}

    with atomic_dir(args.models) as tmp:
        save_models(tmp, sched_results, base_seed, context)
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", nested(noisy, baselines, clean, exits))
        write_json(tmp / "levels.json", levels)
        rows.to_csv(tmp / "runs.csv", index=False, float_format="%.6g")
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        wide.to_csv(tmp / "mae.csv", index=False, float_format="%.6g")
        curves.to_csv(tmp / "exit.csv", index=False, float_format="%.6g")
        clean_line = {f"clean latent, best ({best_clean['model']})": float(best_clean["mae_mean"])}
        level_panels(noisy, metric="mae", path=tmp / "mae.png", ylabel="MAE (score 0-5)",
                     title=f"Artifact-score MAE vs noise level, mean ± std over {cfg.seeds} seeds",
                     baselines={"train mean": baselines["train_mean"]["mae"], "train median": baselines["train_median"]["mae"],
                                **clean_line})
        level_panels(noisy, metric="spearman", path=tmp / "spearman.png", ylabel="Spearman ρ",
                     title="Rank correlation with the true score vs noise level",
                     baselines={"constant predictor": 0.0, "clean latent, best": float(clean["spearman_mean"].max())})
        level_panels(noisy, metric="auroc_severe", path=tmp / "auroc.png", ylabel=f"AUROC (score ≥ {cfg.severe_at:g})",
                     title="Detecting severe artifacts vs noise level",
                     baselines={"chance": 0.5, "clean latent, best": float(clean["auroc_severe_mean"].max())})
        first = [r for r in sched_results if r["seed"] == base_seed]
        panels = [(f"{r['scheduler']} cnn_t, t_frac {middle:g}", y_test,
                   r["test_pred"]["cnn_t"][r["levels"]["t_fracs"].index(middle)]) for r in first]
        prediction_scatter(panels, tmp / "scatter.png", title=f"Predicted vs true score at the middle level (seed {base_seed})")
        tradeoff_chart(curves, exits, tmp / "early_exit.png",
                       title=f"Early exit on {cfg.exit_model}: seed-mean curves on the calibration half")
    for name, pt in exits.items():
        if pt["threshold"] is None:
            log.info("%s early exit: no threshold keeps false stops ≤ %.2f", name, cfg.exit_max_false_stop)
        else:
            log.info("%s early exit: threshold %.2f catches %.2f of severe runs, stops %.2f of others, saves %.2f of the run",
                     name, pt["threshold"]["mean"], pt["caught"]["mean"], pt["false_stop"]["mean"], pt["saved"]["mean"])


if __name__ == "__main__":
    main()
