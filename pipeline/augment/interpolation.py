"""Within-class interpolation: new latents on the lerp or slerp path between two real ones."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from pipeline.augment.base import LatentOverSampler
from pipeline.latents.geometry import lerp, slerp


def random_partners(members: np.ndarray, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs (first, second) of distinct entries of ``members`` (sorted indices of one
    class, at least 2; ``rng`` a NumPy RandomState): a partner is found by shifting 1..len-1 positions."""
    first = rng.choice(members, size=n, replace=True)
    pos = np.searchsorted(members, first)
    second = members[(pos + rng.randint(1, len(members), size=n)) % len(members)]
    return first, second


class Interpolation(LatentOverSampler):
    """Synthetic latents ``path(z_a, z_b, λ)`` for random pairs (a ≠ b) of one class.

    Unlike SMOTE, partners are any two members of the class, not k nearest neighbours, so the
    samples fill the class's convex hull (lerp) or its spherical counterpart (slerp).

    Parameters
    ----------
    sampling_strategy : str, float, dict or callable, default="auto"
        How many samples to generate per class, as in imbalanced-learn.
    kind : {"lerp", "slerp"}, default="lerp"
    lambda_min, lambda_max : float in [0, 1], default 0 and 1
        λ is drawn uniformly from [lambda_min, lambda_max]; λ = 0 returns z_a itself.
    random_state : int, RandomState instance or None, default=None
    """

    _parameter_constraints: dict = {
        **LatentOverSampler._parameter_constraints,
        "kind": [StrOptions({"lerp", "slerp"})],
        "lambda_min": [Interval(Real, 0, 1, closed="both")],
        "lambda_max": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, *, sampling_strategy="auto", kind="lerp", lambda_min=0.0, lambda_max=1.0, random_state=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.kind = kind
        self.lambda_min = lambda_min
        self.lambda_max = lambda_max
        self.random_state = random_state

    def _fit_resample(self, X, y):
        if self.lambda_min > self.lambda_max:
            raise ValueError(f"lambda_min={self.lambda_min} is larger than lambda_max={self.lambda_max}")
        rng = check_random_state(self.random_state)
        X_parts, y_parts = [X], [y]
        for klass, n_samples in self.sampling_strategy_.items():
            if n_samples == 0:
                continue
            members = np.flatnonzero(y == klass)
            if len(members) < 2:
                raise ValueError(f"class {klass!r} has {len(members)} sample(s); interpolation needs at least 2")
            first, second = random_partners(members, n_samples, rng)
            lam = rng.uniform(self.lambda_min, self.lambda_max, size=n_samples)
            X_parts.append(self._between(X[first], X[second], lam))
            y_parts.append(np.full(n_samples, klass, dtype=y.dtype))
        return np.vstack(X_parts).astype(X.dtype, copy=False), np.concatenate(y_parts)

    def _between(self, a: np.ndarray, b: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """The new rows at ``lam`` on the paths from rows ``a`` to rows ``b`` (subclasses change the path)."""
        return (slerp if self.kind == "slerp" else lerp)(a, b, lam)
