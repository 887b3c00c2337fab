"""The SMOTE family from imbalanced-learn, wrapped (not re-implemented) with clear errors.

``SMOTE`` interpolates towards one of a sample's k nearest same-class neighbours;
``BorderlineSMOTE`` does so only for minority samples near the class border ("danger"
samples); ``ADASYN`` generates more around samples whose neighbourhoods are dominated by other
classes. All three work on flattened latents.
"""

from __future__ import annotations

import numpy as np
from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE
from imblearn.utils import check_sampling_strategy

VARIANTS = {"smote": SMOTE, "borderline_smote": BorderlineSMOTE, "adasyn": ADASYN}


def make_smote(variant: str, *, random_state: int, sampling_strategy="auto", **kwargs):
    """``variant`` in :data:`VARIANTS`; ``kwargs`` are that class's own parameters."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown SMOTE variant {variant!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[variant](sampling_strategy=sampling_strategy, random_state=random_state, **kwargs)


def check_neighbours(sampler, y: np.ndarray) -> None:
    """Fail with the class and counts when a class to over-sample has too few members for k-NN."""
    k = getattr(sampler, "k_neighbors", None) or getattr(sampler, "n_neighbors", None)
    if not isinstance(k, int):
        return
    counts = dict(zip(*np.unique(y, return_counts=True)))
    wanted = check_sampling_strategy(sampler.sampling_strategy, y, "over-sampling")
    small = {int(c): int(counts[c]) for c, n in wanted.items() if n > 0 and counts[c] <= k}
    if small:
        raise ValueError(
            f"{type(sampler).__name__} needs more than {k} samples per class (its neighbour count) but classes "
            f"{small} have fewer: lower the method's k_neighbors/n_neighbors or add data")
