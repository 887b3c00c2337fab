"""Forward noising of clean latents with diffusers schedulers, on an equal footing.

Every scheduler gets Stable Diffusion's training schedule (1000 steps, ``scaled_linear``
betas 0.00085 → 0.012) and the same inference run of ``num_inference_steps``. A noise level
is a fraction of the diffusion, ``t_frac`` ∈ [0, 1] (0 = clean, 1 = pure noise): the timestep
used is the one of that inference run nearest to ``t_frac · (T − 1)``, so a fraction names the
same point of a real generation for every scheduler. Noise is added with the scheduler's own
``add_noise``: DDPM/DDIM/DPM-Solver give ``√ᾱ·x0 + √(1−ᾱ)·ε``; Euler works in sigma space
and gives ``x0 + σ·ε`` (std ≫ 1 early in the run), exactly what a sampler holds at that step.
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

SCHEDULERS = {
    "ddpm": DDPMScheduler,
    "ddim": DDIMScheduler,
    "euler": EulerDiscreteScheduler,
    "dpmsolver": DPMSolverMultistepScheduler,
}
SD_TRAIN_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
}


def make_scheduler(name: str, num_inference_steps: int):
    """A scheduler with SD's training schedule, its inference timesteps set."""
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULERS)}")
    # Latents are not bounded to [-1, 1]: DDPM/DDIM's default x̂0 clipping would wreck sampling
    # (Stable Diffusion's scheduler configs turn it off too). It does not touch add_noise.
    extra = {"clip_sample": False} if name in ("ddpm", "ddim") else {}
    scheduler = SCHEDULERS[name](**SD_TRAIN_SCHEDULE, **extra)
    scheduler.set_timesteps(num_inference_steps)
    return scheduler


def timestep_for_fraction(scheduler, t_frac: float):
    """The inference timestep nearest to ``t_frac · (T − 1)`` (a 0-d tensor of the schedule's dtype)."""
    if not 0.0 <= t_frac <= 1.0:
        raise ValueError(f"t_frac must be in [0, 1], got {t_frac}")
    target = t_frac * (scheduler.config.num_train_timesteps - 1)
    steps = scheduler.timesteps
    return steps[int(torch.argmin((steps.double() - target).abs()))]


def alpha_bar(scheduler, timestep) -> float:
    """ᾱ_t of the training schedule at ``timestep`` (rounded to the nearest integer step)."""
    return float(scheduler.alphas_cumprod[int(round(float(timestep)))])


def add_noise(scheduler, latents: torch.Tensor, noise: torch.Tensor, timestep) -> torch.Tensor:
    """``scheduler.add_noise`` at one ``timestep`` for the whole batch."""
    timesteps = timestep.reshape(1).repeat(latents.shape[0])
    return scheduler.add_noise(latents, noise, timesteps)


def noise_like(latents: torch.Tensor, seed: int) -> torch.Tensor:
    """Seeded standard normal noise (CPU generator, so every device draws the same numbers)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(latents.shape, generator=gen, dtype=torch.float32)


def snr(alpha_bar_t: float) -> float:
    return alpha_bar_t / max(1.0 - alpha_bar_t, 1e-12)


def scheduler_levels(name: str, t_fracs: list[float], num_inference_steps: int) -> list[dict]:
    """The timestep, ᾱ and SNR each fraction maps to for scheduler ``name`` (for reports)."""
    scheduler = make_scheduler(name, num_inference_steps)
    rows = []
    for f in t_fracs:
        t = timestep_for_fraction(scheduler, f)
        ab = alpha_bar(scheduler, t)
        rows.append({"scheduler": name, "t_frac": f, "timestep": float(t), "alpha_bar": ab, "snr": snr(ab)})
    return rows

