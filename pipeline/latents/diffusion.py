"""A latent diffusion U-Net and the reverse-diffusion trajectories each scheduler takes through it.

Forward noising with ``add_noise`` makes every scheduler look the same at equal ᾱ (they differ
by a scalar). Real generations differ: each scheduler walks its own path from noise to image.
To get that path *for an image whose artifact score is known*, the clean latent is first
mapped to its starting noise by deterministic DDIM inversion with the U-Net; every scheduler
then denoises from that same noise with the same U-Net, and the latents it holds along the way
are recorded. Deterministic ODE samplers (DDIM, Euler, DPM-Solver) end near the original latent;
DDPM adds fresh noise each step and ends elsewhere, which :func:`reverse_trajectory` reports.

All schedulers use Stable Diffusion's training schedule (:data:`~pipeline.latents.noising.SD_TRAIN_SCHEDULE`).
Latents are recorded as the sampling loop holds them: variance-preserving space for DDPM, DDIM
and DPM-Solver, sigma space (``x_vp · √(σ² + 1)``) for Euler.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DModel

from pipeline.latents.noising import SD_TRAIN_SCHEDULE, make_scheduler
from pipeline.training import train_steps


def build_unet(latent_shape, block_out_channels, layers_per_block: int = 1, norm_num_groups: int = 8) -> UNet2DModel:
    """A small ``UNet2DModel`` (no attention) for latents of ``latent_shape`` (C, H, W)."""
    c, h, _ = latent_shape
    n = len(block_out_channels)
    return UNet2DModel(
        sample_size=h, in_channels=c, out_channels=c, block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block, norm_num_groups=norm_num_groups,
        down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n,
    )


def train_unet(unet: UNet2DModel, latents: np.ndarray, *, steps: int, batch_size: int = 64, lr: float = 1e-3,
               seed: int = 0, device: str | torch.device = "cpu") -> list[float]:
    """ε-prediction training (MSE) on the SD schedule; batches, timesteps and noise from a seeded
    CPU generator so a run is the same on every device. Returns the loss per step."""
    scheduler = DDPMScheduler(**SD_TRAIN_SCHEDULE)
    x = torch.as_tensor(np.asarray(latents, dtype=np.float32))
    unet.to(device)

    def batch_loss(gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(x), (min(batch_size, len(x)),), generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(idx),), generator=gen)
        eps = torch.randn(x[idx].shape, generator=gen)
        noisy = scheduler.add_noise(x[idx], eps, t)
        return torch.nn.functional.mse_loss(unet(noisy.to(device), t.to(device)).sample, eps.to(device))

    return train_steps(unet, batch_loss, steps=steps, lr=lr, weight_decay=1e-4, seed=seed, min_lr=0.0)


@torch.no_grad()
def ddim_invert(unet: UNet2DModel, x0: torch.Tensor, num_inference_steps: int) -> torch.Tensor:
    """Deterministic DDIM inversion: the variance-preserving noise ``x_T`` whose DDIM run ends near ``x0``.

    Walks the DDIM timesteps upwards, ``x_next = √ᾱ_next · x̂0 + √(1 − ᾱ_next) · ε(x, t_next)``.
    """
    scheduler = make_scheduler("ddim", num_inference_steps)
    device = next(unet.parameters()).device
    ab = scheduler.alphas_cumprod.to(device)
    x = x0.to(device)
    alpha_prev = torch.tensor(1.0, device=device)
    for t in scheduler.timesteps.flip(0):
        eps = unet(x, t.to(device).expand(len(x))).sample
        x0_hat = (x - (1 - alpha_prev).sqrt() * eps) / alpha_prev.sqrt()
        alpha_prev = ab[int(t)]
        x = alpha_prev.sqrt() * x0_hat + (1 - alpha_prev).sqrt() * eps
    return x


def _to_scheduler_space(scheduler, x_vp: torch.Tensor) -> torch.Tensor:
    """A scheduler that starts from noise of std ``init_noise_sigma`` > 1 works in sigma space,
    where the latent it holds is ``x_vp · √(σ² + 1)`` (diffusers' ``init_noise_sigma`` is the
    approximation σ_max of that factor, so the exact one is used)."""
    if float(scheduler.init_noise_sigma) > 1.0:
        return x_vp * (scheduler.sigmas[0] ** 2 + 1).sqrt()
    return x_vp


@torch.no_grad()
def reverse_trajectory(unet: UNet2DModel, scheduler_name: str, x_T: torch.Tensor, num_inference_steps: int, *,
                       record: list[int], seed: int = 0) -> dict:
    """Denoise ``x_T`` (variance-preserving noise, e.g. from :func:`ddim_invert`) with one scheduler.

    ``record`` lists step indices (0 = before the first step, ``num_inference_steps`` = the
    final latent) at which to keep the latent the loop holds. Returns ``timesteps`` (the
    timestep about to be applied at each recorded step, 0 for the final latent), ``latents``
    ((len(record), N, C, H, W) CPU tensors) and ``final`` (the finished latent).
    """
    scheduler = make_scheduler(scheduler_name, num_inference_steps)
    if any(not 0 <= r <= len(scheduler.timesteps) for r in record):
        raise ValueError(f"record steps must be in 0..{len(scheduler.timesteps)}, got {record}")
    device = next(unet.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    x = _to_scheduler_space(scheduler, x_T.to(device))
    kept, stamps = {}, {}
    for i, t in enumerate(scheduler.timesteps):
        if i in record:
            kept[i], stamps[i] = x.cpu(), float(t)
        eps = unet(scheduler.scale_model_input(x, t), t.to(device).expand(len(x))).sample
        x = scheduler.step(eps, t, x, generator=gen).prev_sample
    last = len(scheduler.timesteps)
    if last in record:
        kept[last], stamps[last] = x.cpu(), 0.0
    return {"timesteps": [stamps[r] for r in record], "latents": torch.stack([kept[r] for r in record]),
            "final": x.cpu()}
