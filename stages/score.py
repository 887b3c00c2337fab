"""score: artifact-severity regressors on noisy latents, one per (scheduler, noise level).

For each scheduler's shards in ``data/noised`` and each ``t_frac`` in them, a ridge regressor
(standardised features, ``score.ridge_alpha``) is fitted on the ``train`` subset of the artifact
set and evaluated on its ``test`` subset: MAE, RMSE, Spearman ρ and the prediction's spread,
beside the train-mean and train-median constant predictors (a scorer that predicts ~2.5 for
everything shows up as MAE ≈ baseline, ρ ≈ 0, tiny spread). The clean latents (t_frac 0) give
the upper bound. Scorers are saved to ``models/scorers`` (safetensors + config.json; load with
``pipeline.models.scorers.load_scorers``). Writes ``reports/score/``. Reads ``base``, ``score``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline.data.artifacts import MAX_SEVERITY
from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import read_latent_split
from pipeline.metrics.regression import constant_baselines, regression_metrics
from pipeline.models.scorers import LinearScorer, save_scorers, scorer_key
from pipeline.report.figures import line_chart
from pipeline.shards import list_splits
from stages.cli import fail, parse_args
from stages.common import start

log = logging.getLogger("stages.score")


def fit_and_evaluate(train_X, train_y, test_X, test_y, alpha):
    scorer = LinearScorer.fit_ridge(train_X, train_y, alpha)
    pred = np.clip(scorer.predict(test_X), 0, MAX_SEVERITY)
    return scorer, regression_metrics(test_y, pred)


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--noised", default="data/noised"),
        p.add_argument("--models", default="models/scorers"),
        p.add_argument("--reports", default="reports/score"),
    ))
    params = start(args, torch=False)
    alpha = params.score.ridge_alpha
    schedulers = list_splits(args.noised)
    if not schedulers:
        fail(f"no noised latent shards in {args.noised}: run the noise stage first")

    clean_train = read_latent_split(args.latents, "artifact_train")
    clean_test = read_latent_split(args.latents, "artifact_test")
    y_train = clean_train.meta["severity"].to_numpy(float)
    y_test = clean_test.meta["severity"].to_numpy(float)
    baselines = constant_baselines(y_train, y_test)
    scorers, rows = {}, []
    scorer, m = fit_and_evaluate(clean_train.flat(), y_train, clean_test.flat(), y_test, alpha)
    scorers[scorer_key("clean", 0.0)] = scorer
    metrics = {"baseline_constant": baselines, "clean": m}
    for name in schedulers:
        noised = read_latent_split(args.noised, name)
        X, severity = noised.flat(), noised.meta["severity"].to_numpy(float)
        metrics[name] = {}
        for frac, part in noised.meta.groupby("t_frac", sort=True):
            idx, subset = part.index.to_numpy(), part["subset"].to_numpy()
            tr, te = idx[subset == "train"], idx[subset == "test"]
            scorer, m = fit_and_evaluate(X[tr], severity[tr], X[te], severity[te], alpha)
            scorers[scorer_key(name, float(frac))] = scorer
            metrics[name][f"{frac:g}"] = {**m, "timestep": float(part["timestep"].iloc[0])}
            rows.append({"scheduler": name, "t_frac": float(frac), **m})
        log.info("%s: MAE %s (constant %.3f)", name,
                 ", ".join(f"{k}: {v['mae']:.3f}" for k, v in metrics[name].items()), baselines["mean_mae"])

    curve = pd.DataFrame(rows)
    wide = curve.pivot(index="t_frac", columns="scheduler", values="mae").reset_index()
    wide.insert(1, "clean", metrics["clean"]["mae"])
    wide["constant"] = baselines["mean_mae"]
    with atomic_dir(args.models) as tmp:
        save_scorers(tmp, scorers, {"model": "ridge", "ridge_alpha": alpha, "target": "artifact severity 0-5",
                                    "latent_shape": list(clean_train.shape), "scaling_factor": clean_train.scaling_factor})
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)
        wide.to_csv(tmp / "mae.csv", index=False, float_format="%.6g")
        curve.to_csv(tmp / "curve.csv", index=False, float_format="%.6g")
        line_chart(curve, x="t_frac", y="mae", hue="scheduler", path=tmp / "mae.png",
                   title="Artifact-score MAE vs noise level (ridge on noisy latents)",
                   baselines={"constant (train mean)": baselines["mean_mae"], "clean latent (t=0)": metrics["clean"]["mae"]},
                   ylabel="MAE (severity 0-5)")


if __name__ == "__main__":
    main()
