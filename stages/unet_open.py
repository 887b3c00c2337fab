"""Opening the saved latent diffusion model the way the stages that sample need it (own module, so
stages without a U-Net do not depend on ``pipeline.generate.unet``)."""

from __future__ import annotations

from pipeline.generate.unet import LatentDiffusion, load_diffusion
from pipeline.runtime import resolve_device
from stages.cli import fail
from stages.config import Params


def open_diffusion(params: Params, directory: str, latent_shape, latents_dir: str) -> LatentDiffusion:
    """The saved model on ``base.device``; a clear exit if it is missing, broken, or made for other latents."""
    try:
        model = load_diffusion(directory, resolve_device(params.base.device))
    except (FileNotFoundError, ValueError, OSError, RuntimeError) as exc:
        fail(str(exc))
    cfg = model.unet.config
    if (cfg.in_channels, cfg.sample_size, cfg.sample_size) != tuple(latent_shape):
        fail(f"{directory}: U-Net for {cfg.in_channels}×{cfg.sample_size}×{cfg.sample_size} latents, but {latents_dir} "
             f"holds {tuple(latent_shape)}; re-run the diffusion stage")
    return model
