"""Latent-space augmenters, all imbalanced-learn samplers (``fit_resample``) on flattened latents.

Samplers append their synthetic rows after the real ones, so ``X_res[len(X):]`` is exactly
the synthetic set; :func:`synthesize` returns just that.
"""

from __future__ import annotations

import numpy as np
from imblearn.over_sampling import SMOTE

from pipeline.augment.gaussian import GaussianJitter

METHODS = ("none", "gaussian", "smote")


def make_augmenter(method: str, *, random_state: int, sampling_strategy="auto", sigma=0.1, k_neighbors=5, n_channels=4):
    """The sampler for ``method`` (``none`` → ``None``: no synthetic data)."""
    if method == "none":
        return None
    if method == "gaussian":
        return GaussianJitter(
            sampling_strategy=sampling_strategy, sigma=sigma, n_channels=n_channels, random_state=random_state
        )
    if method == "smote":
        return SMOTE(sampling_strategy=sampling_strategy, k_neighbors=k_neighbors, random_state=random_state)
    raise ValueError(f"unknown augmentation method {method!r}; known: {', '.join(METHODS)}")


def synthesize(sampler, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Only the synthetic rows ``sampler.fit_resample`` adds to (X, y); empty for ``None``."""
    if sampler is None:
        return X[:0], y[:0]
    X_res, y_res = sampler.fit_resample(X, y)
    return X_res[len(X) :], y_res[len(X) :]
