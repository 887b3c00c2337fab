"""Several augmenters producing one synthetic set, each fitted on the real data only."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from pipeline.augment.base import LatentOverSampler


class Composed(LatentOverSampler):
    """Split each class's requested synthetic count evenly over ``samplers`` and concatenate.

    Every sampler is fitted on the real ``(X, y)`` passed to ``fit_resample`` (never on another
    sampler's output), so ``[smote, gaussian]`` with ``sampling_strategy="auto"`` still ends
    balanced: half of each class's deficit from SMOTE, half from gaussian jitter. Samplers that
    choose their own counts (ADASYN) may land a few samples off.

    Parameters
    ----------
    samplers : list of (name, sampler)
        imbalanced-learn over-samplers; their own ``sampling_strategy`` is replaced.
    sampling_strategy : str, float, dict or callable, default="auto"
    random_state : int, RandomState instance or None, default=None
        None keeps each sampler's own ``random_state``; otherwise each sampler is given its own seed
        drawn from it (in the order of ``samplers``), so one seed reproduces the whole set.
    """

    _parameter_constraints: dict = {**LatentOverSampler._parameter_constraints, "samplers": [list]}

    def __init__(self, samplers, *, sampling_strategy="auto", random_state=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.samplers = samplers
        self.random_state = random_state

    def _fit_resample(self, X, y):
        if not self.samplers:
            return X, y
        counts = dict(zip(*np.unique(y, return_counts=True)))
        m = len(self.samplers)
        seeds = (None if self.random_state is None
                 else check_random_state(self.random_state).randint(np.iinfo(np.int32).max, size=m))
        X_parts, y_parts, self.sources_ = [X], [y], []
        for i, (name, sampler) in enumerate(self.samplers):
            # class k gets n_k // m new samples from each sampler, the first n_k % m samplers one more
            share = {k: counts[k] + n // m + (i < n % m) for k, n in self.sampling_strategy_.items()}
            sampler = clone(sampler).set_params(sampling_strategy=share)
            if seeds is not None:
                sampler.set_params(random_state=int(seeds[i]))
            X_res, y_res = sampler.fit_resample(X, y)
            X_parts.append(X_res[len(X):])
            y_parts.append(y_res[len(X):])
            self.sources_ += [name] * (len(y_res) - len(X))
        self.sources_ = np.array(self.sources_, dtype=object)
        return np.vstack(X_parts).astype(X.dtype, copy=False), np.concatenate(y_parts)
