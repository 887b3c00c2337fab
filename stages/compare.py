"""compare: every augmentation method's fidelity side by side (the ``fidelity@<method>`` outputs).

Reads ``reports/fidelity/<method>/metrics.json`` for each method in ``compare.methods`` and
writes ``reports/compare/``: ``metrics.json`` (one entry per method), ``table.csv`` (one row
per method, real baselines in their own columns) and ``fidelity.png`` (one panel per metric,
each bar beside its real baseline). Reads ``compare``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline.io import atomic_dir, read_json, write_json
from pipeline.report.figures import grouped_bars
from stages.cli import fail, parse_args
from stages.common import start

log = logging.getLogger("stages.compare")

PANELS = [
    ("Fréchet distance to real test (latent PCA)", "frechet", "frechet_real"),
    ("Fréchet distance, decoded pixels", "frechet_pixels", "frechet_pixels_real_reconstructed"),
    ("k-NN precision (fidelity)", "precision", "precision_real"),
    ("k-NN recall (coverage)", "recall", "recall_real"),
    ("NN distance to train / real test's", "copy_ratio", 1.0),
]


def method_row(m: dict) -> dict:
    """One flat table row from a fidelity@<method> metrics file (means, stds and baselines)."""
    row = {"method": m["method"], "n_synthetic": m["n_synthetic_per_replicate"]}
    for key in ("frechet", "precision", "recall"):
        row[key] = m[key]["synthetic"]["mean"]
        row[f"{key}_std"] = m[key]["synthetic"]["std"]
        row[f"{key}_real"] = m[key]["real_train"]["mean"]
    row["frechet_ratio"] = row["frechet"] / row["frechet_real"]
    row["frechet_pixels"] = m["frechet_pixels"]["synthetic"]
    row["frechet_pixels_real_reconstructed"] = m["frechet_pixels"]["real_train_reconstructed"]
    row["frechet_pixels_real"] = m["frechet_pixels"]["real_train"]
    row["copy_ratio"] = m["copying"]["median_ratio"]["mean"]
    row["copy_ratio_std"] = m["copying"]["median_ratio"]["std"]
    row["near_copy_fraction"] = m["copying"]["near_copy_fraction"]["mean"]
    row["near_copy_fraction_real"] = m["copying"]["near_copy_fraction_real_test"]["mean"]
    row["label_agreement"] = m["label_agreement"]["synthetic"]["mean"]
    row["label_agreement_real"] = m["label_agreement"]["real_test"]["mean"]
    row["flip_rate"] = m["flip_rate"]["mean"] if "flip_rate" in m else float("nan")
    return row


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--fidelity", default="reports/fidelity"),
        p.add_argument("--reports", default="reports/compare"),
    ))
    params = start(args, torch=False)
    methods = params.compare.methods
    paths = {m: Path(args.fidelity) / m / "metrics.json" for m in methods}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        fail(f"no fidelity metrics for {missing}: run `dvc repro fidelity` (compare.methods lists them)")
    per_method = {m: read_json(p) for m, p in paths.items()}
    idle = [m for m in methods if per_method[m].get("no_samples_needed")]
    if idle:
        log.info("no samples needed (skipped in the table): %s", ", ".join(idle))
    rows = [method_row(per_method[m]) for m in methods if m not in idle]
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["method"])
    with atomic_dir(args.reports) as tmp:
        write_json(tmp / "metrics.json", {
            row["method"]: {k: v for k, v in row.items() if k != "method" and not k.endswith("_std") and v == v}
            for row in table.to_dict("records")} | {m: {"no_samples_needed": 1} for m in idle})
        table.to_csv(tmp / "table.csv", index=False, float_format="%.6g")
        if len(table):
            grouped_bars(table, panels=PANELS, x="method", path=tmp / "fidelity.png",
                         title="Synthetic latents by method (bars, ± std over replicates) vs class-matched real data (ticks)")
    if table.empty:
        log.info("no method made samples (balanced classes under augment.sampling_strategy): nothing to compare")
        return
    best = table.loc[table["frechet"].idxmin()]
    log.info("%d methods compared; closest to real test: %s (Fréchet %.2f vs real %.2f)", len(table), best["method"],
             best["frechet"], best["frechet_real"])


if __name__ == "__main__":
    main()
