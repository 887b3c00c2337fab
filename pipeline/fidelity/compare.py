"""Every method's fidelity side by side: one flat row per method, the DVC metrics, the figure's panels."""

from __future__ import annotations

import pandas as pd

PANELS = [
    ("Fréchet distance to real test (latent PCA)", "frechet", "frechet_real"),
    ("Fréchet distance, decoded pixels", "frechet_pixels", "frechet_pixels_real_reconstructed"),
    ("k-NN precision (fidelity)", "precision", "precision_real"),
    ("k-NN recall (coverage)", "recall", "recall_real"),
    ("NN distance to train / real test's", "copy_ratio", 1.0),
]


def method_row(m: dict) -> dict:
    """One flat table row from a method's fidelity metrics file (means, stds and baselines)."""
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


def comparison(per_method: dict[str, dict]) -> tuple[pd.DataFrame, dict, list[str]]:
    """(table with one row per method that made samples, metrics.json content, methods that needed
    no samples) from each method's fidelity metrics, in the order of ``per_method``."""
    idle = [m for m, x in per_method.items() if x.get("no_samples_needed")]
    rows = [method_row(x) for m, x in per_method.items() if m not in idle]
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["method"])
    metrics = {row["method"]: {k: v for k, v in row.items() if k != "method" and not k.endswith("_std") and v == v}
               for row in table.to_dict("records")} | {m: {"no_samples_needed": 1} for m in idle}
    return table, metrics, idle
