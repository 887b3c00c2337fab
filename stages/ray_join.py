"""Joining the Ray cluster for a stage run with ``engine: ray`` (own module: the import of Ray and
the cluster's lifetime stay out of the stages' local path)."""

from __future__ import annotations

import contextlib

from pipeline.distributed.cluster import RayPlan, RayUnavailableError, import_ray, ray_cluster
from stages.cli import fail
from stages.config import RayEngine


def join_ray(stack: contextlib.ExitStack, section: str, cfg: RayEngine, batch_size: int) -> RayPlan:
    """Join or start the cluster ``cfg`` names for the rest of ``stack`` and return the work's layout;
    a clear exit naming ``<section>.engine`` if Ray is not installed or the cluster cannot be joined."""
    try:
        import_ray()
        stack.enter_context(ray_cluster(cfg.address, num_cpus=cfg.num_cpus, object_store_mb=cfg.object_store_mb))
    except RayUnavailableError as exc:
        fail(f"{section}.engine=ray: {exc}")
    return RayPlan(concurrency=cfg.actors, num_gpus=cfg.gpus_per_actor, num_cpus=cfg.cpus_per_actor,
                   batch_size=batch_size)
