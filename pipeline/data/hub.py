"""Files from the Hugging Face Hub (or its cache), retried through faults, with errors that say what to do.

Everything goes through ``huggingface_hub`` itself, so ``HF_HOME`` / ``HF_HUB_CACHE`` (where the
cache lives), ``HF_HUB_OFFLINE`` (cache only) and ``HF_ENDPOINT`` (a mirror, or the tests' local
server) behave exactly as they do for ``diffusers`` and ``datasets``.

Faults: ``huggingface_hub`` already waits out HTTP 429 (honouring ``Retry-After``), retries a
metadata request that cannot connect, and resumes a connection dropped mid-file. On top of it every download here is retried with exponential backoff
(:class:`RetryPolicy`) after a 5xx answer, a connection that cannot be made, a file that arrives
shorter than announced, or a file whose bytes do not match its SHA-256: the Hub names large (LFS)
files by that hash (their ETag, and so their blob's name in the cache), and a blob that does not
match it is deleted, never returned. After the last attempt the error names the file, the fault
and what to do instead.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from pipeline.io import describe

log = logging.getLogger(__name__)
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")


class HubFileError(RuntimeError):
    """A file the pipeline needs is neither reachable on the Hub nor in the local cache."""


class ChecksumError(OSError):
    """A downloaded file does not match the SHA-256 the Hub named it by (it has been deleted)."""


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries per download, waiting ``backoff`` × 2^k seconds (at most ``max_wait``) after the k-th failure."""

    attempts: int = 4
    backoff: float = 1.0
    max_wait: float = 30.0

    def __post_init__(self):
        if self.attempts < 1 or self.backoff < 0 or self.max_wait < 0:
            raise ValueError(f"RetryPolicy needs attempts ≥ 1 and waits ≥ 0, got {self}")

    def wait(self, failures: int) -> float:
        return min(self.max_wait, self.backoff * 2 ** (failures - 1))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "RetryPolicy":
        """``LATENT_LAB_HUB_ATTEMPTS`` and ``LATENT_LAB_HUB_BACKOFF`` (seconds) from ``environ``, else the
        defaults; a :class:`HubFileError` naming the variable if one is not a number."""
        values = {}
        for key, name, kind in (("attempts", "LATENT_LAB_HUB_ATTEMPTS", int), ("backoff", "LATENT_LAB_HUB_BACKOFF", float)):
            if environ.get(name, "").strip():
                try:
                    values[key] = kind(environ[name])
                except ValueError:
                    raise HubFileError(f"{name}={environ[name]!r} is not a{'n integer' if kind is int else ' number'}") from None
        return cls(**values)


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt may succeed: a 408/429/5xx answer, a connection fault, a short or corrupt file.
    Offline mode, an unreachable Hub (already retried by ``huggingface_hub``) and a missing repo, revision
    or file are not."""
    # LocalEntryNotFoundError (an EntryNotFoundError): offline, or the Hub unreachable after huggingface_hub's
    # own retries of the metadata request (five, with backoff): another round would only multiply the wait
    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError)):
        return False
    if isinstance(exc, HfHubHTTPError):
        status = getattr(exc.response, "status_code", None) if exc.response is not None else None
        return status in TRANSIENT_STATUS
    if isinstance(exc, ChecksumError):
        return True
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):   # huggingface_hub's short-file check
        return True
    module = type(exc).__module__ or ""
    return module.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")   # transport faults


def verify_blob(path: str | Path) -> Path:
    """``path`` (a file in the Hub cache) if its bytes match the SHA-256 its blob is named by; a blob named
    otherwise (a small file's git hash) is returned as is. A mismatching blob and ``path`` are deleted."""
    path = Path(path)
    blob = path.resolve()
    if not _SHA256.fullmatch(blob.name):
        return path
    digest = hashlib.sha256()
    with open(blob, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != blob.name:
        for p in {blob, path}:
            p.unlink(missing_ok=True)
        raise ChecksumError(f"{path.name}: SHA-256 {digest.hexdigest()[:12]}… does not match the Hub's "
                            f"{blob.name[:12]}… (deleted from the cache)")
    return path


def with_retries(fetch: Callable[[], object], what: str, policy: RetryPolicy, hint: str,
                 sleep: Callable[[float], None] = time.sleep):
    """``fetch()``, again after each transient fault with backoff; :class:`HubFileError` naming ``what``,
    the last fault and ``hint`` when the attempts run out or the fault is not transient."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return fetch()
        except LocalEntryNotFoundError as exc:   # a subclass of EntryNotFoundError: first
            why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"the Hub ({constants.ENDPOINT}) could not be reached"
            raise HubFileError(f"{what} is missing: {why} and it is not in the cache "
                               f"(cache: {constants.HF_HUB_CACHE}). {hint}") from exc
        except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
            raise HubFileError(f"{what}: no such repository or revision on {constants.ENDPOINT} "
                               f"({type(exc).__name__}). {hint}") from exc
        except EntryNotFoundError as exc:
            raise HubFileError(f"{what} does not exist on {constants.ENDPOINT} ({type(exc).__name__}). {hint}") from exc
        except Exception as exc:   # noqa: BLE001 - sorted into transient and final below
            if not is_transient(exc):
                if isinstance(exc, HfHubHTTPError):
                    raise HubFileError(f"{what}: the Hub answered {describe(exc)}. {hint}") from exc
                raise
            if attempt == policy.attempts:
                reason = describe(exc)
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise HubFileError(f"{what} could not be downloaded{tries}: {reason}. {hint}") from exc
            wait = policy.wait(attempt)
            log.warning("%s: %s; attempt %d of %d in %.1f s", what, describe(exc), attempt + 1, policy.attempts, wait)
            sleep(wait)
    raise AssertionError("unreachable")


def snapshot_commit(path: str | Path) -> str | None:
    """The commit hash a file or folder of the Hub cache was served at (its ``snapshots/<commit>`` folder),
    or ``None`` for a path outside the cache (a local copy): what a run records so it can be pinned."""
    parts = Path(path).parts
    for k in range(len(parts) - 1, 0, -1):
        if parts[k - 1] == "snapshots" and _COMMIT.fullmatch(parts[k]):
            return parts[k]
    return None


def _where(repo_id: str, filename: str, revision: str | None, repo_type: str) -> str:
    rev = f" at revision {revision!r}" if revision else ""
    return f"{filename!r} of {repo_type} {repo_id!r}{rev}"


def hub_file(repo_id: str, filename: str, *, revision: str | None = None, hint: str, repo_type: str = "dataset",
             retry: RetryPolicy = RetryPolicy(), what: str | None = None) -> Path:
    """Download (or find in the cache) one file of a repo, verified; ``hint`` says how to use a local copy,
    ``what`` (default: the file and repo) starts the error message."""
    def fetch() -> Path:
        return verify_blob(hf_hub_download(repo_id, filename, repo_type=repo_type, revision=revision))

    return with_retries(fetch, what or _where(repo_id, filename, revision, repo_type), retry, hint)


def hub_snapshot(repo_id: str, pattern: str | list[str], *, revision: str | None = None, hint: str,
                 repo_type: str = "dataset", retry: RetryPolicy = RetryPolicy(),
                 what: str | None = None) -> tuple[Path, list[Path]]:
    """The files of a repo matching ``pattern`` (a glob such as ``2m_random_1k/train/*.parquet``, or a list),
    downloaded or taken from the cache and verified: the snapshot folder (for ``from_pretrained``) and the
    files, sorted by path. Files already complete in the cache are not fetched again on a retry."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    label = what or _where(repo_id, " | ".join(patterns), revision, repo_type)

    def fetch() -> tuple[Path, list[Path]]:
        root = Path(snapshot_download(repo_id, repo_type=repo_type, revision=revision, allow_patterns=patterns))
        files = sorted(p for p in root.rglob("*") if p.is_file()
                       and any(fnmatch.fnmatch(p.relative_to(root).as_posix(), pat) for pat in patterns))
        return root, [verify_blob(p) for p in files]

    return with_retries(fetch, label, retry, hint)


def hub_files(repo_id: str, pattern: str | list[str], *, repo_type: str = "dataset", hint: str, **kwargs) -> list[Path]:
    """:func:`hub_snapshot`'s files alone; an error if none matches."""
    files = hub_snapshot(repo_id, pattern, repo_type=repo_type, hint=hint, **kwargs)[1]
    if not files:
        patterns = " | ".join([pattern] if isinstance(pattern, str) else pattern)
        raise HubFileError(f"no file of {repo_type} {repo_id!r} matches {patterns!r}: is the config name right? {hint}")
    return files
