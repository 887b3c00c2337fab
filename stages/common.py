"""Start-up shared by every stage that reads params: validate them, then set threads and seeds."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pipeline.runtime import configure_threads, seed_everything
from stages.cli import configure_logging, fail
from stages.config import Params, ParamsError, load_params

log = logging.getLogger("stages")


def require_same_ids(images, latents, split: str, images_dir: str, latents_dir: str) -> None:
    """Stop (exit 2) unless an image split and its latent split hold the same ids in the same order."""
    if not np.array_equal(images.meta["id"].to_numpy(), latents.meta["id"].to_numpy()):
        fail(f"{images_dir} and {latents_dir}: {split} ids differ; re-run the encode stage")


def start(args: argparse.Namespace, *, torch: bool = True) -> Params:
    """Configure logging and threads, validate params (exit 2 with the bad keys named), seed RNGs.

    ``torch=False`` for stages that do no torch work: torch is then neither imported nor seeded."""
    configure_logging()
    try:
        params = load_params(args.params)
    except ParamsError as exc:
        fail(str(exc))
    threads = configure_threads(torch=torch)
    seed_everything(params.base.seed, torch=torch)
    log.info("params %s valid; %d CPU threads", args.params, threads)
    return params


def follow_geometry(params: Params, latent_shape, image_side: int | None = None) -> Params:
    """``params`` with the recipes scaled to the latent side of ``latent_shape`` (C, H, W) and the image
    side (``pipeline.recipes``; unchanged at the default 16×16 latents of 32 px images, or when
    ``base.recipes`` is ``as_written``). Logged when anything changes."""
    from pipeline.recipes import Geometry

    geo = Geometry.of(int(latent_shape[-1]), image_side, follow=params.base.recipes == "geometry")
    if not geo.latent_doublings:
        return params
    log.info("%s", geo.describe())

    def with_(section, **update):
        return section.model_copy(update=update)

    bench = params.bench
    bench = with_(bench, attention=with_(bench.attention, patch=geo.patch(bench.attention.patch)))
    runs = with_(params.runs, judge=with_(params.runs.judge, channels=geo.blocks(params.runs.judge.channels)))
    return params.model_copy(update={
        "diffusion": with_(params.diffusion, block_out_channels=geo.blocks(params.diffusion.block_out_channels)),
        "score": with_(params.score, cnn_channels=geo.blocks(params.score.cnn_channels)),
        "guide": with_(params.guide, channels=geo.blocks(params.guide.channels)),
        "runs": runs, "bench": bench})


def extra_stages(params: Params, side: int, *, pixels: bool) -> int:
    """Striding stages the CNN classifiers add at this side (``pipeline.recipes``): the latent CNN's
    (``pixels=False``, ``side`` a latent side) or the pixel CNNs' (``side`` an image side)."""
    from pipeline.recipes import REFERENCE_IMAGE_SIDE, REFERENCE_LATENT_SIDE, doublings

    if params.base.recipes != "geometry":
        return 0
    return doublings(side, REFERENCE_IMAGE_SIDE if pixels else REFERENCE_LATENT_SIDE)
