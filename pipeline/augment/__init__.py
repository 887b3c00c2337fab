"""Latent-space augmenters, all imbalanced-learn samplers (``fit_resample``) on flattened latents.

Samplers append their synthetic rows after the real ones, so ``X_res[len(X):]`` is exactly
the synthetic set; :func:`synthesize` returns just that. :func:`make_augmenter` builds one
method from its own options (the ``augment.<method>`` params section); :func:`make_composed`
builds several into one :class:`~pipeline.augment.compose.Composed` sampler. ``random`` is
imbalanced-learn's ``RandomOverSampler`` (copies of real samples): the re-balancing reference, so
that "SMOTE helps" can be told apart from "re-balancing helps".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from imblearn.over_sampling import RandomOverSampler

from pipeline.augment.compose import Composed
from pipeline.augment.gaussian import GaussianJitter
from pipeline.augment.interpolation import Interpolation
from pipeline.augment.inversion import LinearInversion
from pipeline.augment.smote import VARIANTS, make_smote

METHODS = ("gaussian", "lerp", "slerp", *VARIANTS, "inversion", "random")


def make_augmenter(method: str, options: Mapping, *, random_state: int, sampling_strategy="auto", n_channels: int = 4):
    """The sampler for ``method`` configured by ``options`` (that method's own parameters)."""
    opts = dict(options)
    common = {"sampling_strategy": sampling_strategy, "random_state": random_state}
    if method == "gaussian":
        return GaussianJitter(n_channels=n_channels, **common, **opts)
    if method in ("lerp", "slerp"):
        return Interpolation(kind=method, **common, **opts)
    if method in VARIANTS:
        return make_smote(method, **common, **opts)
    if method == "inversion":
        return LinearInversion(**common, **opts)
    if method == "random":   # copies of real samples: the re-balancing reference every augmenter must beat
        return RandomOverSampler(**common, **opts)
    raise ValueError(f"unknown augmentation method {method!r}; known: {', '.join(METHODS)}")


def make_composed(methods: Sequence[str], options: Mapping[str, Mapping], *, random_state: int,
                  sampling_strategy="auto", n_channels: int = 4) -> Composed:
    """One sampler running each of ``methods`` on the real data (``options[method]`` configures it)."""
    samplers = [(m, make_augmenter(m, options[m], random_state=random_state, sampling_strategy=sampling_strategy,
                                   n_channels=n_channels)) for m in methods]
    return Composed(samplers, sampling_strategy=sampling_strategy)


def samples_needed(sampler, y: np.ndarray) -> int:
    """How many samples ``sampler``'s ``sampling_strategy`` asks for on labels ``y`` (0 on a balanced
    set under ``auto``: the method then has nothing to do, which callers report as "no samples needed")."""
    from imblearn.utils import check_sampling_strategy

    return int(sum(check_sampling_strategy(sampler.sampling_strategy, y, "over-sampling").values()))


def synthesize(sampler, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Only the synthetic rows ``sampler.fit_resample`` adds to (X, y); empty for ``None``."""
    if sampler is None:
        return X[:0], y[:0]
    X_res, y_res = sampler.fit_resample(X, y)
    return X_res[len(X) :], y_res[len(X) :]
