"""score: how early in a generation can the finished image's artifact score be predicted?

For every scheduler in ``noise.schedulers`` the artifact set's clean test latents are taken
through the latents that scheduler's sampling loop holds at each ``noise.t_fracs`` level of a run
that ends at them under an exact denoiser (``pipeline.latents.noising.oracle_trajectory``: the
forward-noising *proxy*), so every noisy latent keeps its image's known score. Scorers are trained
on the same marginal with fresh noise every minibatch (``pipeline.score.benchmark``): at each
level ridge / MLP / CNN (and ``score.rgb_models`` on the latent→RGB preview,
``models/latent_rgb.json``); one timestep-conditioned CNN (``cnn_t``) and a mixture of the
per-level experts (``mixture``) cover every level and are also scored at ``noise.heldout_fracs``. Clean latents give the upper bound;
train-mean and train-median predictors the baseline. Everything is fitted on ``artifact_train``
and scored on ``artifact_test``, over ``score.seeds`` seeds (trajectory noise, init, batches). The
same models also score the inversion runs of the ``runs`` stage, reported as scheduler
``<name>_run`` — a diagnostic only: the inverted noise carries the test image, so they give an
upper estimate (DDPM, whose runs end elsewhere, is the leak check). On the proxy and inversion
runs an early-exit rule runs ``score.exit_model`` over each run and stops when the running mean of
its predicted score passes a threshold chosen on half of the runs and measured on the other half.

**The fresh-noise study** (``pipeline.score.fresh``; the headline). The ``runs`` stage's generations
from fresh noise, labelled by the judge (``models/judge``): per seed, the proxy-trained ``cnn_t`` on
x_t, the clean CNN on x̂₀, and predictors fitted on the train runs (ridge per level on x_t and on
x̂₀, one timestep-conditioned CNN on x̂₀) are scored at every check level on the test runs, beside
the constant; early exit checks at t/T ≥ ``score.exit_from``, its threshold chosen on the
calibration runs with a false-stop guarantee (≤ ``score.exit_max_false_stop`` with probability
≥ 1 − ``score.exit_delta``: Learn then Test) and measured on the test runs. The best predictor is
chosen on the calibration runs. Metrics under ``fresh`` in ``metrics.json``; ``fresh.png`` and
``fresh_exit.png``.

Writes ``models/scorers/<scheduler>/{cnn_t,mixture}/`` (safetensors + config.json, first seed; the
``cnn_t`` is one model for every scheduler, saved beside each scheduler's mixture for convenience;
load with ``pipeline.score.nets.load_scorer(dir).score(latents, timestep)``) and
``reports/score/``. The grid (seeds × clean / noisy) runs on a local process pool of
``score.workers``, or with ``score.engine: ray`` as Ray tasks (``score.ray``; README: scale out).
Reads ``base``, ``noise``, ``score``, ``runs.fresh``.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from pipeline.io import atomic_dir, write_json
from pipeline.latents.rgb import LatentRGB
from pipeline.latents.store import read_latent_split
from pipeline.report.figures import level_panels, prediction_scatter, tradeoff_chart
from pipeline.score.figures import fresh_figures
from pipeline.runtime import worker_plan
from pipeline.score.benchmark import FRESH, ScorerSpec, ScorerTask, fresh_predictions, run_grid
from pipeline.score.fresh import load_fresh, tabulate_fresh
from pipeline.score.nets import load_saved
from pipeline.score.runs import RUN_SUFFIX, load_runs
from pipeline.score.summary import MAX_SCORE, check_labels, nested, proxy_vs_runs, save_models, tabulate
from stages.cli import fail, parse_args, stage_main
from stages.common import follow_geometry, start
from stages.live import log_curves

log = logging.getLogger("stages.score")


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--rgb", default="models/latent_rgb.json"),
        p.add_argument("--runs", default="data/runs", help="real sampler runs (the runs stage)"),
        p.add_argument("--judge", default="models/judge", help="the judge that labelled the fresh runs (the runs stage)"),
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
    params = follow_geometry(params, train.shape)   # recipes scaled to the latent side (pipeline.recipes)
    cfg = params.score
    y_train, y_test = (s.meta["severity"].to_numpy(float) for s in (train, test))
    try:
        check_labels(y_train, "artifact_train", cfg.severe_at, args.latents)
        check_labels(y_test, "artifact_test", cfg.severe_at, args.latents)
    except ValueError as exc:
        fail(str(exc))

    try:
        real_runs = load_runs(args.runs, noise.schedulers, test.meta["id"].to_numpy(),
                              len(noise.t_fracs) + len(noise.heldout_fracs))
        fresh = load_fresh(args.runs, noise.schedulers)
        judge_model, judge = load_saved(args.judge, what="judge")
    except (FileNotFoundError, ValueError, KeyError) as exc:
        fail(f"{exc}; re-run the runs stage")
    for name, fs in fresh.items():
        for role in ("calibration", "test"):
            sev = fs.label[fs.role == role] >= cfg.severe_at
            if sev.all() or not sev.any():
                log.warning("%s/fresh_%s_final: the judge rates %s of the %d %s runs severe (score.severe_at=%g): no early "
                            "exit for %s (a stronger U-Net or judge, or more runs.fresh runs)", args.runs, name,
                            "all" if sev.all() else "none", len(sev), role, cfg.severe_at, name)
    spec = ScorerSpec(ridge_alpha=cfg.ridge_alpha, mlp_hidden=list(cfg.mlp_hidden), cnn_channels=list(cfg.cnn_channels),
                      t_dim=cfg.t_dim, level_steps=cfg.level_steps, cond_steps=cfg.cond_steps, batch_size=cfg.batch_size,
                      lr=cfg.lr, level_models=list(cfg.level_models), expert_model=cfg.expert_model,
                      rgb_models=list(cfg.rgb_models), max_score=MAX_SCORE, severe_at=cfg.severe_at)
    workers, threads = worker_plan(cfg.workers)
    seeds = [base_seed + i for i in range(cfg.seeds)]
    common = {"clean_train": train.latents, "y_train": y_train, "clean_test": test.latents, "y_test": y_test,
              "spec": spec, "threads": threads}
    tasks = [ScorerTask("clean", s, **common, fresh=fresh) for s in seeds]
    tasks += [ScorerTask("noisy", s, **common, schedulers=tuple(noise.schedulers), t_fracs=tuple(noise.t_fracs),
                         heldout_fracs=tuple(noise.heldout_fracs), num_inference_steps=noise.num_inference_steps, rgb=rgb,
                         keep_models=s == base_seed, real_runs=real_runs, fresh=fresh) for s in seeds]
    if cfg.engine == "ray":
        from pipeline.distributed.score import run_grid_ray
        from stages.ray_join import join_ray

        log.info("%d tasks (clean and noisy × %d seeds; schedulers %s) as Ray tasks, %d at once; %d train / %d test "
                 "images", len(tasks), len(seeds), noise.schedulers, cfg.ray.actors, len(y_train), len(y_test))
        with contextlib.ExitStack() as stack:
            results = run_grid_ray(tasks, join_ray(stack, "score", cfg.ray, cfg.batch_size))
    else:
        log.info("%d tasks (clean and noisy × %d seeds; schedulers %s) on %d worker(s); %d train / %d test images",
                 len(tasks), len(seeds), noise.schedulers, workers, len(y_train), len(y_test))
        results = run_grid(tasks, workers)

    study = tabulate_fresh(fresh, fresh_predictions(results), severe_at=cfg.severe_at, exit_from=cfg.exit_from,
                           alpha=cfg.exit_max_false_stop, delta=cfg.exit_delta, judge=judge_model)
    study["judge"] = {"seed": judge.get("seed"), "test": judge.get("test"), "trained_on": judge.get("trained_on")}
    results = [r for r in results if r["scheduler"] != FRESH]
    t = tabulate(results, y_train, y_test, first_seed=base_seed, severe_at=cfg.severe_at, exit_model=cfg.exit_model,
                 max_false_stop=cfg.exit_max_false_stop, min_checks=cfg.exit_min_checks)
    middle = sorted(noise.t_fracs)[len(noise.t_fracs) // 2]
    context = {"target": "artifact score 0-5", "max_score": MAX_SCORE, "input": "model_input",
               "input_note": "the latent as the U-Net receives it, after scheduler.scale_model_input",
               "latent_shape": list(train.shape), "scaling_factor": train.scaling_factor,
               "num_inference_steps": noise.num_inference_steps}

    with atomic_dir(args.models) as tmp:
        save_models(tmp, t.runs, base_seed, context)
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", {**nested(t.noisy, t.baselines, t.clean, t.exits), "fresh": study})
        fresh_figures(study, tmp, constant_label="constant (train-run mean)")
        write_json(tmp / "levels.json", t.levels)
        t.rows.to_csv(tmp / "runs.csv", index=False, float_format="%.6g")
        t.summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        t.wide.to_csv(tmp / "mae.csv", index=False, float_format="%.6g")
        t.curves.to_csv(tmp / "exit.csv", index=False, float_format="%.6g")
        log_curves(tmp, {f"cnn_t/seed{r['seed']}": r["losses"]["cnn_t"] for r in results if r.get("losses")})
        proxy = t.noisy[~t.noisy["scheduler"].str.endswith(RUN_SUFFIX)]
        level_panels(proxy_vs_runs(t.noisy, cfg.exit_model), metric="mae", path=tmp / "runs.png", ylabel="MAE (score 0-5)",
                     title=f"{cfg.exit_model} on the forward-noising proxy vs on real sampler runs (U-Net), mean ± std over seeds",
                     baselines={"train mean": t.baselines["train_mean"]["mae"]})
        clean_line = {f"clean latent, best ({t.best_clean['model']})": float(t.best_clean["mae_mean"])}
        level_panels(proxy, metric="mae", path=tmp / "mae.png", ylabel="MAE (score 0-5)",
                     title=f"Artifact-score MAE vs noise level, mean ± std over {cfg.seeds} seeds",
                     baselines={"train mean": t.baselines["train_mean"]["mae"], "train median": t.baselines["train_median"]["mae"],
                                **clean_line})
        level_panels(proxy, metric="spearman", path=tmp / "spearman.png", ylabel="Spearman ρ",
                     title="Rank correlation with the true score vs noise level",
                     baselines={"constant predictor": 0.0, "clean latent, best": float(t.clean["spearman_mean"].max())})
        level_panels(proxy, metric="auroc_severe", path=tmp / "auroc.png", ylabel=f"AUROC (score ≥ {cfg.severe_at:g})",
                     title="Detecting severe artifacts vs noise level",
                     baselines={"chance": 0.5, "clean latent, best": float(t.clean["auroc_severe_mean"].max())})
        first = [r for r in t.runs if r["seed"] == base_seed and not r["scheduler"].endswith(RUN_SUFFIX)]
        panels = [(f"{r['scheduler']} cnn_t, t_frac {middle:g}", y_test,
                   r["test_pred"]["cnn_t"][r["levels"]["t_fracs"].index(middle)]) for r in first]
        prediction_scatter(panels, tmp / "scatter.png", title=f"Predicted vs true score at the middle level (seed {base_seed})")
        tradeoff_chart(t.curves, t.exits, tmp / "early_exit.png",
                       title=f"Early exit on {cfg.exit_model}: seed-mean curves on the calibration half")
    for name, block in study.items():
        if name == "judge":
            continue
        best = block["best"]["predictor"]
        ex = block["early_exit"].get(best) if best else None
        if ex:
            log.info("fresh %s runs: best predictor (on calibration) %s catches %.2f (lower bound %.2f) of severe test runs, "
                     "false stops %.3f (upper bound %.3f), saves %.2f of sampling", name, best, ex["caught"]["mean"],
                     ex["caught"]["lower"], ex["false_stop"]["mean"], ex["false_stop"]["upper"], ex["saved"]["mean"])
    for name, pt in t.exits.items():
        if pt["threshold"] is None:
            log.info("%s early exit: no threshold keeps false stops ≤ %.2f", name, cfg.exit_max_false_stop)
        else:
            log.info("%s early exit: threshold %.2f catches %.2f of severe runs, stops %.2f of others, saves %.2f of the run",
                     name, pt["threshold"]["mean"], pt["caught"]["mean"], pt["false_stop"]["mean"], pt["saved"]["mean"])


if __name__ == "__main__":
    main()
