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

from dataclasses import dataclass

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
)

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
# One spacing for every sampler: "trailing" starts every run at t = T − 1 (pure noise) whatever the step
# count. diffusers' defaults differ per class ("leading" for DDPM/DDIM starts 10 steps at t = 900, 25 at
# 960, 50 at 980; "linspace" for Euler and DPM-Solver at 999), which compared runs from different starts.
TIMESTEP_SPACING = "trailing"


def make_scheduler(name: str, num_inference_steps: int):
    """A scheduler with SD's training schedule and :data:`TIMESTEP_SPACING`, its inference timesteps set."""
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULERS)}")
    # Latents are not bounded to [-1, 1]: DDPM/DDIM's default x̂0 clipping would wreck sampling
    # (Stable Diffusion's scheduler configs turn it off too). It does not touch add_noise.
    extra = {"clip_sample": False} if name in ("ddpm", "ddim") else {}
    scheduler = SCHEDULERS[name](**SD_TRAIN_SCHEDULE, timestep_spacing=TIMESTEP_SPACING, **extra)
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



@dataclass
class Trajectory:
    """The latents one scheduler holds at chosen points of a run that ends at known clean latents.

    Levels are in the order given (``t_fracs``). ``latents`` is what the sampling loop holds
    (sigma space for Euler); ``model_input`` is what the U-Net receives after
    ``scale_model_input`` (variance-preserving for every scheduler), the tensor a scorer in a
    generation loop sees. ``run_fracs`` is the share of the run already computed at each level.
    """

    scheduler: str
    t_fracs: list[float]
    timesteps: list[float]
    steps: list[int]
    run_fracs: list[float]
    alpha_bars: list[float]
    latents: torch.Tensor       # (L, N, C, H, W)
    model_input: torch.Tensor   # (L, N, C, H, W)


def step_index(scheduler, timestep) -> int:
    """Position of ``timestep`` in the scheduler's inference run (0 = first step, pure noise)."""
    return int(torch.argmin((scheduler.timesteps.double() - float(timestep)).abs()))


def oracle_trajectory(name: str, clean: torch.Tensor, t_fracs: list[float], num_inference_steps: int,
                      seed: int) -> Trajectory:
    """The latents scheduler ``name`` holds at ``t_fracs`` of a run whose denoiser is exact and
    whose finished latents are ``clean``, so every latent keeps the label of its clean image.

    Deterministic samplers (DDIM, Euler, DPM-Solver) integrate the probability-flow ODE; with an
    exact denoiser for one image the path from its starting noise ε is the straight line
    ``√ᾱ_t·x0 + √(1−ᾱ_t)·ε`` (``x0 + σ_t·ε`` in Euler's sigma space), with the same ε at every
    step. DDPM is ancestral: it adds fresh noise each step, and the runs that end at ``x0`` are
    distributed as the forward Markov chain ``q(x_{1:T} | x0)``, drawn here on the levels from
    cleanest to noisiest (``x_b = √(ᾱ_b/ᾱ_a)·x_a + √(1 − ᾱ_b/ᾱ_a)·ε``). Noise comes from a
    seeded CPU generator, so a seed gives the same trajectory on every device.
    """
    scheduler = make_scheduler(name, num_inference_steps)
    timesteps = [timestep_for_fraction(scheduler, f) for f in t_fracs]
    abars = [alpha_bar(scheduler, t) for t in timesteps]
    gen = torch.Generator().manual_seed(seed)
    clean = clean.float().cpu()
    held, inputs = [None] * len(t_fracs), [None] * len(t_fracs)
    if name == "ddpm":
        x, prev = clean, 1.0
        for i in sorted(range(len(t_fracs)), key=lambda k: abars[k], reverse=True):
            ratio = abars[i] / prev
            x = ratio**0.5 * x + (1.0 - ratio) ** 0.5 * torch.randn(clean.shape, generator=gen)
            held[i] = inputs[i] = x
            prev = abars[i]
    else:
        eps = torch.randn(clean.shape, generator=gen)
        for i, t in enumerate(timesteps):
            held[i] = add_noise(scheduler, clean, eps, t)
            inputs[i] = held[i]
            if float(scheduler.init_noise_sigma) > 1.0:   # sigma space → the U-Net's input
                sigma = scheduler.sigmas[step_index(scheduler, t)]
                inputs[i] = held[i] / (sigma**2 + 1) ** 0.5
    steps = [step_index(scheduler, t) for t in timesteps]
    return Trajectory(
        scheduler=name, t_fracs=list(t_fracs), timesteps=[float(t) for t in timesteps], steps=steps,
        run_fracs=[s / len(scheduler.timesteps) for s in steps], alpha_bars=abars,
        latents=torch.stack(held), model_input=torch.stack(inputs),
    )
