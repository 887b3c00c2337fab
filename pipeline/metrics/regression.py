"""Regression metrics for artifact scores, with the constant predictors every scorer must beat."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


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


def constant_baselines(y_train: np.ndarray, y_true: np.ndarray) -> dict:
    """MAE of predicting the training mean and the training median for every sample."""
    return {
        "mean_mae": float(np.abs(y_true - np.mean(y_train)).mean()),
        "median_mae": float(np.abs(y_true - np.median(y_train)).mean()),
    }
