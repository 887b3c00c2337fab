"""The score stage's grid on Ray: one Ray task per cell (a seed's clean or noisy fits).

The scorer's work is not per-row inference but a grid of model fits, so it runs as Ray tasks
(``ray.remote`` on :func:`~pipeline.score.benchmark.run_task`), not as a Ray Data ``map_batches``
job. The training and test latents (and the real sampler runs) go into the object store once and
every task reads them from there; at most ``plan.concurrency`` tasks run at once, each with
``plan.num_cpus`` CPUs (its torch threads) and ``plan.num_gpus`` GPUs. The results are those of
the local process pool (:func:`~pipeline.score.benchmark.run_grid`): the same functions on the same
seeds.
"""

from __future__ import annotations

from dataclasses import replace

from pipeline.distributed.cluster import RayPlan, import_ray
from pipeline.score.benchmark import ScorerTask, run_task

_SHARED = ("clean_train", "y_train", "clean_test", "y_test", "real_runs", "fresh")


def _run(task: ScorerTask, *shared) -> dict:
    return run_task(replace(task, **dict(zip(_SHARED, shared))))


def run_grid_ray(tasks: list[ScorerTask], plan: RayPlan) -> list[dict]:
    """:func:`~pipeline.score.benchmark.run_grid` on the connected Ray cluster: the same list, in the
    order of ``tasks``."""
    ray = import_ray()
    remote = ray.remote(_run).options(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus, max_retries=0)
    shared: dict[int, list] = {}   # arrays the tasks share go into the object store once
    threads = max(1, int(plan.num_cpus))
    longest_first = sorted(range(len(tasks)), key=lambda i: tasks[i].kind != "noisy")
    pending, outputs = list(longest_first), {}
    running: dict[object, int] = {}
    while pending or running:
        while pending and len(running) < plan.concurrency:
            i = pending.pop(0)
            task = tasks[i]
            args = []
            for name in _SHARED:
                value = getattr(task, name)
                if id(value) not in shared:
                    shared[id(value)] = [ray.put(value), value]   # the value kept alive: ids stay unique
                args.append(shared[id(value)][0])
            light = replace(task, threads=threads, **{name: None for name in _SHARED})
            running[remote.remote(light, *args)] = i
        (done,), _ = ray.wait(list(running), num_returns=1)
        outputs[running.pop(done)] = ray.get(done)
    return [{**r, "scheduler": name, "seed": t.seed} for i, t in enumerate(tasks) for name, r in outputs[i].items()]
