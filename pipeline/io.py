"""Atomic file and directory outputs, so a stage that dies never leaves a half-written result, and
:class:`InputError` for inputs that cannot be read, so a stage stops with one line naming the file."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path


class InputError(ValueError):
    """A file a stage reads (a store shard, a model folder, a metrics file) is missing, unreadable or not
    what it should be. The message names the file, and the row or key where one is at fault, in one line."""


# what reading a broken file raises: OSError (PIL, Arrow I/O), ValueError (Arrow, JSON), KeyError (a missing
# key), TypeError (a value of the wrong type), RuntimeError (a state dict that does not fit), EOFError,
# safetensors' SafetensorError (an Exception), matched by name so this module needs no safetensors import
_READ_ERRORS = (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError, EOFError)


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Raise any failure while reading ``path`` (a ``what``: "latent shard", "VAE folder") as an
    :class:`InputError` that names it and the original error's first line."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:   # noqa: BLE001 - filtered just below
        if not (isinstance(exc, _READ_ERRORS) or type(exc).__name__ == "SafetensorError"):
            raise
        raise InputError(f"{path}: not a readable {what} ({describe(exc)})") from exc


def describe(exc: BaseException) -> str:
    """``Type: first line of the message`` (a KeyError's key named as such)."""
    if isinstance(exc, KeyError) and exc.args:
        return f"missing key {exc.args[0]!r}"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def error_chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and the errors behind it: ``__cause__`` / ``__context__``, and the ``cause`` a Ray task error carries."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__


_INPUT_ERROR_LINE = re.compile(r"^(?:pipeline\.io\.)?InputError: (.+)$", re.MULTILINE)


def find_input_error(exc: BaseException) -> InputError | None:
    """The :class:`InputError` behind ``exc``, if any: raised in this process (the innermost in its chain),
    or in a worker process whose error came back as text only (Ray Data keeps the worker's traceback,
    not the object): then rebuilt from the first ``InputError:`` line of that text."""
    found = [e for e in error_chain(exc) if isinstance(e, InputError)]
    if found:
        return found[-1]
    match = _INPUT_ERROR_LINE.search("".join(traceback.format_exception(exc)))
    return InputError(match.group(1).strip()) if match else None


_TEMPORARY = re.compile(r"^\..+\.(?:old-)?(\d+)-[^/]+\.tmp$")   # .<name>.<pid>-<random>.tmp, .<name>.old-<pid>-<random>.tmp


def stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """The temporaries :func:`atomic_dir` and :func:`atomic_file` made in ``directory`` whose process no
    longer runs on this machine: what a writer killed before it could clean up (SIGKILL, power loss)
    left behind. Never an output: outputs are only ever renamed into place complete."""
    stale = []
    for p in Path(directory).glob(".*"):
        match = _TEMPORARY.match(p.name)
        if match and not _alive(int(match.group(1))):
            stale.append(p)
    return sorted(stale)


def sweep_stale(directory: str | os.PathLike) -> int:
    """Remove :func:`stale_temporaries`; how many there were."""
    stale = stale_temporaries(directory)
    for p in stale:
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
    return len(stale)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's live process
        return True
    return True


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent)   # what writers killed here before left
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; outputs should be as readable as any other file
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}-{tmp.name.rsplit('-', 1)[-1]}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temporary file beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent)   # what writers killed here before left
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _round_floats(obj, digits: int):
    if isinstance(obj, float):
        return round(obj, digits) if math.isfinite(obj) else None    # strict JSON: undefined or unbounded → null
    if isinstance(obj, dict):
        return {k: _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v, digits) for v in obj]
    return obj


def write_json(path: str | os.PathLike, data, digits: int = 6) -> None:
    """Write ``data`` as indented JSON, floats rounded so metric files are stable across runs; NaN and
    ±inf (an undefined recall, an interval nothing bounds) are written as null, which strict JSON readers
    (DVC's included) accept."""
    with atomic_file(path) as fh:
        json.dump(_round_floats(data, digits), fh, indent=2)
        fh.write("\n")


def read_json(path: str | os.PathLike):
    """The JSON in ``path``; an :class:`InputError` naming it if it is missing or not JSON."""
    with reading(path, "JSON file"), open(path) as fh:
        return json.load(fh)
