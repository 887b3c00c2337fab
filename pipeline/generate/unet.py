"""The latent diffusion model: a diffusers ``UNet2DModel`` trained for ε-prediction on scaled latents.

The U-Net learns the noise ε added by the forward process of Stable Diffusion's training schedule
(:data:`~pipeline.latents.noising.SD_TRAIN_SCHEDULE`: 1000 steps, ``scaled_linear`` betas), so every
diffusers scheduler built on that schedule samples from it unchanged. ε-prediction is what SD 1.x
uses and what DDIM inversion (:func:`pipeline.generate.sampling.ddim_invert`) assumes.

**Centred latents.** The U-Net works on latents minus their per-channel training mean (the
``shift``, as SD3's VAE ``shift_factor``). Stable Diffusion's schedule keeps a little signal at
its last timestep (ᾱ_T ≈ 0.005, SNR ≠ 0), and on a 16×16 grid the per-channel mean of a latent
is visible through that noise: a model trained on uncentred latents learns to read the mean from
x_T, and pure-noise samples then all get the wrong one (measured: Fréchet distance 375 → 67 in the
diffusion stage's space with centring, same budget). Offset noise (``noise_offset``: a random
constant per sample and channel added to ε, as in diffusers' training scripts) is the usual second
remedy; it is a param. :class:`LatentDiffusion` keeps the U-Net and its shift together.

A trained model is a folder: ``unet/`` (``save_pretrained``: ``config.json`` +
``diffusion_pytorch_model.safetensors``), ``scheduler/`` (the training schedule's
``scheduler_config.json``) and ``latents.json`` (the shift). ``UNet2DModel.from_pretrained(folder,
subfolder="unet")`` loads the U-Net; :func:`load_diffusion` loads the bundle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DModel

from pipeline.io import InputError, reading
from pipeline.latents.noising import SD_TRAIN_SCHEDULE
from pipeline.training import as_tensor, channels_last, train_steps


def build_unet(latent_shape, block_out_channels, layers_per_block: int = 1, norm_num_groups: int = 8) -> UNet2DModel:
    """A small ``UNet2DModel`` (ResNet blocks, no attention) for latents of ``latent_shape`` (C, H, W).

    Each entry of ``block_out_channels`` is one resolution; every one but the last halves the side."""
    c, h, w = latent_shape
    n = len(block_out_channels)
    if h != w:
        raise ValueError(f"the U-Net needs square latents, got {h}×{w}")
    if h % 2 ** (n - 1):
        raise ValueError(f"{n} U-Net blocks halve the side {n - 1} times; {h} is not divisible by {2 ** (n - 1)}")
    if any(ch % norm_num_groups for ch in block_out_channels):
        raise ValueError(f"every block width {list(block_out_channels)} must be a multiple of norm_num_groups {norm_num_groups}")
    return UNet2DModel(
        sample_size=h, in_channels=c, out_channels=c, block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block, norm_num_groups=norm_num_groups,
        down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n,
    )


def train_unet(unet: UNet2DModel, latents: np.ndarray, *, steps: int, batch_size: int = 64, lr: float = 1e-3,
               seed: int = 0, device: str | torch.device = "cpu", noise_offset: float = 0.0, progress=None) -> list[float]:
    """ε-prediction training (MSE) on the SD schedule with a cosine learning-rate decay; batches,
    timesteps and noise come from a seeded CPU generator so a run is the same on every device.
    ``progress(n)`` is called after each step (a tqdm ``update``). Returns the loss per step."""
    scheduler = DDPMScheduler(**SD_TRAIN_SCHEDULE)
    x = as_tensor(latents)
    unet.to(device).to(memory_format=torch.channels_last)

    def batch_loss(gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(x), (min(batch_size, len(x)),), generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(idx),), generator=gen)
        eps = torch.randn(x[idx].shape, generator=gen)
        if noise_offset:
            eps = eps + noise_offset * torch.randn((len(idx), x.shape[1], 1, 1), generator=gen)
        noisy = channels_last(scheduler.add_noise(x[idx], eps, t).to(device))
        loss = torch.nn.functional.mse_loss(unet(noisy, t.to(device)).sample, eps.to(device))
        if progress is not None:
            progress(1)
        return loss

    return train_steps(unet, batch_loss, steps=steps, lr=lr, weight_decay=1e-4, seed=seed, min_lr=0.0)


@dataclass
class LatentDiffusion:
    """A U-Net and the per-channel ``shift`` (C,) it was trained around: the sampling functions of
    :mod:`pipeline.generate.sampling` work in model space, ``to_model`` / ``to_latents`` convert."""

    unet: UNet2DModel
    shift: torch.Tensor

    @classmethod
    def centred_on(cls, unet: UNet2DModel, latents: np.ndarray) -> "LatentDiffusion":
        return cls(unet, torch.as_tensor(np.asarray(latents, dtype=np.float64).mean(axis=(0, 2, 3)), dtype=torch.float32))

    def _shift(self, x) -> torch.Tensor | np.ndarray:
        s = self.shift.view(-1, 1, 1)
        return s.numpy() if isinstance(x, np.ndarray) else s.to(x.device, x.dtype)

    def to_model(self, latents):
        """Latents (…, C, H, W; array or tensor) → the U-Net's centred space."""
        return latents - self._shift(latents)

    def to_latents(self, x):
        """The U-Net's centred space → latents."""
        return x + self._shift(x)

    def train(self, latents: np.ndarray, **kwargs) -> list[float]:
        """:func:`train_unet` on the centred ``latents``."""
        return train_unet(self.unet, self.to_model(np.asarray(latents, dtype=np.float32)), **kwargs)

    def save(self, directory: str | Path) -> None:
        """``unet/`` and ``scheduler/`` in diffusers' own layout, ``latents.json`` with the shift."""
        directory = Path(directory)
        self.unet.save_pretrained(directory / "unet")
        DDPMScheduler(**SD_TRAIN_SCHEDULE, clip_sample=False).save_pretrained(directory / "scheduler")
        (directory / "latents.json").write_text(json.dumps({"shift": [float(v) for v in self.shift]}, indent=1) + "\n")


def load_diffusion(directory: str | Path, device: str | torch.device = "cpu") -> LatentDiffusion:
    """The model :meth:`LatentDiffusion.save` wrote, in eval mode on ``device``."""
    directory = Path(directory)
    for need in ("unet/config.json", "latents.json"):
        if not (directory / need).is_file():
            raise InputError(f"{directory / need} is missing: run the diffusion stage first")
    with reading(directory / "unet", "U-Net folder (config.json + diffusion_pytorch_model.safetensors; re-run the "
                 "diffusion stage)"):   # never a pickle
        unet = UNet2DModel.from_pretrained(directory, subfolder="unet", use_safetensors=True).to(device).eval()
    with reading(directory / "latents.json", "latent shift file"):
        shift = [float(v) for v in json.loads((directory / "latents.json").read_text())["shift"]]
    if len(shift) != unet.config.in_channels:
        raise InputError(f"{directory / 'latents.json'}: {len(shift)} shift values for a {unet.config.in_channels}-channel U-Net")
    return LatentDiffusion(unet, torch.tensor(shift, dtype=torch.float32))
