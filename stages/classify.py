"""classify: scikit-learn classifiers on latents, real-only versus real + synthetic.

Each model in ``classify.models`` is trained on the real train latents ("real") and on the real
plus one synthetic replicate from the augment stage ("augmented"), once per replicate (seeds
seed, seed+1, …), and evaluated on the real test latents: balanced accuracy, macro-F1 and
per-class recall as mean ± std over replicates, with the majority-class baseline beside them.
Writes ``reports/classify/`` (metrics.json, results.csv, confusion.csv for DVC's confusion
plot, confusion.png, scores.png). Reads ``base``, ``classify``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from pipeline.io import atomic_dir, write_json
from pipeline.latents.store import read_latent_split
from pipeline.metrics.classification import classification_metrics, majority_baseline
from pipeline.metrics.stats import mean_std
from pipeline.models.classifiers import make_classifier
from pipeline.report.figures import bar_chart, confusion_heatmap
from stages.cli import parse_args
from stages.common import start

log = logging.getLogger("stages.classify")


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--synthetic", default="data/augmented"),
        p.add_argument("--reports", default="reports/classify"),
    ))
    params = start(args, torch=False)
    cfg, seed = params.classify, params.base.seed
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    synthetic = read_latent_split(args.synthetic, "synthetic")
    names = train.class_names
    X, y = train.flat(), train.meta["label"].to_numpy()
    X_test, y_test = test.flat(), test.meta["label"].to_numpy()
    X_syn, y_syn = synthetic.flat(), synthetic.meta["label"].to_numpy()
    replicate = synthetic.meta["replicate"].to_numpy() if len(synthetic.meta) else np.array([], dtype=int)
    n_rep = int(replicate.max()) + 1 if len(replicate) else 1
    method = "+".join(synthetic.info.get("methods", [])) or "none"
    regimes = ["real"] + (["augmented"] if len(synthetic.meta) else [])

    rows, confusion_pred = [], None
    for name in cfg.models:
        for regime in regimes:
            for r in range(n_rep):
                X_fit, y_fit = X, y
                if regime == "augmented":
                    keep = replicate == r
                    X_fit = np.vstack([X, X_syn[keep]])
                    y_fit = np.concatenate([y, y_syn[keep]])
                options = {"C": cfg.logreg_C, "trees": cfg.rf_trees, "neighbors": cfg.knn_neighbors}
                model = make_classifier(name, options, random_state=seed + r)
                pred = model.fit(X_fit, y_fit).predict(X_test)
                m = classification_metrics(y_test, pred, names)
                rows.append({"model": name, "regime": regime, "replicate": r,
                             "balanced_accuracy": m["balanced_accuracy"], "macro_f1": m["macro_f1"],
                             **{f"recall_{k}": v for k, v in m["per_class_recall"].items()}})
                if name == cfg.models[0] and regime == regimes[-1] and r == 0:
                    confusion_pred = pred
            last = pd.DataFrame(rows[-n_rep:])
            log.info("%s / %s: balanced accuracy %.3f ± %.3f", name, regime,
                     last["balanced_accuracy"].mean(), last["balanced_accuracy"].std(ddof=0))

    results = pd.DataFrame(rows)
    baseline = majority_baseline(y, y_test, names)
    metrics = {"augment_method": method, "baseline_majority": {k: baseline[k] for k in ("balanced_accuracy", "macro_f1")}}
    for name in cfg.models:
        metrics[name] = {}
        for regime in regimes:
            sub = results[(results["model"] == name) & (results["regime"] == regime)]
            metrics[name][regime] = {
                "balanced_accuracy": mean_std(sub["balanced_accuracy"]),
                "macro_f1": mean_std(sub["macro_f1"]),
                "per_class_recall": {k: float(sub[f"recall_{k}"].mean()) for k in names},
            }
        if "augmented" in regimes:
            gain = (results.query("model == @name and regime == 'augmented'")["balanced_accuracy"].to_numpy()
                    - results.query("model == @name and regime == 'real'")["balanced_accuracy"].to_numpy())
            metrics[name]["augmentation_gain_balanced_accuracy"] = mean_std(gain)

    summary = (results.groupby(["model", "regime"], sort=False)["balanced_accuracy"]
               .agg(["mean", "std"]).fillna(0.0).reset_index())
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)
        results.to_csv(tmp / "results.csv", index=False, float_format="%.6g")
        pd.DataFrame({"actual": [names[k] for k in y_test], "predicted": [names[k] for k in confusion_pred]}).to_csv(
            tmp / "confusion.csv", index=False)
        cm = confusion_matrix(y_test, confusion_pred, labels=np.arange(len(names)))
        confusion_heatmap(cm, names, tmp / "confusion.png", f"{cfg.models[0]}, {regimes[-1]} (replicate 0)")
        bar_chart(summary, x="model", y="mean", err="std", hue="regime", path=tmp / "scores.png",
                  title=f"Balanced accuracy on real test latents (augmentation: {method})",
                  baseline=baseline["balanced_accuracy"], baseline_label="majority class")


if __name__ == "__main__":
    main()
