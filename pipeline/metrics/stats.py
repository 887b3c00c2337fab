"""Summaries over seeds/replicates: mean ± std of every number in a list of (nested) dicts."""

from __future__ import annotations

import numpy as np


def mean_std(values) -> dict:
    """``{"mean", "std"}`` (population std, 0 for one value) of a sequence of numbers."""
    v = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std())}


def aggregate(runs: list[dict]) -> dict:
    """Same-shaped dicts → one dict whose numeric leaves are ``mean_std`` over the runs."""
    out = {}
    for key, first in runs[0].items():
        if isinstance(first, dict):
            out[key] = aggregate([r[key] for r in runs])
        elif isinstance(first, (int, float, np.floating, np.integer)) and not isinstance(first, bool):
            out[key] = mean_std(r[key] for r in runs)
        else:
            out[key] = first
    return out
