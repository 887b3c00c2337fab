"""An out-of-distribution score on latents: Mahalanobis distance to the training latents.

:class:`MahalanobisOOD` fits a mean and a Ledoit–Wolf shrunk covariance (scikit-learn: a full
1 024 × 1 024 covariance from a few thousand latents is singular without shrinkage) on flattened
*training* latents; its score is the squared Mahalanobis distance, higher = less like the
training data. :meth:`MahalanobisOOD.torch_score` is the same number as a differentiable torch
function, so the score can also guide sampling toward in-distribution latents.
:func:`detector_metrics` evaluates it as a detector: AUROC (in-distribution vs the other set;
0.5 = indistinguishable) and the false-positive rate at 95 % true-positive rate (the share of the
other set that passes a threshold which keeps 95 % of in-distribution latents).

As a **guide** the score must read noisy latents: if clean latents were Gaussian ``N(μ, Σ)``, the
U-Net's input at timestep t would be ``N(√ᾱ_t μ, ᾱ_t Σ + (1 − ᾱ_t) I)``.
:meth:`MahalanobisOOD.noisy_log_density` is that log density (up to a constant), computed through
one eigendecomposition of Σ, so its gradient is the score of the noisy Gaussian at every t. Pulling
*every* sample up that density collapses samples onto the Gaussian's mode (a real latent set is far
from Gaussian), so the guide uses :meth:`MahalanobisOOD.noisy_excess` instead: how far the noisy
Mahalanobis distance exceeds what ``quantile`` of the training latents, noised to the same ᾱ, reach
(thresholds fitted on a grid of ᾱ). Only samples out of that region are pushed back, along the same
score. Saved as ``ood.safetensors`` (mean, eigenvalues, eigenvectors, thresholds) + ``config.json``.

At SD geometry the latents are first average-pooled to at most :data:`MAX_SIDE` × :data:`MAX_SIDE`
(``pool`` cells a side): a full covariance of 4×64×64 = 16 384 dimensions is 2 GB and an
eigendecomposition of minutes, and a few thousand latents cannot estimate it anyway. Pooled noise
has variance ``1 / pool²``, which the noisy density accounts for. At the default 16×16 nothing is pooled.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file, save_file
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score, roc_curve

from pipeline.io import InputError, reading


MAX_SIDE = 16   # latents larger than this are average-pooled down to it (pipeline.recipes' reference side)


def pool_factor(shape) -> int:
    """Cells per side averaged into one: 1 for flat vectors and latents up to :data:`MAX_SIDE` a side."""
    shape = tuple(shape)
    return max(1, shape[-1] // MAX_SIDE) if len(shape) == 3 and shape[-1] > MAX_SIDE else 1


class MahalanobisOOD:
    GRID = 24   # ᾱ values the noisy thresholds are fitted at
    pool_ = 1

    def fit(self, latents: np.ndarray, quantile: float = 0.95, seed: int = 0) -> "MahalanobisOOD":
        """Mean and Ledoit–Wolf covariance of ``latents``; the noisy thresholds at ``quantile`` from
        one seeded noising of them per ᾱ of the grid."""
        self.shape_, self.pool_ = tuple(np.shape(latents)[1:]), pool_factor(np.shape(latents)[1:])
        flat = self._reduce(np.asarray(latents, dtype=np.float64))
        if len(flat) < 2:
            raise ValueError(f"need at least 2 latents to fit, got {len(flat)}")
        est = LedoitWolf().fit(flat)
        self.quantile_ = float(quantile)
        self.shrinkage_ = float(est.shrinkage_)
        self._set(est.location_, *np.linalg.eigh(est.covariance_), np.zeros(2), np.zeros(2))
        grid = np.geomspace(1e-3, 1.0, self.GRID)         # SD's ᾱ runs from 0.9991 down to 0.0047
        # noised at full resolution (pooling happens inside noisy_log_density); flat as before when nothing is pooled
        x = torch.as_tensor(flat if self.pool_ == 1 else np.asarray(latents), dtype=torch.float32)
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            tau = [float(torch.quantile(-2 * self.noisy_log_density(a ** 0.5 * x + (1 - a) ** 0.5 * noise, a), quantile))
                   for a in grid]
        return self._set(self.mean_, self.eigenvalues_, self.eigenvectors_, grid, np.asarray(tau))

    def _set(self, mean: np.ndarray, eigenvalues: np.ndarray, eigenvectors: np.ndarray, tau_alpha: np.ndarray,
             tau: np.ndarray) -> "MahalanobisOOD":
        self.tau_alpha_, self.tau_ = np.asarray(tau_alpha, dtype=np.float64), np.asarray(tau, dtype=np.float64)
        self.mean_, self.eigenvalues_, self.eigenvectors_ = mean, np.clip(eigenvalues, 1e-12, None), eigenvectors
        self.precision_ = (eigenvectors / self.eigenvalues_) @ eigenvectors.T
        self._t_mean = torch.as_tensor(self.mean_, dtype=torch.float32)
        self._t_precision = torch.as_tensor(self.precision_, dtype=torch.float32)
        self._t_vectors = torch.as_tensor(eigenvectors, dtype=torch.float32)
        self._t_values = torch.as_tensor(self.eigenvalues_, dtype=torch.float32)
        return self

    def _reduce(self, latents: np.ndarray) -> np.ndarray:
        """Rows of ``latents`` as the vectors the Gaussian lives on: flattened, after pooling."""
        if self.pool_ == 1:
            return latents.reshape(len(latents), -1)
        return self._reduce_t(torch.as_tensor(latents)).numpy()

    def _reduce_t(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_ == 1:
            return x.flatten(1)
        return F.avg_pool2d(x.reshape(len(x), *self.shape_), self.pool_).flatten(1)

    def noisy_log_density(self, x_t: torch.Tensor, alpha_bar) -> torch.Tensor:
        """``log N(x_t; √ᾱ μ, ᾱ Σ + (1 − ᾱ) I)`` per latent, up to a constant (differentiable):
        the fitted Gaussian as the U-Net's input would hold it at ᾱ (ᾱ = 1: minus half :meth:`torch_score`)."""
        ab = torch.as_tensor(alpha_bar, dtype=torch.float32, device=x_t.device)
        d = self._reduce_t(x_t) - ab.sqrt() * self._t_mean.to(x_t.device)
        proj = d @ self._t_vectors.to(x_t.device)
        noise_var = (1 - ab) if self.pool_ == 1 else (1 - ab) / self.pool_ ** 2   # a pooled cell averages pool² noises
        return -0.5 * (proj ** 2 / (ab * self._t_values.to(x_t.device) + noise_var)).sum(1)

    def threshold(self, alpha_bar: float) -> float:
        """The noisy Mahalanobis distance ``quantile`` of the training latents reach at ᾱ (interpolated)."""
        return float(np.interp(float(alpha_bar), self.tau_alpha_, self.tau_))

    def noisy_excess(self, x_t: torch.Tensor, alpha_bar) -> torch.Tensor:
        """``max(0, d_t² − threshold(ᾱ))`` per latent (differentiable), ``d_t²`` the noisy Mahalanobis
        distance ``−2 ×`` :meth:`noisy_log_density`: 0 inside the region the training latents fill."""
        ab = float(torch.as_tensor(alpha_bar).reshape(-1)[0])
        return torch.relu(-2 * self.noisy_log_density(x_t, alpha_bar) - self.threshold(ab))

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"mean": self.mean_, "eigenvalues": self.eigenvalues_, "eigenvectors": self.eigenvectors_,
                   "tau_alpha": self.tau_alpha_, "tau": self.tau_}, str(directory / "ood.safetensors"))
        (directory / "config.json").write_text(json.dumps(
            {"kind": "mahalanobis", "shape": list(self.shape_), "shrinkage": self.shrinkage_, "quantile": self.quantile_,
             **({"pool": self.pool_} if self.pool_ != 1 else {})},
            indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> "MahalanobisOOD":
        """A saved detector (``ood.safetensors`` + ``config.json``); a clear error naming what is missing or wrong."""
        directory = Path(directory)
        for name in ("config.json", "ood.safetensors"):
            if not (directory / name).is_file():
                raise InputError(f"{directory / name} is missing: not a saved OOD detector")
        with reading(directory / "config.json", "OOD detector config"):
            config = json.loads((directory / "config.json").read_text())
            if config.get("kind") != "mahalanobis":
                raise InputError(f"{directory / 'config.json'}: kind {config.get('kind')!r}, expected 'mahalanobis'")
            shape, shrinkage, quantile = tuple(int(v) for v in config["shape"]), float(config["shrinkage"]), float(config["quantile"])
            pool = int(config.get("pool", 1))
        with reading(directory / "ood.safetensors", "OOD detector weights file"):
            arrays = load_file(str(directory / "ood.safetensors"))
            dim = int(np.prod(shape)) if pool == 1 else shape[0] * (shape[1] // pool) * (shape[2] // pool)
            if arrays["mean"].shape != (dim,) or arrays["eigenvectors"].shape != (dim, dim):
                raise InputError(f"{directory / 'ood.safetensors'}: arrays do not match the latent shape {list(shape)}")
            for key in ("eigenvalues", "tau_alpha", "tau"):
                arrays[key]   # noqa: B018 - a missing array is named here, not later
        out = cls()
        out.shape_, out.shrinkage_, out.quantile_, out.pool_ = shape, shrinkage, quantile, pool
        return out._set(arrays["mean"], arrays["eigenvalues"], arrays["eigenvectors"], arrays["tau_alpha"], arrays["tau"])

    def score(self, latents: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each latent (any shape with rows first)."""
        d = self._reduce(np.asarray(latents, dtype=np.float64)) - self.mean_
        return np.einsum("ij,jk,ik->i", d, self.precision_, d)

    def torch_score(self, latents: torch.Tensor) -> torch.Tensor:
        """:meth:`score` as a differentiable torch function (float32, on the latents' device)."""
        d = self._reduce_t(latents) - self._t_mean.to(latents.device)
        return ((d @ self._t_precision.to(latents.device)) * d).sum(1)


def detector_metrics(in_scores: np.ndarray, out_scores: np.ndarray, tpr: float = 0.95) -> dict:
    """AUROC of telling the other set (higher scores) from in-distribution, and the false-positive
    rate at ``tpr`` true-positive rate (in-distribution kept below the threshold)."""
    in_scores, out_scores = np.asarray(in_scores, float), np.asarray(out_scores, float)
    labels = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    threshold = np.quantile(in_scores, tpr)
    return {"auroc": float(roc_auc_score(labels, np.r_[in_scores, out_scores])),
            f"fpr_at_{round(tpr * 100)}_tpr": float((out_scores <= threshold).mean())}


def roc_points(in_scores: np.ndarray, out_scores: np.ndarray):
    """The ROC curve of the detector as a DataFrame: ``fpr`` (in-distribution flagged) and ``tpr`` (the
    other set flagged) at every threshold."""
    import pandas as pd

    labels = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    fpr, tpr, _ = roc_curve(labels, np.r_[in_scores, out_scores], drop_intermediate=True)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})
