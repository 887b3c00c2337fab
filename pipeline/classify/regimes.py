"""Training sets of the classifier benchmark: the regimes (its columns).

Every regime is built from the *training* split only, per seed, and every model is tested on
the same real test split:

* ``real``: the real training latents.
* ``real+<method>``: real plus the method's synthetic samples, raising every class to the
  majority count (imbalanced-learn's ``auto``).
* ``synthetic:<method>``: only synthetic samples, as many per class as the real class has
  (the augmenter is fitted on the real set, then the real rows are dropped).
* ``low_data``: at most ``cap`` real samples per class (a seeded subsample).
* ``low_data+<method>``: that subsample plus synthetic samples fitted on it alone, ``grow`` − 1
  times as many as each class has (the subsample is balanced, so ``auto`` would add nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.augment import make_augmenter, samples_needed, synthesize
from pipeline.augment.smote import check_neighbours


@dataclass(frozen=True)
class Regime:
    base: str                 # real | synthetic | low_data
    method: str | None = None

    @property
    def kind(self) -> str:
        """The regime kind it belongs to (real, augmented, synthetic, low_data, low_data_augmented)."""
        if self.base == "real":
            return "augmented" if self.method else "real"
        return "synthetic" if self.base == "synthetic" else "low_data_augmented" if self.method else "low_data"

    @property
    def name(self) -> str:
        if self.base == "synthetic":
            return f"synthetic:{self.method}"
        return self.base + (f"+{self.method}" if self.method else "")


GENERATED = ("class_guided", "guided_interpolation")   # pipeline.generate.oversample.GENERATED (no torch import here)


def regimes(kinds: Sequence[str], methods: Sequence[str], generated_kinds: Sequence[str] | None = None) -> list[Regime]:
    """The regimes of ``kinds`` (real, augmented, synthetic, low_data, low_data_augmented) × ``methods``;
    the generated methods (:data:`GENERATED`) only in ``generated_kinds`` when given (they cost U-Net
    sampling per sample, so the default keeps them to the small low-data regimes)."""
    out = [r for r in _all_regimes(kinds, methods)
           if generated_kinds is None or r.method not in GENERATED or r.kind in generated_kinds]
    return out


def _all_regimes(kinds: Sequence[str], methods: Sequence[str]) -> list[Regime]:
    out = []
    for kind in kinds:
        if kind == "real":
            out.append(Regime("real"))
        elif kind == "augmented":
            out += [Regime("real", m) for m in methods]
        elif kind == "synthetic":
            out += [Regime("synthetic", m) for m in methods]
        elif kind == "low_data":
            out.append(Regime("low_data"))
        elif kind == "low_data_augmented":
            out += [Regime("low_data", m) for m in methods]
        else:
            raise ValueError(f"unknown regime kind {kind!r}")
    return out


def cap_per_class(y: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``cap`` random samples of every class."""
    keep = [rng.permutation(np.flatnonzero(y == c))[:cap] for c in np.unique(y)]
    return np.sort(np.concatenate(keep))


def _subset_and_sampler(regime: Regime, y: np.ndarray, *, seed: int, cap: int, grow: int,
                        options: Mapping[str, Mapping], n_channels: int):
    """(row indices of the regime's real subset or None for all, its configured augmenter or None)."""
    idx = cap_per_class(y, cap, np.random.default_rng(seed)) if regime.base == "low_data" else None
    if regime.method is None:
        return idx, None
    y = y if idx is None else y[idx]
    counts = np.bincount(y)
    factor = {"synthetic": 2, "low_data": grow}.get(regime.base)
    strategy = {int(c): int(factor * counts[c]) for c in np.flatnonzero(counts)} if factor else "auto"
    if regime.method in GENERATED:   # latents made by the diffusion U-Net (pipeline.generate.oversample)
        from pipeline.generate.oversample import make_generated

        sampler = make_generated(regime.method, options[regime.method], random_state=seed, sampling_strategy=strategy)
    else:
        sampler = make_augmenter(regime.method, options[regime.method], random_state=seed,
                                 sampling_strategy=strategy, n_channels=n_channels)
    check_neighbours(sampler, y)   # a clear ValueError when a class is too small for the method's k-NN
    return idx, sampler


def synthetic_count(regime: Regime, y: np.ndarray, *, seed: int, cap: int, grow: int,
                    options: Mapping[str, Mapping], n_channels: int = 4) -> int:
    """How many synthetic rows :func:`training_set` would add for ``regime`` (0: no samples needed, as
    for ``real+<method>`` on balanced classes), without fitting the augmenter; raises the same
    ``ValueError`` as :func:`training_set` when a class is too small for a k-NN augmenter."""
    idx, sampler = _subset_and_sampler(regime, y, seed=seed, cap=cap, grow=grow, options=options, n_channels=n_channels)
    return 0 if sampler is None else samples_needed(sampler, y if idx is None else y[idx])


def training_set(regime: Regime, X: np.ndarray, y: np.ndarray, *, seed: int, cap: int, grow: int,
                 options: Mapping[str, Mapping], n_channels: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(X_fit, y_fit) of ``regime`` for ``seed``; ``options[method]`` configures each augmenter.
    Raises ``ValueError`` naming the classes when one is too small for a k-NN augmenter."""
    idx, sampler = _subset_and_sampler(regime, y, seed=seed, cap=cap, grow=grow, options=options, n_channels=n_channels)
    if idx is not None:
        X, y = X[idx], y[idx]
    if sampler is None:
        return X, y
    X_syn, y_syn = synthesize(sampler, X, y)
    if regime.base == "synthetic":
        return X_syn, y_syn
    return np.vstack([X, X_syn]), np.concatenate([y, y_syn])
