"""How good a set of generated latents is, against real latents: realism, diversity, novelty.

:class:`SampleReference` is fitted once on the real *training* latents (a PCA space, the
nearest-training-neighbour index) and holds a fixed random subset of real *test* latents of the
size every generated set is compared at (k-NN metrics and the Fréchet distance depend on n).
:meth:`SampleReference.measure` gives, for one generated set:

- ``frechet``: Fréchet distance to the real test subset in the PCA space (biased upward at small n:
  compare only at equal n, beside the real training subset's floor at the same n);
- ``frechet_inf``: the same extrapolated to n → ∞ (FD∞, Chong & Forsyth 2020) and ``kid``, the
  unbiased kernel distance, in the same space (coordinates divided by their RMS on train):
  comparable across sets of different n;
- ``precision`` / ``recall`` / ``density`` / ``coverage``: the k-NN manifold metrics of Naeem et
  al. 2020, computed by the authors' package ``prdc`` on the full flattened latents (density and
  coverage are the versions robust to outliers; 1 is what a fresh draw of real data scores on
  average). Not in the PCA space: a projection hides everything off the real data's main
  directions, and isotropic noise then lands inside the real manifold (precision 1);
- ``copy_ratio``: median nearest-training-neighbour distance of the samples over that of the real
  test subset (< 1: closer to training data than new real data is; ≪ 1: copies), and
  ``near_copy_fraction``: the share closer to a training latent than 95 % of real test latents are.

The same metrics of a real *training* subset of the same size (the best a generator can do) and
of a per-element Gaussian fitted to the training latents (a generator that learned only the
marginals) are the baselines beside every number.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from prdc import compute_prdc
from sklearn.neighbors import NearestNeighbors

from pipeline.metrics.fidelity import (
    PCAFrechet,
    copying_summary,
    frechet_distance,
    frechet_infinity,
    kernel_distance,
)

METRICS = ("frechet", "frechet_inf", "kid", "precision", "recall", "density", "coverage", "copy_ratio",
           "near_copy_fraction")


class SampleReference:
    def __init__(self, train: np.ndarray, test: np.ndarray, *, n: int, components: int = 32, k: int = 5, seed: int = 0):
        train, test = (np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in (train, test))
        if n < k + 2:
            raise ValueError(f"comparing {n} samples with k = {k} neighbours needs n ≥ {k + 2}")
        if n > min(len(train), len(test)):
            raise ValueError(f"n = {n} samples, but only {len(train)} train and {len(test)} test latents to compare with")
        rng = np.random.default_rng(seed)
        self.n, self.k, self.train = n, k, train
        self.space = PCAFrechet(components, random_state=seed).fit(train)
        self.test_idx = np.sort(rng.choice(len(test), n, replace=False))
        self.test = test[self.test_idx]
        self.P_test = self.space.pca_.transform(self.test)
        # KID's cubic kernel on raw PCA coordinates (variance ≈ 20 each) is dominated by a few huge
        # products; one scale for every coordinate (their RMS on train) keeps x·y/d of order 1
        self.kid_scale = float(np.sqrt(self.space.pca_.explained_variance_.mean()))
        self.nearest = NearestNeighbors(n_neighbors=1).fit(train)
        self.d_test = self.nearest.kneighbors(test[self.test_idx])[0][:, 0]
        self._mean, self._std = train.mean(0), train.std(0)

    def project(self, x: np.ndarray) -> np.ndarray:
        return self.space.pca_.transform(np.asarray(x, dtype=np.float64).reshape(len(x), -1))

    def plane(self, x: np.ndarray) -> np.ndarray:
        """The first two PCA coordinates of latents shaped (..., C, H, W): (..., 2)."""
        lead = x.shape[:-3]
        return self.project(x.reshape(-1, *x.shape[-3:]))[:, :2].reshape(*lead, 2)

    def measure(self, samples: np.ndarray) -> dict:
        """The metrics of :data:`METRICS` for ``samples`` (any shape with rows first; exactly ``n`` rows)."""
        flat = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
        if len(flat) != self.n:
            raise ValueError(f"expected {self.n} samples (the reference size), got {len(flat)}")
        if not np.isfinite(flat).all():
            return {m: float("nan") for m in METRICS}
        P = self.space.pca_.transform(flat)
        with contextlib.redirect_stdout(io.StringIO()):   # prdc prints the set sizes
            pr = compute_prdc(self.test, flat, nearest_k=self.k)
        copying = copying_summary(self.nearest.kneighbors(flat)[0][:, 0], self.d_test)
        return {"frechet": frechet_distance(P, self.P_test), "frechet_inf": frechet_infinity(P, self.P_test),
                "kid": kernel_distance(P / self.kid_scale, self.P_test / self.kid_scale),
                **{m: float(pr[m]) for m in pr},
                "copy_ratio": copying["median_ratio"], "near_copy_fraction": copying["near_copy_fraction"]}

    def far_fraction(self, samples: np.ndarray, quantile: float = 0.95) -> float:
        """The share of ``samples`` farther from every training latent than ``quantile`` of the real
        test subset is (a nearest-neighbour out-of-distribution rate; real test data scores 1 − quantile)."""
        flat = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
        if not np.isfinite(flat).all():
            return float("nan")
        return float((self.nearest.kneighbors(flat)[0][:, 0] > np.quantile(self.d_test, quantile)).mean())

    def baselines(self, seed: int) -> dict[str, dict]:
        """``real_train``: a random training subset of size n; ``gaussian``: n draws of a per-element
        Gaussian fitted to the training latents (a copy ratio of a training subset is 0 by definition)."""
        rng = np.random.default_rng(seed)
        real = self.train[rng.choice(len(self.train), self.n, replace=False)]
        gauss = self._mean + self._std * rng.standard_normal((self.n, self.train.shape[1]))
        return {"real_train": self.measure(real), "gaussian": self.measure(gauss)}


def path_smoothness(path: np.ndarray, divide_by: float = 1.0) -> dict:
    """How evenly a path of P points per row (N, P, D) moves from its first to its last point
    (``path / divide_by``: uint8 pixels with 255 are converted one row at a time, so memory holds
    one path in float64, not all of them).

    ``jump_ratio``: largest step over the mean step (1 = evenly spaced; large = the path jumps);
    ``length_ratio``: path length over the straight-line distance between its ends (1 = straight)."""
    steps = np.empty((len(path), path.shape[1] - 1))
    chord = np.empty(len(path))
    for i, row in enumerate(path):
        row = row.astype(np.float64) / divide_by
        steps[i] = np.linalg.norm(np.diff(row, axis=0), axis=1)       # (P-1,)
        chord[i] = np.linalg.norm(row[-1] - row[0])
    mean = steps.mean(1)
    return {"jump_ratio": float(np.mean(steps.max(1) / np.maximum(mean, 1e-12))),
            "length_ratio": float(np.mean(steps.sum(1) / np.maximum(chord, 1e-12)))}

