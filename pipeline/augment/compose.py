"""Several augmenters producing one synthetic set, each fitted on the real data only."""

from __future__ import annotations

import numpy as np
from imblearn.over_sampling.base import BaseOverSampler
from sklearn.base import clone


class Composed(BaseOverSampler):
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
    """

    _parameter_constraints: dict = {**BaseOverSampler._parameter_constraints, "samplers": [list]}

    def __init__(self, samplers, *, sampling_strategy="auto"):
        super().__init__(sampling_strategy=sampling_strategy)
        self.samplers = samplers

    def _fit_resample(self, X, y):
        if not self.samplers:
            return X, y
        counts = dict(zip(*np.unique(y, return_counts=True)))
        m = len(self.samplers)
        X_parts, y_parts, self.sources_ = [X], [y], []
        for i, (name, sampler) in enumerate(self.samplers):
            # class k gets n_k // m new samples from each sampler, the first n_k % m samplers one more
            share = {k: counts[k] + n // m + (i < n % m) for k, n in self.sampling_strategy_.items()}
            X_res, y_res = clone(sampler).set_params(sampling_strategy=share).fit_resample(X, y)
            X_parts.append(X_res[len(X):])
            y_parts.append(y_res[len(X):])
            self.sources_ += [name] * (len(y_res) - len(X))
        self.sources_ = np.array(self.sources_, dtype=object)
        return np.vstack(X_parts).astype(X.dtype, copy=False), np.concatenate(y_parts)
