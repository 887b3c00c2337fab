"""Start-up shared by every stage that reads params: validate them, then set threads and seeds."""

from __future__ import annotations

import argparse
import logging

from pipeline.runtime import configure_threads, seed_everything
from stages.cli import configure_logging, fail
from stages.config import Params, ParamsError, load_params

log = logging.getLogger("stages")


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
