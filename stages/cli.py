"""Argument parsing, logging and error exits for stage scripts: standard library only (``pipeline.io``
is too), so a stage that needs no params (report) starts without importing torch, diffusers or
imbalanced-learn."""

from __future__ import annotations

import argparse
import errno
import functools
import logging
import signal
import sys
from pathlib import Path

from pipeline.io import describe, error_chain, find_input_error   # standard library only, too

DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_DISK_FULL_WORDS = ("No space left on device", "File too large", "Disk quota exceeded")


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
    print(f"error: {' '.join(str(message).splitlines())}", file=sys.stderr)
    raise SystemExit(2)


def disk_full(exc: BaseException) -> BaseException | None:
    """The error in ``exc``'s chain that says the disk (or the file-size limit) is full, if any."""
    for e in error_chain(exc):
        if isinstance(e, OSError) and e.errno in DISK_FULL or any(w in str(e) for w in _DISK_FULL_WORDS):
            return e
    return None


PEAK_LINE = "peak resident memory"


def peak_memory_mib() -> tuple[float, float]:
    """(this process, its largest finished child) peak resident set sizes in MiB (Linux: ru_maxrss in KiB)."""
    import resource

    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale)


def log_peak_memory(stage: str) -> None:
    """One line a benchmark can parse: ``<stage>: peak resident memory <self> MiB (children <n> MiB)``."""
    own, children = peak_memory_mib()
    gpu = ""
    torch = sys.modules.get("torch")   # only if the stage used torch; never imported here
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        gpu = f" cuda {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
    print(f"{stage.rsplit('.', 1)[-1]}: {PEAK_LINE} {own:.0f} MiB (children {children:.0f} MiB){gpu}", file=sys.stderr,
          flush=True)


def stage_main(main):
    """A stage's ``main``, stopped with one line and exit code 2 (no traceback) when an input cannot be
    read (:class:`~pipeline.io.InputError`: the message names the file, and the row or key) or the disk
    fills up while outputs are written. Outputs are written atomically (``pipeline.io``), so either way
    the previous outputs stay as they were. A file-size limit (``ulimit -f``) then reads as a full disk
    rather than killing the process with SIGXFSZ."""
    @functools.wraps(main)
    def run(argv=None):
        if hasattr(signal, "SIGXFSZ"):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        try:
            out = main(argv)
            log_peak_memory(main.__module__ if main.__module__ != "__main__" else Path(sys.argv[0]).stem)
            return out
        except Exception as exc:
            bad = find_input_error(exc)   # here, or in a Ray worker
            if bad is not None:
                fail(str(bad.args[0]) if bad.args else str(bad))
            full = disk_full(exc)
            if full is None:
                raise
            where = getattr(full, "filename", None)
            fail(f"{where + ': ' if where else ''}disk full while writing outputs ({describe(full)}); nothing was "
                 "replaced: free space or raise the file-size limit, then re-run")
    return run
