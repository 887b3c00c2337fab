"""Sample-guided generation: paths between two same-class latents, naive and through the diffusion model.

Methods (:data:`METHODS`), each giving the latents at ``lams`` (0 = ``z_a``, 1 = ``z_b``):

- ``lerp`` / ``slerp``: straight or spherical interpolation of the latents themselves (what SMOTE
  and the ``lerp`` / ``slerp`` augmenters do);
- ``noise_slerp``: both latents DDIM-inverted to their noises, the noises slerped (a slerp keeps a
  Gaussian sample's norm; a straight blend would not), each blend denoised by the same
  deterministic DDIM run (Bodin et al. 2024 use this as the anchor);
- ``guided``: ``noise_slerp`` with a :class:`~pipeline.generate.sampling.Guide` on every step that
  pulls the predicted clean latent toward the targets: the λ-weighted pair
  ``(1 − λ)·z_a + λ·z_b`` in latent space (``metric="latent"``), or the λ cross-fade of the two
  decoded images in pixel space (``metric="pixels"``, a gradient through the VAE decoder).
  ``strength`` is the share of x̂₀'s distance to the target closed at each step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from pipeline.generate.sampling import Guide, ddim_invert, denoise, slerp_noise
from pipeline.generate.unet import LatentDiffusion
from pipeline.latents.geometry import lerp, slerp

METHODS = ("lerp", "slerp", "noise_slerp", "guided")
GUIDE_METRICS = ("latent", "pixels")


def same_class_pairs(y: np.ndarray, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """``n_pairs`` (a, b) index pairs of distinct members of one class, the classes taken in turn
    (every class with ≥ 2 members gets its share, whatever its size)."""
    classes = [k for k in np.unique(y) if (y == k).sum() >= 2]
    if not classes:
        raise ValueError("no class has two members to interpolate between")
    pairs = []
    for i in range(n_pairs):
        members = np.flatnonzero(y == classes[i % len(classes)])
        pairs.append(rng.choice(members, 2, replace=False))
    return np.asarray(pairs, dtype=int)


def pixel_metric(decode: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``L(x0, target_images) = ½‖decode(x0) − target_images‖²`` per sample (``decode`` differentiable)."""
    def metric(x0: torch.Tensor, target_images: torch.Tensor) -> torch.Tensor:
        return 0.5 * (decode(x0) - target_images).flatten(1).pow(2).sum(1)
    return metric


@dataclass
class Paths:
    """Interpolation paths per method: (pairs, len(lams), C, H, W) latents, and seconds taken."""

    lams: np.ndarray
    latents: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def interpolation_paths(model: LatentDiffusion, za: np.ndarray, zb: np.ndarray, lams: np.ndarray, *, methods=METHODS,
                        steps: int, strength: float, metric: str = "latent",
                        decode: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Paths:
    """Every method's path between the rows of ``za`` and ``zb`` (N, C, H, W) at ``lams``: one grid (P,)
    for every pair, or one per pair (N, P).

    The diffusion methods share one DDIM inversion of the endpoints (``steps`` steps, as many as the
    denoising run); its time is counted in each of them. ``decode`` (latents → images, differentiable)
    is needed for ``metric="pixels"``."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown interpolation method(s) {sorted(unknown)}; known: {', '.join(METHODS)}")
    if metric not in GUIDE_METRICS:
        raise ValueError(f"guidance metric must be one of {GUIDE_METRICS}, got {metric!r}")
    if metric == "pixels" and decode is None:
        raise ValueError("the pixels guidance metric needs a decoder")
    n, shape = len(za), za.shape[1:]
    out = Paths(lams=np.asarray(lams, dtype=np.float64))
    if out.lams.ndim == 2 and len(out.lams) != n:
        raise ValueError(f"{len(out.lams)} rows of λ for {n} pairs")
    p = out.lams.shape[-1]
    lam_rows = out.lams.reshape(-1) if out.lams.ndim == 2 else np.tile(out.lams, n)   # pair-major: pair i, point j
    a_rows, b_rows = np.repeat(za, p, axis=0), np.repeat(zb, p, axis=0)
    flat_a, flat_b = a_rows.reshape(n * p, -1).astype(np.float64), b_rows.reshape(n * p, -1).astype(np.float64)
    for name, path in (("lerp", lerp), ("slerp", slerp)):
        if name in methods:
            start = time.perf_counter()
            out.latents[name] = path(flat_a, flat_b, lam_rows).reshape(n, p, *shape).astype(np.float32)
            out.seconds[name] = time.perf_counter() - start
    wanted = [m for m in ("noise_slerp", "guided") if m in methods]
    if not wanted:
        return out
    start = time.perf_counter()
    unet = model.unet
    noise = ddim_invert(unet, model.to_model(torch.from_numpy(np.concatenate([za, zb]).astype(np.float32))), steps)
    noise_a, noise_b = noise[:n].repeat_interleave(p, 0), noise[n:].repeat_interleave(p, 0)
    x_T = slerp_noise(noise_a, noise_b, lam_rows)
    inversion = time.perf_counter() - start
    targets = model.to_model(torch.from_numpy(lerp(flat_a, flat_b, lam_rows).astype(np.float32)).view(n * p, *shape))
    for name in wanted:
        start = time.perf_counter()
        guide = None
        if name == "guided":
            if metric == "latent":
                guide = Guide(targets, strength)
            else:
                with torch.no_grad():
                    ia, ib = decode(torch.from_numpy(a_rows)), decode(torch.from_numpy(b_rows))
                w = torch.from_numpy(lam_rows).float().view(-1, *([1] * (ia.dim() - 1)))
                guide = Guide(targets, strength, pixel_metric(lambda x: decode(model.to_latents(x))),
                              metric_targets=(1 - w) * ia + w * ib)
        run = denoise(unet, "ddim", x_T, steps, guide=guide)
        out.latents[name] = model.to_latents(run.final).numpy().reshape(n, p, *shape)
        out.seconds[name] = time.perf_counter() - start + inversion
    return out
