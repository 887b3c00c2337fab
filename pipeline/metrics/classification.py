"""Classification metrics that stay honest under class imbalance."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Balanced accuracy, macro-F1 and per-class recall (keyed by class name).

    A class with no test image has no recall: it is reported as NaN (undefined) and left out of
    macro-F1, as balanced accuracy leaves it out, instead of counting as a recall and F1 of 0."""
    present = np.unique(y_true)
    recall = dict(zip(present.tolist(), recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)))
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class_recall": {name: float(recall.get(k, np.nan)) for k, name in enumerate(class_names)},
    }


def majority_baseline(y_train: np.ndarray, y_true: np.ndarray, class_names: list[str]) -> dict:
    """Metrics of always predicting the training split's most frequent class."""
    majority = np.bincount(y_train, minlength=len(class_names)).argmax()
    return classification_metrics(y_true, np.full_like(y_true, majority), class_names)
