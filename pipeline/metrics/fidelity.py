"""Distribution distances between real and synthetic latents."""

from __future__ import annotations

import numpy as np
from scipy import linalg
from sklearn.decomposition import PCA


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to rows of ``a`` and ``b`` (same feature space)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


class PCAFrechet:
    """Fréchet distance in a PCA space fitted on real training latents.

    Full 1 000-dimensional covariances from a few hundred samples are rank-deficient; a
    low-dimensional projection fitted once on real data gives stable, comparable numbers.
    """

    def __init__(self, n_components: int = 32, random_state: int = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X_real: np.ndarray) -> "PCAFrechet":
        k = min(self.n_components, X_real.shape[0] - 1, X_real.shape[1])
        self.pca_ = PCA(n_components=k, random_state=self.random_state).fit(X_real)
        return self

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return frechet_distance(self.pca_.transform(a), self.pca_.transform(b))
