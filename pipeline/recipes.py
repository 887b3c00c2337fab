"""Recipes that follow the latent geometry.

The recipes in params.yaml (U-Net resolutions, scorer / judge / guide CNN blocks, the attention
net's patch, the CNN classifiers' stages) are written for the default geometry: 16×16 latents of
32 px images (:data:`REFERENCE_LATENT_SIDE`, :data:`REFERENCE_IMAGE_SIDE`). At Stable Diffusion's
geometry (4×32×32 latents of 256 px images, 4×64×64 of 512 px) the same numbers would give models
that cannot see their input: a U-Net whose deepest block still sees 8×8 of a 64×64 latent, a
CNN whose receptive field covers a sixteenth of it, an attention net with 16× the tokens.

:func:`follow_geometry` scales a recipe by the number of doublings ``k`` of the side over the
reference (``k = log2(side / reference)``, 0 at or below it, so the default run is unchanged):

* a list of block widths (``diffusion.block_out_channels``, ``score.cnn_channels``,
  ``guide.channels``, ``runs.judge.channels``) gains ``k`` blocks at its last width: each block
  halves the grid, so the deepest block sees the same grid as at the reference side;
* the attention patch grows ``2^k``: the token grid (and the attention cost) stays as at the reference;
* the CNN classifiers (``bench.latent_cnn`` on latents, the pixel CNNs on images) get ``k`` extra
  striding stages at their last width (``extra`` in their options).

Cost at SD geometry (extra blocks run on grids no larger than the reference's): the U-Net gains
one resolution per doubling; its parameters grow by about one block of its last width, its
compute per latent by ~4× per doubling (the first blocks see 4× the positions). Measured by
``benchmarks/cost_growth.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

REFERENCE_LATENT_SIDE = 16   # the latent side the recipes in params.yaml are written for
REFERENCE_IMAGE_SIDE = 32    # the image side the pixel CNN recipes are written for


def doublings(side: int, reference: int) -> int:
    """How many times ``side`` doubles ``reference`` (floored; 0 when it does not exceed it)."""
    if side <= reference:
        return 0
    return int(math.floor(math.log2(side / reference) + 1e-9))


def deepen(widths: list[int], k: int) -> list[int]:
    """``widths`` with ``k`` more blocks at its last width."""
    return list(widths) + [widths[-1]] * k


def patch_for(patch: int, side: int, k: int) -> int:
    """The attention patch for ``k`` doublings: ``patch × 2^k`` when it divides ``side``, else ``patch``
    (the net then checks divisibility itself and says so)."""
    grown = patch * 2 ** k
    return grown if side % grown == 0 else patch


@dataclass(frozen=True)
class Geometry:
    """The scaled recipe values of one run, and what they were scaled from."""

    latent_side: int
    image_side: int
    latent_doublings: int
    image_doublings: int

    @classmethod
    def of(cls, latent_side: int, image_side: int | None = None, *, follow: bool = True) -> "Geometry":
        image_side = image_side or latent_side * REFERENCE_IMAGE_SIDE // REFERENCE_LATENT_SIDE
        if not follow:
            return cls(latent_side, image_side, 0, 0)
        return cls(latent_side, image_side, doublings(latent_side, REFERENCE_LATENT_SIDE),
                   doublings(image_side, REFERENCE_IMAGE_SIDE))

    def blocks(self, widths: list[int]) -> list[int]:
        return deepen(widths, self.latent_doublings)

    def patch(self, patch: int) -> int:
        return patch_for(patch, self.latent_side, self.latent_doublings)

    def describe(self) -> str:
        if not self.latent_doublings:
            return f"latents {self.latent_side}×{self.latent_side}: recipes as written"
        return (f"latents {self.latent_side}×{self.latent_side} ({self.latent_doublings} doubling(s) over "
                f"{REFERENCE_LATENT_SIDE}): U-Net and CNN blocks deepened, attention patch ×{2 ** self.latent_doublings}")
