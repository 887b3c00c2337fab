"""Regression metrics for artifact scores, with the constant predictors every scorer must beat."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MAE, RMSE, Spearman ρ (0 when the prediction is constant) and the prediction's spread."""
    err = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    rho = 0.0 if np.ptp(y_pred) == 0 else float(spearmanr(y_true, y_pred).statistic)
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "spearman": rho,
        "pred_std": float(np.std(y_pred)),
    }


RANGES = ((0.0, 2.0), (2.0, 4.0), (4.0, 5.0))


def artifact_metrics(y_true, y_pred, *, severe_at: float = 3.0, ranges=RANGES) -> dict:
    """:func:`regression_metrics` plus AUROC of the predicted score for "severe" (true ≥ ``severe_at``)
    and MAE per true-score range (labels are skewed on real data, so one mean hides the tails).

    Ranges are half-open ``[lo, hi)``, the last one closed, so fractional labels (median human
    ratings) fall in exactly one. AUROC is NaN when the true labels hold only one side of the
    threshold; a range MAE is NaN when no label falls in it.
    """
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    out = regression_metrics(y_true, y_pred)
    severe = y_true >= severe_at
    out["auroc_severe"] = float(roc_auc_score(severe, y_pred)) if 0 < severe.sum() < len(severe) else float("nan")
    for k, (lo, hi) in enumerate(ranges):
        inside = (y_true >= lo) & ((y_true <= hi) if k == len(ranges) - 1 else (y_true < hi))
        out[f"mae_{lo:g}_{hi:g}"] = float(np.abs(y_pred[inside] - y_true[inside]).mean()) if inside.any() else float("nan")
    return out


def constant_baselines(y_train, y_true, *, severe_at: float = 3.0) -> dict:
    """:func:`artifact_metrics` of predicting the training mean, and the training median, for every sample."""
    y_true = np.asarray(y_true, dtype=float)
    return {name: artifact_metrics(y_true, np.full(len(y_true), value), severe_at=severe_at)
            for name, value in (("train_mean", np.mean(y_train)), ("train_median", np.median(y_train)))}
