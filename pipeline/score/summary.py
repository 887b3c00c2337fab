"""The scorer benchmark's per-seed rows reshaped into tables, metrics and the early-exit operating points.

:func:`check_labels` refuses labels the benchmark cannot use; :func:`summarise` gives mean and
std over seeds per (scheduler, representation, model, level); :func:`nested` the DVC metrics;
:func:`early_exit` each scheduler's operating point (chosen on one half of the test runs,
measured on the other) and calibration curves; :func:`save_models` writes the deployable
cross-level scorers of the first seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.metrics.regression import constant_baselines
from pipeline.metrics.stats import mean_std
from pipeline.score.early_exit import calibrate_and_evaluate
from pipeline.score.nets import build_scorer, save_scorer
from pipeline.score.runs import RUN_SUFFIX

METRICS = ("mae", "rmse", "spearman", "auroc_severe", "pred_std", "mae_0_2", "mae_2_4", "mae_4_5")
MAX_SCORE = 5.0


def check_labels(y: np.ndarray, split: str, severe_at: float, directory: str) -> None:
    """Raise ``ValueError`` (naming the split and row) when the labels cannot support the benchmark."""
    bad = np.flatnonzero(~np.isfinite(y) | (y < 0) | (y > MAX_SCORE))
    if len(bad):
        raise ValueError(f"{directory}/{split}: row {bad[0]} has artifact score {float(y[bad[0]])!r}; scores must lie in 0..{MAX_SCORE:g}")
    severe = y >= severe_at
    if severe.all() or not severe.any():
        raise ValueError(f"{directory}/{split}: all {len(y)} scores are on one side of score.severe_at={severe_at:g}; "
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


def proxy_vs_runs(noisy: pd.DataFrame, model: str) -> pd.DataFrame:
    """``model``'s rows of every scheduler that has real sampler runs, one ``scheduler`` per panel with
    ``series`` ``proxy`` and ``sampler run`` (for :func:`~pipeline.report.figures.level_panels`)."""
    part = noisy[noisy["series"] == model].copy()
    is_run = part["scheduler"].str.endswith(RUN_SUFFIX)
    with_runs = set(part.loc[is_run, "scheduler"].str.removesuffix(RUN_SUFFIX))
    part["series"] = np.where(is_run, "sampler run", "proxy")
    part["scheduler"] = part["scheduler"].str.removesuffix(RUN_SUFFIX)
    return part[part["scheduler"].isin(with_runs)].sort_values(["scheduler", "series"], kind="stable")


def early_exit(results: list[dict], y_test: np.ndarray, *, exit_model: str, severe_at: float, max_false_stop: float,
               min_checks: int) -> tuple[dict, pd.DataFrame]:
    """Per scheduler: the operating point of each seed (chosen on one half of the test runs,
    measured on the other) as mean ± std, and the seed-mean calibration curves."""
    severe = y_test >= severe_at
    thresholds = np.round(np.linspace(0.0, MAX_SCORE, 101), 3)
    points, curves = {}, []
    for name in dict.fromkeys(r["scheduler"] for r in results):
        runs = [r for r in results if r["scheduler"] == name]
        chosen, seed_curves = [], []
        for r in runs:
            order = np.argsort(r["levels"]["run_fracs"])    # checks from pure noise towards the image
            evidence = r["test_pred"][exit_model][order].T
            run_fracs = np.asarray(r["levels"]["run_fracs"])[order]
            res = calibrate_and_evaluate(evidence, run_fracs, severe[r["index"]] if "index" in r else severe, thresholds, max_false_stop=max_false_stop,
                                         min_checks=min_checks, seed=r["seed"])
            chosen.append(res)
            seed_curves.append(res["curve"])
        curve = pd.concat(seed_curves).groupby("threshold", as_index=False).mean().assign(scheduler=name)
        curves.append(curve)
        ok = [c for c in chosen if c["threshold"] is not None]
        points[name] = {"model": exit_model, "max_false_stop": max_false_stop, "seeds_with_a_point": len(ok),
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


@dataclass
class ScorerTables:
    runs: list[dict]            # the noisy results, one per (scheduler, seed)
    rows: pd.DataFrame          # one row per (scheduler, representation, model, level, seed)
    summary: pd.DataFrame       # mean / std over seeds (summarise)
    clean: pd.DataFrame         # its clean-latent rows (the upper bound)
    noisy: pd.DataFrame         # the rest
    best_clean: pd.Series       # the clean model with the lowest MAE
    baselines: dict             # constant predictors (train mean, train median)
    exits: dict                 # early-exit operating point per scheduler
    curves: pd.DataFrame        # early-exit calibration curves
    levels: dict                # scheduler → its training levels (first seed)
    wide: pd.DataFrame          # cnn_t MAE per level (rows) and scheduler (columns) beside the baselines


def tabulate(results: list[dict], y_train: np.ndarray, y_test: np.ndarray, *, first_seed: int, severe_at: float,
             exit_model: str, max_false_stop: float, min_checks: int) -> ScorerTables:
    """Every table, metric and operating point of the benchmark from :func:`~pipeline.score.benchmark.run_grid`'s results."""
    rows = pd.DataFrame([row for r in results for row in r["rows"]])
    summary = summarise(rows)
    clean = summary[summary["representation"] == "clean"]
    noisy = summary[summary["representation"] != "clean"].copy()
    baselines = constant_baselines(y_train, y_test, severe_at=severe_at)
    runs = [r for r in results if r["scheduler"] != "clean"]
    exits, curves = early_exit(runs, y_test, exit_model=exit_model, severe_at=severe_at, max_false_stop=max_false_stop,
                               min_checks=min_checks)
    best_clean = clean.sort_values("mae_mean").iloc[0]
    levels = {r["scheduler"]: r["levels"] for r in runs if r["seed"] == first_seed}
    wide = noisy[(noisy["series"] == "cnn_t") & ~noisy["heldout"]].pivot(index="t_frac", columns="scheduler", values="mae_mean")
    wide = wide.reset_index().assign(constant=baselines["train_mean"]["mae"], clean=float(best_clean["mae_mean"]))
    return ScorerTables(runs, rows, summary, clean, noisy, best_clean, baselines, exits, curves, levels, wide)
