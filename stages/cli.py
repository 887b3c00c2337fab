"""Argument parsing, logging and error exits for stage scripts: standard library only, so a stage
that needs no params (report) starts without importing torch, diffusers or imbalanced-learn."""

from __future__ import annotations

import argparse
import logging
import sys


def parse_args(doc: str, argv: list[str] | None = None, add_arguments=None, *, params: bool = True) -> argparse.Namespace:
    """The stage's path options (and ``--params`` when it reads params); ``doc`` is the help text."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if params:
        parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    if add_arguments:
        add_arguments(parser)
    return parser.parse_args(argv)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")


def fail(message: str) -> None:
    """Stop the stage with a one-line error (no traceback) for bad inputs found before work starts."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
