"""Gaussian jitter: over-sample a class by adding noise to bootstrapped samples of it."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from pipeline.augment.base import LatentOverSampler


class GaussianJitter(LatentOverSampler):
    """Synthetic latents ``z' = z + sigma · std_c · ε`` around randomly chosen real ones.

    Works on flattened latents (N, C·H·W) laid out channel-major, so channel ``c`` is the
    contiguous block ``[c·H·W, (c+1)·H·W)``; ``std_c`` is that channel's std over the data
    passed to ``fit_resample`` (the training split), so ``sigma`` is relative to it.

    Parameters
    ----------
    sampling_strategy : str, float, dict or callable, default="auto"
        How many samples to generate per class, as in imbalanced-learn.
    sigma : float, default=0.1
        Noise scale relative to the per-channel standard deviation.
    n_channels : int, default=4
        Latent channels; the feature count must be a multiple of it.
    random_state : int, RandomState instance or None, default=None
    """

    _parameter_constraints: dict = {
        **LatentOverSampler._parameter_constraints,
        "sigma": [Interval(Real, 0, None, closed="left")],
        "n_channels": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, sampling_strategy="auto", sigma=0.1, n_channels=4, random_state=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.sigma = sigma
        self.n_channels = n_channels
        self.random_state = random_state

    def _fit_resample(self, X, y):
        rng = check_random_state(self.random_state)
        n_features = X.shape[1]
        if n_features % self.n_channels:
            raise ValueError(f"{n_features} features is not a multiple of n_channels={self.n_channels}")
        per_channel = X.reshape(len(X), self.n_channels, -1)
        self.channel_std_ = per_channel.std(axis=(0, 2))
        scale = np.repeat(self.channel_std_, n_features // self.n_channels) * self.sigma

        X_parts, y_parts = [X], [y]
        for klass, n_samples in self.sampling_strategy_.items():
            if n_samples == 0:
                continue
            members = np.flatnonzero(y == klass)
            picks = rng.choice(members, size=n_samples, replace=True)
            X_parts.append(X[picks] + rng.standard_normal((n_samples, n_features)) * scale)
            y_parts.append(np.full(n_samples, klass, dtype=y.dtype))
        return np.vstack(X_parts).astype(X.dtype, copy=False), np.concatenate(y_parts)
