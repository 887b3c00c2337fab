"""Toy latents and a tiny latent diffusion model trained on them in seconds (shared by the generation tests)."""

import numpy as np
import torch

from pipeline.generate.unet import LatentDiffusion, build_unet

SHAPE = (4, 8, 8)


def clustered_latents(n: int, seed: int = 0):
    """``n`` latents around two centres that sit away from zero: (latents, labels, centres)."""
    rng = np.random.default_rng(seed)
    centres = 1.0 + rng.normal(size=(2, *SHAPE))
    y = rng.integers(0, 2, n)
    data = centres[y] + 0.3 * rng.normal(size=(n, *SHAPE))
    return data.astype(np.float32), y, centres.astype(np.float32)


def tiny_diffusion(data: np.ndarray) -> tuple[LatentDiffusion, list[float]]:
    """A 16/32-channel U-Net trained for 150 steps on ``data`` (centred, offset noise 0.1)."""
    torch.manual_seed(0)
    model = LatentDiffusion.centred_on(build_unet(SHAPE, [16, 32]), data)
    return model, model.train(data, steps=150, lr=2e-3, seed=0, noise_offset=0.1)
