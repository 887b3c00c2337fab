"""The paired gain in balanced accuracy of one method over its reference, with both its variance parts.

A gain of method A over reference B, both fitted with the same seeds and tested on the same test
images, varies for two reasons: the seed (synthetic draws, subsample, initialisation) and the
finite test set (another test set of the same size would give other numbers). The seed part comes
from the spread of the per-seed gains; the test-set part from a bootstrap over test images (the same
images for A and B: the comparison stays paired) of the seed-mean gain. Both go into one
:class:`~pipeline.metrics.verdicts.Estimate`, whose t-interval and Holm-controlled verdict
:mod:`pipeline.metrics.verdicts` gives.
"""

from __future__ import annotations

import numpy as np

from pipeline.metrics.verdicts import Estimate, seed_estimate


def _balanced_accuracy_draws(weights: np.ndarray, correct: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Balanced accuracy under each row of ``weights`` (B, N) (test-image multiplicities), for one
    prediction vector whose per-image correctness is ``correct`` (N,); classes absent from a draw
    are left out, as scikit-learn's ``balanced_accuracy_score`` does."""
    hits = weights @ (onehot * correct[:, None])            # (B, C)
    totals = weights @ onehot                                # (B, C)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = hits / totals
    return np.nanmean(recall, axis=1)


def paired_gain(y_true: np.ndarray, pred: np.ndarray, pred_ref: np.ndarray, *, draws: int = 1000,
                seed: int = 0) -> Estimate:
    """The gain in balanced accuracy of ``pred`` over ``pred_ref``: its per-seed mean, and a standard
    error with the seed part and the test-set part (``draws`` bootstrap resamples of the test images).

    ``pred`` and ``pred_ref`` are (S, N): one row of test predictions per seed, row s of both from
    the same seed."""
    y_true = np.asarray(y_true)
    pred, pred_ref = np.atleast_2d(pred), np.atleast_2d(pred_ref)
    if pred.shape != pred_ref.shape or pred.shape[1] != len(y_true):
        raise ValueError(f"predictions {pred.shape} and {pred_ref.shape} must both be (seeds, {len(y_true)})")
    classes = np.unique(y_true)
    onehot = (y_true[:, None] == classes[None]).astype(np.float64)
    n_seeds, n = pred.shape
    rng = np.random.default_rng(seed)
    weights = np.vstack([np.ones((1, n)), np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                                                    for _ in range(draws)])]).astype(np.float64)
    gains = np.stack([_balanced_accuracy_draws(weights, pred[s] == y_true, onehot)
                      - _balanced_accuracy_draws(weights, pred_ref[s] == y_true, onehot) for s in range(n_seeds)], axis=1)
    return seed_estimate(gains[0], test_variance=float(gains[1:].mean(axis=1).var(ddof=1)))
