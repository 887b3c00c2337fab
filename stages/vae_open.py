"""Opening the saved VAE the way every stage that encodes or decodes needs it (own module, so
stages without a VAE do not depend on ``pipeline.latents.vae``)."""

from __future__ import annotations

import logging

from pipeline.latents.vae import configure_tiling, downsampling_factor, load_saved_vae
from pipeline.runtime import resolve_device
from stages.cli import fail
from stages.config import Params

log = logging.getLogger("stages")


def open_vae(params: Params, directory: str, image_side: int, latents=None):
    """The saved VAE on ``base.device`` in ``vae.dtype``, tiled per ``vae.tiling`` for ``image_side`` px
    images; a clear exit if ``data.size`` does not fit its downsampling or, given ``latents`` (a latent
    shape and the store it came from), if the VAE does not make latents of that shape."""
    try:
        vae = load_saved_vae(directory, resolve_device(params.base.device), params.vae.dtype)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    factor = downsampling_factor(vae)
    if image_side % factor:
        fail(f"data.size={image_side} is not a multiple of the VAE's downsampling factor {factor} ({directory})")
    if latents is not None:
        shape, where = latents
        expected = (int(vae.config.latent_channels), image_side // factor, image_side // factor)
        if tuple(shape) != expected:
            fail(f"{where}: latents of shape {tuple(shape)}, but the VAE in {directory} makes {expected} for "
                 f"{image_side} px images; re-run the encode stage")
    if configure_tiling(vae, params.vae.tiling, image_side):
        log.info("tiled, sliced encode/decode for %d px images", image_side)
    return vae
