"""Files from the Hugging Face Hub (or its cache), with errors that say what to do instead.

Everything goes through ``huggingface_hub`` itself, so ``HF_HOME`` / ``HF_HUB_CACHE`` (where the
cache lives), ``HF_HUB_OFFLINE`` (cache only) and ``HF_ENDPOINT`` (a mirror, or the tests' local
server) behave exactly as they do for ``diffusers`` and ``datasets``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from huggingface_hub import constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)


class HubFileError(RuntimeError):
    """A file the pipeline needs is neither reachable on the Hub nor in the local cache."""


def _where(repo_id: str, filename: str, revision: str | None) -> str:
    rev = f" at revision {revision!r}" if revision else ""
    return f"{filename!r} of dataset {repo_id!r}{rev}"


def _reason() -> str:
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set and it is not in the cache"
    return f"the Hub ({constants.ENDPOINT}) could not be reached and it is not in the cache"


def hub_file(repo_id: str, filename: str, *, revision: str | None = None, hint: str) -> Path:
    """Download (or find in the cache) one file of a dataset repo; ``hint`` says how to use a local copy."""
    try:
        return Path(hf_hub_download(repo_id, filename, repo_type="dataset", revision=revision))
    except LocalEntryNotFoundError as exc:
        raise HubFileError(f"{_where(repo_id, filename, revision)} is missing: {_reason()} "
                           f"(cache: {constants.HF_HUB_CACHE}). {hint}") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise HubFileError(f"{_where(repo_id, filename, revision)} does not exist on {constants.ENDPOINT} "
                           f"({type(exc).__name__}). {hint}") from exc
    except HfHubHTTPError as exc:
        raise HubFileError(f"{_where(repo_id, filename, revision)}: the Hub answered {exc}. {hint}") from exc


def hub_files(repo_id: str, pattern: str, *, revision: str | None = None, hint: str) -> list[Path]:
    """Every file of a dataset repo matching ``pattern`` (a glob such as ``2m_random_1k/train/*.parquet``),
    downloaded or taken from the cache, sorted by path."""
    try:
        root = Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, allow_patterns=[pattern]))
    except LocalEntryNotFoundError as exc:
        raise HubFileError(f"{_where(repo_id, pattern, revision)} is missing: {_reason()} "
                           f"(cache: {constants.HF_HUB_CACHE}). {hint}") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise HubFileError(f"{_where(repo_id, pattern, revision)}: no such repository or revision on "
                           f"{constants.ENDPOINT} ({type(exc).__name__}). {hint}") from exc
    except HfHubHTTPError as exc:
        raise HubFileError(f"{_where(repo_id, pattern, revision)}: the Hub answered {exc}. {hint}") from exc
    files = sorted(p for p in root.rglob("*") if p.is_file() and fnmatch.fnmatch(p.relative_to(root).as_posix(), pattern))
    if not files:
        raise HubFileError(f"no file of dataset {repo_id!r} matches {pattern!r}: is the config name right? {hint}")
    return files
