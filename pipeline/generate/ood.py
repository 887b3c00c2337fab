"""An out-of-distribution score on latents: Mahalanobis distance to the training latents.

:class:`MahalanobisOOD` fits a mean and a Ledoit–Wolf shrunk covariance (scikit-learn: a full
1 024 × 1 024 covariance from a few thousand latents is singular without shrinkage) on flattened
*training* latents; its score is the squared Mahalanobis distance, higher = less like the
training data. :meth:`MahalanobisOOD.torch_score` is the same number as a differentiable torch
function, so the score can also guide sampling toward in-distribution latents.
:func:`detector_metrics` evaluates it as a detector: AUROC (in-distribution vs the other set;
0.5 = indistinguishable) and the false-positive rate at 95 % true-positive rate (the share of the
other set that passes a threshold which keeps 95 % of in-distribution latents).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score


class MahalanobisOOD:
    def fit(self, latents: np.ndarray) -> "MahalanobisOOD":
        flat = np.asarray(latents, dtype=np.float64).reshape(len(latents), -1)
        if len(flat) < 2:
            raise ValueError(f"need at least 2 latents to fit, got {len(flat)}")
        est = LedoitWolf().fit(flat)
        self.mean_, self.precision_, self.shrinkage_ = est.location_, est.precision_, float(est.shrinkage_)
        self._t_mean = torch.as_tensor(self.mean_, dtype=torch.float32)
        self._t_precision = torch.as_tensor(self.precision_, dtype=torch.float32)
        return self

    def score(self, latents: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each latent (any shape with rows first)."""
        d = np.asarray(latents, dtype=np.float64).reshape(len(latents), -1) - self.mean_
        return np.einsum("ij,jk,ik->i", d, self.precision_, d)

    def torch_score(self, latents: torch.Tensor) -> torch.Tensor:
        """:meth:`score` as a differentiable torch function (float32, on the latents' device)."""
        d = latents.flatten(1) - self._t_mean.to(latents.device)
        return ((d @ self._t_precision.to(latents.device)) * d).sum(1)


def detector_metrics(in_scores: np.ndarray, out_scores: np.ndarray, tpr: float = 0.95) -> dict:
    """AUROC of telling the other set (higher scores) from in-distribution, and the false-positive
    rate at ``tpr`` true-positive rate (in-distribution kept below the threshold)."""
    in_scores, out_scores = np.asarray(in_scores, float), np.asarray(out_scores, float)
    labels = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    threshold = np.quantile(in_scores, tpr)
    return {"auroc": float(roc_auc_score(labels, np.r_[in_scores, out_scores])),
            f"fpr_at_{round(tpr * 100)}_tpr": float((out_scores <= threshold).mean())}
