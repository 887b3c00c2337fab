"""bench: the classifier benchmark's table, from the latent and pixel results.

Mean ± std over seeds of balanced accuracy and macro-F1 per (model, input, regime), the
minority classes' recall, training time, and beside every number its baselines: the majority
class, and the paired gain over the same model without augmentation (or, for reconstructions,
over original pixels) with an interval that carries the seed variance (t over seeds) and the test
set's (a paired bootstrap over test images), every gain of the table one family under Holm's
procedure, and a verdict only where the gain's interval at its Holm level excludes 0. Reads ``reports/bench_latent/<model>/`` (every model of
the matrix) and ``reports/bench_pixels/`` (results.csv, predictions.parquet); writes ``reports/bench/``
(metrics.json, summary.json, table.csv, recall.csv, latents.png, pixels.png). Reads ``base``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline.io import atomic_dir, read_json, write_json
from pipeline.latents.store import read_latent_split
from pipeline.metrics.classification import majority_baseline
from pipeline.classify.results import benchmark_sentence, minority_classes, summarise, verdict_family
from pipeline.report.figures import bar_chart
from stages.cli import fail, parse_args, stage_main
from stages.common import start

log = logging.getLogger("stages.bench")


def _metrics(table: pd.DataFrame) -> dict:
    out = {}
    for r in table.to_dict("records"):
        entry = {"balanced_accuracy": {"mean": r["balanced_accuracy_mean"], "std": r["balanced_accuracy_std"]},
                 "macro_f1": {"mean": r["macro_f1_mean"], "std": r["macro_f1_std"]},
                 "minority_recall": r["minority_recall_mean"]}   # training time: table.csv (not deterministic)
        if isinstance(r.get("verdict"), str):
            entry.update(gain={"mean": r["gain_mean"], "std": r["gain_std"], "lo": r["gain_lo"], "hi": r["gain_hi"],
                               "level": r["gain_level"], "ci95_lo": r["gain_lo95"], "ci95_hi": r["gain_hi95"],
                               "p": r["gain_p"], "p_holm": r["gain_p_holm"]},
                         verdict=r["verdict"], reference=r["reference"])
        out[f"{r['model']}/{r['input']}/{r['regime']}"] = entry
    return out


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--latents", default="data/latents"),
        p.add_argument("--latent-results", default="reports/bench_latent", help="one sub-directory per latent model"),
        p.add_argument("--pixel-results", default="reports/bench_pixels"),
        p.add_argument("--reports", default="reports/bench"),
    ))
    start(args, torch=False)
    train, test = read_latent_split(args.latents, "train"), read_latent_split(args.latents, "test")
    names, y = train.class_names, train.meta["label"].to_numpy()
    dirs = sorted(p for p in Path(args.latent_results).iterdir() if (p / "results.csv").is_file())
    dirs += [Path(args.pixel_results)] if (Path(args.pixel_results) / "results.csv").is_file() else []
    if not dirs:
        fail(f"no results.csv under {args.latent_results}/<model>/ or {args.pixel_results}: run bench_latent / bench_pixels")
    parts = [pd.read_csv(d / "results.csv") for d in dirs]
    rows = pd.concat([p for p in parts if len(p)], ignore_index=True)
    predictions = pd.concat([pd.read_parquet(d / "predictions.parquet") for d in dirs], ignore_index=True)
    minority = minority_classes(y, names)
    table = summarise(rows, minority, predictions, test.meta["label"].to_numpy())
    majority = majority_baseline(y, test.meta["label"].to_numpy(), names)
    sentence = benchmark_sentence(table, majority["balanced_accuracy"])
    idle = sorted({f"{d.name} {r}" for d in dirs if (d / "skipped.json").is_file()
                   for r in read_json(d / "skipped.json")["no_samples_needed"]})
    if idle:
        sentence += f" No samples needed (balanced classes), so not run: {', '.join(idle)}."
    metrics = {"baseline_majority": {k: majority[k] for k in ("balanced_accuracy", "macro_f1")},
               "verdicts": verdict_family(table), "results": _metrics(table)}
    recall = rows.groupby(["model", "input", "regime"], sort=False)[[f"recall:{c}" for c in names]].mean().reset_index()
    recall.columns = [c.removeprefix("recall:") for c in recall.columns]
    log.info("%s", sentence)
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", metrics)               # numbers only: DVC metrics
        write_json(tmp / "summary.json", {"summary": sentence, "minority_classes": minority, "no_samples_needed": idle})
        table.to_csv(tmp / "table.csv", index=False, float_format="%.6g")
        recall.to_csv(tmp / "recall.csv", index=False, float_format="%.4g")
        for input_, path, hue in (("latents", "latents.png", "regime"), ("pixels", "pixels.png", "input")):
            sub = table[table["input"].isin(["pixels", "reconstructed"] if input_ == "pixels" else [input_])]
            if len(sub):
                bar_chart(sub, x="model", y="balanced_accuracy_mean", err="balanced_accuracy_std", hue=hue,
                          path=tmp / path, title=f"Balanced accuracy on real test images ({input_}), mean ± std over seeds",
                          baseline=majority["balanced_accuracy"], baseline_label="majority class")


if __name__ == "__main__":
    main()
