"""Linear inversion: push real latents of other classes across a linear classifier's boundary.

A multinomial logistic regression is fitted on standardised latents. To make a sample of
target class ``t`` from a real sample ``z`` of class ``s``, ``z`` moves along
``d = w_t − w_s`` (in standardised space, mapped back) by the smallest step ``α ≥ 0`` after
which the classifier prefers ``t`` over every other class by ``margin`` logits. The scores
are linear in ``α``, so that step is exact: each competing class ``j`` gives one linear
inequality ``a_j + α·c_j ≥ margin``. A source whose feasible step is empty or larger than
``max_shift`` (root-mean-square change per standardised feature) is rejected and another is
drawn; ``flip_rate_`` is the fraction of attempts that reached the target.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from pipeline.augment.base import LatentOverSampler


def _class_weights(clf: LogisticRegression) -> tuple[np.ndarray, np.ndarray]:
    """(K, D) weights and (K,) biases whose argmax is the prediction (binary fits have one row)."""
    W, b = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2 and len(W) == 1:
        W, b = np.vstack([np.zeros_like(W[0]), W[0]]), np.array([0.0, b[0]])
    return W, b


class LinearInversion(LatentOverSampler):
    """Counterfactual over-sampling along a linear classifier's class-weight differences.

    Parameters
    ----------
    sampling_strategy : str, float, dict or callable, default="auto"
    C : float, default=0.01
        Inverse regularisation of the logistic regression.
    margin : float, default=1.0
        Logits by which the target class must beat every other class after the move.
    max_shift : float, default=3.0
        Largest accepted move, as RMS change per standardised feature.
    max_attempts : int, default=10
        Source draws per requested sample before giving up on a class.
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    flip_rate_ : float
        Accepted moves / attempted moves.
    shift_ : ndarray
        RMS standardised shift of each accepted sample.
    n_missing_ : dict
        Per class, how many requested samples no accepted move could provide.
    """

    _parameter_constraints: dict = {
        **LatentOverSampler._parameter_constraints,
        "C": [Interval(Real, 0, None, closed="neither")],
        "margin": [Interval(Real, 0, None, closed="left")],
        "max_shift": [Interval(Real, 0, None, closed="neither")],
        "max_attempts": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, sampling_strategy="auto", C=0.01, margin=1.0, max_shift=3.0, max_attempts=10,
                 random_state=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.C = C
        self.margin = margin
        self.max_shift = max_shift
        self.max_attempts = max_attempts
        self.random_state = random_state

    def _steps(self, Z: np.ndarray, src: np.ndarray, t: int, W: np.ndarray, b: np.ndarray):
        """Smallest feasible step for each row of Z (NaN where none) and the move directions."""
        D = W[t] - W[src]                                   # (m, d)
        G = W[t] - W                                        # (K, d): target minus each class
        A = Z @ G.T + (b[t] - b)                            # (m, K) current margins
        Cm = D @ G.T                                        # (m, K) margin change per unit step
        others = np.arange(len(W)) != t
        A, Cm = A[:, others], Cm[:, others]
        need = self.margin - A
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = need / Cm
        lower = np.where(Cm > 0, ratio, -np.inf).max(axis=1)
        upper = np.where(Cm < 0, ratio, np.inf).min(axis=1)
        stuck = ((Cm == 0) & (need > 0)).any(axis=1)
        alpha = np.maximum(lower, 0.0)
        ok = ~stuck & (alpha <= upper)
        shift = alpha * np.linalg.norm(D, axis=1) / np.sqrt(Z.shape[1])
        ok &= shift <= self.max_shift
        return np.where(ok, alpha, np.nan), D, shift

    def _fit_resample(self, X, y):
        rng = check_random_state(self.random_state)
        self.scaler_ = StandardScaler().fit(X)
        Z = self.scaler_.transform(X)
        self.classifier_ = LogisticRegression(C=self.C, max_iter=2000).fit(Z, y)
        W, b = _class_weights(self.classifier_)
        index = {k: i for i, k in enumerate(self.classifier_.classes_)}
        y_idx = np.array([index[k] for k in y])

        X_parts, y_parts, shifts = [X], [y], []
        attempts = accepted = 0
        self.n_missing_ = {}
        for klass, n_samples in self.sampling_strategy_.items():
            if n_samples == 0:
                continue
            t = index[klass]
            sources = np.flatnonzero(y_idx != t)
            made = []
            for _ in range(self.max_attempts):
                todo = n_samples - sum(len(m) for m in made)
                if todo <= 0:
                    break
                pick = rng.choice(sources, size=todo, replace=True)
                alpha, D, shift = self._steps(Z[pick], y_idx[pick], t, W, b)
                good = ~np.isnan(alpha)
                attempts += todo
                accepted += int(good.sum())
                made.append(Z[pick][good] + alpha[good, None] * D[good])
                shifts.append(shift[good])
            new = np.vstack(made)[:n_samples]
            self.n_missing_[klass] = n_samples - len(new)
            if len(new):
                X_parts.append(self.scaler_.inverse_transform(new))
                y_parts.append(np.full(len(new), klass, dtype=y.dtype))
        self.flip_rate_ = accepted / attempts if attempts else float("nan")
        self.shift_ = np.concatenate(shifts) if shifts else np.zeros(0)
        return np.vstack(X_parts).astype(X.dtype, copy=False), np.concatenate(y_parts)
