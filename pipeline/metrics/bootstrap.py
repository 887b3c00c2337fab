"""Confidence intervals for a paired gain in balanced accuracy that include test-set sampling.

A gain of method A over reference B, both fitted with the same seeds and tested on the same test
images, varies for two reasons: the seed (synthetic draws, subsample, initialisation) and the
finite test set (another test set of the same size would give other numbers). A hierarchical
bootstrap covers both: every draw resamples the seeds with replacement *and* the test images with
replacement (the same images for A and B: the comparison stays paired), and takes the mean gain
over the drawn seeds. The 2.5 / 97.5 percentiles of the draws are the 95 % interval; a verdict is
given only where it excludes 0. With one test set shared by all seeds, "mean gain > seed std"
(the earlier rule) called a change of less than one minority image "hurt"; this does not.
"""

from __future__ import annotations

import numpy as np

NO_CLEAR_CHANGE = "no clear change"


def _balanced_accuracy_draws(weights: np.ndarray, correct: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Balanced accuracy under each row of ``weights`` (B, N) (test-image multiplicities), for one
    prediction vector whose per-image correctness is ``correct`` (N,); classes absent from a draw
    are left out, as scikit-learn's ``balanced_accuracy_score`` does."""
    hits = weights @ (onehot * correct[:, None])            # (B, C)
    totals = weights @ onehot                                # (B, C)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = hits / totals
    return np.nanmean(recall, axis=1)


def paired_gain_interval(y_true: np.ndarray, pred: np.ndarray, pred_ref: np.ndarray, *, draws: int = 1000,
                         level: float = 0.95, seed: int = 0) -> dict:
    """Mean gain in balanced accuracy of ``pred`` over ``pred_ref`` and its bootstrap interval.

    ``pred`` and ``pred_ref`` are (S, N): one row of test predictions per seed, row s of both from
    the same seed. Returns ``{"mean", "lo", "hi", "verdict"}``: ``improved`` / ``hurt`` when the
    interval lies above / below 0, else :data:`NO_CLEAR_CHANGE`."""
    y_true = np.asarray(y_true)
    pred, pred_ref = np.atleast_2d(pred), np.atleast_2d(pred_ref)
    if pred.shape != pred_ref.shape or pred.shape[1] != len(y_true):
        raise ValueError(f"predictions {pred.shape} and {pred_ref.shape} must both be (seeds, {len(y_true)})")
    classes = np.unique(y_true)
    onehot = (y_true[:, None] == classes[None]).astype(np.float64)
    n_seeds, n = pred.shape
    rng = np.random.default_rng(seed)
    weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(draws)]).astype(np.float64)
    gains = np.stack([_balanced_accuracy_draws(weights, pred[s] == y_true, onehot)
                      - _balanced_accuracy_draws(weights, pred_ref[s] == y_true, onehot) for s in range(n_seeds)], axis=1)
    picked = rng.integers(0, n_seeds, size=(draws, n_seeds))          # seeds resampled per draw
    boot = np.take_along_axis(gains, picked, axis=1).mean(axis=1)
    full = np.ones((1, n))
    point = np.mean([_balanced_accuracy_draws(full, pred[s] == y_true, onehot)[0]
                     - _balanced_accuracy_draws(full, pred_ref[s] == y_true, onehot)[0] for s in range(n_seeds)])
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    verdict = "improved" if lo > 0 else "hurt" if hi < 0 else NO_CLEAR_CHANGE
    return {"mean": float(point), "lo": float(lo), "hi": float(hi), "verdict": verdict}
