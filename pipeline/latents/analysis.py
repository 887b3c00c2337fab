"""Descriptive analysis of a latent space: channel statistics, embeddings, separability,
continuity along interpolation paths and tolerance to perturbation.

Functions take numpy latents (N, C, H, W) or their flattened rows; those that decode take a
diffusers VAE and go through :func:`pipeline.latents.vae.decode_latents`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.metrics import balanced_accuracy_score, silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.latents.geometry import lerp, slerp
from pipeline.latents.vae import decode_to_uint8
from pipeline.metrics.reconstruction import psnr


def channel_stats(latents: np.ndarray) -> pd.DataFrame:
    """Per channel over every sample and position: mean, std, skew, excess kurtosis, min, max."""
    per = np.moveaxis(latents, 1, 0).reshape(latents.shape[1], -1).astype(np.float64)
    return pd.DataFrame({
        "channel": np.arange(len(per)), "mean": per.mean(1), "std": per.std(1),
        "skew": stats.skew(per, axis=1), "kurtosis": stats.kurtosis(per, axis=1),
        "min": per.min(1), "max": per.max(1),
    })


def channel_correlation(latents: np.ndarray) -> np.ndarray:
    """(C, C) Pearson correlation between channels, over samples and positions."""
    return np.corrcoef(np.moveaxis(latents, 1, 0).reshape(latents.shape[1], -1))


def stratified_subsample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` sorted indices keeping each class's share (every class keeps ≥ 1 sample)."""
    if n >= len(labels):
        return np.arange(len(labels))
    picks = []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        take = max(1, round(n * len(idx) / len(labels)))
        picks.append(rng.choice(idx, min(take, len(idx)), replace=False))
    return np.sort(np.concatenate(picks))


def tsne_embedding(X: np.ndarray, *, perplexity: float = 30.0, seed: int = 0, pca_dims: int = 50) -> np.ndarray:
    """2-D t-SNE of the rows of X after a PCA to ``pca_dims`` (the usual denoising/speed step)."""
    dims = min(pca_dims, X.shape[0] - 1, X.shape[1])
    reduced = PCA(n_components=dims, random_state=seed).fit_transform(X)
    perplexity = min(perplexity, (len(X) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)


def fit_linear_probe(X: np.ndarray, y: np.ndarray, C: float):
    """A standardised logistic regression fitted on (X, y)."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(X, y)


def linear_probe(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], C: float, probe=None) -> float:
    """Balanced test accuracy of :func:`fit_linear_probe` on ``train`` (or of the already fitted ``probe``)."""
    probe = probe if probe is not None else fit_linear_probe(*train, C)
    return float(balanced_accuracy_score(test[1], probe.predict(test[0])))


def silhouette(X: np.ndarray, labels: np.ndarray, *, sample_size: int, seed: int = 0) -> float:
    """Silhouette score of the class labels on standardised features (−1..1; 0 = no structure)."""
    Z = StandardScaler().fit_transform(X)
    return float(silhouette_score(Z, labels, sample_size=min(sample_size, len(X)), random_state=seed))


def decode_to_images(vae, latents: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Scaled latents (N, C, H, W) → uint8 images (N, H', W', 3), in batches sized to the memory budget
    (``pipeline.latents.vae.memory_batch``), each converted to uint8 as it comes."""
    return decode_to_uint8(vae, torch.tensor(latents, dtype=torch.float32), batch_size=batch_size, desc="decode")


def interpolation_path(za: np.ndarray, zb: np.ndarray, steps: int, kind: str) -> np.ndarray:
    """``steps`` latents from ``za`` to ``zb`` (same shape) along lerp or slerp, endpoints included."""
    path = slerp if kind == "slerp" else lerp
    lam = np.linspace(0.0, 1.0, steps)
    flat = path(np.repeat(za.reshape(1, -1), steps, 0), np.repeat(zb.reshape(1, -1), steps, 0), lam)
    return flat.reshape(steps, *za.shape).astype(np.float32)


def path_pixel_change(frames: np.ndarray) -> np.ndarray:
    """RMS pixel change (0..1 scale) between consecutive decoded frames (steps − 1 values)."""
    f = frames.astype(np.float64) / 255.0
    return np.sqrt(((f[1:] - f[:-1]) ** 2).mean(axis=(1, 2, 3)))


def perturbation_curve(vae, latents: np.ndarray, sigmas, *, seed: int = 0,
                       batch_size: int = 64) -> tuple[pd.DataFrame, np.ndarray]:
    """Decoded PSNR of ``z + σ·std_c·ε`` against the decoded clean ``z``, per σ (relative to channel std).

    One seeded ε per image is reused across σ, so the curve is smooth in σ. Returns a frame
    (``sigma``, ``psnr_mean``, ``psnr_std``) and the perturbed decodes of the first image.
    """
    clean = decode_to_images(vae, latents, batch_size)
    std = latents.std(axis=(0, 2, 3), keepdims=True)
    eps = np.random.default_rng(seed).standard_normal(latents.shape).astype(np.float32)
    rows, frames = [], []
    for sigma in sigmas:
        noisy = decode_to_images(vae, latents + sigma * std * eps, batch_size)
        p = psnr(clean, noisy)
        rows.append({"sigma": float(sigma), "psnr_mean": float(p.mean()), "psnr_std": float(p.std())})
        frames.append(noisy[0])
    return pd.DataFrame(rows), np.stack(frames)
