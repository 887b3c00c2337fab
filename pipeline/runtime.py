"""Run-time choices that must not be baked into results: device, threads, seeding."""

from __future__ import annotations

import functools
import os
import random

import numpy as np

# torch is imported inside the functions that need it, so a stage without torch work (compare,
# report) does not pay its import.


def resolve_device(name: str):
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error, not a fallback."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but torch sees no CUDA device (use 'auto' or 'cpu')")
    return torch.device(name)


def seed_everything(seed: int, *, torch: bool = True) -> None:
    """Seed Python, NumPy and (unless ``torch=False``) torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    if torch:
        import torch as _torch

        _torch.manual_seed(seed)


def configure_threads(*, torch: bool = True) -> int:
    """Use every core this process may run on (cgroup/affinity aware) for torch's CPU ops."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    if torch:
        import torch as _torch

        _torch.set_num_threads(n)
    return n


def worker_plan(requested: int) -> tuple[int, int]:
    """(worker processes, torch threads per worker) for a process pool on this machine's cores:
    ``requested`` workers (0 = one per core), never more than the cores, sharing them evenly."""
    cores = configure_threads(torch=False)
    workers = min(requested or cores, cores)
    return workers, max(1, cores // workers)


def task_threads(n_tasks: int, workers: int) -> list[int]:
    """Torch threads for each of ``n_tasks`` similar tasks submitted in order to ``workers`` processes:
    the cores shared evenly, except that the tasks of a last, partial round (which run with some
    workers idle) share all the cores among themselves. Three equal fits on two cores then take
    about 1.3 rounds instead of two (a small CNN trains 1.5× faster per step on two threads)."""
    cores = configure_threads(torch=False)
    workers = max(1, min(workers, n_tasks))
    rest = n_tasks % workers
    full = [max(1, cores // workers)] * (n_tasks - rest)
    return full + [max(1, cores // rest)] * rest if rest else full


def release_memory() -> bool:
    """Hand the heap's free pages back to the operating system (glibc's ``malloc_trim``; True when
    it ran, False where there is no glibc). A streaming loop calls it every few batches: glibc
    raises its mmap threshold after large frees, so the batch-sized arrays that come and go then
    live on the heap, and small long-lived objects between them keep the freed pages resident —
    resident memory would grow with the number of batches although the live data does not
    (``benchmarks/encode_memory.py``: 1.96× at 10× the images without it)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim`` from the symbols already loaded in this process (no library search,
    which would start ``ldconfig``), or None elsewhere."""
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
