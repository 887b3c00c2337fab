"""What every stage script shares: argument parsing, logging, params loading, seeding."""

from __future__ import annotations

import argparse
import logging
import sys

from pipeline.runtime import configure_threads, seed_everything
from stages.config import Params, ParamsError, load_params

log = logging.getLogger("stages")


def parse_args(doc: str, argv: list[str] | None = None, add_arguments=None) -> argparse.Namespace:
    """``--params`` plus the stage's own path options; ``doc`` (the module docstring) is the help."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    if add_arguments:
        add_arguments(parser)
    return parser.parse_args(argv)


def start(args: argparse.Namespace) -> Params:
    """Configure logging and threads, validate params (exit 2 with the bad keys named), seed RNGs."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        params = load_params(args.params)
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    threads = configure_threads()
    seed_everything(params.base.seed)
    log.info("params %s valid; %d CPU threads", args.params, threads)
    return params


def fail(message: str) -> None:
    """Stop the stage with a one-line error (no traceback) for bad inputs found before work starts."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
