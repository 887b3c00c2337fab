"""Starting or joining the Ray cluster a stage runs its Ray Data work on."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install -r requirements-ray.txt"


@dataclass(frozen=True)
class RayPlan:
    """How a stage's Ray Data work is laid out: ``concurrency`` model actors with ``num_gpus``
    and ``num_cpus`` each, batches of ``batch_size`` rows."""

    concurrency: int = 1
    num_gpus: float = 0.0
    num_cpus: float = 1.0
    batch_size: int = 64


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster at the given address cannot be joined."""


def import_ray():
    """The ``ray`` module, or a clear error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is a separate extra of the ray package
    except ImportError as exc:
        raise RayUnavailableError(f"the ray engine needs Ray Data, which is not installed ({INSTALL_HINT})") from exc
    return ray


@contextlib.contextmanager
def ray_cluster(address: str = "", *, num_cpus: int = 0, object_store_mb: int = 0) -> Iterator[str]:
    """Join the cluster at ``address`` (or ``$RAY_ADDRESS``), shipping this library to its workers, or
    else start a local one on this machine with ``num_cpus`` CPUs (0: all) and an object store of
    ``object_store_mb`` MiB (0: Ray's default, 30 % of memory); yields where it runs and shuts down
    what it started. Inside a process that already called ``ray.init`` it uses that connection."""
    ray = import_ray()
    if ray.is_initialized():
        yield "the connected cluster"
        return
    address = address or os.environ.get("RAY_ADDRESS", "")
    common = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        _check_reachable(address)
        # the cluster's workers import this library from the copy the driver ships, not from their own disk
        library = str(Path(__file__).resolve().parents[1])
        try:
            ray.init(address=address, runtime_env={"py_modules": [library]}, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayUnavailableError(f"cannot join the Ray cluster at {address!r} ({exc})") from exc
        where = address
    else:
        ray.init(address="local", num_cpus=num_cpus or None,
                 object_store_memory=object_store_mb * 2**20 if object_store_mb else None, **common)
        where = f"a local cluster at {ray.get_runtime_context().gcs_address} ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
    log.info("Ray: %s", where)
    try:
        yield where
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail within seconds when a ``host:port`` cluster address does not answer (``ray.init`` itself
    keeps retrying for minutes); other forms (``auto``, ``ray://…``) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in host:
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RayUnavailableError(f"cannot join the Ray cluster at {address!r}: nothing answers there ({exc})") from exc
