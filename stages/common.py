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
