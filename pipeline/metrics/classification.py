"""Classification metrics that stay honest under class imbalance."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Balanced accuracy, macro-F1 and per-class recall (keyed by class name)."""
    labels = np.arange(len(class_names))
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class_recall": {name: float(r) for name, r in zip(class_names, recall)},
    }


def majority_baseline(y_train: np.ndarray, y_true: np.ndarray, class_names: list[str]) -> dict:
    """Metrics of always predicting the training split's most frequent class."""
    majority = np.bincount(y_train, minlength=len(class_names)).argmax()
    return classification_metrics(y_true, np.full_like(y_true, majority), class_names)
