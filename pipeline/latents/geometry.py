"""Paths between latents: linear and spherical interpolation on flattened rows.

Both take ``a``, ``b`` of shape (N, D) (or (D,)) and ``lam`` broadcastable to (N,): ``lam = 0``
gives ``a``, ``lam = 1`` gives ``b``. Spherical interpolation (slerp) follows the great circle
about the origin; for rows of equal norm it keeps that norm all along the path, where lerp
cuts through the ball (its midpoint of two orthogonal unit vectors has norm 0.71), which is
what matters for Gaussian-like latents.
"""

from __future__ import annotations

import numpy as np


def lerp(a: np.ndarray, b: np.ndarray, lam) -> np.ndarray:
    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim == 1:
        lam = lam[:, None]  # one λ per row
    return ((1.0 - lam) * a + lam * b).astype(np.result_type(a, b), copy=False)


def slerp(a: np.ndarray, b: np.ndarray, lam, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation; falls back to lerp where ``a`` and ``b`` are (anti)parallel or zero."""
    a2, b2 = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), (max(len(a2), len(b2)),))[:, None]
    na, nb = np.linalg.norm(a2, axis=1, keepdims=True), np.linalg.norm(b2, axis=1, keepdims=True)
    cos = np.clip((a2 * b2).sum(axis=1, keepdims=True) / np.maximum(na * nb, eps), -1.0, 1.0)
    omega = np.arccos(cos)
    sin = np.sin(omega)
    ok = sin > 1e-4
    safe = np.where(ok, sin, 1.0)
    wa = np.where(ok, np.sin((1.0 - lam) * omega) / safe, 1.0 - lam)
    wb = np.where(ok, np.sin(lam * omega) / safe, lam)
    out = wa * a2 + wb * b2
    return out.reshape(np.broadcast_shapes(np.shape(a), np.shape(b))).astype(np.result_type(a, b), copy=False)
