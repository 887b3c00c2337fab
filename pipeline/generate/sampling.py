"""Sampling with a latent U-Net: one loop for every diffusers scheduler, DDIM inversion, guidance.

:func:`denoise` runs any scheduler of :data:`~pipeline.latents.noising.SCHEDULERS` from
variance-preserving noise ``x_T`` and can record, at chosen steps, the latent the loop holds
(sigma space for Euler), the U-Net's input (``scale_model_input``: variance-preserving for every
scheduler) and the predicted clean latent ``x̂₀ = (x_in − √(1−ᾱ_t)·ε) / √ᾱ_t``.

**Guidance** is an x̂₀ hook (manifold-preserving guidance, MPGD; He et al. 2024): at each step a
:class:`Guide` moves x̂₀ toward lower values of a metric, and the noise prediction is made
consistent with the moved x̂₀, ``ε' = (x_in − √ᾱ_t·x̂₀') / √(1−ᾱ_t)``, before the scheduler's step.
No gradient flows through the U-Net, so a guided step costs about what an unguided one does, and
the same hook works for every scheduler (each derives its update from ε). Deterministic samplers
(DDIM, Euler, DPM-Solver) give the same run for the same ``x_T``; DDPM draws fresh noise each step
from a CPU generator seeded by ``seed``.

:func:`ddim_invert` maps clean latents to the noise whose DDIM run ends near them, so a real
latent can be re-generated, interpolated in noise space, or followed through another scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import UNet2DModel

from pipeline.latents.noising import make_scheduler


def _device(unet: UNet2DModel) -> torch.device:
    return next(unet.parameters()).device


@torch.no_grad()
def ddim_invert(unet: UNet2DModel, x0: torch.Tensor, num_inference_steps: int, batch_size: int = 512) -> torch.Tensor:
    """Deterministic DDIM inversion: the variance-preserving noise ``x_T`` whose DDIM run ends near ``x0``.

    Walks the DDIM timesteps upwards, ``x_next = √ᾱ_next · x̂0 + √(1 − ᾱ_next) · ε(x, t_next)``.
    Returns a CPU tensor."""
    scheduler = make_scheduler("ddim", num_inference_steps)
    device = _device(unet)
    ab = scheduler.alphas_cumprod.to(device)
    out = []
    for start in range(0, len(x0), batch_size):
        x = x0[start:start + batch_size].to(device)
        alpha_prev = torch.tensor(1.0, device=device)
        for t in scheduler.timesteps.flip(0):
            eps = unet(x, t.to(device).expand(len(x))).sample
            x0_hat = (x - (1 - alpha_prev).sqrt() * eps) / alpha_prev.sqrt()
            alpha_prev = ab[int(t)]
            x = alpha_prev.sqrt() * x0_hat + (1 - alpha_prev).sqrt() * eps
        out.append(x.cpu())
    return torch.cat(out)


def _to_scheduler_space(scheduler, x_vp: torch.Tensor) -> torch.Tensor:
    """A scheduler that starts from noise of std ``init_noise_sigma`` > 1 works in sigma space,
    where the latent it holds is ``x_vp · √(σ² + 1)`` (diffusers' ``init_noise_sigma`` is the
    approximation σ_max of that factor, so the exact one is used)."""
    if float(scheduler.init_noise_sigma) > 1.0:
        return x_vp * (scheduler.sigmas[0] ** 2 + 1).sqrt()
    return x_vp


class Guide:
    """Moves the predicted clean latent ``x̂₀`` toward lower values of a per-sample metric.

    Each step moves x̂₀ by ``strength`` times its latent distance to ``targets`` along the metric's
    steepest descent: ``x̂₀' = x̂₀ − s · ‖x̂₀ − target‖ · ∇L / ‖∇L‖``. For the latent metric
    ``L = ½‖x̂₀ − target‖²`` that is exactly ``x̂₀' = (1 − s)·x̂₀ + s·target``: ``strength`` is the
    share of the distance closed per step, whatever the metric. ``metric(x0, metric_targets)``
    returns one value per sample (``metric_targets``: one row per sample, e.g. target images);
    ``None`` means that latent distance (no autograd needed)."""

    def __init__(self, targets: torch.Tensor, strength: float,
                 metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 metric_targets: torch.Tensor | None = None):
        if strength < 0:
            raise ValueError(f"guidance strength must be ≥ 0, got {strength}")
        if metric is not None and metric_targets is None:
            raise ValueError("a guidance metric needs its metric_targets")
        self.targets, self.strength = targets, float(strength)
        self.metric, self.metric_targets = metric, metric_targets

    def select(self, index: slice) -> "Guide":
        return Guide(self.targets[index], self.strength, self.metric,
                     None if self.metric_targets is None else self.metric_targets[index])

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        gap = x0 - self.targets.to(x0.device)
        if self.metric is None:
            return x0 - self.strength * gap
        with torch.enable_grad():
            x = x0.detach().requires_grad_(True)
            grad, = torch.autograd.grad(self.metric(x, self.metric_targets.to(x0.device)).sum(), x)
        scale = gap.flatten(1).norm(dim=1) / grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        return x0 - self.strength * scale.view(-1, *([1] * (x0.dim() - 1))) * grad


@dataclass
class Run:
    """What one sampling run returns. Recorded tensors are (len(record), N, C, H, W) on the CPU;
    ``timesteps`` is the timestep about to be applied at each recorded step (0 for the end)."""

    final: torch.Tensor
    timesteps: list[float]
    latents: torch.Tensor | None = None       # what the loop holds (sigma space for Euler)
    model_input: torch.Tensor | None = None   # what the U-Net receives (variance-preserving)
    x0: torch.Tensor | None = None            # the predicted clean latent (the final latent at the end)


@torch.no_grad()
def denoise(unet: UNet2DModel, scheduler_name: str, x_T: torch.Tensor, num_inference_steps: int, *,
            seed: int = 0, record: list[int] = (), guide: Guide | None = None, eps_guide=None,
            batch_size: int = 512, noise_seeds: Sequence[int] | None = None) -> Run:
    """Run scheduler ``scheduler_name`` from variance-preserving noise ``x_T`` (N, C, H, W).

    ``record`` lists step indices (0 = before the first step, ``num_inference_steps`` = the final
    latent) at which to keep what the loop holds. ``eps_guide`` (an ε hook such as
    :class:`pipeline.generate.guidance.ClassifierGuide`: ``eps_guide(x_in, t, ᾱ_t)`` returns the
    correction added to the U-Net's ε, with ``select(slice)`` for a batch) acts before the x̂₀
    ``guide``. Batches of ``batch_size`` run one after another;
    deterministic samplers give the same latents whatever the batch size, DDPM's fresh noise is drawn
    batch by batch from one generator, so its run depends on ``seed`` and ``batch_size`` — unless
    ``noise_seeds`` gives one seed per image: then each image draws from its own generator, and its
    run is the same whatever batch (or machine) samples it."""
    scheduler = make_scheduler(scheduler_name, num_inference_steps)
    n_steps = len(scheduler.timesteps)
    if any(not 0 <= r <= n_steps for r in record):
        raise ValueError(f"record steps must be in 0..{n_steps}, got {list(record)}")
    device = _device(unet)
    if noise_seeds is not None and len(noise_seeds) != len(x_T):
        raise ValueError(f"noise_seeds has {len(noise_seeds)} seeds for {len(x_T)} latents")
    gen = torch.Generator().manual_seed(seed)
    finals, held, inputs, x0s = [], [], [], []
    for start in range(0, len(x_T), batch_size):
        part = slice(start, start + batch_size)
        scheduler = make_scheduler(scheduler_name, num_inference_steps)   # multistep solvers keep state
        x = _to_scheduler_space(scheduler, x_T[part].to(device))
        g = guide.select(part) if guide is not None else None
        eg = eps_guide.select(part) if eps_guide is not None else None
        kept = {}
        if noise_seeds is not None:   # diffusers draws image i's noise from generator i of a list
            gen = [torch.Generator().manual_seed(int(s)) for s in noise_seeds[part]]
        for i, t in enumerate(scheduler.timesteps):
            x_in = scheduler.scale_model_input(x, t)
            eps = unet(x_in, t.to(device).expand(len(x))).sample
            ab = scheduler.alphas_cumprod[int(t)].to(device)
            if eg is not None:
                eps = eps + eg(x_in, t, ab)
            x0 = (x_in - (1 - ab).sqrt() * eps) / ab.sqrt()
            if g is not None:
                x0 = g(x0)
                eps = (x_in - ab.sqrt() * x0) / (1 - ab).sqrt()
            if i in record:
                kept[i] = (x.cpu(), x_in.cpu(), x0.cpu())
            # stochastic steps (DDPM) draw from the CPU generator: a seed gives one run on every device
            x = scheduler.step(eps, t, x, generator=gen).prev_sample
        if n_steps in record:
            kept[n_steps] = (x.cpu(), x.cpu(), x.cpu())
        finals.append(x.cpu())
        held.append([kept[r][0] for r in record])
        inputs.append([kept[r][1] for r in record])
        x0s.append([kept[r][2] for r in record])
    stamps = [float(scheduler.timesteps[r]) if r < n_steps else 0.0 for r in record]

    def stack(parts):
        return torch.stack([torch.cat([p[j] for p in parts]) for j in range(len(record))]) if record else None

    return Run(final=torch.cat(finals), timesteps=stamps, latents=stack(held), model_input=stack(inputs), x0=stack(x0s))


def reverse_trajectory(unet: UNet2DModel, scheduler_name: str, x_T: torch.Tensor, num_inference_steps: int, *,
                       record: list[int], seed: int = 0) -> dict:
    """:func:`denoise` as a dict: ``timesteps``, ``latents`` (what the loop holds) and ``final``."""
    run = denoise(unet, scheduler_name, x_T, num_inference_steps, record=record, seed=seed)
    return {"timesteps": run.timesteps, "latents": run.latents, "final": run.final}


def starting_noise(n: int, shape, seed: int) -> torch.Tensor:
    """``n`` standard-normal latents of ``shape`` from a seeded CPU generator (the same on every device)."""
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))


def slerp_noise(a: torch.Tensor, b: torch.Tensor, lam) -> torch.Tensor:
    """Spherical interpolation of Gaussian noises, row by row: keeps the norm a Gaussian sample has
    (a straight blend of two noises has too small a norm and denoises to a blurred mean)."""
    from pipeline.latents.geometry import slerp

    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), (len(a),))
    flat = slerp(a.flatten(1).double().numpy(), b.flatten(1).double().numpy(), lam)
    return torch.from_numpy(flat).float().view_as(a)
