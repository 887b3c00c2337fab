"""Test session setup. Under pytest-xdist (``.ci/run``: ``-n <cores> --dist loadscope``) each worker is
pinned to its share of the cores, so the stages it starts (which size their threads and worker pools
from the cores they may run on: ``pipeline.runtime.configure_threads``) do not oversubscribe the
machine. A worker runs a test module whole (its module-scoped project is built once), or one class:
each SD rehearsal geometry is a class of its own. The longest units are handed out first."""

import os

os.environ.setdefault("DVC_NO_ANALYTICS", "1")

# the longest work units first (`pytest --durations`), so that no worker is left with one at the end
# (each worker starts with two: the first and third, the second and fourth)
LONGEST_FIRST = ["tests/test_sd_rehearsal.py::TestSd256", "tests/test_e2e.py", "tests/test_e2e_emoji.py",
                 "tests/test_sd_rehearsal.py::TestTaesd512", "tests/test_ray_engine.py"]


def _share_cores() -> None:
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if count > len(cores):
        return   # more workers than cores: leave the scheduling to the system
    mine = cores[int(worker.removeprefix("gw")) % count::count]
    os.sched_setaffinity(0, mine)
    os.environ["OMP_NUM_THREADS"] = str(len(mine))   # torch, OpenBLAS and the stages started from here


_share_cores()


def work_unit(nodeid: str) -> str:
    """What ``--dist loadscope`` hands a worker whole: the test's class if it has one, else its module."""
    parts = nodeid.split("::")
    return "::".join(parts[:2]) if len(parts) > 2 else parts[0]


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: runs the real `dvc repro` in a temporary git repo (minutes)")


def pytest_collection_modifyitems(config, items):
    rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))   # stable: the rest keep their order
