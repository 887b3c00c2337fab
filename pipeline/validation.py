"""The validation protocol: where every value chosen by looking at results is chosen.

A value picked because it looked best (a guidance scale, an interpolation strength) is picked on a
validation split carved from the training split, with sampling seeds and judge seeds disjoint from
the ones whose figures are reported; the test split only ever reports. A stage that chooses writes
:func:`chosen_by` beside the value, so the report can say, per headline, what chose it and on what.
"""

from __future__ import annotations

import numpy as np

SEED_OFFSET = 1000   # validation seeds are base + SEED_OFFSET + i; reported seeds are base + i (fewer than 1000)


def validation_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (fit, validation) indices of labels ``y``: ``fraction`` of each class (at least one
    member of every class with two or more) held out, drawn with ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    held = []
    for k in np.unique(y):
        members = np.flatnonzero(y == k)
        take = min(max(int(round(fraction * len(members))), 1), len(members) - 1) if len(members) > 1 else 0
        held.append(rng.choice(members, take, replace=False))
    val = np.sort(np.concatenate(held)).astype(int)
    return np.setdiff1d(np.arange(len(y)), val), val


def validation_seeds(base: int, n: int) -> list[int]:
    """``n`` sampling / judge seeds for validation, disjoint from the reported ``base + i``."""
    return [base + SEED_OFFSET + i for i in range(n)]


def chosen_by(what: str, rule: str, n_val: int, seeds: list[int]) -> dict:
    """The record of one choice, for a metrics file: what was chosen, by which rule, on what."""
    return {"what": what, "rule": rule, "on": f"validation split ({n_val} latents carved from train)",
            "seeds": seeds, "test_split_used": False}
